#!/usr/bin/env bash
# Train and evaluate the reader on the GPU machine (device tool; carry .fonts and .whl).
#   bash scripts/gpu_train.sh continue MINUTES  train on from the shipped weights, pack them
#   bash scripts/gpu_train.sh smoke MINUTES   train and evaluate briefly, in one call
#   bash scripts/gpu_train.sh chain TOTAL THIS [EVAL_S]  one schedule of TOTAL minutes over
#       back-to-back calls on a warm machine: the first starts from the shipped weights, each
#       later one resumes the checkpoint in /tmp/reader; THIS minutes per call
#   bash scripts/gpu_train.sh start MINUTES   start training as a daemon (outlives the call)
#   bash scripts/gpu_train.sh wait SECONDS    wait, show progress, copy the latest snapshot
#   bash scripts/gpu_train.sh finish          wait for the end, evaluate, pack the weights
# Writes under $OUT: train.log, report-*.json, model.tar.part-* (detector + recognizer, fp16).
set -euo pipefail
MODE=${1:-smoke}
ARG=${2:-6}
WORK=/tmp/reader
source scripts/gpu_env.sh
pack() { tar -C "$1" -cf - detector recognizer | split -b 15M - "$OUT/model.tar.part-"; }
case $MODE in
  smoke)
    python3 -m appliance.reader.neural.train --out $WORK --minutes "$ARG" --workers 15 \
      --frames 24 --no-resume 2>&1 | grep -v -i warn | tee $OUT/train.log | tail -n 4
    python3 -m appliance.reader.neural.report --model $WORK --out $OUT/report-smoke.json \
      --dev 40 --heldout 0 --workers 15
    pack $WORK ;;
  continue)  # bash scripts/gpu_train.sh continue MINUTES [INIT_DIR]: one call, from weights
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    python3 -m appliance.reader.neural.train --out $WORK --minutes "$ARG" --workers 15 \
      --frames 16 --lines 768 --init "${3:-models/nameplate-reader}" --no-resume 2>&1 \
      | grep -v -i warn | grep '"step"\|rendered' > $OUT/train.log || true
    tail -n 2 $OUT/train.log; cp $WORK/train_summary.json $OUT/; pack $WORK
    timeout 100 python3 -m appliance.reader.neural.report --model $WORK --out $OUT/report.json \
      --dev 150 --heldout 150 --workers 15 --decode ctc 2>&1 | grep -v -i warn | cut -c1-900 || true
    timeout 40 python3 bench/profile_reader.py --model $WORK --workers 15 > $OUT/profile.txt 2>&1 || true ;;
  chain)
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    if [[ -f $WORK/checkpoint.pt ]]; then start=(); echo "resuming $WORK/checkpoint.pt"
    else start=(--init models/nameplate-reader --no-resume); echo "from the shipped weights"; fi
    python3 -m appliance.reader.neural.train --out $WORK --minutes "$ARG" --workers 15 \
      --frames 16 --lines 768 --stop-after "$3" "${start[@]}" 2>&1 \
      | grep -v -i warn | grep '"step"\|rendered' > $OUT/train.log || true
    tail -n 2 $OUT/train.log; cp $WORK/train_summary.json $OUT/; pack $WORK
    if (( ${4:-0} > 0 )); then
      timeout "$4" python3 -m appliance.reader.neural.report --model $WORK \
        --out $OUT/report.json --dev 150 --heldout 100 --workers 15 --decode ctc 2>&1 \
        | grep -v -i warn | cut -c1-700 || true
      timeout 50 python3 bench/profile_reader.py --model $WORK --workers 15 -n 30 \
        > $OUT/profile.txt 2>&1 || true
    fi ;;
  fresh|more)  # bash scripts/gpu_train.sh fresh|more TOTAL_MINUTES THIS_CALL_MINUTES EVAL_S
    # weights are packed into $OUT before any evaluation, which runs under a hard timeout
    python3 -m appliance.reader.neural.train --out $WORK --minutes "$ARG" --workers 15 \
      --frames 24 --stop-after "$3" $( [[ $MODE == fresh ]] && echo --no-resume ) 2>&1 \
      | grep -v -i warn | grep '"step"' > $OUT/train.log || true
    tail -n 2 $OUT/train.log; cp $WORK/train_summary.json $OUT/; pack $WORK
    timeout "${4:-60}" python3 -m appliance.reader.neural.report --model $WORK \
      --out $OUT/report.json --dev 150 --heldout 80 --workers 15 --decode ctc 2>&1 \
      | grep -v -i warn | cut -c1-700 || true ;;
  start)
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    mkdir -p $WORK
    setsid nohup python3 -m appliance.reader.neural.train --out $WORK --minutes "$ARG" \
      --workers 15 --frames 24 --no-resume --snapshot $WORK/snapshot \
      > $WORK/train.log 2>&1 < /dev/null &
    sleep 60; grep -v -i warn $WORK/train.log | tail -n 3 ;;
  wait)
    sleep "$ARG"; grep '"step"' $WORK/train.log | tail -n 2
    if [[ -d $WORK/snapshot/recognizer ]]; then pack $WORK/snapshot; fi ;;
  finish)
    while [[ ! -f $WORK/train_summary.json ]]; do sleep 5; done
    grep -v -i warn $WORK/train.log | grep '"step"' > $OUT/train.log || true
    cat $WORK/train_summary.json
    python3 -m appliance.reader.neural.report --model $WORK --out $OUT/report-auto.json \
      --dev 400 --heldout 200 --workers 15 --decode auto
    python3 -m appliance.reader.neural.report --model $WORK --out $OUT/report-ctc.json \
      --dev 200 --heldout 0 --workers 15 --decode ctc
    pack $WORK ;;
esac
