"""Loads a COCO instances JSON with the real pycocotools and prints one JSON
document: per image (COCO().loadImgs) its file name, size and the boxes of
loadAnns(getAnnIds(imgIds=...)), the categories, and the bbox AP of the file
evaluated against itself with COCOeval (1.0 when every annotation has what
the evaluation needs: area, iscrowd, a valid bbox; -1 when there are none).

usage: coco_read.py FILE
"""
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main():
    path = sys.argv[1]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(path)
    out = {"images": [], "categories": gt.loadCats(gt.getCatIds())}
    for img in gt.loadImgs(sorted(gt.getImgIds())):
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[img["id"]]))
        out["images"].append(
            {
                "file_name": img["file_name"],
                "width": img["width"],
                "height": img["height"],
                "anns": [
                    {"category_id": a["category_id"], "bbox": a["bbox"], "area": a["area"],
                     "iscrowd": a["iscrowd"]}
                    for a in anns
                ],
            }
        )
    dets = [dict(a, score=1.0) for a in gt.loadAnns(gt.getAnnIds())]
    if dets:
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(dets)
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out["self_ap"] = float(ev.stats[0])
    else:
        out["self_ap"] = -1.0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
