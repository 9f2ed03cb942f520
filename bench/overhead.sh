#!/usr/bin/env bash
# What a build's bookkeeping costs: first builds (cold item cache) of N photos
# with `resize = 210` and with `encoding = "passthrough"` into RecordIO, and
# pass-through into the image-file outputs (SageMaker image + folders), by
# two binaries side by side (e.g. before and after a change), RUNS times each,
# median printed. The photos are bench/make_photos.py's (cached, as for
# bench/build.sh).
# Usage: OLD=path/to/old/imgprep NEW=target/release/imgprep bench/overhead.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
RUNS="${RUNS:-3}"
old="${OLD:?set OLD to the binary to compare with}"
new="${NEW:-target/release/imgprep}"
# shellcheck source=bench/photos_common.sh
source bench/photos_common.sh
photos="$(bench_photos "$N")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
modes="resize passthrough passthrough-files"
for mode in $modes; do
  outputs='[[outputs]]
format = "recordio"'
  case $mode in
    resize) transform='resize = 210' ;;
    passthrough) transform='encoding = "passthrough"' ;;
    passthrough-files) transform='encoding = "passthrough"'
      outputs='[[outputs]]
format = "sagemaker-image"
[[outputs]]
format = "folders"' ;;
  esac
  cat > "$work/$mode.toml" <<TOML
name = "overhead"
[[sources]]
type = "folders"
root = "$photos"
[split]
train = 0.8
validation = 0.2
[transform]
$transform
$outputs
TOML
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '| case | old s | new s | new / old |\n|---|---:|---:|---:|\n'
for mode in $modes; do
  declare -A t=()
  for which in old new; do
    bin=$old; [ "$which" = new ] && bin=$new
    times=()
    for _ in $(seq "$RUNS"); do
      rm -rf "$work/out" "$work/cache"
      s=$(date +%s.%N)
      IMGPREP_CACHE_DIR="$work/cache" "$bin" build "$work/$mode.toml" --out "$work/out" -q >/dev/null 2>&1
      e=$(date +%s.%N)
      times+=("$(echo "$e - $s" | bc)")
    done
    t[$which]=$(printf '%s\n' "${times[@]}" | median)
  done
  printf '| %s, %s photos | %.2f | %.2f | %.2f |\n' "$mode" "$N" "${t[old]}" "${t[new]}" \
    "$(echo "${t[new]} / ${t[old]}" | bc -l)"
done
