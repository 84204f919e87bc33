#!/usr/bin/env bash
# Read the same frames with several models on the GPU machine (device tool), no verify, one
# collect each (the frames render once per model; the seeds are the splits' own):
#   [WORKERS=15] [SPLITS="station:300 dev:300"] bash scripts/gpu_reads.sh NAME=MODEL_DIR...
# carry .whl, .fonts.tar.xz and the model folders. Writes $OUT/reads.tar.xz holding
# NAME/{split}.jsonl for each model; score them here with training.attach.reads.
set -uo pipefail
WORKERS=${WORKERS:-15}
SPLITS=${SPLITS:-"station:300 dev:300"}
LIMIT=${LIMIT:-280}
source scripts/gpu_env.sh
WORK=/tmp/reads
mkdir -p $WORK
args=()
for split in $SPLITS; do args+=(--split "$split"); done
for pair in "$@"; do
  name=${pair%%=*}; model=${pair#*=}
  start=$SECONDS
  timeout "$LIMIT" python3 -m training.calibrate.collect --model "$model" "${args[@]}" \
    --out $WORK/$name --workers "$WORKERS" --no-verify 2>&1 | grep -v -i "warn\|Loading" | tail -1
  echo "$name: $((SECONDS - start)) s"
done
wc -l $WORK/*/*.jsonl
tar -C $WORK -cf - . | xz -1 -T8 > $OUT/reads.tar.xz
