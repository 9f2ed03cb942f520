#!/usr/bin/env bash
# Prints the path of a cached Python venv with TensorFlow (CPU), creating it on
# first use (~80 s). Separate from the MXNet venv: TensorFlow needs a newer numpy
# than mxnet 1.9.1 imports. Cache: ${IMGPREP_CACHE:-~/.cache/imgprep}/venv-tf
set -euo pipefail
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}"
venv="$cache/venv-tf"
stamp="$venv/.imgprep-ready-v1"
if [ ! -f "$stamp" ]; then
  mkdir -p "$cache"
  echo "setting up the TensorFlow venv in $venv (once, ~80 s)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check tensorflow-cpu==2.21.0 >&2
  TF_CPP_MIN_LOG_LEVEL=2 "$venv/bin/python" -c "import tensorflow" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
