#!/usr/bin/env bash
# Benchmark imgprep against MXNet's im2rec.py on N real-photo 640x480 JPEGs.
#
# Usage: bench/run.sh [--build] [N]          (N defaults to 2000)
#
#   --build   run `cargo build --release` first and benchmark target/release/imgprep
#             (without it nothing is built)
#
# Environment:
#   IMGPREP        binary to benchmark (default: target/release/imgprep)
#   IMGPREP_CACHE  cache root (default ~/.cache/imgprep); datasets and scratch
#                  outputs live in $IMGPREP_CACHE/bench
#   RUNS           minimum timed runs per command (default 3, after 1 warmup)
#   BIG            how case f gets 10*N images: "generate" (default; cached)
#                  or "repeat" (the N files listed 10 times with distinct ids)
#   SKIP_BIG=1     skip the 10*N memory run
#   WAIT_IDLE      seconds to wait for an idle CPU before each case (default 900)
#   RESULTS        where raw results go (default bench/results)
#   NICE           run everything at this nice level, e.g. NICE=-10 (needs root)
#                  on a machine where other, niced jobs (builds) may start
#   CASES          subset to (re)run, e.g. CASES="a codec" (default: all of
#                  "a b c d e f s codec"; g only when named); results of the
#                  other cases are kept
#
# Every case is timed as whole processes with hyperfine (1 warmup run, then at
# least RUNS runs; the table shows medians), then run once more under
# `/usr/bin/time -v` (via bench/peak_mem.py) for peak memory, and its outputs
# are checked with `imgprep verify`. The page cache is warm (the data set fits
# in RAM many times over), so this measures CPU work, not disk.
#
# Cases (im2rec.py and imgprep pack the same .lst, each in its own folder):
#   a  --resize 210 --num-thread 1
#   b  --resize 210 --num-thread 2
#   c  --pass-through --num-thread 2
#   d  --resize 210 --pack-label --num-thread 2   (3 labels per .lst line)
#   e  cat of all the image files into one file (I/O floor for case c)
#   f  peak RSS of imgprep --resize 210 --num-thread 2 on N and 10*N images
#   s  start-up cost of each tool (`--help`; im2rec.py imports mxnet and cv2)
#   codec limit: tjbench on one 640x480 photo, 1/2-scale decode + 280x210 q95 encode
#   g  (opt-in, CASES="... g") cases b and c again on the 10*N set, where
#      im2rec.py's fixed start-up cost weighs 10x less
#
# Raw results go to bench/results/*.json; the Markdown table is printed and
# also written to bench/results/table.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
results="${RESULTS:-$here/results}"

# ---------------------------------------------------------------- arguments
build=0
n=2000
for arg in "$@"; do
  case "$arg" in
    --build) build=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *[!0-9]*|'') echo "run.sh: bad argument: $arg" >&2; exit 2 ;;
    *) n="$arg" ;;
  esac
done
runs="${RUNS:-3}"
big_mode="${BIG:-generate}"
cases="${CASES:-a b c d e f s codec}"
want() { [[ " $cases " == *" $1 "* ]]; }

log() { printf '\n== %s\n' "$*" >&2; }

# Optional priority boost; every command below inherits it.
if [ -n "${NICE:-}" ]; then
  renice -n "$NICE" -p $$ >/dev/null || { echo "run.sh: cannot renice to $NICE" >&2; exit 2; }
fi

# ---------------------------------------------------------------- tools
if [ "$build" = 1 ]; then
  (cd "$repo" && cargo build --release)
  bin="$repo/target/release/imgprep"
else
  bin="${IMGPREP:-$repo/target/release/imgprep}"
fi
[ -x "$bin" ] || { echo "run.sh: no imgprep binary at $bin (use --build or IMGPREP=...)" >&2; exit 2; }
bin="$(realpath "$bin")"

py="$("$repo/scripts/venv.sh")"                  # python with mxnet, numpy, cv2
im2rec=("$py" "$repo/tests/interop/run_im2rec.py")
for tool in hyperfine /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install -y hyperfine time python3)" >&2; exit 2; }
done

cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/bench"
work="$cache/work-$n"
mkdir -p "$cache" "$results" "$work"
if [ -z "${CASES:-}" ]; then   # full run: start from a clean slate
  rm -rf "${work:?}"/* "$results"/*.json "$results"/table.md
else                           # partial run: drop only the selected cases' results
  for c in $cases; do rm -f "$results/${c}_"*.json "$results/$c.json"; done
fi

# With 2 cores any other job skews timings. Before each case, wait (up to
# WAIT_IDLE seconds, default 900) until the CPUs have been idle for ~10 s.
# During the case, measure the CPU time used by anything other than this
# script's children: busy time from /proc/stat (user, nice, system, VM steal;
# not kernel threads, which do the write-back of our own output) minus the CPU
# time of our finished children (bash's `times`). The share of the case's CPU
# capacity that went to others is written to results/ID.busy.json. Above 5%
# the case's timings are suspect and report.py says so; with NICE < 0 only
# other processes that are not niced count (a niced job gets ~1% of a core
# against us at nice -10, so it only soaks up idle time).
cpu_busy() {  # percent of all CPU time spent busy over the next 2 seconds
  local a b                # (not counting niced processes when we run at NICE < 0)
  read -r -a a < <(head -1 /proc/stat)
  sleep 2
  read -r -a b < <(head -1 /proc/stat)
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  [ "${NICE:-0}" -ge 0 ] || idle=$(( idle + b[2] - a[2] ))
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}
busy_seconds() {  # prints "ALL UNNICED": CPU-seconds since boot spent busy (user,
                  # nice, system, VM steal), without the user time of niced
                  # processes for UNNICED; both minus kernel threads
  local hz; hz="$(getconf CLK_TCK)"
  { head -1 /proc/stat; cat /proc/[0-9]*/stat 2>/dev/null; } | awk -v hz="$hz" '
    NR == 1 { busy = $2 + $3 + $4 + $9; niced = $3; next }
    { pid = $1; sub(/^.*\) /, "")        # drop "pid (comm) ": comm may hold spaces
      if (pid == 2 || $2 == 2) kthreads += $12 + $13 }   # ppid 2 = kthreadd
    END { printf "%.3f %.3f\n", (busy - kthreads) / hz, (busy - niced - kthreads) / hz }'
}
children_seconds() {  # sets kids_s: user+sys CPU-seconds of our finished children
  times > "$work/.times"   # a builtin: must run in this shell, not in $(...)
  kids_s="$(awk 'function s(x) { sub(/s$/, "", x); split(x, a, "m"); return a[1] * 60 + a[2] }
                 NR == 2 { printf "%.3f\n", s($1) + s($2) }' "$work/.times")"
}
wait_idle() {  # wait_idle CASE: wait for ~10 s of idle CPUs, then start counting
  local busy quiet=0 start=$SECONDS
  while [ "$quiet" -lt 5 ]; do
    busy="$(cpu_busy)"
    if [ "$busy" -le 15 ]; then quiet=$((quiet + 1)); continue; fi
    quiet=0
    if [ $(( SECONDS - start )) -ge "${WAIT_IDLE:-900}" ]; then
      echo "run.sh: WARNING: CPU still ${busy}% busy before '$1'; timings will be skewed" >&2
      break
    fi
    echo "run.sh: CPU ${busy}% busy, waiting before '$1'" >&2
    sleep 10
  done
  children_seconds
  case_t0="$EPOCHREALTIME" case_busy0="$(busy_seconds)" case_kids0="$kids_s"
}
after_case() {  # after_case CASE: how much CPU went to other processes
  local busy1 kids1 t1
  t1="$EPOCHREALTIME" busy1="$(busy_seconds)"
  children_seconds; kids1="$kids_s"
  awk -v b0="$case_busy0" -v b1="$busy1" -v k0="$case_kids0" -v k1="$kids1" \
      -v t0="$case_t0" -v t1="$t1" -v cores="$(nproc)" -v nice="$(ps -o ni= -p $$)" \
      -v now="$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
    BEGIN {
      split(b0, a, " "); split(b1, b, " "); ours = k1 - k0; wall = t1 - t0
      other = b[1] - a[1] - ours; if (other < 0) other = 0
      unniced = b[2] - a[2] - ours; if (unniced < 0) unniced = 0
      pct = 100 * other / (wall * cores); upct = 100 * unniced / (wall * cores)
      printf "{\"wall_s\": %.1f, \"our_cpu_s\": %.2f, \"our_nice\": %d, \"other_cpu_s\": %.2f, " \
             "\"other_pct\": %.1f, \"other_unniced_pct\": %.1f, \"suspect\": %s, \"finished\": \"%s\"}\n",
        wall, ours, nice, other, pct, upct, ((nice < 0 ? upct : pct) > 5) ? "true" : "false", now
    }' > "$results/$1.busy.json"
  if grep -q '"suspect": true' "$results/$1.busy.json"; then
    echo "run.sh: WARNING: other processes used CPU during '$1': $(cat "$results/$1.busy.json")" >&2
  fi
}

# ---------------------------------------------------------------- data sets
# make_dataset COUNT -> prints the folder; generated once and cached, keyed by
# make_photos.py's GENERATOR_VERSION so a changed generator regenerates.
make_dataset() {
  local count="$1" dir="$cache/photos-$1" stamp
  stamp="v$(sed -n 's/^GENERATOR_VERSION = //p' "$here/make_photos.py")"
  if [ "$(cat "$dir/.complete" 2>/dev/null)" != "$stamp" ]; then
    log "generating $count photos in $dir (once)"
    rm -rf "$dir" "$dir.partial"
    "$py" "$here/make_photos.py" "$dir.partial" --count "$count" 2> >(grep -v '^libpng warning' >&2)
    echo "$stamp" > "$dir.partial/.complete"
    mv "$dir.partial" "$dir"
  fi
  echo "$dir"
}

data="$(make_dataset "$n")"

# One .lst made by im2rec.py itself (label = class folder, walk order).
log "making the .lst files"
mkdir -p "$work/list"
"${im2rec[@]}" "$work/list/photos" "$data" --list --recursive --no-shuffle >/dev/null
lst="$work/list/photos.lst"
[ "$(wc -l < "$lst")" = "$n" ] || { echo "run.sh: $lst has $(wc -l < "$lst") lines, want $n" >&2; exit 1; }
# Sanity check: imgprep must write the very same list.
"$bin" im2rec "$work/list/ours" "$data" --list --recursive --no-shuffle -q >/dev/null
cmp -s "$lst" "$work/list/ours.lst" && lists_match=true || {
  lists_match=false; echo "run.sh: WARNING: imgprep's .lst differs from im2rec.py's" >&2; }

# Multi-label list: 3 labels per line, all derived from the first line's label.
multi="$work/list/multi.lst"
awk -F'\t' '{ l = int($2); printf "%d\t%f\t%f\t%f\t%s\n", $1, l, (l + 3) % 10, $1 % 5, $3 }' \
  "$lst" > "$multi"

# big_set: set big_data / big_lst to the 10*N images of cases f and g (once).
big_set() {
  [ -z "${big_lst:-}" ] || return 0
  if [ "$big_mode" = repeat ]; then
    big_data="$data"
    big_lst="$work/list/repeat10.lst"
    for k in $(seq 0 9); do
      awk -F'\t' -v off=$((k * n)) 'BEGIN { OFS = "\t" } { $1 = $1 + off; print }' "$lst"
    done > "$big_lst"
  else
    big_data="$(make_dataset $((10 * n)))"
    mkdir -p "$work/list10"
    "${im2rec[@]}" "$work/list10/photos" "$big_data" --list --recursive --no-shuffle >/dev/null
    big_lst="$work/list10/photos.lst"
  fi
}

# ---------------------------------------------------------------- cases a-d
# run_case ID DATA LIST ARGS...: time im2rec.py and imgprep packing LIST
# (paths relative to the image folder DATA) with ARGS.
run_case() {
  local id="$1" data="$2" list="$3"; shift 3
  local dir="$work/$id" args="$*" tool
  want "${id%%_*}" || return 0
  log "case $id: $args"
  rm -rf "$dir"
  for tool in im2rec imgprep; do
    mkdir -p "$dir/$tool"
    cp "$list" "$dir/$tool/photos.lst"   # im2rec.py packs every PREFIX*.lst: one list per folder
  done
  local cmd_im2rec cmd_ours
  cmd_im2rec="$(printf '%q ' "${im2rec[@]}" "$dir/im2rec/photos" "$data") $args"
  cmd_ours="$(printf '%q ' "$bin" im2rec "$dir/imgprep/photos" "$data") $args -q"

  wait_idle "$id"
  hyperfine --style basic --warmup 1 --min-runs "$runs" \
    --prepare "rm -f $dir/*/photos.rec $dir/*/photos.idx && sync" \
    --export-json "$results/$id.json" \
    -n im2rec "$cmd_im2rec" -n imgprep "$cmd_ours"
  after_case "$id"

  # One more run of each under /usr/bin/time -v for peak memory, then verify
  # what that run wrote (framing, every image decodes, ids and labels vs .lst).
  for tool in im2rec imgprep; do
    local cmd; [ "$tool" = im2rec ] && cmd="$cmd_im2rec" || cmd="$cmd_ours"
    rm -f "$dir/$tool/photos.rec" "$dir/$tool/photos.idx"
    python3 "$here/peak_mem.py" "$results/$id.$tool.mem.json" -- bash -c "exec $cmd"
    if "$bin" verify "$dir/$tool/photos" --json -q > "$results/$id.$tool.verify.json"; then
      echo "verify $id/$tool: ok" >&2
    else
      echo "run.sh: WARNING: imgprep verify failed for $id/$tool (see $results/$id.$tool.verify.json)" >&2
    fi
  done
  # Output sizes: the tools re-encode differently, so the bytes differ.
  printf '{"im2rec": %s, "imgprep": %s}\n' "$(stat -c %s "$dir/im2rec/photos.rec")" \
    "$(stat -c %s "$dir/imgprep/photos.rec")" > "$results/$id.rec_bytes.json"
}

run_case a_resize_t1    "$data" "$lst"   --resize 210 --num-thread 1
run_case b_resize_t2    "$data" "$lst"   --resize 210 --num-thread 2
run_case c_pass_t2      "$data" "$lst"   --pass-through --num-thread 2
run_case d_packlabel_t2 "$data" "$multi" --resize 210 --pack-label --num-thread 2

# ---------------------------------------------------------------- case e: cat
# Reading every file once and writing one output: what pass-through can't beat.
if want e; then
  log "case e_cat: cat of all $n files"
  rm -rf "$work/e_cat"; mkdir -p "$work/e_cat"
  (cd "$data" && cut -f3 "$lst" > "$work/e_cat/files.txt")
  wait_idle e_cat
  # (a fresh file each run, as the tools get: overwriting one makes ext4
  # write the old run's data out first; and no dirty pages of a previous run)
  hyperfine --style basic --warmup 1 --min-runs "$runs" \
    --prepare "rm -f $work/e_cat/all.bin && sync" \
    --export-json "$results/e_cat.json" \
    -n cat "cd $(printf '%q' "$data") && xargs -d '\\n' cat < $work/e_cat/files.txt > $work/e_cat/all.bin"
  after_case e_cat
fi

# ---------------------------------------------------------------- case f: RSS vs size
# Peak RSS of imgprep --resize 210 --num-thread 2 for N and 10*N images.
rss_run() {  # rss_run TAG DATA LIST
  local tag="$1" dset="$2" list="$3" dir="$work/f_$1"
  rm -rf "$dir"; mkdir -p "$dir"; cp "$list" "$dir/photos.lst"
  wait_idle "f_rss.$tag"
  python3 "$here/peak_mem.py" "$results/f_rss.$tag.mem.json" -- \
    "$bin" im2rec "$dir/photos" "$dset" --resize 210 --num-thread 2 -q
  after_case "f_rss.$tag"
  "$bin" verify "$dir/photos" --json -q > "$results/f_rss.$tag.verify.json" \
    || echo "run.sh: WARNING: imgprep verify failed for f_$tag" >&2
}
if want f; then
  log "case f: peak RSS on $n and $((10 * n)) images"
  rss_run n "$data" "$lst"
  if [ "${SKIP_BIG:-0}" != 1 ]; then
    big_set
    rss_run 10n "$big_data" "$big_lst"
  fi
fi

# ---------------------------------------------------------------- case s: start-up
# Fixed cost per run, included in every whole-process time above.
if want s; then
  log "case s_startup: --help of each tool"
  wait_idle s_startup
  hyperfine --style basic --warmup 1 --min-runs "$runs" \
    --export-json "$results/s_startup.json" \
    -n im2rec "$(printf '%q ' "${im2rec[@]}") --help" -n imgprep "$(printf '%q' "$bin") --help"
  after_case s_startup
fi

# ---------------------------------------------------------------- case g (opt-in)
if want g; then
  big_set
  run_case g_resize_t2_10n "$big_data" "$big_lst" --resize 210 --num-thread 2
  run_case g_pass_t2_10n   "$big_data" "$big_lst" --pass-through --num-thread 2
fi

# ---------------------------------------------------------------- codec limit
# libjpeg-turbo's own benchmark on the median-sized photo: what one core needs
# per image just for the codec work of case a (decode at 1/2 scale, which is
# 320x240, then encode the 280x210 result at quality 95, 4:2:0 like OpenCV).
if ! want codec; then
  :
elif command -v tjbench >/dev/null; then
  log "codec limit (tjbench)"
  wait_idle codec
  mkdir -p "$work/codec"
  sample="$(cd "$data" && cut -f3 "$lst" | xargs -d '\n' stat -c '%s %n' | sort -n \
            | awk -v m=$((n / 2)) 'NR == m + 1 { print $2 }')"
  cp "$data/$sample" "$work/codec/sample.jpg"
  "$py" -c 'import sys, cv2
img = cv2.imread(sys.argv[1])
cv2.imwrite(sys.argv[2], cv2.resize(img, (280, 210), interpolation=cv2.INTER_AREA))' \
    "$work/codec/sample.jpg" "$work/codec/small.ppm"
  fps() { awk '/Frame rate/ { print $(NF-1); exit }'; }
  dec_half="$(tjbench "$work/codec/sample.jpg" -scale 1/2 -benchtime 3 -warmup 1 -nowrite | fps)"
  dec_full="$(tjbench "$work/codec/sample.jpg" -benchtime 3 -warmup 1 -nowrite | fps)"
  enc="$(tjbench "$work/codec/small.ppm" 95 -subsamp 420 -componly -benchtime 3 -warmup 1 -nowrite | fps)"
  cat > "$results/codec.json" <<EOF
{"tool": "$(dpkg-query -W -f='tjbench (libjpeg-turbo-progs ${Version})' libjpeg-turbo-progs 2>/dev/null || echo tjbench)",
 "sample": "$sample", "sample_bytes": $(stat -c %s "$data/$sample"),
 "decode_half_fps": $dec_half, "decode_full_fps": $dec_full, "encode_280x210_q95_fps": $enc}
EOF
  after_case codec
else
  echo "run.sh: tjbench not found (apt-get install -y libjpeg-turbo-progs); no codec limit" >&2
  echo '{"tool": null}' > "$results/codec.json"
fi

# ---------------------------------------------------------------- environment + report
cat > "$results/env.json" <<EOF
{"n": $n, "big_mode": "$big_mode", "nice": $(ps -o ni= -p $$),
 "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "cpu": "$(lscpu | sed -n 's/^Model name: *//p' | head -1)", "cores": $(nproc),
 "mem_total_mb": $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo),
 "kernel": "$(uname -r)",
 "imgprep": "$("$bin" --version)", "imgprep_sha256": "$(sha256sum "$bin" | cut -c1-16)",
 "python_peers": "$("$py" -c 'import mxnet, cv2, numpy, sys; print("python", sys.version.split()[0], "mxnet", mxnet.__version__, "opencv", cv2.__version__, "numpy", numpy.__version__)' 2>/dev/null)",
 "hyperfine": "$(hyperfine --version)",
 "dataset": "$data", "dataset_bytes": $(cd "$data" && cut -f3 "$lst" | xargs -d '\n' stat -c %s | awk '{ s += $1 } END { print s }'),
 "lists_match": $lists_match, "last_cases_run": "$cases"}
EOF

python3 "$here/report.py" "$results" | tee "$results/table.md"
