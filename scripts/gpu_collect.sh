#!/usr/bin/env bash
# Read rendered frames on the GPU machine (device tool) once, for CPU-side measurements:
#   bash scripts/gpu_collect.sh [STATION_N] [DEV_N] [HELDOUT_N] [SEED]
# carry .whl (pydantic & co. for Python 3.12) and .fonts.tar.xz (the plates' fonts).
# Writes $OUT/reads/{station,dev,heldout}.jsonl (training.calibrate.collect); verify runs
# on the station split only. Each split has its own time limit; a cut file keeps its lines.
# SEED (default 2026) renders other frames: a seed no rule or threshold was tuned on.
# A count of 0 skips the split.
set -uo pipefail
source scripts/gpu_env.sh
SEED=${4:-2026}
if [[ ${1:-400} != 0 ]]; then
  timeout 300 python3 -m training.calibrate.collect --split station:${1:-400} --out $OUT/reads \
    --seed $SEED --workers 15 2>&1 | grep -v -i "warn\|Loading" | tail -3
fi
for split in dev:${2:-300} heldout:${3:-300}; do
  [[ ${split#*:} == 0 ]] && continue
  timeout 100 python3 -m training.calibrate.collect --split $split --out $OUT/reads \
    --seed $SEED --workers 15 --no-verify 2>&1 | grep -v -i "warn\|Loading" | tail -3
done
wc -l $OUT/reads/*.jsonl
