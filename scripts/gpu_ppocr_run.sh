#!/usr/bin/env bash
# One fine-tune run of the PP-OCR recogniser on the GPU machine (device tool), measured on the
# same station/dev frames as training.calibrate.collect reads of the shipped model:
#   [WORKERS=15] [HELDOUT=N] bash scripts/gpu_ppocr_run.sh MINUTES STATION_N DEV_N [finetune args...]
# carry .whl and .fonts.tar.xz. Writes $OUT/finetune.log and $OUT/run.tar.xz (finetune.json,
# recognizer/ and reads/{station,dev[,heldout]}.jsonl, no verify): one archive, because the
# device tool brings back at most 8 files (session 17 lost a run's weights to that limit).
# STATION_N and DEV_N 0: no reads (a longer run; read it with scripts/gpu_reads.sh).
set -uo pipefail
MINUTES=${1:-8}; STATION=${2:-400}; DEV=${3:-300}; shift 3 || true
WORKERS=${WORKERS:-15}
source scripts/gpu_env.sh
WORK=/tmp/ft
python3 -m training.ppocr.finetune --init ${INIT:-models/ppocr-reader} --out $WORK --parts recognizer \
  --minutes "$MINUTES" --workers "$WORKERS" "$@" 2>&1 | grep -v -i warn \
  | grep '"step"\|Error' > $OUT/finetune.log
tail -n 2 $OUT/finetune.log
cp -r models/ppocr-reader/detector models/ppocr-reader/orientation $WORK/
mkdir -p $WORK/reads
if (( STATION > 0 )); then
  timeout 150 python3 -m training.calibrate.collect --model $WORK --split station:$STATION \
    --out $WORK/reads --workers "$WORKERS" --no-verify 2>&1 | grep -v -i "warn\|Loading" | tail -1
fi
if (( DEV > 0 )); then
  timeout 100 python3 -m training.calibrate.collect --model $WORK --split dev:$DEV \
    --out $WORK/reads --workers "$WORKERS" --no-verify 2>&1 | grep -v -i "warn\|Loading" | tail -1
fi
if [[ -n "${HELDOUT:-}" ]]; then
  timeout 100 python3 -m training.calibrate.collect --model $WORK --split heldout:$HELDOUT \
    --out $WORK/reads --workers "$WORKERS" --no-verify 2>&1 | grep -v -i "warn\|Loading" | tail -1
fi
wc -l $WORK/reads/*.jsonl 2>/dev/null
# xz: one file under the tool's 16 MiB a file (reads and fp32 weights come to 17 MB)
tar -C $WORK -cf - finetune.json recognizer reads | xz -1 -T8 > $OUT/run.tar.xz
