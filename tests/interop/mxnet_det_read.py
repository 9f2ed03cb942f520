"""Reads a detection RecordIO dataset with the real MXNet and prints one JSON
document: what MXNet's two detection readers return for every image.

usage: mxnet_det_read.py PREFIX --width W --height H [--pad-width N]

- "records": per record in file order, via MXIndexedRecordIO + recordio.unpack:
  id and the packed label (header width, object width, objects).
- "det_iter": mx.image.ImageDetIter over PREFIX.rec/.idx (batch 1, no shuffle):
  per image the label rows [class, xmin, ymin, xmax, ymax] it yields (padding
  rows of -1 removed) and the decoded image shape.
- "det_record_iter": mx.io.ImageDetRecordIter (batch 1, no shuffle,
  label_pad_width = --pad-width): per image the label vector it yields.
A reader that refuses the data raises: reported as {"error": "..."} with exit 0.
"""
import argparse
import json

import mxnet as mx
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--height", type=int, required=True)
    ap.add_argument("--pad-width", type=int, default=-1)
    a = ap.parse_args()
    out = {}
    rec = mx.recordio.MXIndexedRecordIO(a.prefix + ".idx", a.prefix + ".rec", "r")
    records = []
    for k in rec.keys:
        header, _img = mx.recordio.unpack(rec.read_idx(k))
        label = np.asarray(header.label, dtype=np.float64).reshape(-1).tolist()
        records.append({"id": int(header.id), "flag": int(header.flag), "label": label})
    out["records"] = records
    try:
        it = mx.image.ImageDetIter(
            batch_size=1,
            data_shape=(3, a.height, a.width),
            path_imgrec=a.prefix + ".rec",
            path_imgidx=a.prefix + ".idx",
            shuffle=False,
        )
        seen = []
        for batch in it:
            lab = batch.label[0].asnumpy()[0]
            rows = [r.tolist() for r in lab if r[0] >= 0]
            seen.append({"objects": rows, "shape": list(batch.data[0].shape)})
        out["det_iter"] = seen
    except Exception as e:  # noqa: BLE001 - reported to the caller
        out["det_iter"] = {"error": str(e)}
    try:
        it = mx.io.ImageDetRecordIter(
            path_imgrec=a.prefix + ".rec",
            data_shape=(3, a.height, a.width),
            batch_size=1,
            shuffle=False,
            label_pad_width=a.pad_width,
            round_batch=False,
        )
        seen = []
        for batch in it:
            seen.append(batch.label[0].asnumpy()[0].astype(np.float64).tolist())
        out["det_record_iter"] = seen
    except Exception as e:  # noqa: BLE001
        out["det_record_iter"] = {"error": str(e)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
