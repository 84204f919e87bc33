#!/usr/bin/env bash
# Train and evaluate the reader on the GPU machine (device tool). Carries: .fonts .whl
#   bash scripts/gpu_train.sh MINUTES [smoke]
# Writes under $OUT: train.log, report-*.json, model.tar.part-* (detector + recognizer, fp16).
set -euo pipefail
MINUTES=${1:-6}
MODE=${2:-full}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NAMEPLATE_FONT_DIRS=$PWD/.fonts
export TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers, cv2; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cv2', cv2.__version__)"
WORK=/tmp/reader
if [[ $MODE == smoke ]]; then
  python3 -m appliance.reader.neural.train --out $WORK --minutes "$MINUTES" --workers 14 \
    --frames 24 --no-resume 2>&1 | tee $OUT/train.log | tail -n 5
  python3 -m appliance.reader.neural.report --model $WORK --out $OUT/report-smoke.json \
    --dev 40 --heldout 0 --workers 14
else
  python3 -m appliance.reader.neural.train --out $WORK --minutes "$MINUTES" --workers 15 \
    --frames 24 --no-resume --snapshot $WORK/snapshot 2>&1 | tee $OUT/train.log | grep -E '"step": [0-9]*000,|steps' || true
  python3 -m appliance.reader.neural.report --model $WORK --out $OUT/report-auto.json \
    --dev 400 --heldout 200 --workers 15 --decode auto
  python3 -m appliance.reader.neural.report --model $WORK --out $OUT/report-ctc.json \
    --dev 200 --heldout 0 --workers 15 --decode ctc
fi
tar -C $WORK -cf - detector recognizer train_summary.json | split -b 15M - $OUT/model.tar.part-
ls -la $OUT
