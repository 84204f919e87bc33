#!/usr/bin/env bash
# Measure the shipped reader on the GPU machine (device tool; carry .fonts and .whl):
# accuracy on dev and held-out fonts, latency at batch 1, and where the time goes.
#   bash scripts/gpu_measure.sh [DEV_FRAMES] [HELDOUT_FRAMES]
set -uo pipefail
source scripts/gpu_env.sh
for flag in "" --no-fastpath; do
  timeout 60 python3 bench/profile_reader.py --workers 15 -n 40 $flag 2>&1 | grep -v -i warn \
    | tee -a $OUT/profile.txt | head -n 1
done
timeout 60 python3 bench/profile_reader.py --workers 15 -n 40 --decode auto 2>&1 \
  | grep -v -i warn | tee -a $OUT/profile.txt | head -n 1
timeout 240 python3 -m appliance.reader.neural.report --model models/nameplate-reader \
  --out $OUT/report.json --dev "${1:-200}" --heldout "${2:-150}" --workers 15 --decode ctc \
  2>&1 | grep -v -i warn | cut -c1-600
