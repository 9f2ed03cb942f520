#!/usr/bin/env bash
# S3 push/pull throughput on loopback, imgprep side by side with the AWS CLI (v1, cached venv),
# same files, same Garage server (scripts/garage.sh), median of 3 runs (hyperfine):
#   (a) 1,000 files of 100 KiB (random bytes, like JPEGs)   (b) 8 files of 64 MiB
# Uploads overwrite the same keys each run. Garage stores blocks by content hash, so after the
# first (warmup) upload it no longer writes them to disk again: both tools are measured that way.
# If $IMGPREP (default target/release/imgprep) has no `push` yet, only the AWS CLI half runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath -m "${IMGPREP:-target/release/imgprep}")"
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/bench"
# shellcheck source=bench/s3_common.sh
source bench/s3_common.sh
data="$cache/s3-data"
if [ ! -f "$data/.ready" ]; then
  echo "generating $data (once, 640 MB)" >&2
  rm -rf "$data" && mkdir -p "$data/a" "$data/b"
  for i in $(seq -w 0 999); do head -c 102400 /dev/urandom > "$data/a/img_$i.jpg"; done
  for i in $(seq 0 7); do head -c 67108864 /dev/urandom > "$data/b/blob_$i.bin"; done
  touch "$data/.ready"
fi
work="$cache/s3-work"
rm -rf "$work" && mkdir -p "$work"
trap 'scripts/garage.sh stop "$work/garage" || true; rm -rf "$work/garage" "$work/dest"' EXIT
s3_server "$work"

# The commands compared, per data set X (a or b). imgprep's half is here to adjust.
aws_push() { echo "$aws s3 cp --recursive $data/$1 s3://$b/aws-$1/ --endpoint-url $ep --only-show-errors"; }
aws_pull() { echo "$aws s3 cp --recursive s3://$b/aws-$1/ $work/dest --endpoint-url $ep --only-show-errors"; }
ours_push() { echo "$bin push $data/$1 s3://$b/imgprep-$1 --layout mirror --force -q"; }
ours_pull() { # a list of the pushed objects' URIs, one a line
  find "$data/$1" -type f -printf "s3://$b/imgprep-$1/%P\n" | sort > "$work/$1.list"
  echo "$bin pull $work/$1.list $work/dest -q"
}
if [ -x "$bin" ] && "$bin" push --help >/dev/null 2>&1; then ours=1; else
  ours=; echo "note: $bin has no 'push': running the AWS CLI half only" >&2
fi

run() { # case name, aws command, our command, extra hyperfine args
  local name="$1" cmds=(-n aws "$2"); [ -z "$ours" ] || cmds+=(-n imgprep "$3"); shift 3
  hyperfine --style basic --warmup 1 --runs 3 --export-json "$work/$name.json" "$@" "${cmds[@]}" >&2
}
for x in a b; do
  run "$x-push" "$(aws_push $x)" "$(ours_push $x)"
  run "$x-pull" "$(aws_pull $x)" "$(ours_pull $x)" --prepare "rm -rf $work/dest"
done
"$py" - "$work" "$data" <<'PY'
import json, os, sys
w, d = sys.argv[1], sys.argv[2]
def med(case, name):
    rs = [r["median"] for r in json.load(open(f"{w}/{case}.json"))["results"] if r["command"] == name]
    return rs[0] if rs else None
def cell(t, mb):
    return f"{t:.2f} ({mb / t:.0f} MB/s)" if t else "n/a"
print("| case | aws s | imgprep s | speed-up |")
print("|---|---:|---:|---:|")
for x, label in [("a", "(a) 1,000 x 100 KiB"), ("b", "(b) 8 x 64 MiB")]:
    mb = sum(e.stat().st_size for e in os.scandir(f"{d}/{x}")) / 1e6
    for op in ["push", "pull"]:
        a, o = med(f"{x}-{op}", "aws"), med(f"{x}-{op}", "imgprep")
        print(f"| {label} {op} | {cell(a, mb)} | {cell(o, mb)} | {f'{a / o:.1f}x' if o else 'n/a'} |")
PY
