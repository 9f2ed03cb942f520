#!/usr/bin/env python3
"""The Spark driver's speed-up and overhead, and the Python API's overhead.

Run by bench/spark.sh inside the `py` venv with the wheel installed. Cases, each
RUNS times (median reported), every run from an empty output and item cache:

  cli-1 / cli-2      `imgprep build --num-thread 1|2` (the release binary)
  spark-1 / spark-2  imgprep.spark.build on local[1] / local[2], SLICES slices,
                     one thread per task (the session is started once per master;
                     its start-up is not in the times)
  api-small / cli-small  a SMALL-image set: imgprep.build() timed inside Python vs the
                     binary's whole process, RUNS_SMALL times each

Every Spark output is checked to be byte-identical to the binary's. Prints a JSON
summary on stdout.
"""
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import imgprep
import imgprep.spark

BIN = os.environ["IMGPREP_BIN"]
N = int(os.environ.get("N", "10000"))
SMALL = int(os.environ.get("SMALL", "200"))
RUNS = int(os.environ.get("RUNS", "3"))
RUNS_SMALL = int(os.environ.get("RUNS_SMALL", "7"))
SLICES = int(os.environ.get("SLICES", "8"))
DATA = os.environ["BENCH_DATA"]
WORK = tempfile.mkdtemp(prefix="imgprep-spark-bench-")

RECIPE = """name = "bench"
seed = 3
[[sources]]
type = "folders"
root = "{root}"
[split]
method = "stratified"
train = 0.8
validation = 0.2
[transform]
resize = {{ area = 50176 }}
quality = 90
[[outputs]]
format = "recordio"
[[outputs]]
format = "tfrecord"
"""


def digest(root):
    h = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                h[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return h


def dataset(name, n, size):
    root = os.path.join(DATA, f"{name}-{n}-{size}")
    if not os.path.isdir(root):
        tmp = root + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        imgprep.synth(tmp, classes=10, per_class=n // 10, width=size, height=size * 3 // 4, seed=9)
        os.rename(tmp, root)
    recipe = os.path.join(WORK, f"{name}.toml")
    with open(recipe, "w") as f:
        f.write(RECIPE.format(root=root))
    return recipe


def fresh(tag):
    out = os.path.join(WORK, f"out-{tag}")
    cache = os.path.join(WORK, f"cache-{tag}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out + ".parts", ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["IMGPREP_CACHE_DIR"] = cache
    return out


def cli(recipe, threads, tag):
    out = fresh(tag)
    s = time.perf_counter()
    subprocess.run([BIN, "build", recipe, "--out", out, "-q", "--num-thread", str(threads)], check=True)
    return time.perf_counter() - s, out


def main():
    results = {"n": N, "slices": SLICES, "runs": RUNS, "small": SMALL, "cases": {}}
    big = dataset("photos", N, 400)
    ref = None
    for threads in (1, 2):
        ts = []
        for _ in range(RUNS):
            t, out = cli(big, threads, "cli")
            ts.append(t)
        ref = ref or digest(out)
        results["cases"][f"cli-{threads}"] = ts
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    for cores in (1, 2):
        spark = (SparkSession.builder.master(f"local[{cores}]").appName("imgprep-bench")
                 .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        ts, merge, cleanup = [], [], []
        for _ in range(RUNS):
            out = fresh("spark")
            s = time.perf_counter()
            res = imgprep.spark.build(spark, big, out, slices=SLICES, threads_per_task=1, progress=False)
            ts.append(time.perf_counter() - s)
            merge.append(res.summary["spark"]["merge_seconds"])
            cleanup.append(res.summary["spark"]["cleanup_seconds"])
            if digest(out) != ref:
                raise SystemExit(f"spark local[{cores}] output differs from the binary's")
        spark.stop()
        results["cases"][f"spark-{cores}"] = ts
        results["cases"][f"spark-{cores}-merge"] = merge
        results["cases"][f"spark-{cores}-cleanup"] = cleanup
    small = dataset("small", SMALL, 400)
    api, whole = [], []
    for _ in range(RUNS_SMALL):
        out = fresh("small-cli")
        t, _ = cli(small, 2, "small-cli")
        whole.append(t)
        out = fresh("small-api")
        s = time.perf_counter()
        imgprep.build(small, out, threads=2, progress=False)
        api.append(time.perf_counter() - s)
    results["cases"]["cli-small"] = whole
    results["cases"]["api-small"] = api
    med = {k: statistics.median(v) for k, v in results["cases"].items()}
    results["median"] = med
    results["speedup_spark_2_vs_1"] = med["spark-1"] / med["spark-2"]
    results["spark_overhead_1"] = med["spark-1"] / med["cli-1"]
    results["spark_overhead_2"] = med["spark-2"] / med["cli-2"]
    results["api_over_cli_small"] = med["api-small"] / med["cli-small"]
    shutil.rmtree(WORK, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
