#!/usr/bin/env bash
# Pack the plate fonts and print-head matrices this machine renders with into .fonts.tar.xz,
# for the GPU machine (device tool), which lacks the Debian font packages: carry the file and
# scripts/gpu_env.sh unpacks it. Each file keeps its folder's name, which classifies some
# fonts (appliance.synth.fonts KINDS: "opendin" makes OSP-DIN a DIN face): flat, as the
# archive was packed until session 18, the GPU machine classed 5 fonts differently.
# Run after the README set-up:
#   bash scripts/pack_fonts.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
mkdir "$work/.fonts"
"$PY" - "$work/.fonts" <<'EOF'
import shutil
import sys
from pathlib import Path

from appliance.synth.fonts import catalogue
from appliance.synth.printhead import print_heads

paths = [f.path for f in catalogue()] + [h.path for h in print_heads()]
for path in paths:
    folder = Path(sys.argv[1]) / path.parent.name
    folder.mkdir(exist_ok=True)
    shutil.copy(path, folder)
print(f"{len(paths)} font files")
EOF
tar -C "$work" -cJf .fonts.tar.xz .fonts
rm -rf "$work"
ls -l .fonts.tar.xz
