#!/usr/bin/env python3
"""Make a deterministic Pascal VOC detection set of N annotated road photos.

Usage: make_voc.py N OUT_DIR [--seed S] [--jobs J] [--bare]

Writes what CVAT's "PASCAL VOC 1.1" export holds:
  OUT_DIR/JPEGImages/road_NNNNNN.jpg
  OUT_DIR/Annotations/road_NNNNNN.xml    one per image, same stem
  OUT_DIR/ImageSets/Main/default.txt     every stem, sorted (CVAT's subset
                                         "default": the source gives no split)
  OUT_DIR/labelmap.txt                   `name:r,g,b::` lines, background first
Datumaro's VOC importer needs the last two: it finds the items through
ImageSets/Main/*.txt ("Failed to find dataset 'voc'" without), and without
labelmap.txt it assumes the 20 VOC classes and fails on "Undeclared label
'D10'". --bare writes only JPEGImages/ and Annotations/ (labelImg's layout).
Needs the standard library and Pillow only (run it with scripts/venv.sh
bench-py, whose pinned Pillow makes the same bytes everywhere).

Images: every image is a crop of one of a handful of real photos under
/work/shared/data/photos (read in place, never copied; scaled to 600 px on the
short side first) at a random position and scale, possibly mirrored, resized
(nearest neighbour) to about 500x375 (70 % 500x375, 15 % 500x333, 15 %
portrait 375x500) and encoded by Pillow as JPEG quality 90, ~65 KB each.
Every image has its own integer crop box (drawn again when one repeats), so
all N files differ in pixels and bytes (the script also checks content hashes
and fails on a duplicate). About 2 ms of CPU per image: 50,000 (3.2 GB) take
about 2 minutes on 2 cores.

Annotations: 1-6 objects per image (fewer more often; 2.6 on average), classes
like a road damage set with an imbalanced distribution: D00 (longitudinal
crack) 50 %, D10 (transverse crack) 25 %, D20 (alligator crack) 15 %, D40
(pothole) 10 %, each with its own typical box shape. 40 % of the images have
CVAT-style float coordinates (e.g. 123.5 or 88.25: int()-based VOC readers
fail on them), the others integers. Boxes lie within the image
(1 <= xmin < xmax <= width); `<truncated>` is 1 when a box touches the image
border; `<difficult>` is 0, `<pose>` Unspecified; `<size>` gives the real
image size.

Determinism: the crops are drawn in one seeded sequence and the boxes of image
i from (seed, i), over a fixed source list, so the output is the same for any
--jobs and across runs (with the same Pillow, whose libjpeg makes the bytes),
and the set of N images is the first N images of any larger set. The set is
written to OUT_DIR.part and renamed to OUT_DIR when complete, so an
interrupted run never leaves a set that looks finished.
"""
import argparse
import hashlib
import io
import multiprocessing
import os
import random
import shutil
import sys

from PIL import Image, ImageOps

# Bump when the data this script makes changes: bench/detection.sh keys its
# cached sets on it.
GENERATOR_VERSION = 1

SOURCE_DIR = "/work/shared/data/photos"
SOURCE_FILES = [  # outdoor scenes, streets and pavement, and a few others
    "forensics_phone/IMG_1054.JPG",
    "forensics_phone/IMG_20200608_111614.jpg",
    "opencv/building.jpg",
    "opencv/ela_original.jpg",
    "opencv/leuvenA.jpg",
    "opencv/leuvenB.jpg",
    "pillow/xmp_test.jpg",
    "skimage/motorcycle_left.png",
]
SHORT_SIDE = 600          # sources are scaled to this once (Lanczos), so crops resize fast
QUALITY = 90
SIZES = [((500, 375), 70), ((500, 333), 15), ((375, 500), 15)]   # (w, h), weight
CLASSES = [("D00", 50), ("D10", 25), ("D20", 15), ("D40", 10)]
LABELMAP = """# label:color_rgb:parts:actions
background:0,0,0::
D00:250,50,83::
D10:61,61,245::
D20:255,204,51::
D40:36,179,83::
"""
OBJECTS = [(1, 30), (2, 25), (3, 18), (4, 12), (5, 9), (6, 6)]   # objects per image
FLOAT_SHARE = 0.4
# Box size per class as (min, max) fraction of image width, then of height.
SHAPES = {
    "D00": ((0.04, 0.15), (0.30, 0.85)),   # long, thin, along the road
    "D10": ((0.30, 0.90), (0.04, 0.15)),   # across the road
    "D20": ((0.20, 0.50), (0.15, 0.45)),   # an area of cracks
    "D40": ((0.05, 0.20), (0.05, 0.15)),   # a small hole
}

SOURCES = []              # [PIL.Image], filled before the workers fork


def load_sources():
    out = []
    for rel in SOURCE_FILES:
        path = os.path.join(SOURCE_DIR, rel)
        if not os.path.exists(path):
            sys.exit(f"make_voc.py: missing source photo {path} (see shared/data/SOURCES.md)")
        with Image.open(path) as im:
            img = ImageOps.exif_transpose(im).convert("RGB")
        f = SHORT_SIDE / min(img.size)
        img = img.resize((round(img.width * f), round(img.height * f)), Image.LANCZOS)
        img.load()
        out.append(img)
    return out


def pick(rng, weighted):
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def coord(v, floats):
    """Text of one coordinate: an integer, or CVAT-style 123.5 / 88.25."""
    if not floats:
        return str(int(round(v)))
    return f"{v:.2f}".rstrip("0").rstrip(".")


def make_objects(rng, w, h):
    floats = rng.random() < FLOAT_SHARE
    objects = []
    for _ in range(pick(rng, OBJECTS)):
        name = pick(rng, CLASSES)
        (fw0, fw1), (fh0, fh1) = SHAPES[name]
        bw, bh = rng.uniform(fw0, fw1) * w, rng.uniform(fh0, fh1) * h
        x0 = rng.uniform(1, w - bw)
        y0 = rng.uniform(1, h - bh)
        x1, y1 = x0 + bw, y0 + bh
        if rng.random() < 0.1:           # some boxes run to the image border
            if rng.random() < 0.5:
                x0 = 1.0
            else:
                x1 = float(w)
        if not floats:
            x0, y0, x1, y1 = (round(v) for v in (x0, y0, x1, y1))
        truncated = int(x0 <= 1 or y0 <= 1 or x1 >= w or y1 >= h)
        objects.append((name, truncated, [coord(v, floats) for v in (x0, y0, x1, y1)]))
    return objects


def annotation_xml(name, w, h, objects):
    parts = [
        "<annotation>\n",
        "\t<folder>JPEGImages</folder>\n",
        f"\t<filename>{name}</filename>\n",
        "\t<source>\n\t\t<database>imgprep bench road damage</database>\n\t</source>\n",
        "\t<size>\n",
        f"\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n",
        "\t</size>\n",
        "\t<segmented>0</segmented>\n",
    ]
    for cls, truncated, (x0, y0, x1, y1) in objects:
        parts.append(
            "\t<object>\n"
            f"\t\t<name>{cls}</name>\n"
            "\t\t<pose>Unspecified</pose>\n"
            f"\t\t<truncated>{truncated}</truncated>\n"
            "\t\t<difficult>0</difficult>\n"
            "\t\t<bndbox>\n"
            f"\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n"
            f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n"
            "\t\t</bndbox>\n"
            "\t</object>\n")
    parts.append("</annotation>\n")
    return "".join(parts)


def crop_plans(seed, count):
    """One (source, width, height, crop box, mirror) per image, all different.

    Drawn in one sequence from one seeded generator, with integer crop boxes;
    a plan drawn twice (rare) is drawn again, so no two images can come out
    the same whatever the photo content. Needs SOURCES loaded."""
    rng = random.Random(f"make_voc:crops:{seed}")
    plans, seen = [], set()
    while len(plans) < count:
        k = rng.randrange(len(SOURCES))
        w, h = pick(rng, SIZES)
        sw, sh = SOURCES[k].size
        # Largest window of the output's aspect that fits, then a random share
        # of it, never smaller than the output: sources are 600 px on the short
        # side, so this only ever shrinks by <= 1.6x and nearest-neighbour
        # sampling (25x faster than Pillow's bilinear here) still looks right.
        max_w = min(sw, sh * w // h)
        cw = rng.randint(w, max_w)
        ch = cw * h // w
        x, y = rng.randint(0, sw - cw), rng.randint(0, sh - ch)
        plan = (k, w, h, (x, y, x + cw, y + ch), rng.random() < 0.5)
        if plan not in seen:
            seen.add(plan)
            plans.append(plan)
    return plans


def make_item(seed, i, plan):
    """Return (i, JPEG bytes, XML text) of image i: a pure function of its arguments."""
    k, w, h, box, mirror = plan
    img = SOURCES[k].resize((w, h), Image.NEAREST, box=box)
    if mirror:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=QUALITY)
    rng = random.Random(f"make_voc:boxes:{seed}:{i}")
    return i, buf.getvalue(), annotation_xml(f"road_{i:06d}.jpg", w, h, make_objects(rng, w, h))


def _work(args):
    return make_item(*args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("count", type=int)
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--bare", action="store_true",
                    help="only JPEGImages/ and Annotations/ (no ImageSets/, no labelmap.txt)")
    args = ap.parse_args()
    if os.path.exists(args.out_dir):
        sys.exit(f"make_voc.py: {args.out_dir} exists; remove it to make it again")

    SOURCES.extend(load_sources())
    part = args.out_dir.rstrip("/") + ".part"
    shutil.rmtree(part, ignore_errors=True)
    os.makedirs(os.path.join(part, "Annotations"))
    os.makedirs(os.path.join(part, "JPEGImages"))
    print(f"make_voc.py: {args.count} images from {len(SOURCES)} photos -> {args.out_dir}",
          file=sys.stderr)

    # Workers compute bytes; this process writes the files and checks that
    # every image is distinct.
    seen = {}
    tasks = ((args.seed, i, plan) for i, plan in enumerate(crop_plans(args.seed, args.count)))
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for i, jpeg, xml in pool.imap_unordered(_work, tasks, chunksize=64):
            digest = hashlib.sha1(jpeg).digest()
            if digest in seen:
                sys.exit(f"make_voc.py: images {seen[digest]} and {i} are identical")
            seen[digest] = i
            stem = f"road_{i:06d}"
            with open(os.path.join(part, "JPEGImages", stem + ".jpg"), "wb") as f:
                f.write(jpeg)
            with open(os.path.join(part, "Annotations", stem + ".xml"), "w",
                      encoding="utf-8") as f:
                f.write(xml)
    if not args.bare:
        os.makedirs(os.path.join(part, "ImageSets", "Main"))
        with open(os.path.join(part, "ImageSets", "Main", "default.txt"), "w") as f:
            f.writelines(f"road_{i:06d}\n" for i in range(args.count))
        with open(os.path.join(part, "labelmap.txt"), "w") as f:
            f.write(LABELMAP)
    os.rename(part, args.out_dir)


if __name__ == "__main__":
    main()
