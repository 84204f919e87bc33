# Sourced by the scripts/gpu_*.sh run on the GPU machine (device tool): installs the carried
# wheels (.whl: pydantic & co. for its Python 3.12) under /tmp/site, unpacks the carried
# plate fonts (.fonts.tar.xz, made by scripts/pack_fonts.sh) when present, and prints the card.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
FONT_DIR=$PWD/.fonts
if [[ -f .fonts.tar.xz ]]; then
  tar -C /tmp -xJf .fonts.tar.xz
  FONT_DIR=/tmp/.fonts
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NAMEPLATE_FONT_DIRS=$FONT_DIR
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
