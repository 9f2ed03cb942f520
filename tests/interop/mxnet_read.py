"""Read PREFIX.rec/PREFIX.idx with the real MXNet and print what it sees as JSON.

Usage: mxnet_read.py PREFIX [--label-width N] [--batch-size B] [--data-shape C,H,W]

Checks two MXNet readers:
  records: mx.recordio.MXIndexedRecordIO, every key of the .idx in order, with
           recordio.unpack (header) and recordio.unpack_img(iscolor=-1) (cv2 decode).
  iter:    mx.io.ImageRecordIter, the C++ reader SageMaker uses: images seen and their labels.

Output: {"records": [{"key", "id", "flag", "labels", "shape", "dtype", "sha1_payload"}, ...],
         "iter": {"count", "labels", "data_shape", "batch_size"} or null,
         "iter_error": null or a one-line message}
"shape" is null when cv2 cannot decode the payload; "sha1_payload" is the SHA-1 of the
image bytes (after the header and any packed labels). Non-finite floats are written as
the strings "nan", "inf", "-inf".

ImageRecordIter runs in a child process: on a malformed file its C++ threads can abort
the whole process ("terminate called ..."), which must end up in "iter_error", not kill us.
Without --data-shape it uses (3, H, W) of the first record's image; ImageRecordIter resizes
or center-crops other sizes to that. It runs with round_batch=True because with
round_batch=False MXNet 1.9.1 reports pad=0 and fills the tail of the last batch with
garbage; with round_batch=True the tail wraps to the start and batch.pad is correct.
"""
import argparse
import hashlib
import json
import math
import subprocess
import sys


def num(x):
    x = float(x)
    return x if math.isfinite(x) else str(x)


def labels_of(header):
    if header.flag > 0:  # packed labels: unpack() returns them as a float32 array
        return [num(v) for v in header.label]
    return [num(header.label)]


def read_records(prefix):
    import mxnet as mx
    rec = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    out = []
    for key in rec.keys:
        s = rec.read_idx(key)
        header, payload = mx.recordio.unpack(s)
        _, img = mx.recordio.unpack_img(s, iscolor=-1)
        out.append({
            "key": int(key),
            "id": int(header.id),
            "flag": int(header.flag),
            "labels": labels_of(header),
            "shape": None if img is None else list(img.shape),
            "dtype": None if img is None else str(img.dtype),
            "sha1_payload": hashlib.sha1(payload).hexdigest(),
        })
    rec.close()
    return out


def run_iter(prefix, shape, batch_size, label_width):
    """Runs in the child process; returns the "iter" object."""
    import mxnet as mx
    it = mx.io.ImageRecordIter(
        path_imgrec=prefix + ".rec", path_imgidx=prefix + ".idx", data_shape=tuple(shape),
        batch_size=batch_size, label_width=label_width, shuffle=False, round_batch=True,
        preprocess_threads=1, resize=-1, rand_crop=False, rand_mirror=False)
    count, labels = 0, []
    for batch in it:
        n = batch_size - batch.pad
        lab = batch.label[0].asnumpy().reshape(batch_size, -1)[:n]
        labels.extend([num(v) for v in row] for row in lab)
        count += n
    return {"count": count, "labels": labels, "data_shape": list(shape), "batch_size": batch_size}


def iter_in_child(prefix, shape, batch_size, label_width):
    """Returns (iter object, None) or (None, one-line error)."""
    cmd = [sys.executable, __file__, prefix, "--iter-only", "--data-shape", ",".join(map(str, shape)),
           "--batch-size", str(batch_size), "--label-width", str(label_width)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "ImageRecordIter timed out after 600 s"
    if p.returncode == 0:
        return json.loads(p.stdout), None
    lines = [l.strip() for l in p.stderr.splitlines() if l.strip()]
    tagged = [l[len("ITER_ERROR: "):] for l in lines if l.startswith("ITER_ERROR: ")]
    if tagged:
        return None, tagged[-1]
    # Killed inside C++ (abort/segfault): keep the most telling line.
    why = [l for l in lines if "what():" in l or "Check failed" in l] or lines[-1:] or [""]
    return None, f"ImageRecordIter process died (exit {p.returncode}): {why[-1]}"


def one_line(e):
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    last = lines[-1] if lines else ""
    return last if last.startswith(type(e).__name__) else f"{type(e).__name__}: {last}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prefix")
    ap.add_argument("--label-width", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--data-shape", help="C,H,W")
    ap.add_argument("--iter-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    shape = [int(v) for v in a.data_shape.split(",")] if a.data_shape else None
    if shape is not None and len(shape) != 3:
        ap.error("--data-shape must be C,H,W")

    if a.iter_only:
        try:
            print(json.dumps(run_iter(a.prefix, shape, a.batch_size, a.label_width)))
        except Exception as e:  # noqa: BLE001
            print("ITER_ERROR: " + one_line(e), file=sys.stderr)
            return 1
        return 0

    try:
        records = read_records(a.prefix)
    except Exception as e:  # noqa: BLE001
        print(f"mxnet_read.py: reading {a.prefix}.rec/.idx failed: {one_line(e)}", file=sys.stderr)
        return 1
    if shape is None:
        first = next((r["shape"] for r in records if r["shape"]), None)
        if first is not None:
            shape = [3, first[0], first[1]]
    if shape is None:
        it, err = None, "no decodable record to infer --data-shape from"
    else:
        it, err = iter_in_child(a.prefix, shape, a.batch_size, a.label_width)
    print(json.dumps({"records": records, "iter": it, "iter_error": err}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
