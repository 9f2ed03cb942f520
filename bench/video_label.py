#!/usr/bin/env python3
"""The peer's labelling script: copy extracted frames into Data/{split}/{label}/ by time ranges.

Usage: video_label.py LABELS_DIR WORK_DIR --fps F

Step 3 of the peer pipeline (bench/video_peer.sh runs all of it), written the
way the researcher wrote it:
  - subjects are LABELS_DIR/subject{K}.csv (label,start,end in seconds), in
    natural order; subjects 1..N-2 go to Training, N-1 to Validation, N to Test
  - each subject's frames are WORK_DIR/subject{K}/frames/thumb%06d.jpg, as
    `ffmpeg -i output.mp4 -s 224x224 frames/thumb%06d.jpg` numbered them
    (from 1, after ffmpeg's constant-frame-rate duplicates and drops)
  - a range's times become frame numbers as round(t * fps) with the NOMINAL
    fps (F), and a frame is in the range when start_frame <= N < end_frame,
    N being the number in its file name (the half-open [start, end) of the CSV)
  - a frame in a range is copied (shutil.copy) to
    WORK_DIR/Data/{split}/{label}/subject{K}_thumbNNNNNN.jpg; frames in no
    range are left out
Standard library only.
"""
import argparse
import csv
import os
import re
import shutil


def natural(s):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("labels_dir")
    ap.add_argument("work_dir")
    ap.add_argument("--fps", type=float, required=True)
    a = ap.parse_args()
    fps = a.fps

    csvs = sorted((f for f in os.listdir(a.labels_dir) if f.endswith(".csv")), key=natural)
    n = len(csvs)
    for k, name in enumerate(csvs, 1):
        subject = os.path.splitext(name)[0]
        split = "Training" if k <= n - 2 else ("Validation" if k == n - 1 else "Test")
        ranges = []
        with open(os.path.join(a.labels_dir, name), newline="") as f:
            for row in csv.DictReader(f):
                ranges.append((row["label"], round(float(row["start"]) * fps),
                               round(float(row["end"]) * fps)))
        frames_dir = os.path.join(a.work_dir, subject, "frames")
        copied = 0
        for fname in sorted(os.listdir(frames_dir)):
            num = int(fname[len("thumb"):-len(".jpg")])
            for label, start, end in ranges:
                if start <= num < end:
                    dst = os.path.join(a.work_dir, "Data", split, label)
                    os.makedirs(dst, exist_ok=True)
                    shutil.copy(os.path.join(frames_dir, fname),
                                os.path.join(dst, f"{subject}_{fname}"))
                    copied += 1
                    break
        print(f"{subject}: {split}, {copied} frames copied")


if __name__ == "__main__":
    main()
