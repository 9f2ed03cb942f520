#!/usr/bin/env bash
# Video-source benchmark: labelled session recordings (per subject several MP4
# chunks + a label,start,end CSV of time ranges) turned into MXNet RecordIO
# train / validation / test sets of 224x224 frames, by
#   (a) the peer pipeline a researcher used (bench/video_peer.sh): ffmpeg's concat
#       demuxer (-c copy) per subject, `ffmpeg -i output.mp4 -s 224x224
#       frames/thumb%06d.jpg`, a Python script copying frames into
#       Data/{Training,Validation,Test}/{label}/ (bench/video_label.py), then
#       im2rec.py --list --recursive and im2rec.py (re-encode, q95) per split
#   (b) imgprep build with a `type = "video"` source (recipe below: explicit split,
#       resize 224x224, quality 95, RecordIO). target/release/imgprep is built
#       (cargo build --release -p imgprep-cli) only when missing; when a probe build
#       on a tiny corpus fails, (b) is left out with "imgprep video not available
#       yet" and the error, and the peer still runs.
#   (c) the same build with --drop-cache: each frame's cached image is removed
#       once the outputs have it, so peak disk is about the outputs' size
# Corpus: bench/make_sessions.py (H.264 with B-frames, AAC 0.3 s longer than the
# video in every chunk, every frame's session index and subject painted in its
# pixels, ground truth per frame), cached in
# $IMGPREP_CACHE/bench/sessions-vV-{S}x{C}x{T}s-{F}fps-{WxH}; default 4 subjects x
# 2 chunks x 90 s x 30 fps at 640x360 = 21,600 frames (made once, ~1 min).
# Subjects 1..S-2 are train, S-1 validation, S test.
# Each case runs from an empty work dir (imgprep's item cache, IMGPREP_CACHE_DIR, is
# inside it), warm page cache, under bench/peak_mem.py (wall time; peak RSS of the
# largest process and sampled PSS of the whole tree) inside bench/peak_disk.py
# (peak disk use of the work dir, sampled every 0.5 s: du -s, allocated blocks, and
# du -sb, apparent bytes; and the CPU other processes used meanwhile). Then
# bench/check_frames.py decodes every record of both outputs, reads each frame's
# painted identity back and compares with the truth: frames written, duplicates,
# frames of labelled ranges missing, wrong labels (class ids -> names by the sorted
# class list, which is imgprep's order; im2rec.py numbers each split's folders on
# its own, so a split lacking a class shifts the ids, which counts as wrong).
# "output" is the .rec/.idx/.lst files of (a) and the whole --out folder of (b).
# frames/s = session frames (all of them, labelled or not) / wall s.
# Usage: bench/video.sh
#   SUBJECTS=4 CHUNKS=2 CHUNK_SECONDS=90 FPS=30 SIZE=640x360   the corpus
#   CASES="a b c"   which cases to run        IMGPREP=path/to/imgprep
#   RUNS=1          runs per case (best wall time; the last run's output is checked)
#   KEEP=1          keep the work dirs (in $IMGPREP_CACHE/bench/video-work-...; ~1 GB)
#   NICE=-10        run everything at this nice level (needs root); see bench/detection.sh
set -euo pipefail
if [ -n "${NICE:-}" ] && [ -w /proc/self/autogroup ] && [ -z "${VIDEO_OWN_SESSION:-}" ]; then
  VIDEO_OWN_SESSION=1 exec setsid -w "$0" "$@"
fi
cd "$(dirname "$0")/.."
if [ -n "${NICE:-}" ]; then
  renice -n "$NICE" -p $$ >/dev/null || { echo "video.sh: cannot renice to $NICE" >&2; exit 2; }
  if [ -w /proc/self/autogroup ]; then
    echo "$NICE" > "/proc/$$/autogroup" || { echo "video.sh: cannot set the autogroup's nice" >&2; exit 2; }
  fi
fi
subjects=${SUBJECTS:-4} chunks=${CHUNKS:-2} seconds=${CHUNK_SECONDS:-90} fps=${FPS:-30}
size=${SIZE:-640x360}
((subjects >= 3)) || { echo "video.sh: need SUBJECTS >= 3 (train, validation, test)" >&2; exit 2; }
cases=" ${CASES:-a b c} "
runs=${RUNS:-1}
bin="${IMGPREP:-target/release/imgprep}"
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/bench"
py="$(scripts/venv.sh bench-py)"
mxpy="$(scripts/venv.sh mxnet)"

corpus() { # S C T F WxH: prints the folder of the cached corpus, making it once
  local dir
  dir="$cache/sessions-v$(sed -n 's/^GENERATOR_VERSION = //p' bench/make_sessions.py)-$1x$2x$3s-${4//\//_}fps-$5"
  [ -d "$dir" ] || "$py" bench/make_sessions.py "$dir" --subjects "$1" --chunks "$2" \
    --seconds "$3" --fps "$4" --size "$5" >&2
  echo "$dir"
}

recipe() { # CORPUS FILE: the imgprep recipe (absolute paths into CORPUS)
  local n q='"' train="" s
  n=$(find "$1/labels" -name 'subject*.csv' | wc -l)
  for ((s = 1; s <= n - 2; s++)); do train+="${train:+, }${q}subject$s$q"; done
  cat > "$2" <<TOML
name = "sessions"
[[sources]]
type = "video"
chunks = "$1/videos/{subject}/*.mp4"   # natural sort; {subject} is the session/group
labels = "$1/labels/{subject}.csv"     # label,start,end
unit = "seconds"
time_reference = "concat"           # chunk c starts at the sum of previous container durations
[split]
method = "explicit"
[split.assign]
train = [$train]
validation = ["subject$((n - 1))"]
test = ["subject$n"]
[transform]
resize = "224x224"
quality = 95
[[outputs]]
format = "recordio"
TOML
}

# ---------------------------------------------------- is imgprep's video source there?
imgprep_ok=no
if [[ $cases == *" b "* || $cases == *" c "* ]]; then
  if [ ! -x "$bin" ] && [ -z "${IMGPREP:-}" ]; then
    echo "building $bin (missing)" >&2
    cargo build --release -p imgprep-cli >&2 || true
  fi
  why="no binary at $bin"
  if [ -x "$bin" ]; then
    bin="$(realpath "$bin")"
    probe="$(mktemp -d)"
    recipe "$(corpus 3 2 8 30 160x96)" "$probe/recipe.toml"
    why=""
    if ! env IMGPREP_CACHE_DIR="$probe/cache" "$bin" build "$probe/recipe.toml" \
        --out "$probe/out" -q > "$probe/log" 2>&1; then
      why="$(grep -v '^\s*$' "$probe/log" | head -5 || true)"
      [ -n "$why" ] || why="exit code != 0, no message"
    elif [ -z "$(find "$probe/out" -name '*.rec' -size +0c)" ]; then
      why="the probe build wrote no .rec"
    fi
    rm -rf "$probe"
  fi
  if [ -n "$why" ]; then
    echo "imgprep video not available yet$([[ $cases == *" a "* ]] && echo "; running the peer only"). The probe build said:"
    printf '%s\n' "$why" | sed 's/^/    /'
  else
    imgprep_ok=yes
  fi
fi

# --------------------------------------------------------------- measuring
declare -A wall rss tree disk disk_app other outsize check
measure() { # KEY WORK CMD...: RUNS runs from an empty WORK; best wall, max RSS and disk
  local key=$1 dir=$2 r w m t d a o
  shift 2
  wall[$key]="" rss[$key]=0 tree[$key]=0 disk[$key]=0 disk_app[$key]=0 other[$key]=""
  for ((r = 1; r <= runs; r++)); do
    rm -rf "$dir" && mkdir -p "$dir"
    [ "$key" = a ] || recipe "$corpus" "$dir/recipe.toml"
    sync   # the last run's writes go to disk now, not during this run
    echo "  $key, run $r/$runs (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    if ! "$py" bench/peak_disk.py "$res/$key.$r.disk.json" --watch "$dir" -- \
        "$py" bench/peak_mem.py "$res/$key.$r.mem.json" -- "$@" >&2; then
      echo "video.sh: $key failed (see $res/$key.$r.mem.json)" >&2
      return 1
    fi
    read -r w m t d a o < <("$py" -c 'import json, sys
m, d = (json.load(open(p)) for p in sys.argv[1:3])
print(m["wall_s"], m["max_rss_kb"], m["tree_peak_pss_kb"], d["peak_allocated_bytes"],
      d["peak_apparent_bytes"], d["other_cores"])' "$res/$key.$r.mem.json" "$res/$key.$r.disk.json")
    if [ -z "${wall[$key]}" ] || (($(echo "$w < ${wall[$key]}" | bc))); then
      wall[$key]=$w other[$key]=$o
    fi
    if ((m > rss[$key])); then rss[$key]=$m; fi
    if ((t > tree[$key])); then tree[$key]=$t; fi
    if ((d > disk[$key])); then disk[$key]=$d; fi
    if ((a > disk_app[$key])); then disk_app[$key]=$a; fi
  done
}

checked() { # KEY JSON: "written dups missing wrong unreadable kinds..." from a check_frames.py JSON
  check[$1]="$("$py" -c 'import json, sys
c = json.load(open(sys.argv[1]))
k = c["wrong_label_kinds"]
kinds = "%d other class, %d unlabelled in truth, %d written unlabelled" % (
    k["other_class"], k["truth_unlabelled"], k["written_unlabelled"])
print(c["written"], c["duplicates"], c["missing"], c["wrong_labels"], c["unreadable"], kinds)' "$2")"
}

corpus="$(corpus "$subjects" "$chunks" "$seconds" "$fps" "$size")"
total=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["total_frames"])' "$corpus/meta.json")
labelled=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["labelled_frames"])' "$corpus/meta.json")
root="$cache/video-work-$(basename "$corpus")"
res="$root/results"
rm -rf "$root" && mkdir -p "$res"
find "$corpus" -type f -exec cat {} + > /dev/null   # warm the page cache

printf '%s\n' "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), \
$(free -g | awk '/Mem:/ {print $2}') GiB; nice ${NICE:-0}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ $cases == *" a "* ]]; then
  measure a "$root/a" env MXNET_PY="$mxpy" bench/video_peer.sh "$corpus" "$root/a"
  outsize[a]=$(cat "$root"/a/rec/*.rec "$root"/a/rec/*.idx "$root"/a/rec/*.lst | wc -c)
  "$mxpy" bench/check_frames.py "$corpus/truth" --rec "$root"/a/rec/*.rec \
    --classes "@$corpus/classes.txt" --json "$res/a.check.json" > /dev/null
  checked a "$res/a.check.json"
  "$mxpy" bench/check_frames.py "$corpus/truth" --data "$root/a/Data" --json "$res/a-data.check.json" > /dev/null
  checked a-data "$res/a-data.check.json"
  frames_made=$(find "$root"/a/subject*/frames -name '*.jpg' | wc -l)
fi
imgprep_case() { # KEY [BUILD FLAGS...]: one imgprep case, measured and checked
  local k=$1 recs
  shift
  [ "$imgprep_ok" = yes ] && [[ $cases == *" $k "* ]] || return 0
  if measure "$k" "$root/$k" env IMGPREP_CACHE_DIR="$root/$k/cache" "$bin" build "$root/$k/recipe.toml" \
      --out "$root/$k/out" -q "$@"; then
    outsize[$k]=$(find "$root/$k/out" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    recs=$(find "$root/$k/out" -name '*.rec' | sort)
    # class ids as this build numbered them (its manifest's label map: the
    # classes it wrote, sorted; a corpus without one class has fewer)
    "$py" -c 'import json, sys
print("\n".join(e["name"] for e in json.load(open(sys.argv[1]))["labels"]))' \
      "$root/$k/out/manifest.json" > "$root/$k/classes.txt"
    # shellcheck disable=SC2086
    "$mxpy" bench/check_frames.py "$corpus/truth" --rec $recs \
      --classes "@$root/$k/classes.txt" --json "$res/$k.check.json" > /dev/null
    checked "$k" "$res/$k.check.json"
  else
    unset "wall[$k]"
  fi
}
imgprep_case b
imgprep_case c --drop-cache

mib() { echo "scale=1; $1 / 1048576" | bc; }
row() { # KEY LABEL
  local k=$1 written dups missing wrong unread kinds
  [ -n "${wall[$k]:-}" ] || return 0
  read -r written dups missing wrong unread kinds <<< "${check[$k]}"
  printf '| %s | %.1f | %.0f | %.0f / %.0f | %s / %s | %s | %s | %s | %s | %s | %s |\n' "$2" "${wall[$k]}" \
    "$(echo "$total / ${wall[$k]}" | bc -l)" "$(echo "${rss[$k]} / 1024" | bc -l)" \
    "$(echo "${tree[$k]} / 1024" | bc -l)" "$(mib "${disk[$k]}")" "$(mib "${disk_app[$k]}")" \
    "$(mib "${outsize[$k]}")" "$written$( ((unread == 0)) || echo " ($unread unreadable)")" "$wrong ($kinds)" "$dups" "$missing" "${other[$k]}"
}

echo
echo "### $(basename "$corpus"): $total frames ($labelled in labelled ranges), \
$(du -sh "$corpus/videos" | cut -f1) of MP4; $( ((runs > 1)) && echo "best of $runs runs" || echo "1 run"); \
load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| case | wall s | frames/s | peak RSS MiB (largest process / tree PSS) | peak disk MiB (du -s / du -sb) | output MiB | frames written | wrong labels | duplicates | missing | other processes, cores |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
row a "(a) peer: ffmpeg concat + frames, Python copy, im2rec.py"
if [ "$imgprep_ok" = yes ]; then
  row b "(b) imgprep build, video source"
  row c "(c) the same with --drop-cache (no item cache kept)"
fi
echo
if [ -n "${wall[a]:-}" ]; then
  read -r written dups missing wrong unread kinds <<< "${check[a-data]}"
  echo "(a) in detail: ffmpeg extracted $frames_made JPEGs for $total true frames ($((frames_made - total)) more); \
the Data/ tree before im2rec.py holds $written images, $dups duplicates, $missing missing, $wrong wrong labels \
($kinds); thumb number - frame index: $("$py" -c 'import json, sys
print(", ".join(f"{k}: {v}" for k, v in json.load(open(sys.argv[1])).get("name_offsets", {}).items()))' "$res/a-data.check.json")"
  echo "ffmpeg's frame extraction, last progress line per subject: $(for f in "$root"/a/logs/subject*-frames.log; do
    tr '\r' '\n' < "$f" | grep -o 'dup=[0-9]* drop=[0-9]*' | tail -1; done | paste -sd, - | sed 's/,/, /g')"
fi
for k in a b c; do   # what the table leaves out, when it happens
  [ -f "$res/$k.check.json" ] || continue
  "$py" -c 'import json, sys
c = json.load(open(sys.argv[1]))
for key, what in (("wrong_split", "images in another split than their subject\x27s"),
                  ("name_subject_mismatch", "images whose path names another subject than their pixels"),
                  ("unreadable", "images whose painted frame index could not be read")):
    if c.get(key):
        print(f"({sys.argv[2]}) {c[key]} {what}")' "$res/$k.check.json" "$k"
done
echo "details: $res/*.json"
[ -n "${KEEP:-}" ] || rm -rf "$root/a" "$root/b" "$root/c"
