#!/usr/bin/env bash
# Fine-tune and measure the PP-OCR reader on the GPU machine (device tool), in one call:
#   bash scripts/gpu_ppocr.sh MINUTES [EVAL_FRAMES]
# carry .whl (pydantic & co. for Python 3.12) and .fonts.tar.xz (the synthetic plates' fonts).
# Writes under $OUT: finetune.log, report.json, recognizer/ (fine-tuned weights, fp16).
set -euo pipefail
MINUTES=${1:-5}
N=${2:-150}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
tar -C /tmp -xJf .fonts.tar.xz
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NAMEPLATE_FONT_DIRS=/tmp/.fonts
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
WORK=/tmp/ft
python3 -m training.ppocr.finetune_rec --init models/ppocr-reader --out $WORK \
  --minutes "$MINUTES" --workers 15 2>&1 | grep -v -i warn | grep '"step"' > $OUT/finetune.log || true
tail -n 3 $OUT/finetune.log
cp -r $WORK/recognizer $OUT/recognizer && cp $WORK/finetune_rec.json $OUT/ || true
for part in detector orientation; do cp -r models/ppocr-reader/$part $WORK/; done
timeout 240 python3 -m training.ppocr.report --model models/ppocr-reader --model $WORK \
  --split station:$N --split dev:$N --split heldout:$N --workers 15 --latency 15 \
  --out $OUT/report.json 2>&1 | grep -v -i warn | grep '^{\|^\[' || true
