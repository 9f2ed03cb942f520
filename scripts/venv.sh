#!/usr/bin/env bash
# Prints the path of a cached Python venv with a real peer installed, creating
# it on first use:
#   scripts/venv.sh        MXNet 1.9.1 (+ the numpy and OpenCV it needs, Pillow), ~30 s
#   scripts/venv.sh tf     TensorFlow (CPU) 2.21, ~80 s. Separate because TensorFlow
#                          needs a newer numpy than mxnet 1.9.1 can import.
#   scripts/venv.sh awscli The AWS CLI 1.46 (bench/s3.sh; `aws` is beside the python), ~15 s
# Cache: ${IMGPREP_CACHE:-~/.cache/imgprep}/venv-{mxnet,tf,awscli}
set -euo pipefail
kind="${1:-mxnet}"
case "$kind" in
  mxnet) pkgs=(mxnet==1.9.1 numpy==1.23.5 opencv-python-headless==4.8.1.78 pillow==11.3.0)
         check="import mxnet, cv2, PIL" ;;
  tf)    pkgs=(tensorflow-cpu==2.21.0)
         check="import tensorflow" ;;
  awscli) pkgs=(awscli==1.46.2)
         check="import awscli" ;;
  *)     echo "venv.sh: unknown venv '$kind' (mxnet, tf or awscli)" >&2; exit 2 ;;
esac
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}"
venv="$cache/venv-$kind"
stamp="$venv/.imgprep-ready-v1"
if [ ! -f "$stamp" ]; then
  mkdir -p "$cache"
  echo "setting up the $kind venv in $venv (once)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "${pkgs[@]}" >&2
  TF_CPP_MIN_LOG_LEVEL=2 "$venv/bin/python" -c "$check" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
