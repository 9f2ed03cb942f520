#!/usr/bin/env bash
# TFRecord benchmark, side by side with TensorFlow's Python writer
# (bench/tf_writer.py) on the same machine and inputs:
#   (a) 10,000 64x64 JPEGs in 200 class folders -> the raw preset (a TinyImageNet-style job)
#   (b) 2,000 640x480 photos resized to 224x224 -> the tfds preset
# Whole processes, median of 3 runs (hyperfine), peak RSS via /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${IMGPREP:-target/release/imgprep}")"
cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/bench"
mx="$(scripts/venv.sh)"
tf="$(scripts/venv.sh tf)"
photos="$cache/photos-2000"
[ -d "$photos" ] || "$mx" bench/make_photos.py "$photos" --count 2000
tiny="$cache/tiny-10000"
if [ ! -d "$tiny" ]; then
  # 64x64 crops of the 640x480 photos, 50 per class folder, 200 folders
  "$mx" - "$photos" "$tiny" <<'PY'
import os, sys, cv2
src, dst = sys.argv[1], sys.argv[2]
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(src) for f in fs if f.endswith(".jpg"))
for i in range(10000):
    img = cv2.imread(files[i % len(files)])
    y, x = (i * 37) % 400, (i * 53) % 560
    crop = cv2.resize(img[y:y + 80, x:x + 80], (64, 64), interpolation=cv2.INTER_AREA)
    if i % 50 == 7:
        crop = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    d = os.path.join(dst, f"n{i % 200:08d}")
    os.makedirs(d, exist_ok=True)
    cv2.imwrite(os.path.join(d, f"img_{i:05d}.JPEG"), crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
PY
fi
work="$cache/tf-work"
rm -rf "$work" && mkdir -p "$work"
cat > "$work/raw.toml" <<TOML
name = "tiny"
[[sources]]
type = "folders"
root = "$tiny"
exts = [".jpeg"]
[transform]
encoding = "passthrough"
[[outputs]]
format = "tfrecord"
preset = "raw"
TOML
cat > "$work/tfds.toml" <<TOML
name = "photos"
[[sources]]
type = "folders"
root = "$photos"
[transform]
resize = "224x224"
quality = 95
[[outputs]]
format = "tfrecord"
preset = "tfds"
TOML
run() { # name, peer command, our command
  hyperfine --style basic --warmup 1 --runs 3 --export-json "$work/$1.json" \
    --prepare "rm -rf $work/out-$1 $work/$1.tfrecord" -n tf "$2" -n imgprep "$3" >&2
  /usr/bin/time -v $2 2> "$work/$1.tf.time" >/dev/null
  rm -rf "$work/out-$1"
  /usr/bin/time -v $3 2> "$work/$1.ours.time" >/dev/null
}
run a "$tf bench/tf_writer.py raw $tiny $work/a.tfrecord" "$bin build $work/raw.toml --out $work/out-a -q"
run b "$tf bench/tf_writer.py tfds $photos $work/b.tfrecord" "$bin build $work/tfds.toml --out $work/out-b -q"
"$mx" - "$work" <<'PY'
import json, re, sys
w = sys.argv[1]
def med(case, name):
    return next(r["median"] for r in json.load(open(f"{w}/{case}.json"))["results"] if r["command"] == name)
def rss(case, who):
    t = open(f"{w}/{case}.{who}.time").read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
print("| case | TF writer s | imgprep s | speed-up | TF peak RSS MiB | imgprep peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|")
for case, label, n in [("a", "(a) 10,000 64x64 JPEGs -> raw", 10000), ("b", "(b) 2,000 640x480 -> 224x224 tfds", 2000)]:
    t, o = med(case, "tf"), med(case, "imgprep")
    print(f"| {label} | {t:.2f} ({n / t:.0f} img/s) | {o:.2f} ({n / o:.0f} img/s) | {t / o:.1f}x | {rss(case, 'tf'):.0f} | {rss(case, 'ours'):.0f} |")
PY
