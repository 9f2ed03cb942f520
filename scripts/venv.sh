#!/usr/bin/env bash
# Prints the path of a cached Python venv with a real peer installed, creating
# it on first use:
#   scripts/venv.sh        MXNet 1.9.1 (+ the numpy and OpenCV it needs, Pillow), ~30 s
#   scripts/venv.sh tf     TensorFlow (CPU) 2.21 and pycocotools, ~80 s. Separate because
#                          TensorFlow needs a newer numpy than mxnet 1.9.1 can import.
#   scripts/venv.sh awscli The AWS CLI 1.46 (bench/s3.sh; `aws` is beside the python), ~15 s
#   scripts/venv.sh bench-py pandas 2.3 + Pillow for the hand-written Python peers
#                          (bench/make_voc.py, bench/voc_to_sagemaker.py), ~35 s
#   scripts/venv.sh datumaro Datumaro 1.13 with its CLI extras (bench/detection.sh;
#                          `datum` is beside the python), ~80 s
#   scripts/venv.sh py     maturin and zig (build the manylinux2014 wheel), pytest, PySpark 4.3 (+ Spark Connect) + pyarrow, pandas,
#                          tqdm, Pillow: the Python package's tests (scripts/pytest.sh), ~3 min
# Cache: ${IMGPREP_CACHE:-~/.cache/imgprep}/venv-{mxnet,tf,awscli,bench-py,datumaro,py}
set -euo pipefail
kind="${1:-mxnet}"
case "$kind" in
  mxnet) pkgs=(mxnet==1.9.1 numpy==1.23.5 opencv-python-headless==4.8.1.78 pillow==11.3.0)
         check="import mxnet, cv2, PIL" ;;
  tf)    pkgs=(tensorflow-cpu==2.21.0 pycocotools==2.0.10)
         check="import tensorflow, pycocotools.coco" ;;
  awscli) pkgs=(awscli==1.46.2)
         check="import awscli" ;;
  bench-py) pkgs=(pandas==2.3.3 numpy==2.3.5 pillow==11.3.0)
         check="import pandas, PIL" ;;
  datumaro) pkgs=("datumaro[cli]==1.13.12")
         check="import datumaro, tensorboardX, tabulate, scipy, matplotlib" ;;  # CLI extras
  py)    pkgs=(maturin==1.16.0 pytest==9.2.0 "pyspark[connect]==4.3.0" pyarrow==26.0.1 pandas==2.3.3
               numpy==2.3.5 pillow==11.3.0 tqdm==4.70.1 ziglang==0.15.1)
         check="import pyspark, pyarrow, pandas, PIL, tqdm, pytest" ;;
  *)     echo "venv.sh: unknown venv '$kind' (mxnet, tf, awscli, bench-py, datumaro or py)" >&2; exit 2 ;;
esac
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}"
venv="$cache/venv-$kind"
# the stamp names the package list: a changed list makes a fresh venv
stamp="$venv/.imgprep-ready-$(printf '%s ' "${pkgs[@]}" | sha256sum | cut -c1-12)"
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
