#!/usr/bin/env bash
# The main job on data the project makes itself (no download): synthesise
# 1,000 photos with a CSV index of drivers (subject,classname,img), build train/validation
# datasets from examples/drivers.toml (driver groups, complete + sample
# variants, RecordIO + SageMaker image layout, manifest), verify everything,
# rebuild (a no-op), then the im2rec.py-compatible path on the same images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --quiet
bin=target/release/imgprep
rm -rf examples/data/drivers demo
$bin synth examples/data/drivers --classes 10 --per-class 100
$bin build examples/drivers.toml --out demo/drivers
$bin verify demo/drivers
$bin build examples/drivers.toml --out demo/drivers
$bin im2rec demo/pets examples/data/drivers --list --recursive --train-ratio 0.8
$bin im2rec demo/pets examples/data/drivers --resize 210
$bin verify demo/pets_train
$bin inspect demo/pets_val.rec --limit 5
