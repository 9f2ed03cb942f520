"""Reads frame datasets with the real readers and prints one JSON document:
for every record, its label and the frame number painted into its pixels
(imgprep synth's frame code: the upper half of the image is a 4 x 4 grid of
cells, row-major, cell k white when bit k of the number is set).

usage: video_frames_read.py mxnet PREFIX     (PREFIX.rec/.idx, MXNet ImageRecordIter too)
       video_frames_read.py tf FILE.tfrecord (tf.data + tf.io.decode_jpeg, tfds preset)

Output: {"records": [{"label": L, "painted": N}, ...], "iter_labels": [...]}
"""
import json
import sys

import numpy as np


def painted(img):
    """img: H x W x C uint8 (any channel order: the cells are gray)."""
    h, w = img.shape[:2]
    n = 0
    for k in range(16):
        col, row = k % 4, k // 4
        x0, x1 = (4 * col + 1) * w // 16, (4 * col + 3) * w // 16
        y0, y1 = (4 * row + 1) * h // 32, (4 * row + 3) * h // 32
        cell = img[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
        if cell.mean() > 128:
            n |= 1 << k
    return n


def mxnet(prefix):
    import mxnet as mx

    rec = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    out = []
    for k in rec.keys:
        header, img = mx.recordio.unpack_img(rec.read_idx(k))
        label = float(np.asarray(header.label).reshape(-1)[0])
        out.append({"label": label, "painted": painted(img)})
    # the training iterator reads the same labels
    it = mx.io.ImageRecordIter(
        path_imgrec=prefix + ".rec",
        path_imgidx=prefix + ".idx",
        data_shape=(3, 224, 224),
        batch_size=1,
        shuffle=False,
        round_batch=False,
    )
    labels = []
    for batch in it:
        if batch.pad:
            break
        labels.append(float(batch.label[0].asnumpy()[0]))
    return {"records": out, "iter_labels": labels}


def tf(path):
    import tensorflow as tf

    feats = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    }
    out = []
    for raw in tf.data.TFRecordDataset([path]):
        ex = tf.io.parse_single_example(raw, feats)
        img = tf.io.decode_jpeg(
            ex["image/encoded"], channels=3, dct_method="INTEGER_ACCURATE"
        ).numpy()
        out.append({"label": float(ex["image/class/label"].numpy()), "painted": painted(img)})
    return {"records": out}


def main():
    kind, path = sys.argv[1], sys.argv[2]
    print(json.dumps(mxnet(path) if kind == "mxnet" else tf(path)))


if __name__ == "__main__":
    main()
