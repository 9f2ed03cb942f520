#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, integration and interop tests
# (real MXNet reads our output; the wheel's own im2rec.py is run side by side).
# Installs what it needs (cmake/nasm via apt, a cached Python venv) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
IMGPREP_PYTHON="$(scripts/venv.sh)"
IMGPREP_TF_PYTHON="$(scripts/venv.sh tf)"
export IMGPREP_PYTHON IMGPREP_TF_PYTHON TF_CPP_MIN_LOG_LEVEL=2
if [ -z "${IMGPREP_SHARED_DATA:-}" ] && [ -d ../shared/data ]; then
  IMGPREP_SHARED_DATA="$(cd ../shared/data && pwd)"
  export IMGPREP_SHARED_DATA
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level slow
else
  cargo test --workspace --no-fail-fast
fi
