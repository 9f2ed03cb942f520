#!/usr/bin/env bash
# A build that reads its sources straight from S3 (Garage on loopback, scripts/garage.sh), against
# the usual way of doing it: download the whole prefix with the AWS CLI, then build
# from the local copy. 1,000 synthetic 640x480 JPEGs, pass-through RecordIO (no re-encoding, so the
# transfer is what is measured), cold item cache every run; median of 3 (hyperfine).
# IMGPREP_OLD=path adds another imgprep binary's build from s3:// (before/after comparisons).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath -m "${IMGPREP:-target/release/imgprep}")"
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/bench"
# shellcheck source=bench/s3_common.sh
source bench/s3_common.sh
data="$cache/s3-build-data"
if [ ! -f "$data/.ready" ]; then
  rm -rf "$data" && "$bin" synth "$data" --classes 4 --per-class 250 --width 640 --height 480 >&2
  touch "$data/.ready"
fi
work="$cache/s3-build-work"
rm -rf "$work" && mkdir -p "$work"
trap 'scripts/garage.sh stop "$work/garage" || true; rm -rf "$work"' EXIT
s3_server "$work"
"$bin" push "$data" "s3://$b/photos" --layout mirror -q
recipe() { # root
  printf 'name = "bench"\n[[sources]]\ntype = "folders"\nroot = "%s"\n[split]\ntrain = 0.8\nvalidation = 0.2\n[transform]\nencoding = "passthrough"\n' "$1"
}
recipe "s3://$b/photos" > "$work/remote.toml"
recipe "$work/dl" > "$work/local.toml"
cmds=(-n "imgprep build from s3://" "$bin build $work/remote.toml --out $work/out -q")
[ -z "${IMGPREP_OLD:-}" ] || cmds+=(-n "imgprep (IMGPREP_OLD) build from s3://" "$IMGPREP_OLD build $work/remote.toml --out $work/out -q")
cmds+=(-n "aws s3 cp --recursive + imgprep build (local)"
  "$aws s3 cp --recursive s3://$b/photos $work/dl --endpoint-url $ep --only-show-errors && $bin build $work/local.toml --out $work/out -q")
hyperfine --style basic --warmup 1 --runs 3 --prepare "rm -rf $work/out $work/dl" "${cmds[@]}"
du -sh "$data" | sed 's/^/source data: /'
