"""Builds that scale out on Spark: ``imgprep.spark.build(spark, recipe, out)``.

The driver reads the recipe and plans it once (a bad recipe fails here, before
any task starts), then runs ``slices`` Spark tasks over the DataFrame API
(``spark.range(...).mapInArrow``: no RDDs, so it also runs on Spark Connect).
Task ``i`` builds slice ``i`` of every split (``imgprep build --shard i/N``)
into ``PARTS/{i:05d}`` with its item cache in ``PARTS/{i:05d}.cache``. Names
depend only on ``i`` and the bytes only on the inputs, so a retried or
speculative attempt writes exactly what the first one wrote. The driver then
merges the parts into ``out``: byte for byte the dataset one ``imgprep build``
writes.

``PARTS`` (default ``OUT + ".parts"``) must be storage every executor and the
driver can reach: a shared folder (NFS, a mounted volume) or an object-store
prefix (``s3://``, ``az://``, ``gs://``). Executors need this wheel installed
(see the README's Spark section). From the command line, for spark-submit::

    spark-submit --master yarn imgprep/spark.py recipe.toml --out s3://bucket/ds --slices 64
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

from imgprep import BuildResult, Plan, Recipe, _native, _progress

PathLike = Union[str, "os.PathLike[str]"]

#: A marker in a local PARTS folder: it is ours to reuse and delete.
PARTS_MARKER = ".imgprep-parts"

_SCHEMA = "slice long, items long, processed long, cached long, seconds double, host string, attempt long"


def _is_remote(p: str) -> bool:
    return "://" in p


def _slice_name(i: int) -> str:
    return f"{i:05d}"


class _Silent:
    """A slice's progress and warnings go nowhere: a slice is part of the
    dataset, so its warnings (a class missing from a split of one slice)
    would be wrong about the whole; the driver's merge reports those."""

    def begin(self, label: str, total: Optional[int]) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def end(self) -> None:
        pass


def build_slice(path: str, toml: str, parts: str, i: int, n: int, threads: int = 1) -> Dict[str, Any]:
    """Builds slice ``i`` of ``n`` into ``PARTS/{i:05d}`` (what one Spark task
    does; usable from any scheduler). Returns a summary row."""
    start = time.time()
    name = _slice_name(i)
    if _is_remote(parts):
        # build on the executor's local disk, then send output and cache
        tmp = tempfile.mkdtemp(prefix=f"imgprep-slice-{name}-")
        try:
            out, cache = os.path.join(tmp, "out"), os.path.join(tmp, "cache")
            s = json.loads(
                _native.build(path, toml, out, shard=(i, n), threads=threads, cache_dir=cache, progress=_Silent())
            )["summary"]
            _native.push_dir(out, f"{parts.rstrip('/')}/{name}")
            if os.path.isdir(cache):
                _native.push_dir(cache, f"{parts.rstrip('/')}/{name}.cache")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        out, cache = os.path.join(parts, name), os.path.join(parts, name + ".cache")
        s = json.loads(
                _native.build(path, toml, out, shard=(i, n), threads=threads, cache_dir=cache, progress=_Silent())
            )["summary"]
    items = sum(c["items"] for v in s["dataset"]["variants"].values() for c in v["splits"].values())
    return {
        "slice": i,
        "items": items,
        "processed": s["processed"],
        "cached": s["cached"],
        "seconds": time.time() - start,
        "host": socket.gethostname(),
        "attempt": 0,
    }


def _tasks(path: str, toml: str, parts: str, n: int, threads: int, fail_slice: Optional[int]):
    """The function ``mapInArrow`` runs: one row per slice it was given."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        try:
            from pyspark import TaskContext

            ctx = TaskContext.get()
            attempt = ctx.attemptNumber() if ctx is not None else 0
        except Exception:  # pragma: no cover - not in a task
            attempt = 0
        for batch in batches:
            for i in batch.column("id").to_pylist():
                row = build_slice(path, toml, parts, int(i), n, threads)
                row["attempt"] = attempt
                # fault injection for tests: the slice's first attempt dies
                # after its output is written, and the retry must give the same
                if fail_slice == i and attempt == 0:
                    raise RuntimeError(f"attempt 0 of slice {i} fails on purpose (_fail_slice)")
                yield pa.RecordBatch.from_pylist([row])

    return run


def _task_error(e: BaseException) -> BaseException:
    """A Spark task's failure as the error imgprep would raise in-process: the
    ``UsageError``/``ProblemError`` a slice raised (its message, without the
    JVM's traceback around it), or a ``UsageError`` saying how to give the
    executors a Python with the wheel; anything else as it came."""
    text = str(e)
    for line in reversed(text.splitlines()):
        for cls in (_native.UsageError, _native.ProblemError, _native.ImgprepError):
            tag = f"{cls.__name__}: "
            if tag in line:
                return cls("a Spark task failed: " + line.split(tag, 1)[1].strip())
        if "No module named" in line:
            return _native.UsageError(
                f"a Spark task failed: {line.strip()}: the executors' Python needs the imgprep "
                "wheel (and pyarrow); set PYSPARK_PYTHON to such a Python (see the README's Spark "
                "section)"
            )
    return e


def _default_slices(spark: Any, items: int) -> int:
    try:
        cores = int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect: no SparkContext
        cores = _connect_cores(spark)
    return max(1, min(items, 2 * cores))


def _connect_cores(spark: Any) -> int:
    """The default parallelism a Spark Connect session does not report: its
    setting, else the cores of a ``local[N]`` master, else 8."""
    try:
        return int(spark.conf.get("spark.default.parallelism"))
    except Exception:
        pass
    try:
        master = str(spark.conf.get("spark.master"))
    except Exception:
        master = ""
    if master.startswith("local"):
        inner = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
        first = inner.split(",")[0].strip()
        if first == "*":
            return os.cpu_count() or 1
        if first.isdigit() and int(first) > 0:
            return int(first)
    return 8


def _prepare_parts(parts: str) -> Optional[int]:
    """A local PARTS folder must be new, empty or ours (it is deleted after),
    and used by one Spark build at a time: the marker file is locked for the
    whole build (returned: an open descriptor), so that a second build with
    the same parts stops at once instead of deleting the first one's parts."""
    if _is_remote(parts):
        return None
    if os.path.exists(parts) and not os.path.isdir(parts):
        raise _native.UsageError(f"parts = {parts}: not a folder; give parts= a folder")
    if os.path.isdir(parts) and os.listdir(parts) and not os.path.exists(os.path.join(parts, PARTS_MARKER)):
        raise _native.UsageError(
            f"{parts}: not empty and not imgprep's parts folder; give parts= a new folder"
        )
    os.makedirs(parts, exist_ok=True)
    fd = os.open(os.path.join(parts, PARTS_MARKER), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _native.UsageError(
            f"{parts}: another Spark build is using this parts folder (a build into the same out, "
            "or with the same parts=); wait for it to end, or give parts= another folder"
        ) from None
    except ImportError:  # pragma: no cover - not on Windows
        pass
    os.ftruncate(fd, 0)
    os.write(fd, b"imgprep Spark build parts: slice outputs and caches, deleted after the merge\n")
    return fd


def _within(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` or lies inside it (local paths resolved, URIs by
    their ``/``-parts)."""
    if _is_remote(a) != _is_remote(b):
        return False
    if _is_remote(a):
        pa, pb = a.rstrip("/").split("/"), b.rstrip("/").split("/")
    else:
        pa = os.path.realpath(a).split(os.sep)
        pb = os.path.realpath(b).split(os.sep)
    return pa[: len(pb)] == pb


def _check_out(out: str, parts: str, force: bool) -> None:
    """Before any task: PARTS and OUT apart (PARTS is deleted after the
    merge), and a local OUT new, empty or imgprep's (as ``imgprep build``
    requires), so a mistake costs no cluster time."""
    if _within(parts, out) or _within(out, parts):
        raise _native.UsageError(
            f"parts = {parts} and out = {out}: one holds the other, and the parts are deleted "
            "after the merge; give parts= a folder beside out, not in or around it"
        )
    if not _is_remote(out):
        _native.check_out(out, force)


def _remove_tree(root: str, threads: int = 32) -> None:
    """Deletes a parts folder (ours: see _prepare_parts). Files are unlinked by
    many threads at once: on network and cloud disks an unlink waits on the
    storage, and one at a time 10,000 of them took 8-28 s on the test machine,
    against 1-2 s this way."""
    from concurrent.futures import ThreadPoolExecutor

    files, dirs = [], []
    for d, subdirs, names in os.walk(root):
        dirs.append(d)
        files.extend(os.path.join(d, n) for n in names)

    def unlink(p: str) -> None:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(unlink, files))
    for d in reversed(dirs):
        try:
            os.rmdir(d)
        except OSError:
            pass


def build(
    spark: Any,
    recipe: Union[Recipe, PathLike, Mapping[str, Any]],
    out: PathLike,
    *,
    slices: Optional[int] = None,
    parts: Optional[PathLike] = None,
    threads_per_task: Optional[int] = None,
    keep_parts: bool = False,
    force: bool = False,
    progress: Any = None,
    _fail_slice: Optional[int] = None,
) -> BuildResult:
    """Builds ``recipe`` into ``out`` with Spark tasks (see the module text).

    ``slices``: tasks to run (default: twice the default parallelism; at most
    the largest split's item count, as each slice takes a part of every
    split); more slices than cores lets fast tasks absorb slow ones.
    ``threads_per_task``: default ``spark.task.cpus``. ``keep_parts`` keeps a
    local PARTS folder after the merge, and with it the slices' item caches,
    so that a re-run decodes only what changed (without it every task
    decodes its slice again); parts in object storage are always kept:
    imgprep deletes nothing there. ``force``: build into a local
    ``out`` that is not empty and not imgprep's, as ``imgprep build --force``.
    ``result.summary["spark"]`` has one row per slice (items, seconds, host,
    attempt). Everything that can be checked is checked before any task
    starts: the recipe, the slices, ``out`` and ``parts``."""
    if isinstance(recipe, Recipe):
        r = recipe
        if not _is_remote(r.path) and not os.path.isabs(r.path) and r._text is None:
            r = Recipe.load(os.path.abspath(r.path))
    elif isinstance(recipe, Mapping):
        r = Recipe.load(recipe)
    else:
        path = os.fspath(recipe)
        # one spelling of every source path in the tasks and the merge (the
        # item caches are keyed by it): the recipe's absolute path
        r = Recipe.load(path if _is_remote(path) else os.path.abspath(path))
    out = os.fspath(out)
    for name, v in (("slices", slices), ("threads_per_task", threads_per_task)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise _native.UsageError(f"{name} = {v!r}: need a whole number")
    if parts is None:
        if _is_remote(out) and out.rstrip("/").count("/") < 3:
            raise _native.UsageError(
                f"out = {out} is a bucket's root: its default parts would be {out.rstrip('/')}.parts, "
                "another bucket; give parts= (e.g. s3://bucket/imgprep-parts)"
            )
        parts = out.rstrip("/") + ".parts"
    parts = os.fspath(parts)
    if not _is_remote(parts):
        parts = os.path.abspath(parts)
    if not _is_remote(out):
        out = os.path.abspath(out)
    # the plan, with the checks a build makes before writing: outputs in
    # or around the sources, names that would meet in one file
    plan = Plan(json.loads(_native.plan(r.path, r._text, _progress(False), [out, parts])))
    items = sum(n for splits in plan.counts.values() for n in splits.values())
    n = slices if slices is not None else _default_slices(spark, items)
    if n < 1:
        raise _native.UsageError(f"slices = {n}: need at least 1")
    # a slice without items has nothing to build (slice i takes part i of
    # every split): at most as many as the largest split has items
    largest = max((c for splits in plan.counts.values() for c in splits.values()), default=1)
    n = min(n, max(largest, 1))
    if threads_per_task is None:
        threads_per_task = int(spark.conf.get("spark.task.cpus", "1"))
    _check_out(out, parts, force)
    lock = _prepare_parts(parts)
    try:
        return _run(spark, r, out, parts, n, threads_per_task, keep_parts, force, progress, _fail_slice)
    finally:
        if lock is not None:
            os.close(lock)


def _run(
    spark: Any,
    r: Recipe,
    out: str,
    parts: str,
    n: int,
    threads_per_task: int,
    keep_parts: bool,
    force: bool,
    progress: Any,
    _fail_slice: Optional[int],
) -> BuildResult:
    """The tasks, the merge and the cleanup of :func:`build`, checked."""
    started = time.time()
    df = spark.range(0, n, 1, numPartitions=n).mapInArrow(
        _tasks(r.path, r.toml, parts, n, threads_per_task, _fail_slice),
        _SCHEMA,
    )
    try:
        collected = df.collect()
    except Exception as e:  # a task that failed every attempt
        # no slice got as far as its output (the executors' Python lacks
        # the wheel, say): the parts folder holds only our marker
        if not _is_remote(parts) and not keep_parts and os.listdir(parts) == [PARTS_MARKER]:
            _remove_tree(parts)
        raise _task_error(e) from e
    rows: List[Dict[str, Any]] = sorted((row.asDict() for row in collected), key=lambda x: x["slice"])
    tasks_s = time.time() - started
    names = [_slice_name(i) for i in range(n)]
    if _is_remote(parts):
        tmp = tempfile.mkdtemp(prefix="imgprep-merge-")
        try:
            for name in names:
                base = f"{parts.rstrip('/')}/{name}"
                _native.pull_prefix(base, os.path.join(tmp, name))
                _native.pull_prefix(base + ".cache", os.path.join(tmp, name + ".cache"))
            result = r.merge(
                out,
                [os.path.join(tmp, x) for x in names],
                shard_caches=[os.path.join(tmp, x + ".cache") for x in names],
                force=force,
                progress=progress,
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        result = r.merge(
            out,
            [os.path.join(parts, x) for x in names],
            shard_caches=[os.path.join(parts, x + ".cache") for x in names],
            force=force,
            progress=progress,
        )
    merge_s = time.time() - started - tasks_s
    if not _is_remote(parts) and not keep_parts:
        _remove_tree(parts)
    result.summary["spark"] = {
        "slices": n,
        "parts": parts,
        "tasks_seconds": tasks_s,
        "merge_seconds": merge_s,
        "cleanup_seconds": time.time() - started - tasks_s - merge_s,
        "rows": rows,
    }
    return result


def main(argv: Optional[List[str]] = None) -> int:
    """``spark-submit .../imgprep/spark.py RECIPE --out OUT [--slices N] [--parts P]``."""
    import argparse

    p = argparse.ArgumentParser(prog="imgprep.spark", description=__doc__.split("\n\n")[0])
    p.add_argument("recipe", help="the recipe file (readable on the driver)")
    p.add_argument("--out", required=True, help="output folder or s3://, az://, gs:// prefix")
    p.add_argument("--slices", type=int, help="Spark tasks (default: twice the default parallelism)")
    p.add_argument("--parts", help="shared storage for slice outputs (default: OUT.parts)")
    p.add_argument("--threads-per-task", type=int, help="threads per task (default: spark.task.cpus)")
    p.add_argument("--keep-parts", action="store_true", help="keep a local parts folder after the merge")
    p.add_argument("--force", action="store_true",
                   help="build into a local OUT that is not empty and not imgprep's (keeps its other files)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON on stdout, warnings in it (\"warnings\") and an error as "
        "{\"error\": ..., \"exit\": N}: spark-submit sends a Python driver's stderr to stdout too",
    )
    a = p.parse_args(argv)
    import sys
    import warnings

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("imgprep").getOrCreate()
    with warnings.catch_warnings(record=a.json) as caught:
        if a.json:
            warnings.simplefilter("always")
        try:
            res = build(spark, a.recipe, a.out, slices=a.slices, parts=a.parts,
                        threads_per_task=a.threads_per_task, keep_parts=a.keep_parts,
                        force=a.force, progress=False if a.json else None)
        except _native.ImgprepError as e:
            code = 1 if isinstance(e, _native.ProblemError) else 2
            if a.json:
                said = [str(w.message) for w in caught or []]
                print(json.dumps({"error": str(e), "exit": code, "warnings": said}, indent=2))
            else:
                print(f"imgprep: error: {e}", file=sys.stderr)
            return code
    if a.json:
        summary = dict(res.summary)
        summary["warnings"] = [str(w.message) for w in caught or []]
        print(json.dumps(summary, indent=2))
    else:
        print(str(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
