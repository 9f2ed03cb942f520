#!/usr/bin/env python3
"""Run one command and report the peak disk space its folders took while it ran, as JSON.

Usage: peak_disk.py OUT.json --watch DIR [--watch DIR ...] [--interval S] -- CMD [ARGS...]

While CMD runs, every --interval seconds (default 0.5) this walks the watched
folders (not following symbolic links; a folder that does not exist yet counts
0) and sums the files' sizes two ways: apparent bytes (what `du -sb` says) and
allocated bytes (st_blocks x 512, what `du -s` says and what the disk loses;
many small files take a whole 4 KiB block each). It records the peak of each,
and the values at the end. A walk of a big tree takes a while; when one takes
more than a fifth of the interval, the next sample waits 5 walks' time, so the
sampler never takes more than ~20 % of a core (the JSON says how many samples
were taken and how long the longest walk was). Peaks between two samples are
missed: a lower bound, exact for runs that only ever add files.

It also samples the file system's free space (statvfs) and reports the
largest drop from the start ("fs_peak_used_delta"): it sees files deleted
between samples and space outside the watched folders, but also every other
process writing to the same disk (a build), so it is only a cross-check.

It also says how busy the machine was: the CPU seconds of CMD's whole process
tree (wait4's rusage, user + system), the sampler's own, and those of every
other process on the machine in the meantime (/proc/stat busy time minus the
two), also as average cores ("other_cores"), since a benchmark on a shared
machine is only as good as what else ran.

stdout/stderr of CMD pass through; the exit code is CMD's. Standard library only.
"""
import json
import os
import resource
import subprocess
import sys
import time


def walk(path):
    """(apparent bytes, allocated bytes, files) under path, without following links."""
    apparent = allocated = files = 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                    allocated += st.st_blocks * 512
                else:
                    apparent += st.st_size
                    allocated += st.st_blocks * 512
                    files += 1
    return apparent, allocated, files


def busy_s():
    """CPU seconds the whole machine has been busy (all but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def main():
    args = sys.argv[1:]
    if "--" not in args or not args or args[0].startswith("-"):
        sys.exit(__doc__)
    sep = args.index("--")
    opts, cmd = args[1:sep], args[sep + 1:]
    out_path, watch, interval = args[0], [], 0.5
    i = 0
    while i < len(opts):
        if opts[i] == "--watch":
            watch.append(opts[i + 1])
        elif opts[i] == "--interval":
            interval = float(opts[i + 1])
        else:
            sys.exit(f"peak_disk.py: unknown option {opts[i]}\n{__doc__}")
        i += 2
    if not watch or not cmd:
        sys.exit(__doc__)

    def sample():
        a = b = n = 0
        for w in watch:
            x, y, z = walk(w)
            a, b, n = a + x, b + y, n + z
        return a, b, n

    def fs_used():
        st = os.statvfs(watch[0] if os.path.exists(watch[0]) else os.path.dirname(watch[0]) or ".")
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    fs_start = fs_used()
    busy0, self0 = busy_s(), resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    rusage = None

    def done():
        nonlocal rusage
        if rusage is None:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == 0:
                return False
            rusage, proc.returncode = ru, os.waitstatus_to_exitcode(status)
        return True

    peak_a = peak_b = peak_files = 0
    fs_peak = fs_start
    samples, longest = 0, 0.0
    while True:
        t0 = time.monotonic()
        a, b, n = sample()
        took = time.monotonic() - t0
        fs_peak = max(fs_peak, fs_used())
        samples += 1
        longest = max(longest, took)
        peak_a, peak_b, peak_files = max(peak_a, a), max(peak_b, b), max(peak_files, n)
        wait = interval if took * 5 <= interval else took * 5
        deadline = time.monotonic() + max(0.0, wait - took)
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if done():
            break
    wall = time.monotonic() - start
    busy = busy_s() - busy0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    own = rusage.ru_utime + rusage.ru_stime
    sampler = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    other = max(0.0, busy - own - sampler)
    a, b, n = sample()   # the end state
    peak_a, peak_b, peak_files = max(peak_a, a), max(peak_b, b), max(peak_files, n)
    result = {
        "command": cmd, "watch": watch, "exit_code": proc.returncode, "wall_s": round(wall, 3),
        "peak_apparent_bytes": peak_a, "peak_allocated_bytes": peak_b, "peak_files": peak_files,
        "end_apparent_bytes": a, "end_allocated_bytes": b, "end_files": n,
        "fs_peak_used_delta": fs_peak - fs_start,
        "cpu_s": round(own, 2), "sampler_cpu_s": round(sampler, 2),
        "other_cpu_s": round(other, 2), "other_cores": round(other / wall, 2) if wall else None,
        "samples": samples, "longest_walk_s": round(longest, 3), "interval_s": interval,
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
