#!/usr/bin/env bash
# Prints the path of a cached Python venv with the real peers installed
# (MXNet 1.9.1 with the numpy and OpenCV it needs, Pillow), creating it on first use.
# Cache: ${IMGPREP_CACHE:-~/.cache/imgprep}/venv-mxnet
set -euo pipefail
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}"
venv="$cache/venv-mxnet"
stamp="$venv/.imgprep-ready-v1"
if [ ! -f "$stamp" ]; then
  mkdir -p "$cache"
  echo "setting up the MXNet venv in $venv (once, ~30 s)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check \
    mxnet==1.9.1 numpy==1.23.5 opencv-python-headless==4.8.1.78 pillow==11.3.0 >&2
  "$venv/bin/python" -c "import mxnet, cv2, PIL" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
