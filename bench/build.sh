#!/usr/bin/env bash
# Benchmark of `imgprep build` on N photos (default 20,000, 640x480 JPEGs made by
# bench/make_photos.py from ../shared/data/photos; cached). Rows:
#   first build, no-op re-run, re-run after changing 1 % of the inputs,
#   4 shards (run one after another here) + merge.
# Usage: bench/build.sh [N]   (IMGPREP=path/to/imgprep to test another binary;
#        RUNS=5 timed re-runs after a 1 % change; FORMAT=recordio (default),
#        tfrecord (preset tfds) or tfrecord-raw (decoded pixels) for the output)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"
bin="${IMGPREP:-target/release/imgprep}"
# shellcheck source=bench/photos_common.sh
source bench/photos_common.sh
photos="$(bench_photos "$N")"
work="$bench_cache/build-work-$N"
rm -rf "$work" && mkdir -p "$work"
# an item cache of its own, empty: the first build really is one
export IMGPREP_CACHE_DIR="$work/cache"
# a hard-link farm: changing a file below replaces the link, never the cached original
cp -al "$photos" "$work/photos"
cat > "$work/recipe.toml" <<TOML
name = "bench"
seed = 1
[[sources]]
type = "folders"
root = "photos"
[split]
method = "stratified"
train = 0.8
validation = 0.2
[transform]
resize = 210
quality = 95
TOML
case "${FORMAT:-recordio}" in
  recordio) printf '[[outputs]]\nformat = "recordio"\n' ;;
  tfrecord) printf '[[outputs]]\nformat = "tfrecord"\npreset = "tfds"\n' ;;
  tfrecord-raw) printf '[[outputs]]\nformat = "tfrecord"\npreset = "raw"\n' ;;
  *) echo "FORMAT: recordio, tfrecord or tfrecord-raw" >&2; exit 2 ;;
esac >> "$work/recipe.toml"

t() { # prints seconds taken by the command, started after a sync (so the
  # previous run's output being written out to disk is not in its time)
  local s e
  sync
  s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
  printf '%.2f' "$(echo "$e - $s" | bc)"
}
first=$(t "$bin" build "$work/recipe.toml" --out "$work/out" -q)
noop=$(t "$bin" build "$work/recipe.toml" --out "$work/out" -q)
# change 1 %: every 100th file gets another photo's bytes (alternately the
# next and the one after, so every run of the script changes them again)
mapfile -t files < <(cd "$work/photos" && find . -name '*.jpg' | sort)
printf '%s\n' "${files[@]}" > "$work/files.txt"
cat > "$work/change.sh" <<'SH'
#!/usr/bin/env bash
# change.sh WORK PHOTOS: replaces every 100th photo of WORK/photos (a new file, new mtime)
set -euo pipefail
work="$1" photos="$2"
mapfile -t files < "$work/files.txt"
flip=$(( $(cat "$work/flip" 2>/dev/null || echo 0) ^ 1 ))
echo "$flip" > "$work/flip"
for ((i = 0; i < ${#files[@]}; i += 100)); do
  j=$(( (i + 1 + flip) % ${#files[@]} ))
  rm "$work/photos/${files[$i]}"
  cp "$photos/${files[$j]}" "$work/photos/${files[$i]}"
done
SH
changed=$(( (${#files[@]} + 99) / 100 ))
# timed with hyperfine: RUNS rebuilds (default 5, after 1 warm-up), each after
# the change and a sync; the median
hyperfine --style none --warmup 1 --runs "${RUNS:-5}" --export-json "$work/one_pct.json" \
  --prepare "bash $work/change.sh $work $photos && sync" \
  "$bin build $work/recipe.toml --out $work/out -q" >/dev/null
one_pct=$(python3 -c "import json, statistics; print('%.2f' % statistics.median(json.load(open('$work/one_pct.json'))['results'][0]['times']))")
one_pct_range=$(python3 -c "import json; t = json.load(open('$work/one_pct.json'))['results'][0]['times']; print('%.2f-%.2f' % (min(t), max(t)))")
# once more, for the counts: images decoded, records copied from the previous record files
bash "$work/change.sh" "$work" "$photos"
counts=$("$bin" build "$work/recipe.toml" --out "$work/out" --json -q \
  | python3 -c "import json, sys; d = json.load(sys.stdin); print('%d decoded, %d records copied' % (d['processed'], d['records_reused']))")
"$bin" build "$work/recipe.toml" --out "$work/clean" -q
# every output file and the manifest, byte for byte
same=yes
diff -rq "$work/out" "$work/clean" >/dev/null || same=no
shards=0
for i in 0 1 2 3; do
  s=$(t "$bin" build "$work/recipe.toml" --out "$work/shard$i" --shard "$i/4" -q)
  shards=$(printf '%.2f' "$(echo "$shards + $s" | bc)")
done
merge=$(t "$bin" merge "$work/recipe.toml" --out "$work/merged" "$work"/shard{0,1,2,3} -q)
merged_same=yes
diff -rq "$work/merged" "$work/clean" >/dev/null || merged_same=no

pct() { echo "scale=1; 100 * $1 / $first" | bc; }
cat <<MD
| build of $N photos (--resize 210, 80/20 stratified, ${FORMAT:-recordio}) | seconds | vs first build |
|---|---:|---:|
| first build | $first | 100 % |
| no-op re-run | $noop | $(pct "$noop") % |
| re-run after changing $changed inputs (1 %), median (range $one_pct_range) | $one_pct | $(pct "$one_pct") % ($counts; result equal to a clean build: $same) |
| 4 shards, one after another | $shards | $(pct "$shards") % |
| merge of the 4 shards | $merge | $(pct "$merge") % (equal to one build: $merged_same) |
MD
