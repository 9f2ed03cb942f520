#!/usr/bin/env bash
# The Python package's tests: builds the wheel (maturin, release, abi3) into
# target/wheels, installs it into the cached venv (scripts/venv.sh py: maturin,
# pytest, PySpark 4.3, pyarrow, pandas) and runs crates/imgprep-py/tests, the
# Spark tests on a real local Spark (OpenJDK 17). Called by scripts/test.sh,
# which also starts the Garage server the object-storage test uses; run alone
# it skips that test. IMGPREP_BIN: the binary the module is compared with
# (default target/debug/imgprep, built here if missing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(scripts/venv.sh py)"
venv_bin="$(dirname "$py")"
# the wheel's cargo build has its own cached target folder: warm across clones
export CARGO_TARGET_DIR="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/wheel-target"
# reproducible wheel: fixed timestamps
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1767225600}"
rm -rf target/wheels
# linked by zig against glibc 2.17: a manylinux2014 wheel that installs on any
# Linux of the last decade (EMR's Amazon Linux 2023 included), not only on
# this machine's glibc; maturin finds zig through the venv's python
PATH="$venv_bin:$PATH" "$venv_bin/maturin" build --release --locked -q --zig \
  --compatibility manylinux2014 -m crates/imgprep-py/Cargo.toml --out target/wheels >&2
wheel="$(ls target/wheels/imgprep-*.whl)"
"$venv_bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
if [ -z "${IMGPREP_BIN:-}" ]; then
  [ -x target/debug/imgprep ] || CARGO_TARGET_DIR=target cargo build -q -p imgprep-cli
  IMGPREP_BIN="$PWD/target/debug/imgprep"
fi
export IMGPREP_BIN SPARK_LOCAL_IP=127.0.0.1 PYTHONDONTWRITEBYTECODE=1
cd crates/imgprep-py
exec "$py" -m pytest -q -p no:cacheprovider tests "$@"
