#!/usr/bin/env bash
# Object-detection benchmark: one Pascal VOC set (bench/make_voc.py: ~500x375
# JPEGs, 1-6 boxes each, 4 imbalanced classes, CVAT-style float coordinates on
# 40 % of the images; cached in $IMGPREP_CACHE/bench/voc-vV-N) turned into
# training input by
#   (a) bench/voc_to_sagemaker.py: the hand-written ElementTree + pandas way,
#       two processes (XML -> CSV, CSV -> SageMaker JSONs + shutil.copy), 70/30
#   (b) Datumaro `datum convert -if voc -f coco -- --save-media --tasks instances`
#       (images copied; no split: one "default" subset), and the same without
#       --save-media (annotations only, for information)
#       (5 COCO categories: the labelmap.txt of a CVAT export lists "background" first)
#   (c) imgprep build, pass-through, 70/30 stratified, into sagemaker-detection
#       (compared with a) and into coco (compared with b). target/release/imgprep
#       is built (cargo build --release) only when missing; when a probe build of
#       a 20-image set fails, (c) is left out with "imgprep detection not
#       available yet" and the reason, and the peers still run.
# Wall time and peak RSS come from bench/peak_mem.py (GNU time's largest single
# process, and the sampled peak of the whole process tree). Each run starts
# from an empty output folder (and an empty imgprep item cache), warm page
# cache. Best of 3 runs on 5,000 images, one run on 50,000 (RUNS_SMALL,
# RUNS_LARGE). The table gives the ratios peer / imgprep and what each output
# holds, so one sees they did the same job.
# Usage: bench/detection.sh [N ...]   (default: 5000 50000)
#   CASES="a b c"   which cases to run      IMGPREP=path/to/imgprep
#   KEEP=1          keep the outputs (in $IMGPREP_CACHE/bench/detection-work-N; GBs at 50,000)
#   WORK=dir        make the outputs in dir/detection-work-N instead
# Each run writes into a folder of its own, and the outputs are removed only
# when the script ends: ext4 without a journal (this VM's root) skips the
# inodes freed in the last minutes when it creates a file, one lookup each,
# so right after a 50,000-file output was removed every new file cost
# 220-650 us instead of 23 us, whichever tool made it.
#   NICE=-10        run everything at this nice level (needs root), on a machine
#                   where other jobs (builds) may run; the load average is printed.
#                   With the kernel's autogroups on (/proc/sys/kernel/sched_autogroup_enabled),
#                   nice only ranks processes of one session, so the script re-runs
#                   itself in a session of its own (setsid) and sets that autogroup's nice too.
set -euo pipefail
if [ -n "${NICE:-}" ] && [ -w /proc/self/autogroup ] && [ -z "${DETECTION_OWN_SESSION:-}" ]; then
  DETECTION_OWN_SESSION=1 exec setsid -w "$0" "$@"
fi
cd "$(dirname "$0")/.."
if [ -n "${NICE:-}" ]; then
  renice -n "$NICE" -p $$ >/dev/null || { echo "detection.sh: cannot renice to $NICE" >&2; exit 2; }
  if [ -w /proc/self/autogroup ]; then
    echo "$NICE" > "/proc/$$/autogroup" || { echo "detection.sh: cannot set the autogroup's nice" >&2; exit 2; }
  fi
fi
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(5000 50000)
cases=" ${CASES:-a b c} "
bin="${IMGPREP:-target/release/imgprep}"
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/bench"
py="$(scripts/venv.sh bench-py)"
if [[ $cases == *" b "* ]]; then
  datum="$(dirname "$(scripts/venv.sh datumaro)")/datum"
fi

voc_set() { # prints the folder of the cached VOC set of $1 images, making it once
  local dir
  dir="$cache/voc-v$(sed -n 's/^GENERATOR_VERSION = //p' bench/make_voc.py)-$1"
  [ -d "$dir" ] || "$py" bench/make_voc.py "$1" "$dir" >&2
  echo "$dir"
}

recipes() { # VOC_DIR DIR: writes DIR/sagemaker.toml and DIR/coco.toml
  local format
  for format in sagemaker-detection coco; do
    cat > "$2/${format%-detection}.toml" <<TOML
name = "roads"
[[sources]]
type = "voc"
root = "$1"
[split]
method = "stratified"
train = 0.7
validation = 0.3
[transform]
encoding = "passthrough"
[[outputs]]
format = "$format"
TOML
  done
}

# ------------------------------------------------- is imgprep's detection there?
imgprep_ok=no
if [[ $cases == *" c "* ]]; then
  if [ ! -x "$bin" ] && [ -z "${IMGPREP:-}" ]; then
    echo "building $bin (missing)" >&2
    cargo build --release >&2 || true
  fi
  why="no binary at $bin"
  if [ -x "$bin" ]; then
    bin="$(realpath "$bin")"
    probe="$(mktemp -d)"
    recipes "$(voc_set 20)" "$probe"
    why=""
    for format in sagemaker coco; do
      if ! env IMGPREP_CACHE_DIR="$probe/cache" "$bin" build "$probe/$format.toml" \
          --out "$probe/out-$format" -q > "$probe/log" 2>&1; then
        why="$(grep -m1 -v '^\s*$' "$probe/log" || true)"
        break
      fi
    done
    rm -rf "$probe"
  fi
  if [ -n "$why" ]; then
    echo "imgprep detection not available yet ($why); running the peers only"
  else
    imgprep_ok=yes
  fi
fi

# --------------------------------------------------------------- measuring
declare -A wall rss tree held
trash=()
cleanup() {
  [ -n "${KEEP:-}" ] || [ ${#trash[@]} -eq 0 ] || rm -rf "${trash[@]}"
}
trap cleanup EXIT
best() { # KEY RUNS OUT CMD...: best wall time of RUNS runs, max RSS. Each run
  # writes into a new folder (OUT.1, OUT.2, ...: @OUT@ in CMD stands for it),
  # removed when the script ends (see above)
  local key=$1 runs=$2 out=$3 r j w m t a args
  shift 3
  wall[$key]="" rss[$key]=0 tree[$key]=0
  for ((r = 1; r <= runs; r++)); do
    args=()
    for a in "$@"; do args+=("${a//@OUT@/$out.$r}"); done
    trash+=("$out.$r" "$out.$r-cache")
    sync   # the last run's writes go to disk now, not during this run
    echo "  $key, run $r/$runs" >&2
    j="$work/$key.$r.json"
    if ! "$py" bench/peak_mem.py "$j" -- "${args[@]}" >&2; then
      echo "detection.sh: $key failed (see $j)" >&2
      return 1
    fi
    read -r w m t < <("$py" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["wall_s"], d["max_rss_kb"], d["tree_peak_rss_kb"])' "$j")
    if [ -z "${wall[$key]}" ] || (($(echo "$w < ${wall[$key]}" | bc))); then wall[$key]=$w; fi
    if ((m > rss[$key])); then rss[$key]=$m; fi
    if ((t > tree[$key])); then tree[$key]=$t; fi
  done
  out="$out.$runs"
  held[$key]="$("$py" - "$out" <<'PY'
# What an output folder holds: images per split folder, annotation files, boxes.
import json, os, sys
root = sys.argv[1]
images, links, splits, jsons, boxes, cats = 0, 0, {}, 0, 0, set()
for d, _, files in os.walk(root):
    rel = os.path.relpath(d, root)
    for f in files:
        p = os.path.join(d, f)
        if f.lower().endswith((".jpg", ".jpeg")):
            images += 1
            links += os.stat(p).st_nlink > 1   # hard-linked to the source, not copied
            split = next((s for s in ("train", "val", "test", "default") if s in rel), "other")
            splits[split] = splits.get(split, 0) + 1
        elif f.endswith(".json"):
            try:
                with open(p) as fh:
                    data = json.load(fh)
            except ValueError:
                continue
            if not isinstance(data, dict) or "annotations" not in data:
                continue
            jsons += 1
            boxes += len(data["annotations"])
            cats.update(c.get("name") for c in data.get("categories", []))
parts = [f"{images} images" + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
                               + (f"; {links} hard links" if links else "") + ")" if images else "")]
parts.append(f"{jsons} annotation JSON{'s' if jsons != 1 else ''}, {boxes} boxes, {len(cats)} categories")
print("; ".join(parts))
PY
)"
}

row() { # KEY LABEL [IMGPREP_KEY]: one table line for set size $n
  local k="$1:$n" c="${3:-}:$n" vs="-"
  [ -n "${wall[$k]:-}" ] || return 0
  if [ -n "${3:-}" ]; then
    vs="imgprep detection not available yet"
    if [ -n "${wall[$c]:-}" ]; then
      vs="$(printf '%.1fx, %.1fx' "$(echo "${wall[$k]} / ${wall[$c]}" | bc -l)" \
        "$(echo "${rss[$k]} / ${rss[$c]}" | bc -l)")"
    fi
  fi
  printf '| %s | %.2f | %.0f | %.0f | %.0f | %s | %s |\n' "$2" "${wall[$k]}" \
    "$(echo "$n / ${wall[$k]}" | bc -l)" "$(echo "${rss[$k]} / 1024" | bc -l)" \
    "$(echo "${tree[$k]} / 1024" | bc -l)" "$vs" "${held[$k]}"
}

printf '%s\n' "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), \
$(free -g | awk '/Mem:/ {print $2}') GiB; nice ${NICE:-0}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${sizes[@]}"; do
  voc="$(voc_set "$n")"
  runs=${RUNS_SMALL:-3}
  ((n < 50000)) || runs=${RUNS_LARGE:-1}
  work="${WORK:-$cache}/detection-work-$n"
  rm -rf "$work" && mkdir -p "$work"
  recipes "$voc" "$work"
  objects=$(find "$voc/Annotations" -name '*.xml' -exec cat {} + | grep -c '<object>')
  find "$voc" -type f -exec cat {} + > /dev/null   # warm the page cache
  if [[ $cases == *" a "* ]]; then
    best "a:$n" "$runs" "$work/out-a" "$py" bench/voc_to_sagemaker.py "$voc" @OUT@
  fi
  if [[ $cases == *" b "* ]]; then
    best "b:$n" "$runs" "$work/out-b" \
      "$datum" convert -if voc -i "$voc" -f coco -o @OUT@ -- --save-media --tasks instances
    best "b0:$n" "$runs" "$work/out-b0" \
      "$datum" convert -if voc -i "$voc" -f coco -o @OUT@ -- --tasks instances
  fi
  if [ "$imgprep_ok" = yes ]; then
    for format in sagemaker coco; do
      key="c-$format:$n"
      best "$key" "$runs" "$work/out-c-$format" env IMGPREP_CACHE_DIR=@OUT@-cache \
        "$bin" build "$work/$format.toml" --out @OUT@ -q || unset "wall[$key]"
    done
  fi

  echo
  echo "### $n images ($(du -sh "$voc/JPEGImages" | cut -f1) of JPEGs, $objects boxes), \
$( ((runs > 1)) && echo "best of $runs runs" || echo "1 run"); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| case | wall s | images/s | peak RSS MiB (largest process) | tree peak RSS MiB | vs imgprep: time, RSS | output |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  row a "(a) voc_to_sagemaker.py (ElementTree + pandas, 2 processes) -> SageMaker JSON + images" c-sagemaker
  row c-sagemaker "(c) imgprep -> sagemaker-detection"
  row b "(b) datum convert VOC -> COCO, --save-media" c-coco
  row b0 "(b) datum convert VOC -> COCO, annotations only" c-coco
  row c-coco "(c) imgprep -> coco"
done
