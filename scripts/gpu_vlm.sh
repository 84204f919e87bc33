#!/usr/bin/env bash
# GPU latency of the vlm backend on a random GLM-4.6V-Flash-shaped model (device tool):
#   bash scripts/gpu_vlm.sh        (carry .whl: pydantic & co. for Python 3.12)
# Writes $OUT/vlm_gpu.json.
set -euo pipefail
source scripts/gpu_env.sh
python3 bench/vlm_gpu.py --repeat 5 --static 2>&1 | grep -v -i "warn" | tee $OUT/vlm_gpu.log
tail -n 40 $OUT/vlm_gpu.log | sed -n '/^{$/,/^}$/p' > $OUT/vlm_gpu.json || true
