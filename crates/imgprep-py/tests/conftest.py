"""Shared fixtures: synthetic image sets made by imgprep itself, and the
imgprep binary (IMGPREP_BIN) to compare the Python module against."""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

import imgprep


def tree_digest(root):
    """{relative path: sha256} of every file under root (the bytes a user gets)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def recipe_text(root, outputs=("recordio", "tfrecord", "sagemaker-image"), resize=64, split=(0.7, 0.3)):
    outs = "".join(f'\n[[outputs]]\nformat = "{o}"\n' for o in outputs)
    return f"""name = "shapes"
seed = 7
on_error = "skip"

[[sources]]
type = "folders"
root = "{root}"

[split]
method = "stratified"
train = {split[0]}
validation = {split[1]}

[transform]
resize = {resize}
quality = 90
{outs}"""


@pytest.fixture(scope="session")
def binary():
    b = os.environ.get("IMGPREP_BIN") or shutil.which("imgprep")
    assert b, "IMGPREP_BIN (the imgprep binary built by cargo) is not set"
    return b


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """60 JPEGs in 3 class folders."""
    d = tmp_path_factory.mktemp("images") / "shapes"
    imgprep.synth(d, classes=3, per_class=20, width=160, height=120, seed=3)
    return d


@pytest.fixture()
def recipe(images, tmp_path):
    p = tmp_path / "recipe.toml"
    p.write_text(recipe_text(images))
    return p


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def s3_env():
    """AWS_* settings for the Garage test server scripts/test.sh starts (IMGPREP_S3_*), or None."""
    need = ["IMGPREP_S3_ENDPOINT", "IMGPREP_S3_BUCKET", "IMGPREP_S3_KEY", "IMGPREP_S3_SECRET"]
    if not all(os.environ.get(k) for k in need):
        return None
    return {
        "AWS_ENDPOINT_URL_S3": os.environ["IMGPREP_S3_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": os.environ["IMGPREP_S3_KEY"],
        "AWS_SECRET_ACCESS_KEY": os.environ["IMGPREP_S3_SECRET"],
        "AWS_REGION": os.environ.get("IMGPREP_S3_REGION", "us-east-1"),
    }


@pytest.fixture(scope="session")
def spark():
    """One local Spark for the whole run (its JVM takes seconds to start).
    local[2, 4]: two cores, and a failed task is tried up to 4 times. The
    workers inherit this environment: the S3 settings and this venv's python,
    where the wheel is installed."""
    pytest.importorskip("pyspark", reason="pyspark is in the test venv (scripts/venv.sh py)")
    env = s3_env()
    if env:
        os.environ.update(env)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2,4]")
        .appName("imgprep-tests")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()
