#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, integration and interop tests
# (real MXNet reads our output; the wheel's own im2rec.py is run side by side;
# the S3 tests talk to a real Garage server, see scripts/garage.sh; the az://
# tests to Microsoft's Azurite emulator, scripts/azurite.sh), then the Python
# package's tests (scripts/pytest.sh: the wheel built with maturin, pytest,
# PySpark in local mode).
# Installs what it needs (cmake/nasm/ffmpeg via apt, cached Python venvs, a cached Garage
# build, ~9 min, a cached Azurite npm install, ~45 s) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
IMGPREP_PYTHON="$(scripts/venv.sh)"
IMGPREP_TF_PYTHON="$(scripts/venv.sh tf)"
scripts/garage.sh bin >/dev/null
scripts/azurite.sh bin >/dev/null
export IMGPREP_PYTHON IMGPREP_TF_PYTHON TF_CPP_MIN_LOG_LEVEL=2
# item caches of the test builds go to a temporary folder, not ~/.cache/imgprep
IMGPREP_CACHE_DIR="$(mktemp -d)"
export IMGPREP_CACHE_DIR
if [ -z "${IMGPREP_SHARED_DATA:-}" ] && [ -d ../shared/data ]; then
  IMGPREP_SHARED_DATA="$(cd ../shared/data && pwd)"
  export IMGPREP_SHARED_DATA
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# A fresh Garage server for this run; its IMGPREP_S3_* settings go to the tests,
# which may stop and restart it ($IMGPREP_GARAGE_SCRIPT stop|start $IMGPREP_GARAGE_DIR).
garage_dir="$(mktemp -d)"
azurite_dir="$(mktemp -d)"
trap 'scripts/garage.sh stop "$garage_dir" || true; scripts/azurite.sh stop "$azurite_dir" || true; rm -rf "$garage_dir" "$azurite_dir" "$IMGPREP_CACHE_DIR"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
garage_env="$(scripts/garage.sh start "$garage_dir")"
# shellcheck source=/dev/null
source "$garage_env"
# and a fresh Azurite (Azure Blob Storage) for the az:// tests: IMGPREP_AZ_*
azurite_env="$(scripts/azurite.sh start "$azurite_dir")"
# shellcheck source=/dev/null
source "$azurite_env"
# (the Python module's crate is built by maturin in scripts/pytest.sh)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --exclude imgprep-py --no-fail-fast --status-level fail --final-status-level slow
else
  cargo test --workspace --exclude imgprep-py --no-fail-fast
fi
# the wheel, its Python API and the Spark driver on a real local Spark
scripts/pytest.sh
