"""The Python module against the binary: same bytes, same numbers, native errors."""

import _thread
import os
import shutil
import sys
import threading
import time

import pytest

import imgprep
from conftest import recipe_text, run, tree_digest


def test_build_gives_the_bytes_the_binary_gives(recipe, binary, tmp_path):
    cli_out, py_out = tmp_path / "cli", tmp_path / "py"
    r = run(binary, "build", recipe, "--out", cli_out, "-q")
    assert r.returncode == 0, r.stderr
    res = imgprep.build(recipe, py_out, progress=False)
    assert tree_digest(cli_out) == tree_digest(py_out)
    # the summary is the one `build --json` prints
    d = res.dataset
    assert d["num_classes"] == 3
    assert d["variants"]["complete"]["splits"]["train"]["items"] + d["variants"]["complete"]["splits"]["validation"]["items"] == 60
    assert "classes" in str(res) and res.out == str(py_out)
    assert imgprep.read_manifest(py_out)["num_classes"] == 3
    # a second build is up to date
    assert imgprep.build(recipe, py_out, progress=False).up_to_date


def test_wheel_command_is_the_same_entry_point(recipe, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "imgprep")
    assert os.path.exists(exe), "pip install of the wheel puts `imgprep` beside python"
    r = run(exe, "--version")
    assert r.returncode == 0 and r.stdout.startswith("imgprep "), r
    r = run(exe, "build", recipe, "--out", tmp_path / "o", "--json")
    assert r.returncode == 0, r.stderr
    assert '"num_classes": 3' in r.stdout
    # usage errors exit 2, as the binary's do
    r = run(exe, "build", tmp_path / "missing.toml")
    assert r.returncode == 2 and "missing.toml" in r.stderr
    r = run(sys.executable, "-m", "imgprep", "verify", tmp_path / "o")
    assert r.returncode == 0, r.stderr


def test_plan_counts_match_the_build(recipe, tmp_path):
    rc = imgprep.Recipe.load(recipe)
    plan = rc.plan()
    assert plan.num_classes == 3 and plan.classes == ["class_0", "class_1", "class_2"]
    assert plan.method == "stratified"
    counts = plan.counts["complete"]
    assert sum(counts.values()) == 60
    df = plan.to_pandas()
    assert len(df) == 60 and set(df["split"]) == {"train", "validation"}
    assert (df.groupby("split").size().to_dict()) == counts
    # a shard plan covers every item once
    for split, n in counts.items():
        assert sum(plan.shard_counts(i, 4)["complete"][split] for i in range(4)) == n
    built = rc.build(tmp_path / "o", progress=False).dataset["variants"]["complete"]["splits"]
    assert {k: v["items"] for k, v in built.items()} == counts


def test_dict_recipe_equals_file_recipe(recipe, images, tmp_path):
    d = {
        "name": "shapes",
        "seed": 7,
        "on_error": "skip",
        "sources": [{"type": "folders", "root": str(images)}],
        "split": {"method": "stratified", "train": 0.7, "validation": 0.3},
        "transform": {"resize": 64, "quality": 90},
        "outputs": [{"format": "recordio"}, {"format": "tfrecord"}, {"format": "sagemaker-image"}],
    }
    a = imgprep.build(d, tmp_path / "dict", progress=False)
    b = imgprep.build(recipe, tmp_path / "file", progress=False)
    da, db = tree_digest(tmp_path / "dict"), tree_digest(tmp_path / "file")
    # the manifest names the recipe's hash; everything else is the same bytes
    assert {k: v for k, v in da.items() if k != "manifest.json"} == {k: v for k, v in db.items() if k != "manifest.json"}
    assert a.dataset["num_classes"] == b.dataset["num_classes"]


def test_shards_and_merge_equal_one_build(recipe, tmp_path):
    rc = imgprep.Recipe.load(recipe)
    rc.build(tmp_path / "whole", progress=False)
    parts = []
    for i in range(3):
        p = tmp_path / f"part{i}"
        rc.build(p, shard=(i, 3), cache_dir=tmp_path / f"cache{i}", progress=False)
        parts.append(p)
    rc.merge(tmp_path / "merged", parts, shard_caches=[tmp_path / f"cache{i}" for i in range(3)], progress=False)
    assert tree_digest(tmp_path / "whole") == tree_digest(tmp_path / "merged")


def test_errors_are_exceptions_with_the_message_and_file(images, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(recipe_text(images).replace('method = "stratified"', 'method = "sideways"'))
    with pytest.raises(imgprep.UsageError) as e:
        imgprep.Recipe.load(bad)
    assert "bad.toml" in str(e.value) and "sideways" in str(e.value)
    with pytest.raises(imgprep.ImgprepError) as e:
        imgprep.Recipe.load(tmp_path / "nope.toml")
    assert "nope.toml" in str(e.value)
    # not a record file: a usage error naming it
    with pytest.raises(imgprep.UsageError) as e:
        list(imgprep.read_records(bad))
    assert "bad.toml" in str(e.value)
    # a cut .rec: the records before the cut, then a problem naming the file
    good = tmp_path / "good.toml"
    good.write_text(recipe_text(images, outputs=("recordio",)))
    imgprep.build(good, tmp_path / "o", progress=False)
    rec = tmp_path / "o/complete/recordio/train.rec"
    data = rec.read_bytes()
    rec.write_bytes(data[: len(data) - 100])
    got = []
    with pytest.raises(imgprep.ProblemError) as e:
        for r in imgprep.read_records(rec):
            got.append(r)
    assert "train.rec" in str(e.value) and len(got) == 41
    # a dict recipe's mistakes are named by key, not by a line of a file
    # that is not there
    with pytest.raises(imgprep.UsageError, match=r"^recipe\['transform'\]\['quality'\]: invalid type") as e:
        imgprep.Recipe.load({"name": "x", "sources": [{"type": "folders", "root": str(images)}],
                             "transform": {"quality": "high"}})
    assert ".toml" not in str(e.value)
    # a key missing from the recipe is the recipe's, not its first key's
    with pytest.raises(imgprep.UsageError, match=r"^recipe: missing field `sources`"):
        imgprep.Recipe.load({"name": "x", "seed": 3})
    # a dict recipe with a number that is not finite: refused, naming the key
    with pytest.raises(imgprep.UsageError, match=r"recipe\['split'\]\['train'\] = nan"):
        imgprep.Recipe.load({"name": "x", "sources": [{"type": "folders", "root": str(images)}],
                             "split": {"train": float("nan")}})
    # a shard outside 0..n is refused before anything runs
    with pytest.raises(imgprep.UsageError):
        imgprep.build(good, tmp_path / "o2", shard=(3, 3))
    # what the command exits 2 for is a UsageError: a file that cannot be
    # read, a malformed .lst line, arguments out of range
    with pytest.raises(imgprep.UsageError) as e:
        imgprep.Recipe.load(tmp_path / "nope.toml")
    assert e.value.path.endswith("nope.toml")
    lst = tmp_path / "bad.lst"
    lst.write_text("0\t1.0\n")
    lrec = tmp_path / "lst.toml"
    lrec.write_text(f'name = "l"\n[[sources]]\ntype = "lst"\nfile = "{lst}"\nroot = "{images}"\n')
    with pytest.raises(imgprep.UsageError) as e:
        imgprep.Recipe.load(lrec).plan()
    assert e.value.line == 1, str(e.value)
    # the exceptions are imgprep's by name and survive pickling (a worker
    # process of a pool hands them back to its caller), attributes too
    import pickle

    assert imgprep.UsageError.__module__ == "imgprep"
    back = pickle.loads(pickle.dumps(e.value))
    assert type(back) is imgprep.UsageError
    assert str(back) == str(e.value) and back.line == 1 and back.path == e.value.path
    with pytest.raises(imgprep.UsageError, match="threads = -1"):
        imgprep.build(good, tmp_path / "o3", threads=-1, progress=False)
    with pytest.raises(imgprep.UsageError, match="classes = 0"):
        imgprep.synth(tmp_path / "s", classes=0)
    with pytest.raises(imgprep.UsageError, match="per_class = -1"):
        imgprep.synth(tmp_path / "s", per_class=-1)
    with pytest.raises(imgprep.UsageError, match="unknown layout"):
        imgprep.synth(tmp_path / "s", layout="coco")
    files = imgprep.synth(tmp_path / "voc", layout="voc", per_class=2, width=64, height=48, format="png")
    assert files and all(f.endswith(".png") for f in files)
    assert len(list((tmp_path / "voc" / "Annotations").glob("*.xml"))) == len(files)


def test_a_recipe_is_the_text_it_was_loaded_from(images, tmp_path, monkeypatch):
    """A loaded file recipe builds what was loaded, wherever the current
    folder has moved since and whatever the file says now."""
    (tmp_path / "nb").mkdir()
    (tmp_path / "elsewhere").mkdir()
    f = tmp_path / "nb" / "r.toml"
    f.write_text(recipe_text(images, outputs=("recordio",), resize=32))
    monkeypatch.chdir(tmp_path / "nb")
    r = imgprep.Recipe.load("r.toml")
    f.write_text(recipe_text(images, outputs=("recordio",), resize=16))
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert r.plan().counts == {"complete": {"train": 42, "validation": 18}}
    res = r.build(tmp_path / "o", progress=False)
    assert imgprep.read_manifest(tmp_path / "o")["recipe_sha256"] == r.sha256
    same = tmp_path / "same.toml"
    same.write_text(recipe_text(images, outputs=("recordio",), resize=32))
    imgprep.Recipe.load(same).build(tmp_path / "same", progress=False)
    assert tree_digest(tmp_path / "o") == tree_digest(tmp_path / "same")
    # an empty cache folder path is refused, not taken as the current folder
    with pytest.raises(imgprep.UsageError, match="empty path"):
        r.build(tmp_path / "o2", cache_dir="", progress=False)
    assert os.listdir(".") == []


def test_read_records_gives_labels_and_images(recipe, tmp_path):
    out = tmp_path / "o"
    imgprep.build(recipe, out, progress=False)
    recs = list(imgprep.read_records(out / "complete/recordio/train.rec"))
    lst = [l.split("\t") for l in (out / "complete/recordio/train.lst").read_text().splitlines()]
    assert len(recs) == len(lst)
    for rec, row in zip(recs, lst):
        assert rec.id == int(row[0]) and rec.label == float(row[1])
        arr = rec.to_array()
        assert arr.ndim == 3 and arr.shape[2] == 3 and min(arr.shape[:2]) == 64
    tfs = sorted((out / "complete").rglob("*.tfrecord"))
    assert tfs
    n = 0
    for f in tfs:
        for rec in imgprep.read_records(f):
            assert rec.image[:2] == b"\xff\xd8" and rec.labels and rec.features["image/height"]
            n += 1
    assert n == 60


def test_verify_reports_damage_without_raising(recipe, tmp_path):
    out = tmp_path / "o"
    imgprep.build(recipe, out, progress=False)
    assert imgprep.verify(out, progress=False)["ok"]
    rec = out / "complete/recordio/validation.rec"
    data = bytearray(rec.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rec.write_bytes(bytes(data))
    v = imgprep.verify(out, progress=False)
    assert not v["ok"] and any("validation.rec" in p for p in v["problems"])
    # a build that stopped half-way: a problem in the report, not raised
    (out / "manifest.json").unlink()
    (out / ".imgprep-building").write_text("")
    v = imgprep.verify(out, progress=False)
    assert not v["ok"] and "stopped before it finished" in v["problems"][0]
    # a path that is not there: raised, with the path
    with pytest.raises(imgprep.UsageError) as e:
        imgprep.verify(tmp_path / "missing", progress=False)
    assert e.value.path == str(tmp_path / "missing")
    with pytest.raises(imgprep.UsageError) as e:
        list(imgprep.read_records(tmp_path / "missing.rec"))
    assert e.value.path == str(tmp_path / "missing.rec")


class Recorder:
    def __init__(self):
        self.events = []

    def begin(self, label, total):
        self.events.append(("begin", label, total))

    def advance(self, n):
        self.events.append(("advance", n))

    def warn(self, m):
        self.events.append(("warn", m))

    def end(self):
        self.events.append(("end",))


def test_progress_reaches_python(recipe, tmp_path):
    p = Recorder()
    imgprep.build(recipe, tmp_path / "o", progress=p)
    begins = [e for e in p.events if e[0] == "begin"]
    assert ("begin", "prepare", 60) in begins and any(b[1] == "write" for b in begins)
    prepare = p.events.index(("begin", "prepare", 60))
    nxt = next(i for i, e in enumerate(p.events) if i > prepare and e[0] in ("begin", "end"))
    assert sum(e[1] for e in p.events[prepare:nxt] if e[0] == "advance") == 60


def test_tqdm_bar_when_asked(recipe, tmp_path, capsys):
    imgprep.build(recipe, tmp_path / "o", progress=True)
    err = capsys.readouterr().err
    assert "prepare" in err and "img" in err


def test_warnings_are_python_warnings(images, tmp_path):
    # the folder's index.csv is not read when converting by class folders: said, not silent
    with pytest.warns(imgprep.ImgprepWarning, match="index.csv"):
        imgprep.convert(images, tmp_path / "o", progress=False)


@pytest.fixture()
def big_recipe(tmp_path_factory):
    d = tmp_path_factory.mktemp("big") / "imgs"
    imgprep.synth(d, classes=2, per_class=150, width=640, height=480, seed=5)
    p = d.parent / "r.toml"
    p.write_text(recipe_text(d, outputs=("recordio",), resize=320))
    return p


def test_gil_is_released_during_a_build(big_recipe, tmp_path):
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    start = time.monotonic()
    imgprep.build(big_recipe, tmp_path / "o", threads=1, progress=False)
    took = time.monotonic() - start
    stop.set()
    t.join()
    during = [x for x in ticks if start <= x <= start + took]
    # a thread holding the GIL for the whole build would leave no ticks
    assert took > 0.3 and len(during) > took / 0.01 * 0.5, (took, len(during))


def test_ctrl_c_raises_keyboard_interrupt_promptly(big_recipe, tmp_path):
    out = tmp_path / "o"
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        imgprep.build(big_recipe, out, threads=1, progress=False)
    assert time.monotonic() - start < 3.0
    # the stopped build does not look finished, and the next one completes
    assert not (out / "manifest.json").exists()
    assert imgprep.build(big_recipe, out, progress=False).dataset["num_classes"] == 2


def test_convert_a_folder(images, tmp_path):
    res = imgprep.convert(images, tmp_path / "c", to=["recordio", "folders"], train=0.8, validation=0.2,
                          resize=48, progress=False)
    assert res.dataset["num_classes"] == 3
    assert (tmp_path / "c/imgprep-convert.toml").exists()
    assert imgprep.verify(tmp_path / "c", progress=False)["ok"]
    with pytest.raises(imgprep.UsageError):
        imgprep.convert(images, tmp_path / "d", to="recordio", bogus=1)
    # (width, height) as PIL takes it
    res = imgprep.convert(images, tmp_path / "e", to="folders", resize=(40, 30), progress=False)
    assert res.dataset["variants"]["complete"]["image_shape"] == "3,30,40"
    with pytest.raises(imgprep.UsageError, match=r"\(224, 224\)"):
        imgprep.convert(images, tmp_path / "f", to="folders", resize=(40, 30, 3))
    # a TFRecord setting with no TFRecord output is not dropped unsaid
    with pytest.raises(imgprep.UsageError, match="for TFRecord output"):
        imgprep.convert(images, tmp_path / "g", to="recordio", preset="raw")
    # the recipe alone, nothing built; no output asked for: refused
    text = imgprep.convert(images, tmp_path / "h", to="tfrecord", resize=48, print_recipe=True)
    assert 'format = "tfrecord"' in text and not (tmp_path / "h").exists()
    with pytest.raises(imgprep.UsageError, match="to = \\[\\]"):
        imgprep.convert(images, tmp_path / "i", to=[])
    assert not (tmp_path / "i").exists()
    # a shard outside 0..n, negative included, is a usage error
    with pytest.raises(imgprep.UsageError):
        imgprep.Recipe.load(tmp_path / "c/imgprep-convert.toml").build(tmp_path / "j", shard=(-1, 2))


def test_a_push_that_leaves_files_behind_raises(recipe, binary, tmp_path, monkeypatch):
    """A build into object storage whose push could not replace a file (one
    of somebody else's at an output's key) raises ProblemError, as the
    command exits 1; the result is on the error."""
    from conftest import s3_env

    env = s3_env()
    if env is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Garage server (IMGPREP_S3_*): run scripts/pytest.sh through scripts/test.sh")
        pytest.skip("no S3 test server: IMGPREP_S3_* unset (scripts/test.sh starts Garage)")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    uri = f"s3://{os.environ['IMGPREP_S3_BUCKET']}/py-push-{os.getpid()}-{tmp_path.name}/ds"
    theirs = tmp_path / "theirs" / "complete" / "recordio"
    theirs.mkdir(parents=True)
    (theirs / "train.rec").write_bytes(b"their records")
    r = run(binary, "push", tmp_path / "theirs", uri, "--layout", "mirror", "-q")
    assert r.returncode == 0, r.stderr
    with pytest.raises(imgprep.ProblemError, match="could not be pushed") as e:
        imgprep.build(recipe, uri, progress=False)
    failed = e.value.result.summary["pushed"]["failed"]
    assert [k for k, _ in failed] == [f"{uri}/complete/recordio/train.rec"], failed
