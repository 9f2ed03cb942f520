#!/usr/bin/env python3
"""Make a deterministic corpus of recorded sessions: per subject, several MP4 chunks and time-range labels.

Usage: make_sessions.py OUT [--subjects S] [--chunks C] [--seconds T] [--fps F] [--size WxH]
                            [--seed N] [--preset P] [--audio-extra A] [--jobs J]
  defaults: 4 subjects x 2 chunks x 90 s x 30 fps at 640x360 = 21,600 frames
  (70 s on 2 cores shared with a Rust build, 42 MB; bench/video.sh caches it in
  $IMGPREP_CACHE/bench/sessions-vV-4x2x90s-30fps-640x360).

Writes
  OUT/videos/subject{K}/chunk{NN}.mp4   K = 1..S, NN = 01..C
  OUT/labels/subject{K}.csv             label,start,end  (seconds, half-open [start, end),
                                        on the concat timeline, see below)
  OUT/truth/subject{K}.csv              frame_index,label for every frame of the session
                                        (label empty when the frame is in no range)
  OUT/classes.txt                       the class names, sorted (imgprep's class ids)
  OUT/meta.json                         the parameters, and per chunk its frame count,
                                        first frame index, ffprobe format=duration and
                                        concat offset
The corpus is written to OUT.part and renamed to OUT when complete.

Chunks: ffmpeg lavfi sources encoded with libx264 (yuv420p, --preset veryfast,
B-frames forced: bframes=2:b-adapt=0, so packets are stored out of
presentation order and the MP4 has an edit list) plus an AAC track (a 440 Hz
sine, 48 kHz) that is --audio-extra (0.3 s) LONGER than the video, as in real
camera chunks. The container duration (ffprobe format=duration) is therefore
the audio's, and ffmpeg's concat demuxer, which starts chunk c at the sum of
the previous chunks' container durations, leaves a 0.3 s hole in the video
after every chunk but the last.

Pixels: every frame carries its SESSION frame index (0-based, counting on
across the chunks of its subject: chunk c's first frame is the number of
frames of chunks 1..c-1) and its subject number, so a decoded frame can be
identified after resizing and JPEG:
  upper half  a 4x4 grid of equal cells, row-major; cell k is white (luma 235)
              when bit k of the frame index is set, else black (luma 16);
              16 bits, so at most 65,536 frames per subject
  next H/8    rows: a band of 8 equal cells, bit k of the subject number K
              (1-based), same colours; at most 255 subjects
  the rest    ffmpeg's testsrc2 (moving colour bars, gradients, a counter), so
              that decoding costs what real footage does
Reading back: mean luma of the centre half of each cell > 128 means the bit is
set (bench/check_frames.py). The cells survive a squash to 224x224.

Labels: classes are 5 "procedures" (CLASSES below). Per subject, ranges of
2-20 s (a uniform draw, millisecond resolution) follow each other on the concat
timeline, with an unlabelled gap of 1-8 s before 60 % of them (about 80 % of
the frames end up labelled); the last range is cut at the session's end.
Ranges may span a chunk boundary. The concat timeline: chunk c starts at
offset_c = the sum of format=duration (as ffprobe prints it, microseconds) of
chunks 1..c-1; frame j of chunk c (0-based, presentation order) is at
offset_c + j / fps. A frame is in range [start, end) when start <= its time <
end, computed with exact fractions (truth/). The ranges are drawn from
(seed, subject) only, so they do not depend on the chunk encodes; the truth
does depend on the measured durations.

Needs ffmpeg/ffprobe (5.1 tested) and the Python standard library only.
"""
import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

# Bump when the data this script makes changes: bench/video.sh keys its cached
# corpora on it.
GENERATOR_VERSION = 1

CLASSES = ["closure", "dissection", "incision", "irrigation", "suturing"]
INDEX_BITS = 16
SUBJECT_BITS = 8


def grid_cells(width, height):
    """[(x, y, w, h)] of the 16 index cells (row-major) and the 8 subject cells."""
    top = height // 2
    index = []
    for k in range(INDEX_BITS):
        r, c = divmod(k, 4)
        x0, x1 = c * width // 4, (c + 1) * width // 4
        y0, y1 = r * top // 4, (r + 1) * top // 4
        index.append((x0, y0, x1 - x0, y1 - y0))
    band_h = height // 8
    subject = []
    for k in range(SUBJECT_BITS):
        x0, x1 = k * width // SUBJECT_BITS, (k + 1) * width // SUBJECT_BITS
        subject.append((x0, top, x1 - x0, band_h))
    return index, subject


def filter_graph(width, height, fps, frames, first_index, subject):
    """The lavfi graph of one chunk's video: cells painted over testsrc2, `frames` frames."""
    index_cells, subject_cells = grid_cells(width, height)
    top, band_h = height // 2, height // 8
    rest = height - top - band_h
    rate = f"{fps.numerator}/{fps.denominator}"
    boxes = []
    for k, (x, y, w, h) in enumerate(index_cells):
        p = 1 << k
        # bit k of (n + first_index) is set <=> (n + first_index) mod 2p >= p
        boxes.append(f"drawbox=x={x}:y={y}:w={w}:h={h}:color=white:t=fill:"
                     f"enable='gte(mod(n+{first_index}\\,{2 * p})\\,{p})'")
    for k, (x, y, w, h) in enumerate(subject_cells):
        if subject >> k & 1:
            boxes.append(f"drawbox=x={x}:y={y}:w={w}:h={h}:color=white:t=fill")
    # drawbox white/black on yuv420p: luma 235/16 (limited range)
    top_src = f"color=c=black:s={width}x{top + band_h}:r={rate},format=yuv420p," + ",".join(boxes)
    bottom_src = f"testsrc2=s={width}x{rest}:r={rate},format=yuv420p"
    return f"{top_src}[top];{bottom_src}[bot];[top][bot]vstack,trim=end_frame={frames}"


def ffprobe_duration(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "default=nw=1:nk=1", path],
                         check=True, capture_output=True, text=True).stdout.strip()
    return out


def ffprobe_frames(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                          "-show_entries", "stream=nb_read_packets", "-of", "default=nw=1:nk=1",
                          path], check=True, capture_output=True, text=True).stdout.strip()
    return int(out)


def encode_chunk(path, width, height, fps, frames, first_index, subject, audio_s, preset):
    graph = filter_graph(width, height, fps, frames, first_index, subject)
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", graph,
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={audio_s}",
           "-map", "0:v", "-map", "1:a",
           "-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p",
           "-x264-params", "bframes=2:b-adapt=0",
           "-c:a", "aac", "-b:a", "96k", path]
    subprocess.run(cmd, check=True)
    got = ffprobe_frames(path)
    if got != frames:
        sys.exit(f"make_sessions.py: {path} has {got} video frames, expected {frames}")


def draw_ranges(rng, session_end):
    """[(label, start, end)] as Fractions with millisecond resolution, half-open, ordered."""
    ms = lambda lo, hi: Fraction(rng.randint(int(lo * 1000), int(hi * 1000)), 1000)
    ranges, t = [], Fraction(0)
    while True:
        if rng.random() < 0.6:
            t += ms(1, 8)
        if t >= session_end:
            break
        end = min(t + ms(2, 20), session_end)
        ranges.append((rng.choice(CLASSES), t, end))
        t = end
        if t >= session_end:
            break
    return ranges


def fmt(x):
    """A Fraction with at most microsecond resolution as a decimal string."""
    us = x * 1000000
    assert us.denominator == 1, x
    s = f"{int(us) // 1000000}.{int(us) % 1000000:06d}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--chunks", type=int, default=2)
    ap.add_argument("--seconds", type=Fraction, default=Fraction(90),
                    help="video length of each chunk (frames = round(seconds * fps))")
    ap.add_argument("--fps", type=Fraction, default=Fraction(30), help="e.g. 30 or 30000/1001")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--preset", default="veryfast", help="libx264 preset")
    ap.add_argument("--audio-extra", type=Fraction, default=Fraction(3, 10),
                    help="seconds of audio beyond the video in each chunk")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="chunks encoded at once")
    a = ap.parse_args()
    width, height = (int(v) for v in a.size.lower().split("x"))
    if width < 32 or height < 32 or width % 2 or height % 2:
        sys.exit("make_sessions.py: --size must be even and at least 32x32")
    if a.subjects < 1 or a.subjects >= 1 << SUBJECT_BITS or a.chunks < 1:
        sys.exit("make_sessions.py: need 1-255 subjects and at least 1 chunk")
    frames = round(a.seconds * a.fps)
    if frames * a.chunks > 1 << INDEX_BITS:
        sys.exit(f"make_sessions.py: {frames * a.chunks} frames per subject; at most {1 << INDEX_BITS}")
    audio_s = Fraction(frames) / a.fps + a.audio_extra
    out = os.path.abspath(a.out)
    part = out + ".part"
    shutil.rmtree(part, ignore_errors=True)
    for sub in ("videos", "labels", "truth"):
        os.makedirs(os.path.join(part, sub))

    jobs = []
    for s in range(1, a.subjects + 1):
        os.makedirs(os.path.join(part, "videos", f"subject{s}"))
        for c in range(a.chunks):
            path = os.path.join(part, "videos", f"subject{s}", f"chunk{c + 1:02d}.mp4")
            jobs.append((path, width, height, a.fps, frames, c * frames, s,
                         f"{float(audio_s):.6f}", a.preset))
    print(f"make_sessions.py: encoding {len(jobs)} chunks of {frames} frames "
          f"({a.subjects} subjects x {a.chunks} chunks, {width}x{height}, {a.fps} fps) "
          f"into {part}", file=sys.stderr)
    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        list(pool.map(lambda j: encode_chunk(*j), jobs))

    meta = {"generator_version": GENERATOR_VERSION, "subjects": a.subjects, "chunks": a.chunks,
            "frames_per_chunk": frames, "fps": str(a.fps), "width": width, "height": height,
            "seed": a.seed, "audio_extra_s": str(a.audio_extra), "classes": CLASSES,
            "total_frames": frames * a.chunks * a.subjects, "labelled_frames": 0,
            "per_subject": {}}
    labelled_total = 0
    for s in range(1, a.subjects + 1):
        chunks, offset = [], Fraction(0)
        times = []  # session frame index -> concat time
        for c in range(a.chunks):
            path = os.path.join(part, "videos", f"subject{s}", f"chunk{c + 1:02d}.mp4")
            dur = ffprobe_duration(path)
            chunks.append({"file": f"videos/subject{s}/chunk{c + 1:02d}.mp4", "frames": frames,
                           "first_index": c * frames, "format_duration": dur,
                           "concat_offset": fmt(offset)})
            times.extend(offset + Fraction(j) / a.fps for j in range(frames))
            offset += Fraction(dur)
        ranges = draw_ranges(random.Random(f"{a.seed}:{s}"), times[-1] + 1 / a.fps)
        with open(os.path.join(part, "labels", f"subject{s}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["label", "start", "end"])
            for label, start, end in ranges:
                w.writerow([label, fmt(start), fmt(end)])
        labels, r = [], 0
        for t in times:  # both in order
            while r < len(ranges) and ranges[r][2] <= t:
                r += 1
            labels.append(ranges[r][0] if r < len(ranges) and ranges[r][1] <= t else "")
        with open(os.path.join(part, "truth", f"subject{s}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["frame_index", "label"])
            w.writerows(enumerate(labels))
        labelled = sum(1 for x in labels if x)
        labelled_total += labelled
        meta["per_subject"][f"subject{s}"] = {
            "chunks": chunks, "ranges": len(ranges), "labelled_frames": labelled,
            "classes": sorted({x for x in labels if x})}
    meta["labelled_frames"] = labelled_total
    with open(os.path.join(part, "classes.txt"), "w") as f:
        f.write("".join(c + "\n" for c in sorted(CLASSES)))
    with open(os.path.join(part, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(part, out)
    print(f"make_sessions.py: {meta['total_frames']} frames, {labelled_total} labelled "
          f"({100 * labelled_total / meta['total_frames']:.1f} %) in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
