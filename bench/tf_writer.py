"""The peer for the TFRecord benchmark: the TinyImageNet-to-raw-TFRecord job done with TensorFlow's
own Python API, as its notebook does it (one class folder at a time).

usage: tf_writer.py raw  ROOT OUT.tfrecord     # decode JPEGs -> height/width/channel/label/label_one_hot/image_raw
       tf_writer.py tfds ROOT OUT.tfrecord     # resize to 224x224, re-encode JPEG -> image/* features
ROOT holds one folder per class. Grayscale images are converted to RGB
(hand-written scripts often drop them; we keep the comparison fair).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import hashlib  # noqa: E402

import tensorflow as tf  # noqa: E402


def int64(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=v if isinstance(v, list) else [v]))


def byts(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def main():
    mode, root, out = sys.argv[1:4]
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    n = 0
    with tf.io.TFRecordWriter(out) as w:
        for label, c in enumerate(classes):
            folder = os.path.join(root, c)
            for f in sorted(os.listdir(folder)):
                data = tf.io.read_file(os.path.join(folder, f))
                img = tf.io.decode_jpeg(data, channels=3)
                if mode == "raw":
                    one_hot = [0] * len(classes)
                    one_hot[label] = 1
                    h, wd, ch = img.shape
                    feat = {
                        "height": int64(h), "width": int64(wd), "channel": int64(ch),
                        "label": int64(label), "label_one_hot": byts(bytes(one_hot)),
                        "image_raw": byts(img.numpy().tobytes()),
                    }
                else:
                    small = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(img, [224, 224])), 0, 255), tf.uint8)
                    enc = tf.io.encode_jpeg(small, quality=95).numpy()
                    feat = {
                        "image/encoded": byts(enc), "image/format": byts(b"jpeg"),
                        "image/height": int64(224), "image/width": int64(224), "image/channels": int64(3),
                        "image/class/label": int64(label), "image/class/text": byts(c.encode()),
                        "image/filename": byts(f"{c}/{f}".encode()),
                        "image/key/sha256": byts(hashlib.sha256(enc).hexdigest().encode()),
                    }
                w.write(tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString())
                n += 1
    print(n, "records", file=sys.stderr)


if __name__ == "__main__":
    main()
