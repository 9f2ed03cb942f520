#!/usr/bin/env python3
"""The hand-written way to turn Pascal VOC into SageMaker object-detection input.

Usage:
  voc_to_sagemaker.py VOC_DIR OUT_DIR          both steps, each its own process
  voc_to_sagemaker.py xml-to-csv VOC_DIR CSV   step 1 only
  voc_to_sagemaker.py csv-to-json VOC_DIR CSV OUT_DIR   step 2 only

A faithful re-implementation of the two scripts people write for this job (the
"xml_to_csv.py" of the TensorFlow Object Detection tutorials, then a pandas
script that writes SageMaker's "image" format, section 1a of the research
notes). Run with scripts/venv.sh bench-py (pandas). The first form runs the two
steps as two processes, one after the other, as users run two scripts: each
pays its own interpreter start and `import pandas`.

Step 1, xml-to-csv: parse every VOC_DIR/Annotations/*.xml with ElementTree
into a pandas DataFrame, one row per <object>: filename, width, height, class,
xmin, ymin, xmax, ymax (width/height from <size>), then DataFrame.to_csv.
Coordinates are read with float(): the tutorial's int(text) raises ValueError
on CVAT-style "123.5", and float() is the usual fix.

Step 2, csv-to-json: read the CSV with pandas, map class names with a
hard-coded dict, group the rows by file, shuffle the file names with a fixed
seed and put the first 70 % in train, the rest in validation; per image write
one JSON (same stem) into train_annotation/ or validation_annotation/:
  {"file": name, "image_size": [{"width", "height", "depth": 3}],
   "annotations": [{"class_id", "left", "top", "width", "height"}],
   "categories": [{"class_id", "name"}]}
with int() on every coordinate (left = int(xmin), width = int(xmax) - int(xmin)),
and copy the image with shutil.copy into train/ or validation/. An image
without objects has no CSV row and so is left out, as in AWS's own sample.
"""
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

# The hard-coded class map of script 2 (ids must start at 0 and be successive).
CLASS_MAP = {"D00": 0, "D10": 1, "D20": 2, "D40": 3}
SEED = 42
TRAIN_SHARE = 0.7


# ------------------------------------------------------------- script 1
def xml_to_csv(ann_dir):
    import pandas as pd  # at the top of the real script; here the driver form skips it
    xml_list = []
    for xml_file in sorted(glob.glob(ann_dir + "/*.xml")):
        tree = ET.parse(xml_file)
        root = tree.getroot()
        size = root.find("size")
        for member in root.findall("object"):
            bndbox = member.find("bndbox")
            value = (root.find("filename").text,
                     int(size.find("width").text),
                     int(size.find("height").text),
                     member.find("name").text,
                     float(bndbox.find("xmin").text),
                     float(bndbox.find("ymin").text),
                     float(bndbox.find("xmax").text),
                     float(bndbox.find("ymax").text))
            xml_list.append(value)
    column_name = ["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"]
    return pd.DataFrame(xml_list, columns=column_name)


def step1(voc_dir, csv_path):
    xml_df = xml_to_csv(os.path.join(voc_dir, "Annotations"))
    xml_df.to_csv(csv_path, index=None)
    print(f"Successfully converted xml to csv: {len(xml_df)} objects")


# ------------------------------------------------------------- script 2
def step2(voc_dir, csv_path, out_dir):
    import pandas as pd  # at the top of the real script; here the driver form skips it
    df = pd.read_csv(csv_path)
    img_dir = os.path.join(voc_dir, "JPEGImages")
    categories = [{"class_id": v, "name": k} for k, v in CLASS_MAP.items()]
    for d in ("train", "validation", "train_annotation", "validation_annotation"):
        os.makedirs(os.path.join(out_dir, d), exist_ok=True)

    grouped = df.groupby("filename")
    filenames = list(grouped.groups.keys())
    random.seed(SEED)
    random.shuffle(filenames)
    n_train = int(len(filenames) * TRAIN_SHARE)
    train_files = set(filenames[:n_train])

    for filename in filenames:
        rows = grouped.get_group(filename)
        annotations = []
        for _, row in rows.iterrows():
            xmin, ymin = int(row["xmin"]), int(row["ymin"])
            xmax, ymax = int(row["xmax"]), int(row["ymax"])
            annotations.append({"class_id": CLASS_MAP[row["class"]],
                                "left": xmin, "top": ymin,
                                "width": xmax - xmin, "height": ymax - ymin})
        first = rows.iloc[0]
        data = {"file": filename,
                "image_size": [{"width": int(first["width"]),
                                "height": int(first["height"]),
                                "depth": 3}],
                "annotations": annotations,
                "categories": categories}
        channel = "train" if filename in train_files else "validation"
        stem = os.path.splitext(filename)[0]
        with open(os.path.join(out_dir, channel + "_annotation", stem + ".json"), "w") as f:
            json.dump(data, f)
        shutil.copy(os.path.join(img_dir, filename), os.path.join(out_dir, channel, filename))
    print(f"train: {n_train} images, validation: {len(filenames) - n_train} images")


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "xml-to-csv":
        step1(args[1], args[2])
    elif len(args) == 4 and args[0] == "csv-to-json":
        step2(args[1], args[2], args[3])
    elif len(args) == 2:
        voc_dir, out_dir = args
        os.makedirs(out_dir, exist_ok=True)
        csv_path = os.path.join(out_dir, "labels.csv")
        me = os.path.abspath(__file__)
        subprocess.run([sys.executable, me, "xml-to-csv", voc_dir, csv_path], check=True)
        subprocess.run([sys.executable, me, "csv-to-json", voc_dir, csv_path, out_dir], check=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
