#!/usr/bin/env python3
"""Make a deterministic benchmark set of distinct 640x480 photo JPEGs.

Usage: make_photos.py OUT_DIR --count N [--seed S] [--jobs J]

Run it with the venv python (scripts/venv.sh): it needs numpy and OpenCV.

The pixels come from the real photos under /work/shared/data/photos (read in
place, never copied). Every output image is one random 4:3 crop of one source
photo at a random scale, possibly mirrored, with brightness / contrast /
per-channel colour jitter, resized to 640x480 and encoded as JPEG quality 90
by OpenCV (cv2.imencode: the same bytes cv2.imwrite would write; workers return
bytes, the parent writes the files). Images go round-robin into 10 class
folders: OUT_DIR/c0 .. OUT_DIR/c9, named img_NNNNN.jpg by their global index.

Determinism: image i depends only on (seed, i) and the sorted source list, so
the output is the same for any --jobs and across runs. Grayscale sources and
sources whose shorter side is under 240 px (they would need more than 2x
upscaling) are skipped. Identical outputs would make the set less than N
distinct images, so the script checks content hashes and fails on a duplicate.
"""
import argparse
import hashlib
import multiprocessing
import os
import sys

import cv2
import numpy as np

# Bump when the images this script makes change: bench/run.sh regenerates
# cached data sets whose stamp differs.
GENERATOR_VERSION = 1

SOURCE_DIR = "/work/shared/data/photos"
OUT_W, OUT_H = 640, 480
CLASSES = 10
QUALITY = 90
MIN_SHORT_SIDE = 240      # upscaling is capped at 2x
MAX_LONG_SIDE = 2000      # big phone photos are pre-shrunk to keep memory low

SOURCES = []              # [(path, BGR array)], filled before the workers fork


def is_grayscale(img):
    """True when the three channels are (nearly) the same picture."""
    small = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).astype(np.int16)
    b, g, r = small[..., 0], small[..., 1], small[..., 2]
    return max(np.abs(b - g).max(), np.abs(g - r).max()) <= 6


def load_sources(root):
    """Decode every usable colour photo under root, in sorted path order."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() not in (".jpg", ".jpeg", ".png"):
                continue
            path = os.path.join(dirpath, name)
            img = cv2.imread(path, cv2.IMREAD_COLOR)  # applies EXIF orientation
            if img is None:
                continue
            h, w = img.shape[:2]
            if min(h, w) < MIN_SHORT_SIDE or is_grayscale(img):
                continue
            if max(h, w) > MAX_LONG_SIDE:
                f = MAX_LONG_SIDE / max(h, w)
                img = cv2.resize(img, (round(w * f), round(h * f)),
                                 interpolation=cv2.INTER_AREA)
            out.append((os.path.relpath(path, root), img))
    return out


def make_image(seed, i):
    """Return (index, JPEG bytes) of image i. Pure function of (seed, i)."""
    rng = np.random.default_rng([seed, i])
    _, src = SOURCES[rng.integers(len(SOURCES))]
    h, w = src.shape[:2]

    # Largest 4:3 window that fits, then a random fraction of it, never
    # smaller than half the output size (so upscaling stays <= 2x).
    max_w = min(w, h * OUT_W / OUT_H)
    min_w = min(max_w, OUT_W / 2)
    cw = rng.uniform(max(min_w, 0.35 * max_w), max_w)
    ch = cw * OUT_H / OUT_W
    x = rng.uniform(0, w - cw)
    y = rng.uniform(0, h - ch)
    crop = src[int(y):int(y + ch), int(x):int(x + cw)]
    interp = cv2.INTER_AREA if crop.shape[1] > OUT_W else cv2.INTER_LINEAR
    img = cv2.resize(crop, (OUT_W, OUT_H), interpolation=interp)
    if rng.random() < 0.5:
        img = cv2.flip(img, 1)

    # Photometric jitter: contrast around the mean, brightness, per-channel gain.
    f = img.astype(np.float32)
    contrast = rng.uniform(0.7, 1.3)
    brightness = rng.uniform(-30, 30)
    gains = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    mean = f.mean()
    f = ((f - mean) * contrast + mean + brightness) * gains
    img = np.clip(f + 0.5, 0, 255).astype(np.uint8)

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encode failed for image {i}")
    return i, buf.tobytes()


def _work(args):
    return make_image(*args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    SOURCES.extend(load_sources(SOURCE_DIR))
    if not SOURCES:
        sys.exit(f"make_photos.py: no usable photos under {SOURCE_DIR}")
    print(f"{len(SOURCES)} source photos, making {args.count} images "
          f"in {args.out_dir}", file=sys.stderr)

    for k in range(CLASSES):
        os.makedirs(os.path.join(args.out_dir, f"c{k}"), exist_ok=True)

    # Workers only compute JPEG bytes; this process writes the files (with
    # cv2.imencode + write == cv2.imwrite) and checks that all are distinct.
    seen = {}
    tasks = ((args.seed, i) for i in range(args.count))
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for i, data in pool.imap_unordered(_work, tasks, chunksize=32):
            digest = hashlib.sha1(data).digest()
            if digest in seen:
                sys.exit(f"make_photos.py: images {seen[digest]} and {i} are identical")
            seen[digest] = i
            path = os.path.join(args.out_dir, f"c{i % CLASSES}", f"img_{i:05d}.jpg")
            with open(path, "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
