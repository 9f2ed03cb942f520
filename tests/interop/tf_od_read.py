"""Parses TF Object Detection API records with the real TensorFlow and prints
one JSON document: per record the boxes, classes and image as TensorFlow sees
them.

usage: tf_od_read.py FILE [FILE...]

Uses the feature spec of the Object Detection API's TfExampleDecoder
(image/object/bbox/* as VarLenFeature float32, class label int64, class text
bytes) and tf.io.decode_image for the image shape. Also reads
label_map.pbtxt beside the first file if present (as text).
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/format": tf.io.FixedLenFeature((), tf.string),
    "image/filename": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
    "image/object/difficult": tf.io.VarLenFeature(tf.int64),
    "image/object/truncated": tf.io.VarLenFeature(tf.int64),
}


def dense(v):
    return tf.sparse.to_dense(v).numpy().tolist()


def main():
    files = sys.argv[1:]
    out = {"records": []}
    for raw in tf.data.TFRecordDataset(files):
        ex = tf.io.parse_single_example(raw, SPEC)
        img = tf.io.decode_image(ex["image/encoded"], channels=3)
        out["records"].append(
            {
                "filename": ex["image/filename"].numpy().decode(),
                "height": int(ex["image/height"]),
                "width": int(ex["image/width"]),
                "shape": list(img.shape),
                "xmin": dense(ex["image/object/bbox/xmin"]),
                "xmax": dense(ex["image/object/bbox/xmax"]),
                "ymin": dense(ex["image/object/bbox/ymin"]),
                "ymax": dense(ex["image/object/bbox/ymax"]),
                "label": dense(ex["image/object/class/label"]),
                "text": [t.decode() for t in dense(ex["image/object/class/text"])],
                "difficult": dense(ex["image/object/difficult"]),
            }
        )
    lm = os.path.join(os.path.dirname(files[0]), "label_map.pbtxt")
    if os.path.exists(lm):
        out["label_map"] = open(lm).read()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
