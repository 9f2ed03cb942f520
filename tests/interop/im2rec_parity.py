"""Compare our packed dataset with the one the real im2rec.py packed from the same .lst.

Usage: im2rec_parity.py OURS_PREFIX THEIRS_PREFIX

Both PREFIX.rec/.idx are read with mx.recordio.MXIndexedRecordIO and decoded with
recordio.unpack_img(iscolor=-1) (cv2); records are matched by header id. Per id it checks
that the labels (and the header flag, i.e. how they are packed) are equal, that the decoded
shapes are equal, and the PSNR between the two images (dB; identical images -> 999.0).

Output: {"count_ours", "count_theirs", "ids_equal" (same set of ids), "order_equal" (same id
order), "labels_equal", "shapes_equal", "compared" (pairs PSNR was measured on),
"min_psnr", "mean_psnr" (0.0 when nothing was compared), "mismatches" (first 10, text)}
"""
import math
import sys

import numpy as np


def psnr(a, b):
    peak = 255.0 if a.dtype == np.uint8 else float(np.iinfo(a.dtype).max)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 999.0 if mse == 0 else min(999.0, 10.0 * math.log10(peak * peak / mse))


def load(prefix):
    """[(id, flag, labels, image or None)] in file order."""
    import mxnet as mx
    rec = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    out = []
    for key in rec.keys:
        header, img = mx.recordio.unpack_img(rec.read_idx(key), iscolor=-1)
        labels = [float(v) for v in np.atleast_1d(header.label)]
        out.append((int(header.id), int(header.flag), labels, img))
    rec.close()
    return out


def compare(ours, theirs):
    problems = []
    by_id = [{}, {}]
    for side, recs, name in ((0, ours, "ours"), (1, theirs, "theirs")):
        for r in recs:
            if r[0] in by_id[side]:
                problems.append(f"{name}: duplicate id {r[0]}")
            by_id[side][r[0]] = r
    a, b = by_id
    for i in sorted(a.keys() - b.keys()):
        problems.append(f"id {i}: only in ours")
    for i in sorted(b.keys() - a.keys()):
        problems.append(f"id {i}: only in theirs")

    labels_equal = shapes_equal = True
    scores = []
    for i in [r[0] for r in ours if r[0] in b]:
        (_, fa, la, ia), (_, fb, lb, ib) = a[i], b[i]
        if (fa, la) != (fb, lb):
            labels_equal = False
            problems.append(f"id {i}: labels ours flag={fa} {la} vs theirs flag={fb} {lb}")
        sa = None if ia is None else ia.shape
        sb = None if ib is None else ib.shape
        if sa != sb or sa is None:
            shapes_equal = shapes_equal and sa == sb
            problems.append(f"id {i}: shape ours {sa} vs theirs {sb} (None = undecodable)")
            continue
        if ia.dtype != ib.dtype:
            problems.append(f"id {i}: dtype ours {ia.dtype} vs theirs {ib.dtype}")
            continue
        scores.append(psnr(ia, ib))

    return {
        "count_ours": len(ours),
        "count_theirs": len(theirs),
        "ids_equal": a.keys() == b.keys(),
        "order_equal": [r[0] for r in ours] == [r[0] for r in theirs],
        "labels_equal": labels_equal,
        "shapes_equal": shapes_equal,
        "compared": len(scores),
        "min_psnr": min(scores) if scores else 0.0,
        "mean_psnr": sum(scores) / len(scores) if scores else 0.0,
        "mismatches": problems[:10],
    }


def main():
    if len(sys.argv) != 3:
        print("usage: im2rec_parity.py OURS_PREFIX THEIRS_PREFIX", file=sys.stderr)
        return 2
    try:
        ours, theirs = load(sys.argv[1]), load(sys.argv[2])
    except Exception as e:  # noqa: BLE001
        last = [l for l in str(e).splitlines() if l.strip()][-1:] or [""]
        print(f"im2rec_parity.py: reading failed: {type(e).__name__}: {last[0].strip()}", file=sys.stderr)
        return 1
    import json
    print(json.dumps(compare(ours, theirs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
