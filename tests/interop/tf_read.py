"""Reads TFRecord files with the real TensorFlow (tf.data.TFRecordDataset +
tf.io.parse_single_example) and prints one JSON document.

usage: tf_read.py FILE [FILE...] --preset tfds|raw [--compression GZIP|ZLIB|'']
                  [--source-root DIR]

For each record: the labels, the image shape, and the SHA-256 of the decoded
pixels (tfds: tf.io.decode_image must decode image/encoded; the hash is of
tf.io.decode_jpeg with INTEGER_ACCURATE for JPEGs, the IDCT we use; raw:
image_raw reshaped to height x width x channel). With --source-root, also the SHA-256 of TensorFlow's
own decode of the source file named by image/filename (tfds) -- for comparing
with our decoding. A corrupt record makes TensorFlow raise: reported as
{"error": "..."} with exit 0 so callers can assert on it.
"""
import argparse
import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402


def sha(a):
    return hashlib.sha256(a.tobytes()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--preset", choices=["tfds", "raw"], required=True)
    ap.add_argument("--compression", default="")
    a = ap.parse_args()
    if a.preset == "tfds":
        spec = {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/format": tf.io.FixedLenFeature([], tf.string),
            "image/height": tf.io.FixedLenFeature([], tf.int64),
            "image/width": tf.io.FixedLenFeature([], tf.int64),
            "image/channels": tf.io.FixedLenFeature([], tf.int64),
            "image/class/label": tf.io.VarLenFeature(tf.int64),
            "image/class/text": tf.io.VarLenFeature(tf.string),
            "image/filename": tf.io.FixedLenFeature([], tf.string),
            "image/key/sha256": tf.io.FixedLenFeature([], tf.string),
        }
    else:
        spec = {
            "height": tf.io.FixedLenFeature([], tf.int64),
            "width": tf.io.FixedLenFeature([], tf.int64),
            "channel": tf.io.FixedLenFeature([], tf.int64),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "label_one_hot": tf.io.FixedLenFeature([], tf.string),
            "image_raw": tf.io.FixedLenFeature([], tf.string),
        }
    out = {"records": []}
    try:
        ds = tf.data.TFRecordDataset(a.files, compression_type=a.compression)
        for raw in ds:
            ex = tf.io.parse_single_example(raw, spec)
            if a.preset == "tfds":
                # decode_image must work; pixels are compared with the accurate
                # integer IDCT (TF's default for JPEG is the fast, less exact one)
                img = tf.io.decode_image(ex["image/encoded"], expand_animations=False).numpy()
                if ex["image/format"].numpy() == b"jpeg":
                    img = tf.io.decode_jpeg(ex["image/encoded"], dct_method="INTEGER_ACCURATE").numpy()
                key = hashlib.sha256(ex["image/encoded"].numpy()).hexdigest()
                out["records"].append({
                    "filename": ex["image/filename"].numpy().decode(),
                    "labels": tf.sparse.to_dense(ex["image/class/label"]).numpy().tolist(),
                    "text": [t.decode() for t in tf.sparse.to_dense(ex["image/class/text"]).numpy().tolist()],
                    "shape": list(img.shape),
                    "declared": [int(ex["image/height"]), int(ex["image/width"]), int(ex["image/channels"])],
                    "format": ex["image/format"].numpy().decode(),
                    "key_ok": key == ex["image/key/sha256"].numpy().decode(),
                    "pixels_sha256": sha(img),
                })
            else:
                h, w, c = int(ex["height"]), int(ex["width"]), int(ex["channel"])
                img = tf.reshape(tf.io.decode_raw(ex["image_raw"], tf.uint8), [h, w, c]).numpy()
                out["records"].append({
                    "label": int(ex["label"]),
                    "one_hot": list(ex["label_one_hot"].numpy()),
                    "shape": [h, w, c],
                    "pixels_sha256": sha(img),
                })
    except Exception as e:  # corrupt data: TF raises DataLossError and friends
        out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    json.dump(out, sys.stdout)


def decode_file(path):
    """TensorFlow's decode of an image file (for comparing with ours)."""
    img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False).numpy()
    return sha(img)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--decode":
        json.dump({p: decode_file(p) for p in sys.argv[2:]}, sys.stdout)
    else:
        main()
