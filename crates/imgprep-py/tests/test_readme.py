"""The README's Python and Spark examples, run as a new user would: in an empty
folder, one after the other, with the wheel this test command built."""

import os
import re
import sys

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "..", "..", "README.md")


def python_blocks():
    text = open(README, encoding="utf-8").read()
    section = text.split("\n## Python and Spark\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_examples_run(spark, tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    assert len(blocks) == 2, "the notebook and the Spark example"
    # the example's SparkSession.builder...getOrCreate() gets the running test session
    monkeypatch.chdir(tmp_path)
    ns = {}
    for b in blocks:
        exec(compile(b, "README.md", "exec"), ns)
    out = capsys.readouterr().out
    assert "{'complete': {'train': 96, 'validation': 24}}" in out
    # the Spark build's manifest equals the in-process build's: same bytes
    assert out.rstrip().endswith("True")
