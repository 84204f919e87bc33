#!/usr/bin/env bash
# Fine-tune and measure the PP-OCR reader on the GPU machine (device tool), in one call:
#   [WORKERS=15] bash scripts/gpu_ppocr.sh MINUTES [EVAL_FRAMES] [PARTS]
# carry .whl (pydantic, pyzmq & co. for Python 3.12) and .fonts.tar.xz (the plates' fonts).
# Writes under $OUT: finetune.log, finetune.json, detector/ and recognizer/ (fine-tuned),
# profile.txt (where a frame's time goes) and report.json (base against fine-tuned).
set -euo pipefail
MINUTES=${1:-5}
N=${2:-100}
PARTS=${3:-recognizer,detector}
WORKERS=${WORKERS:-15}
source scripts/gpu_env.sh
WORK=/tmp/ft
python3 -m training.ppocr.finetune --init models/ppocr-reader --out $WORK --parts "$PARTS" \
  --minutes "$MINUTES" --workers "$WORKERS" 2>&1 | grep -v -i warn | grep '"step"\|Error' \
  > $OUT/finetune.log || true
tail -n 2 $OUT/finetune.log
cp $WORK/finetune.json $OUT/ || true
for part in detector recognizer orientation; do
  [[ -d $WORK/$part ]] && cp -r $WORK/$part $OUT/ || cp -r models/ppocr-reader/$part $WORK/
done
rm -rf $OUT/orientation
timeout 60 python3 bench/profile_reader.py --model $WORK --workers "$WORKERS" -n 30 \
  > $OUT/profile.txt 2>&1 || true
grep median $OUT/profile.txt || true; grep "by stage" $OUT/profile.txt || true
timeout 130 python3 -m training.ppocr.report --model $WORK \
  --split station:$N --split dev:$N --split heldout:$N --workers "$WORKERS" --latency 10 \
  --out $OUT/report.json 2>&1 | grep -v -i warn | grep '^{\|^\[' || true
