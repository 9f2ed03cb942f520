#!/usr/bin/env bash
# The main job on data the project makes itself: synthesise a class-folder tree
# of photos, list it im2rec-style with an 80/20 split, pack both splits with
# --resize 210, then verify and inspect the result. Output goes to ./demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --quiet
bin=target/release/imgprep
rm -rf demo && mkdir -p demo
$bin synth demo/images --classes 4 --per-class 250
$bin im2rec demo/pets demo/images --list --recursive --train-ratio 0.8
$bin im2rec demo/pets demo/images --resize 210
$bin verify demo/pets_train
$bin verify demo/pets_val
$bin inspect demo/pets_val.rec --limit 5
