# Sourced by bench/build.sh and bench/overhead.sh (from the repository root):
# bench_photos N prints the folder of N 640x480 photos made by bench/make_photos.py
# (under $IMGPREP_CACHE, default ~/.cache/imgprep, in bench/photos-N), making them once.
bench_cache="${IMGPREP_CACHE:-$HOME/.cache/imgprep}/bench"
bench_photos() {
  local dir="$bench_cache/photos-$1"
  if [ ! -d "$dir" ]; then
    "$(scripts/venv.sh)" bench/make_photos.py "$dir" --count "$1" >&2
  fi
  echo "$dir"
}
