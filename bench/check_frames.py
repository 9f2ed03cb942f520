#!/usr/bin/env python3
"""Check a frame dataset made from a bench/make_sessions.py corpus against its ground truth.

Usage:
  check_frames.py TRUTH_DIR --data DATA_DIR [--json OUT.json]
  check_frames.py TRUTH_DIR --rec A.rec [B.rec ...] [--classes NAMES] [--json OUT.json]

TRUTH_DIR is the corpus's truth/ folder (subject{K}.csv: frame_index,label).
--data: a tree DATA_DIR/{split}/{label}/*.jpg (the peer pipeline's Data/):
        the split and label are the two folders above each image.
--rec:  MXNet RecordIO files (with their .idx beside them), read with
        mxnet.recordio.MXIndexedRecordIO + unpack_img, so run this with the
        MXNet venv (scripts/venv.sh). The split is the file's stem; a record's
        label (its first one) is an id into NAMES, a comma-separated list or
        @FILE with one name per line (default: TRUTH_DIR/../classes.txt, the
        sorted class names, which are imgprep's class ids); a negative id
        means unlabelled.
Split names are normalised: Training/train -> train, Validation/val ->
validation, Test/testing -> test. With S >= 3 subjects in the truth, subjects
1..S-2 belong in train, S-1 in validation, S in test.

Every image is decoded (greyscale) and its painted identity read back: the
session frame index from the 4x4 grid over the upper half (cells row-major,
bit k set when the mean of the centre half of cell k is > 128) and the subject
from the band of 8 cells below it (see make_sessions.py). A cell whose mean is
between 64 and 192, or an identity outside the truth, makes the image
"unreadable" (it is then left out of the other counts).

Prints a JSON summary (and writes it to --json):
  written          images in the output
  distinct         distinct (subject, frame) among them
  duplicates       written - distinct - unreadable
  missing          frames in a labelled range that were not written at all
  wrong_labels     images whose written label differs from the truth label, with
                   wrong_label_kinds: other_class (both labelled),
                   truth_unlabelled (written with a label, truth has none),
                   written_unlabelled (written without a label, truth has one)
  unlabelled_ok    images written without a label whose truth has none
  wrong_split      images of a subject in another split than the rule above
  name_offsets     (--data) how often (number in the file name - frame index)
                   takes each value, e.g. {"1": 4000, "10": 3000}: ffmpeg's
                   thumb%06d numbering against the true frame index
  name_subject_mismatch  images whose path names another subject (subjectK)
                   than the one painted in them
  per_split        images, distinct frames, wrong labels and subjects per split
  examples         up to 10 wrong labels and 10 missing frames
Needs numpy and Pillow (--data) or MXNet (--rec).
"""
import argparse
import collections
import csv
import glob
import json
import os
import re
import sys

import numpy as np

SPLITS = {"training": "train", "train": "train", "validation": "validation", "val": "validation",
          "valid": "validation", "test": "test", "testing": "test"}
LOW, HIGH = 64, 192


def norm_split(name):
    return SPLITS.get(name.lower(), name)


def read_truth(truth_dir):
    truth = {}
    for path in glob.glob(os.path.join(truth_dir, "subject*.csv")):
        s = int(re.search(r"subject(\d+)\.csv$", path).group(1))
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        truth[s] = [r["label"] for r in rows]
        assert all(int(r["frame_index"]) == i for i, r in enumerate(rows)), path
    if not truth:
        sys.exit(f"check_frames.py: no subject*.csv in {truth_dir}")
    return truth


def cell_means(grey):
    """(16 index-cell means, 8 subject-cell means) of a 2-D uint8 array."""
    h, w = grey.shape
    g = grey.astype(np.float32)

    def mean(x0, x1, y0, y1):
        xa, xb = int(round(x0 + (x1 - x0) / 4)), int(round(x1 - (x1 - x0) / 4))
        ya, yb = int(round(y0 + (y1 - y0) / 4)), int(round(y1 - (y1 - y0) / 4))
        return float(g[ya:max(yb, ya + 1), xa:max(xb, xa + 1)].mean())

    top = h / 2
    index = [mean(c * w / 4, (c + 1) * w / 4, r * top / 4, (r + 1) * top / 4)
             for r in range(4) for c in range(4)]
    band = h / 8
    subject = [mean(k * w / 8, (k + 1) * w / 8, top, top + band) for k in range(8)]
    return index, subject


def identity(grey):
    """(subject, frame index) painted in the image, or None when a cell is ambiguous."""
    index, subject = cell_means(grey)
    if any(LOW < m < HIGH for m in index + subject):
        return None
    i = sum(1 << k for k, m in enumerate(index) if m > 128)
    s = sum(1 << k for k, m in enumerate(subject) if m > 128)
    return s, i


def images_from_data(root):
    """(split, label, path, grey) for every JPEG under root/{split}/{label}/."""
    from PIL import Image
    for split in sorted(os.listdir(root)):
        sdir = os.path.join(root, split)
        if not os.path.isdir(sdir):
            continue
        for label in sorted(os.listdir(sdir)):
            ldir = os.path.join(sdir, label)
            if not os.path.isdir(ldir):
                continue
            for name in sorted(os.listdir(ldir)):
                if not name.lower().endswith((".jpg", ".jpeg", ".png")):
                    continue
                path = os.path.join(ldir, name)
                with Image.open(path) as im:
                    grey = np.asarray(im.convert("L"))
                yield norm_split(split), label, os.path.join(split, label, name), grey


def images_from_rec(recs, classes):
    import mxnet as mx  # noqa: F401  (the MXNet venv)
    from mxnet import recordio
    for rec in recs:
        stem = os.path.splitext(os.path.basename(rec))[0]
        split = norm_split(stem)
        names = {}
        lst = os.path.splitext(rec)[0] + ".lst"
        if os.path.exists(lst):  # id -> path, to cross-check the subject
            with open(lst) as f:
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) >= 3:
                        names[int(float(parts[0]))] = parts[-1]
        r = recordio.MXIndexedRecordIO(os.path.splitext(rec)[0] + ".idx", rec, "r")
        for key in r.keys:
            header, grey = recordio.unpack_img(r.read_idx(key), iscolor=0)
            lab = header.label
            lab = float(lab) if np.ndim(lab) == 0 else (float(lab[0]) if len(lab) else -1.0)
            cid = int(lab)
            if cid < 0:
                label = ""
            elif cid < len(classes):
                label = classes[cid]
            else:
                label = f"?{cid}"
            yield split, label, names.get(header.id, f"{stem}#{key}"), grey
        r.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("truth_dir")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help="DATA_DIR/{split}/{label}/*.jpg")
    g.add_argument("--rec", nargs="+", help=".rec files")
    ap.add_argument("--classes", help="comma-separated names, or @FILE (one per line)")
    ap.add_argument("--json", help="also write the summary here")
    a = ap.parse_args()

    truth = read_truth(a.truth_dir)
    n_subj = len(truth)
    expected = {}
    if n_subj >= 3:
        for s in truth:
            expected[s] = "train" if s <= n_subj - 2 else ("validation" if s == n_subj - 1 else "test")

    if a.rec:
        spec = a.classes or "@" + os.path.join(os.path.dirname(os.path.abspath(a.truth_dir)),
                                               "classes.txt")
        if spec.startswith("@"):
            with open(spec[1:]) as f:
                classes = [x.strip() for x in f if x.strip()]
        else:
            classes = [x for x in spec.split(",") if x]
        images = images_from_rec(a.rec, classes)
        source = {"rec": a.rec, "classes": classes}
    else:
        images = images_from_data(a.data)
        source = {"data": a.data}

    seen = collections.Counter()
    kinds = collections.Counter()
    per_split = collections.defaultdict(lambda: {"images": 0, "frames": set(), "subjects": set(),
                                                 "wrong_labels": 0})
    offsets = collections.Counter()
    wrong_examples, written, unreadable, unlabelled_ok, wrong_split, name_mismatch = [], 0, 0, 0, 0, 0
    unreadable_examples = []
    for split, label, name, grey in images:
        written += 1
        ident = identity(grey)
        if ident is None or ident[0] not in truth or ident[1] >= len(truth[ident[0]]):
            unreadable += 1
            if len(unreadable_examples) < 10:
                unreadable_examples.append({"image": name, "read": ident})
            continue
        s, i = ident
        seen[ident] += 1
        ps = per_split[split]
        ps["images"] += 1
        ps["frames"].add(ident)
        ps["subjects"].add(s)
        if expected and expected[s] != split:
            wrong_split += 1
        m = re.search(r"subject(\d+)", name)
        if m and int(m.group(1)) != s:
            name_mismatch += 1
        if a.data:
            m = re.search(r"(\d+)\.\w+$", os.path.basename(name))
            if m:
                offsets[int(m.group(1)) - i] += 1
        want = truth[s][i]
        if label == want:
            unlabelled_ok += label == ""
            continue
        kind = ("other_class" if label and want else
                "truth_unlabelled" if label else "written_unlabelled")
        kinds[kind] += 1
        ps["wrong_labels"] += 1
        if len(wrong_examples) < 10:
            wrong_examples.append({"image": name, "subject": s, "frame_index": i,
                                   "written": label, "truth": want})

    missing, missing_examples = 0, []
    for s, labels in sorted(truth.items()):
        for i, lab in enumerate(labels):
            if lab and (s, i) not in seen:
                missing += 1
                if len(missing_examples) < 10:
                    missing_examples.append({"subject": s, "frame_index": i, "truth": lab})

    result = {
        "source": source,
        "truth_frames": sum(len(v) for v in truth.values()),
        "truth_labelled": sum(1 for v in truth.values() for x in v if x),
        "written": written,
        "distinct": len(seen),
        "duplicates": written - unreadable - len(seen),
        "missing": missing,
        "wrong_labels": sum(kinds.values()),
        "wrong_label_kinds": {k: kinds.get(k, 0)
                              for k in ("other_class", "truth_unlabelled", "written_unlabelled")},
        "unlabelled_ok": unlabelled_ok,
        "unreadable": unreadable,
        "wrong_split": wrong_split if expected else None,
        "name_subject_mismatch": name_mismatch,
        "per_split": {k: {"images": v["images"], "distinct": len(v["frames"]),
                          "wrong_labels": v["wrong_labels"], "subjects": sorted(v["subjects"])}
                      for k, v in sorted(per_split.items())},
    }
    if offsets:
        result["name_offsets"] = {str(k): v for k, v in sorted(offsets.items())}
    result["examples"] = {"wrong_labels": wrong_examples, "missing": missing_examples,
                          "unreadable": unreadable_examples}
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
