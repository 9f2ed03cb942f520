#!/usr/bin/env bash
# Scale check: im2rec.py and imgprep side by side on 10*N list entries
# (default N = 20,000, so 200,000 images), `--resize 210 --num-thread 2`, one
# run each (im2rec.py alone takes ~17 minutes there): wall time, peak memory
# (bench/peak_mem.py: imgprep's one process, im2rec.py's largest process and
# its whole tree), and `imgprep verify` of both outputs.
#
# The 10*N entries are the N photos of bench/make_photos.py listed 10 times
# with distinct ids (run.sh's BIG=repeat): every entry is decoded, resized
# and encoded like a distinct image, and the list, the records and every
# per-item structure are 10*N long; what is not 10x is the source files' page
# cache footprint (1.3 GB, read 10 times), so this measures the pipeline's
# scaling, not the disk.
#
# Usage: bench/scale.sh [N]   (IMGPREP=path/to/imgprep to test another binary;
#        NICE=-10 to run above other jobs)
# Prints a markdown table; raw results in bench/results/scale-*.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
n="${1:-20000}"
bin="$(realpath "${IMGPREP:-$repo/target/release/imgprep}")"
results="${RESULTS:-$here/results}"
if [ -n "${NICE:-}" ]; then
  renice -n "$NICE" -p $$ >/dev/null || { echo "scale.sh: cannot renice to $NICE" >&2; exit 2; }
fi
py="$("$repo/scripts/venv.sh")"
im2rec=("$py" "$repo/tests/interop/run_im2rec.py")
cd "$repo"
# shellcheck source=bench/photos_common.sh
source bench/photos_common.sh
photos="$(bench_photos "$n")"
work="$bench_cache/scale-$n"
rm -rf "$work" && mkdir -p "$work/list" "$work/im2rec" "$work/imgprep" "$results"
"${im2rec[@]}" "$work/list/photos" "$photos" --list --recursive --no-shuffle >/dev/null
big=$((10 * n))
awk -F'\t' -v n="$n" 'BEGIN { OFS = "\t" }
  { line[NR] = $0 }
  END { for (r = 0; r < 10; r++) for (i = 1; i <= NR; i++) {
          split(line[i], f, "\t"); f[1] = r * n + f[1]
          print f[1], f[2], f[3] } }' "$work/list/photos.lst" > "$work/big.lst"
[ "$(wc -l < "$work/big.lst")" = "$big" ] || { echo "scale.sh: list is not $big lines" >&2; exit 1; }
cp "$work/big.lst" "$work/im2rec/photos.lst"
cp "$work/big.lst" "$work/imgprep/photos.lst"

args=(--resize 210 --num-thread 2)
run() { # run TOOL CMD...: one timed run under peak_mem.py, after a sync
  local tool="$1"; shift
  sync
  python3 "$here/peak_mem.py" "$results/scale-$tool.mem.json" -- "$@"
}
run im2rec "${im2rec[@]}" "$work/im2rec/photos" "$photos" "${args[@]}"
run imgprep "$bin" im2rec "$work/imgprep/photos" "$photos" "${args[@]}" -q
for tool in im2rec imgprep; do
  "$bin" verify "$work/$tool/photos" --json -q > "$results/scale-$tool.verify.json" \
    && echo "verify $tool: ok" >&2 \
    || echo "scale.sh: WARNING: verify failed for $tool" >&2
done
python3 - "$results" "$big" <<'PY'
import json, sys
res, big = sys.argv[1], int(sys.argv[2])
m = {t: json.load(open(f"{res}/scale-{t}.mem.json")) for t in ("im2rec", "imgprep")}
v = {t: json.load(open(f"{res}/scale-{t}.verify.json")) for t in ("im2rec", "imgprep")}
def wall(t): return m[t]["wall_s"]
def rss(t): return m[t]["max_rss_kb"] / 1024
print(f"| {big:,} entries, `--resize 210 --num-thread 2` | im2rec.py | imgprep | ratio |")
print("|---|---:|---:|---:|")
print(f"| wall s | {wall('im2rec'):.1f} | {wall('imgprep'):.1f} | **{wall('im2rec') / wall('imgprep'):.2f}x** |")
print(f"| images/s | {big / wall('im2rec'):.0f} | {big / wall('imgprep'):.0f} | |")
print(f"| core-ms per image (wall x 2 / images) | {2000 * wall('im2rec') / big:.2f} | {2000 * wall('imgprep') / big:.2f} | |")
tree = m["im2rec"].get("tree_peak_pss_kb")
print(f"| peak RSS MiB (im2rec.py: largest process / tree PSS) | {rss('im2rec'):.0f} / {tree / 1024 if tree else float('nan'):.0f} | {rss('imgprep'):.1f} | |")
ok = lambda t: f"ok ({v[t]['images_ok']})" if v[t].get("ok") else "FAILED"
print(f"| verify | {ok('im2rec')} | {ok('imgprep')} | |")
PY
