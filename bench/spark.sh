#!/usr/bin/env bash
# The Spark driver on N generated images (default 10,000; 400x300 JPEGs, 10
# classes, cached under ~/.cache/imgprep/bench/spark): local[1] vs local[2],
# against plain `imgprep build` on the same cores, and the Python API against
# the binary on a small set. See bench/spark_bench.py for the cases.
# Needs the wheel installed in the py venv (scripts/pytest.sh does that) and
# the release binary: IMGPREP=target/release/imgprep (default).
# Usage: [N=10000] [RUNS=3] [SLICES=8] bench/spark.sh  -> JSON on stdout
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(scripts/venv.sh py)"
export IMGPREP_BIN="$(realpath "${IMGPREP:-target/release/imgprep}")"
export BENCH_DATA="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/bench/spark"
export SPARK_LOCAL_IP=127.0.0.1
mkdir -p "$BENCH_DATA"
exec "$py" bench/spark_bench.py
