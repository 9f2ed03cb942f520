"""The Spark driver on a real local Spark: the same bytes as one `imgprep build`,
through retries, and with parts and output in object storage (Garage)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import imgprep
import imgprep.spark
from conftest import recipe_text, run, s3_env, tree_digest

pyspark = pytest.importorskip("pyspark", reason="pyspark is in the test venv (scripts/venv.sh py)")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """300 JPEGs in 4 classes, and a recipe with every classification output."""
    d = tmp_path_factory.mktemp("spark")
    imgprep.synth(d / "imgs", classes=4, per_class=75, width=160, height=120, seed=11)
    r = d / "recipe.toml"
    r.write_text(recipe_text(d / "imgs", outputs=("recordio", "tfrecord", "sagemaker-image"), resize=48))
    return r


@pytest.fixture(scope="module")
def reference(shapes, binary, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    r = run(binary, "build", shapes, "--out", out, "-q")
    assert r.returncode == 0, r.stderr
    return tree_digest(out)


def test_driver_equals_one_build(spark, shapes, reference, tmp_path):
    out = tmp_path / "out"
    res = imgprep.spark.build(spark, shapes, out, slices=6)
    assert tree_digest(out) == reference
    rows = res.summary["spark"]["rows"]
    assert [r["slice"] for r in rows] == list(range(6))
    assert sum(r["items"] for r in rows) == 300
    # the parts folder was ours, and is gone
    assert not os.path.exists(str(out) + ".parts")
    assert imgprep.verify(out, progress=False)["ok"]


def test_a_failed_task_is_retried_and_the_result_is_the_same(spark, shapes, reference, tmp_path):
    out = tmp_path / "out"
    res = imgprep.spark.build(spark, shapes, out, slices=4, _fail_slice=2)
    assert tree_digest(out) == reference
    rows = {r["slice"]: r for r in res.summary["spark"]["rows"]}
    assert rows[2]["attempt"] == 1 and rows[0]["attempt"] == 0


def test_parts_folder_of_someone_else_is_refused(spark, shapes, tmp_path):
    parts = tmp_path / "mine"
    parts.mkdir()
    (parts / "notes.txt").write_text("keep me")
    with pytest.raises(imgprep.UsageError, match="not imgprep's parts folder"):
        imgprep.spark.build(spark, shapes, tmp_path / "out", slices=2, parts=parts)
    assert (parts / "notes.txt").read_text() == "keep me"


def test_parts_and_out_mistakes_are_refused_before_any_task(spark, shapes, tmp_path, monkeypatch):
    """Parts that hold the output (deleted after the merge: the dataset went
    with them), a parts folder inside the output, a foreign output folder and
    a bucket-root output are refused before Spark runs a task."""
    ran = []
    real = imgprep.spark._tasks
    monkeypatch.setattr(imgprep.spark, "_tasks", lambda *a: ran.append(a) or real(*a))
    job = tmp_path / "job"
    with pytest.raises(imgprep.UsageError, match="one holds the other"):
        imgprep.spark.build(spark, shapes, job / "ds", slices=2, parts=job)
    with pytest.raises(imgprep.UsageError, match="one holds the other"):
        imgprep.spark.build(spark, shapes, job, slices=2, parts=job / "parts")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(imgprep.UsageError, match="not made by imgprep"):
        imgprep.spark.build(spark, shapes, theirs, slices=2)
    with pytest.raises(imgprep.UsageError, match="bucket's root"):
        imgprep.spark.build(spark, shapes, "s3://some-bucket/", slices=2)
    # an output inside the sources (a rebuild would read it as input), and
    # parts there: nothing is written in the sources
    imgs = shapes.parent / "imgs"
    before = sorted(os.listdir(imgs))
    with pytest.raises(imgprep.UsageError, match="must not overlap"):
        imgprep.spark.build(spark, shapes, imgs / "out", slices=2)
    with pytest.raises(imgprep.UsageError, match="must not overlap"):
        imgprep.spark.build(spark, shapes, tmp_path / "o", slices=2, parts=imgs / "parts")
    assert sorted(os.listdir(imgs)) == before
    # two items the output would write to one file
    shutil.copytree(imgs, tmp_path / "twins")
    src = next((tmp_path / "twins" / "class_0").glob("*.jpg"))
    shutil.copy(src, src.with_suffix(".png"))
    twins = tmp_path / "twins.toml"
    twins.write_text(
        f'name = "twins"\n[[sources]]\ntype = "folders"\nroot = "{tmp_path / "twins"}"\n'
        '[transform]\nresize = 48\n[[outputs]]\nformat = "sagemaker-image"\n'
    )
    with pytest.raises(imgprep.UsageError, match="would be written to one file"):
        imgprep.spark.build(spark, twins, tmp_path / "t", slices=2)
    assert not os.path.exists(tmp_path / "t.parts")
    # arguments of the wrong kind, and parts that are a file
    with pytest.raises(imgprep.UsageError, match="slices = 2.5"):
        imgprep.spark.build(spark, shapes, tmp_path / "o", slices=2.5)
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(imgprep.UsageError, match="not a folder"):
        imgprep.spark.build(spark, shapes, tmp_path / "o", slices=2, parts=tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "mine"
    assert ran == []
    assert (theirs / "notes.txt").read_text() == "keep me"
    assert not os.path.exists(str(theirs) + ".parts")


def test_a_second_build_with_the_same_parts_stops_at_once(spark, shapes, tmp_path):
    """Parts in use by a build (its marker locked) are not shared: the
    second build stops before any task, and leaves the first one's parts."""
    import fcntl

    parts = tmp_path / "out.parts"
    parts.mkdir()
    marker = parts / imgprep.spark.PARTS_MARKER
    marker.write_text("in use")
    (parts / "00000").mkdir()
    with open(marker, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(imgprep.UsageError, match="another Spark build is using"):
            imgprep.spark.build(spark, shapes, tmp_path / "out", slices=2)
    assert (parts / "00000").is_dir() and marker.read_text() == "in use"


def test_relative_recipe_paths_and_more_slices_than_items(spark, binary, tmp_path, monkeypatch):
    """A recipe named through `..` builds (tasks and merge see one spelling of
    the sources), and slices beyond the item count are not empty tasks."""
    d = tmp_path / "small"
    imgprep.synth(d / "imgs", classes=2, per_class=3, width=64, height=48, seed=3)
    recipe = d / "recipe.toml"
    recipe.write_text(recipe_text("imgs", outputs=("recordio",), resize=32))  # relative to the recipe
    ref = tmp_path / "ref"
    assert run(binary, "build", recipe, "--out", ref, "-q").returncode == 0
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rel = os.path.relpath(recipe, elsewhere)
    assert rel.startswith("..")
    out = tmp_path / "out"
    res = imgprep.spark.build(spark, rel, out, slices=10)
    assert tree_digest(out) == tree_digest(ref)
    # 4 train and 2 validation images: 4 slices, none empty
    assert res.summary["spark"]["slices"] == 4


def test_a_slice_that_fails_every_attempt_raises_imgprep_s_error(spark, tmp_path):
    """A bad image under on_error = "fail" stops the slice on every attempt:
    the driver raises the ProblemError a local build raises, naming the file,
    not Spark's wrapped traceback."""
    d = tmp_path / "bad"
    imgprep.synth(d / "imgs", classes=2, per_class=3, width=64, height=48, seed=5)
    (d / "imgs" / "class_0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    recipe = d / "recipe.toml"
    recipe.write_text(recipe_text("imgs", outputs=("recordio",), resize=32).replace('on_error = "skip"', 'on_error = "fail"'))
    with pytest.raises(imgprep.ProblemError, match="broken.jpg") as e:
        imgprep.spark.build(spark, recipe, tmp_path / "out", slices=2)
    assert "Traceback" not in str(e.value)


def test_object_storage_parts_and_output(spark, shapes, reference, tmp_path):
    env = s3_env()
    if env is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Garage server (IMGPREP_S3_*): run scripts/pytest.sh through scripts/test.sh")
        pytest.skip("no S3 test server: IMGPREP_S3_* unset (scripts/test.sh starts Garage)")
    bucket = os.environ["IMGPREP_S3_BUCKET"]
    uri = f"s3://{bucket}/spark-{os.getpid()}-{tmp_path.name}/ds"
    res = imgprep.spark.build(spark, shapes, uri, slices=3)
    assert res.out == uri
    # its manifest, read where it is
    assert res.manifest() == imgprep.read_manifest(uri)
    assert res.manifest()["files"]
    # pull the dataset back and compare with the local build
    got = tmp_path / "got"
    imgprep._native.pull_prefix(uri, str(got))
    assert tree_digest(got) == reference
    # the parts live beside the dataset, never inside it
    assert not any(k.startswith(".parts") for k in tree_digest(got))


def test_spark_submit_form(shapes, reference, tmp_path):
    """The CLI form spark-submit runs (here through python, local[2])."""
    out = tmp_path / "out"
    env = dict(os.environ, PYSPARK_SUBMIT_ARGS="--master local[2] pyspark-shell", PYSPARK_PYTHON=sys.executable)
    r = subprocess.run(
        [sys.executable, "-m", "imgprep.spark", str(shapes), "--out", str(out), "--slices", "3", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert tree_digest(out) == reference
    # --json: stdout is one JSON object (spark-submit merges stderr into it,
    # so warnings are in it), also for an error, with the exit code
    summary = json.loads(r.stdout)
    assert summary["dataset"]["num_classes"] == 4 and isinstance(summary["warnings"], list)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    args = [sys.executable, "-m", "imgprep.spark", str(shapes), "--out", str(theirs), "--slices", "2", "--json"]
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and json.loads(r.stdout)["exit"] == 2, r.stdout
    r = subprocess.run(args + ["--force"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (theirs / "notes.txt").read_text() == "keep me"


def test_executors_without_the_wheel_are_named_and_leave_no_parts(shapes, tmp_path):
    """Executors whose Python lacks imgprep (PYSPARK_PYTHON unset or wrong): a
    UsageError saying how to fix it, and no empty parts folder left behind."""
    out = tmp_path / "out"
    env = dict(os.environ, PYSPARK_SUBMIT_ARGS="--master local[2] pyspark-shell", PYSPARK_PYTHON="/usr/bin/python3")
    r = subprocess.run(
        [sys.executable, "-m", "imgprep.spark", str(shapes), "--out", str(out), "--slices", "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert r.returncode == 2, r.stderr[-3000:]
    assert "set PYSPARK_PYTHON" in r.stderr, r.stderr[-3000:]
    assert not (tmp_path / "out.parts").exists()
    assert not out.exists()


def test_spark_connect(shapes, reference, tmp_path):
    """Spark Connect (no RDDs, no SparkContext: Databricks shared and serverless
    compute): a local Connect server, in its own process."""
    pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect] (scripts/venv.sh py)")
    out = tmp_path / "out"
    code = (
        "import sys, imgprep.spark\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.remote('local[2]').getOrCreate()\n"
        "assert type(spark).__module__.startswith('pyspark.sql.connect'), type(spark)\n"
        "imgprep.spark.build(spark, sys.argv[1], sys.argv[2], slices=3)\n"
        "spark.stop()\n"
    )
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    r = subprocess.run([sys.executable, "-c", code, str(shapes), str(out)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert tree_digest(out) == reference


@pytest.fixture(scope="module")
def sessions(binary, tmp_path_factory):
    """Two recordings of two short chunks each (ffmpeg), labelled by time ranges."""
    d = tmp_path_factory.mktemp("video")
    r = run(binary, "synth", d, "--layout", "video", "--sessions", "2", "--chunks", "2", "--seconds", "1",
            "--fps", "10", "--width", "64", "--height", "48")
    assert r.returncode == 0, r.stderr
    (d / "sessions.toml").write_text(
        'name = "sessions"\nseed = 3\n[[sources]]\ntype = "video"\nchunks = "videos/{session}/*.mp4"\n'
        'labels = "labels/{session}.csv"\nunit = "seconds"\n[split]\nmethod = "group"\ntrain = 0.5\nvalidation = 0.5\n'
        '[[outputs]]\nformat = "recordio"\n'
    )
    return d


def test_video_build_on_spark_equals_the_binary_run_from_elsewhere(spark, binary, sessions, tmp_path, monkeypatch):
    """Frames' identities and the manifest depend neither on how the recipe's
    path is spelled nor on the folder a build runs in."""
    ref = tmp_path / "ref"
    r = run(binary, "build", sessions / "sessions.toml", "--out", ref, "-q", cwd="/")
    assert r.returncode == 0, r.stderr
    monkeypatch.chdir(sessions)
    out = tmp_path / "out"
    imgprep.spark.build(spark, "sessions.toml", out, slices=3)
    assert tree_digest(out) == tree_digest(ref)


def test_a_plan_refuses_what_the_build_would(spark, sessions, tmp_path):
    """Pass-through cannot apply to frames: the plan says so, and the Spark
    driver fails before any task starts, with imgprep's own error."""
    text = (sessions / "sessions.toml").read_text() + '[transform]\nencoding = "passthrough"\n'
    p = sessions / "frames.toml"
    p.write_text(text)
    with pytest.raises(imgprep.UsageError, match="cannot apply to video frames"):
        imgprep.Recipe.load(p).plan()
    with pytest.raises(imgprep.UsageError, match="cannot apply to video frames"):
        imgprep.spark.build(spark, p, tmp_path / "out", slices=2)
    assert not (tmp_path / "out.parts").exists()
