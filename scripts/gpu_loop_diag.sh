#!/usr/bin/env bash
# Why the fine-tuning loop is slow on the GPU host (device tool; carry .whl and .fonts.tar.xz):
# the CPU, the loop's parts (bench/finetune_throughput.py), the renderers under one BLAS/OpenMP
# thread each and a single renderer, and a profile of one process rendering training frames.
set -uo pipefail
source scripts/gpu_env.sh
lscpu | grep -E "Model name|^CPU\(s\)|Thread|NUMA node\(s\)" > $OUT/cpu.txt
python3 -c "import numpy; numpy.show_config()" > $OUT/numpy.txt 2>&1
W=${WORKERS:-14}
python3 bench/finetune_throughput.py --workers $W --seconds 25 --steps 15 2>&1 | grep '^{' | tee $OUT/throughput.txt
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python3 bench/finetune_throughput.py \
  --workers $W --seconds 25 --renderers-only 2>&1 | grep '^{' | sed 's/^/one-blas-thread /' | tee -a $OUT/throughput.txt
python3 bench/finetune_throughput.py --workers 1 --seconds 20 --renderers-only 2>&1 | grep '^{' \
  | sed 's/^/single /' | tee -a $OUT/throughput.txt
python3 - > $OUT/profile.txt 2>&1 <<'PY'
import cProfile, pstats, time
from training.ppocr import finetune as ft
ft._worker_init("config/schemas/motor.toml")
ft.frame_lines(0, detector=False)
t = time.perf_counter()
prof = cProfile.Profile(); prof.enable()
for seed in range(1, 9):
    ft.frame_lines(seed, detector=False)
prof.disable()
print("frames/s", 8 / (time.perf_counter() - t))
pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
pstats.Stats(prof).sort_stats("tottime").print_stats(20)
PY
head -1 $OUT/profile.txt
