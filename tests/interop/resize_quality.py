"""Measure how close our resized image is to an ideal resize, next to OpenCV's INTER_LINEAR.

Usage: resize_quality.py SRC_IMAGE OURS_IMAGE --width W --height H [--jpeg-quality Q]

SRC_IMAGE is decoded at full size with cv2.imread(IMREAD_COLOR) (applies EXIF orientation).
Reference: Pillow LANCZOS resize to WxH done in float32 per channel (mode 'F'), clipped to
[0, 255] (no 8-bit image can hold Lanczos overshoot, so it is not counted as error).
Candidates: OURS_PNG (cv2.imread IMREAD_COLOR, must be exactly WxH) and
cv2.resize(full, (W, H), interpolation=INTER_LINEAR), which is what im2rec.py --resize does;
with --jpeg-quality Q, OpenCV's resize is also encoded with cv2.imencode('.jpg', quality Q)
and decoded, as im2rec.py --quality Q writes it (OURS_IMAGE is then our JPEG).
PSNR over all channels, peak 255, MSE in float64; identical -> 999.0.

Output: {"psnr_ours": x, "psnr_opencv_linear": y, "width": W, "height": H}
"""
import argparse
import json
import math
import os
import sys

import cv2
import numpy as np
from PIL import Image


def psnr(img, ref):
    mse = np.mean((img.astype(np.float64) - ref.astype(np.float64)) ** 2)
    return 999.0 if mse == 0 else min(999.0, 10.0 * math.log10(255.0 * 255.0 / mse))


def lanczos_reference(full, w, h):
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(full[:, :, c], dtype=np.float32))
                        .resize((w, h), Image.Resampling.LANCZOS))
             for c in range(full.shape[2])]
    return np.clip(np.stack(chans, axis=2), 0.0, 255.0)


def read(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR) if os.path.isfile(path) else None
    if img is None:
        print(f"resize_quality.py: cannot read or decode {path}", file=sys.stderr)
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("ours")
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--height", type=int, required=True)
    ap.add_argument("--jpeg-quality", type=int)
    a = ap.parse_args()
    w, h = a.width, a.height

    full, ours = read(a.src), read(a.ours)
    if full is None or ours is None:
        return 1
    if ours.shape[:2] != (h, w):
        print(f"resize_quality.py: {a.ours} is {ours.shape[1]}x{ours.shape[0]}, expected {w}x{h}",
              file=sys.stderr)
        return 1

    ref = lanczos_reference(full, w, h)
    linear = cv2.resize(full, (w, h), interpolation=cv2.INTER_LINEAR)
    if a.jpeg_quality is not None:
        ok, enc = cv2.imencode(".jpg", linear, [cv2.IMWRITE_JPEG_QUALITY, a.jpeg_quality])
        assert ok
        linear = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    print(json.dumps({"psnr_ours": psnr(ours, ref), "psnr_opencv_linear": psnr(linear, ref),
                      "width": w, "height": h}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
