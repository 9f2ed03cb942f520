#!/usr/bin/env python3
"""Run one command and report its peak memory as JSON.

Usage: peak_mem.py OUT.json -- CMD [ARGS...]

The command runs under GNU time (`/usr/bin/time -v`); its "Maximum resident
set size" is the headline number. That is the peak RSS of the *largest single
process*, which is all of imgprep but only one of im2rec.py's processes: with
--num-thread N im2rec.py forks N readers and a writer. So while the command
runs this script also samples the whole process tree every 20 ms and records
the peak of the summed PSS (proportional set size: pages shared between forked
processes are split between them, so the sum is not double-counted) and of the
summed RSS. Sampling can miss short spikes, so treat the tree numbers as a
lower bound; they include GNU time itself (~1-2 MB). Only the standard
library is needed; reads /proc (Linux only).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

INTERVAL = 0.02


def children_map():
    """{ppid: [pid, ...]} for every process currently visible in /proc."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 is the ppid; the command name (field 2) may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(root):
    kids = children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def mem_kb(pid):
    """(Rss, Pss) of one process in kB, or (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    out_path, cmd = sys.argv[1], sys.argv[3:]
    # stderr goes to a file, not a pipe: a chatty command must not block on it.
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf, \
            tempfile.TemporaryFile("w+b") as errf:
        start = time.monotonic()
        proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", tf.name] + cmd,
                                stdout=subprocess.DEVNULL, stderr=errf)
        peak_rss = peak_pss = 0
        while proc.poll() is None:
            rss = pss = 0
            for pid in tree(proc.pid):
                r, p = mem_kb(pid)
                rss, pss = rss + r, pss + p
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(INTERVAL)
        errf.seek(0)
        stderr = errf.read().decode(errors="replace")
        wall = time.monotonic() - start
        report = tf.read()

    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    result = {
        "command": cmd,
        "exit_code": proc.returncode,
        "wall_s": round(wall, 3),
        "max_rss_kb": int(m.group(1)) if m else None,   # /usr/bin/time -v
        "tree_peak_pss_kb": peak_pss,                   # sampled, whole tree
        "tree_peak_rss_kb": peak_rss,
        "stderr_tail": stderr[-2000:],
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
    if proc.returncode != 0:
        sys.stderr.write(stderr)
        sys.exit(f"peak_mem.py: command failed with exit code {proc.returncode}")


if __name__ == "__main__":
    main()
