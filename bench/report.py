#!/usr/bin/env python3
"""Turn the raw files of bench/run.sh into a Markdown report.

Usage: report.py RESULTS_DIR

Reads RESULTS_DIR/*.json (hyperfine exports, peak_mem.py and verify reports,
codec.json, env.json), prints Markdown (the table, then the targets of the
performance issue with pass/fail) and writes every derived number to
RESULTS_DIR/summary.json. Standard library only.
"""
import json
import os
import sys

CASES = [  # (id, label in the table, images packed in multiples of N)
    ("a_resize_t1", "a. `--resize 210 --num-thread 1`", 1),
    ("b_resize_t2", "b. `--resize 210 --num-thread 2`", 1),
    ("c_pass_t2", "c. `--pass-through --num-thread 2`", 1),
    ("d_packlabel_t2", "d. `--resize 210 --pack-label --num-thread 2` (3 labels)", 1),
]
CASES_10N = [  # opt-in case g: b and c on the 10*N set
    ("g_resize_t2_10n", "g. as b, on 10*N images", 10),
    ("g_pass_t2_10n", "g. as c, on 10*N images", 10),
]
MB = 1024  # peak_mem.py reports kB; the table shows MiB


def load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def medians(hyperfine_json):
    """{command name: median seconds} from a hyperfine --export-json file."""
    return {r["command"]: r["median"] for r in hyperfine_json["results"]}


def mib(kb):
    return None if kb is None else kb / MB


def fmt(x, spec=".2f", unit=""):
    return "n/a" if x is None else f"{x:{spec}}{unit}"


def verdict(ok):
    return "**met**" if ok else "**missed**"


def main():
    results = sys.argv[1]
    env = load(results, "env.json") or {}
    n = env.get("n")
    summary = {"env": env, "cases": {}}
    out = []

    # ---------------------------------------------------------- main table
    run_counts = []
    for name in os.listdir(results):
        if name.count(".") == 1 and name.endswith(".json"):   # hyperfine exports
            data = load(results, name)
            if isinstance(data, dict) and "results" in data:
                run_counts += [len(r["times"]) for r in data["results"]]
    out.append(f"N = {n} photos, 640x480 JPEG q90, {env.get('dataset_bytes', 0) / 1e6:.1f} MB; "
               f"{env.get('cores')} cores ({env.get('cpu')}); medians of >= "
               f"{min(run_counts, default=0)} runs per command after 1 warmup; warm page cache"
               f"{'' if not env.get('nice') else ', nice ' + str(env['nice'])}.")
    out.append("")
    out.append("| case | im2rec.py median s | imgprep median s | im2rec.py img/s "
               "| imgprep img/s | speed-up | im2rec.py peak RSS MiB (largest process / tree PSS) "
               "| imgprep peak RSS MiB | .rec MB im2rec / imgprep | verify im2rec / imgprep |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")

    def add_rows(cases):
        """One table row per im2rec.py-vs-imgprep case that has results."""
        for cid, label, mult in cases:
            hf = load(results, f"{cid}.json")
            if hf is None:
                continue
            count = n * mult
            med = medians(hf)
            t_ref, t_ours = med.get("im2rec"), med.get("imgprep")
            mem_ref = load(results, f"{cid}.im2rec.mem.json") or {}
            mem_ours = load(results, f"{cid}.imgprep.mem.json") or {}
            ver = {}
            for tool in ("im2rec", "imgprep"):
                v = load(results, f"{cid}.{tool}.verify.json")
                ver[tool] = ("n/a" if v is None else f"ok ({v['records']})" if v.get("ok")
                             else f"FAIL ({v.get('problems')} problems)")
            sizes = load(results, f"{cid}.rec_bytes.json") or {}
            row = {
                "im2rec_median_s": t_ref, "imgprep_median_s": t_ours,
                "images": count,
                "im2rec_img_per_s": count / t_ref if t_ref else None,
                "imgprep_img_per_s": count / t_ours if t_ours else None,
                "speedup": t_ref / t_ours if t_ref and t_ours else None,
                "im2rec_max_rss_mib": mib(mem_ref.get("max_rss_kb")),
                "im2rec_tree_pss_mib": mib(mem_ref.get("tree_peak_pss_kb")),
                "imgprep_max_rss_mib": mib(mem_ours.get("max_rss_kb")),
                "verify": ver,
                "rec_bytes": sizes,
                "runs": {r["command"]: r["times"] for r in hf["results"]},
            }
            summary["cases"][cid] = row
            out.append(
                f"| {label} | {fmt(t_ref)} | {fmt(t_ours)} | {fmt(row['im2rec_img_per_s'], '.0f')} "
                f"| {fmt(row['imgprep_img_per_s'], '.0f')} | {fmt(row['speedup'], '.1f', 'x')} "
                f"| {fmt(row['im2rec_max_rss_mib'], '.0f')} / {fmt(row['im2rec_tree_pss_mib'], '.0f')} "
                f"| {fmt(row['imgprep_max_rss_mib'], '.1f')} "
                f"| {fmt(sizes.get('im2rec', 0) / 1e6, '.1f')} / {fmt(sizes.get('imgprep', 0) / 1e6, '.1f')} "
                f"| {ver['im2rec']} / {ver['imgprep']} |")

    add_rows(CASES)

    cat = load(results, "e_cat.json")
    t_cat = medians(cat).get("cat") if cat else None
    summary["cases"]["e_cat"] = {"median_s": t_cat}
    out.append(f"| e. `xargs cat > file` of the same files (I/O floor) | | {fmt(t_cat, '.3f')} "
               f"| | {fmt(n / t_cat if t_cat else None, '.0f')} | | | | | |")

    start = load(results, "s_startup.json")
    s_med = medians(start) if start else {}
    if start:
        summary["cases"]["s_startup"] = s_med
        out.append(f"| s. start-up only (`--help`) | {fmt(s_med.get('im2rec'), '.3f')} "
                   f"| {fmt(s_med.get('imgprep'), '.3f')} | | | | | | | |")
    add_rows(CASES_10N)

    # im2rec.py pays ~1 s of imports per run; what is left is per-image work.
    if start:
        s_ref, s_ours = s_med.get("im2rec"), s_med.get("imgprep")
        steady = {}
        for cid, row in summary["cases"].items():
            if row.get("speedup") and s_ref and s_ours:
                steady[cid] = ((row["im2rec_median_s"] - s_ref)
                               / max(row["imgprep_median_s"] - s_ours, 1e-9))
                row["speedup_without_startup"] = steady[cid]
        if steady:
            out.append("")
            out.append("Speed-up with each tool's start-up time (case s) subtracted: "
                       + ", ".join(f"{cid} {v:.1f}x" for cid, v in steady.items()) + ".")

    # ---------------------------------------------------------- RSS vs size
    rss_n = load(results, "f_rss.n.mem.json") or {}
    rss_10n = load(results, "f_rss.10n.mem.json") or {}
    f_n, f_10n = mib(rss_n.get("max_rss_kb")), mib(rss_10n.get("max_rss_kb"))
    summary["cases"]["f_rss"] = {"n_mib": f_n, "n_wall_s": rss_n.get("wall_s"),
                                 "10n_mib": f_10n, "10n_wall_s": rss_10n.get("wall_s"),
                                 "big_mode": env.get("big_mode")}
    out.append("")
    out.append(f"f. imgprep `--resize 210 --num-thread 2` peak RSS: {fmt(f_n, '.1f')} MiB on {n} "
               f"images ({fmt(rss_n.get('wall_s'))} s), {fmt(f_10n, '.1f')} MiB on "
               f"{10 * n if n else '?'} images ({fmt(rss_10n.get('wall_s'))} s, "
               f"10x set made by: {env.get('big_mode')}).")

    # ---------------------------------------------------------- codec limit
    codec = load(results, "codec.json") or {}
    c = summary["cases"]
    ms_ours_1t = 1000 * c["a_resize_t1"]["imgprep_median_s"] / n if "a_resize_t1" in c else None
    # 2 threads on 2 cores: CPU-ms per image is at most wall-ms * 2.
    ms_ours_2t_cpu = (2000 * c["b_resize_t2"]["imgprep_median_s"] / n
                      if "b_resize_t2" in c else None)
    if codec.get("tool"):
        dec = 1000 / codec["decode_half_fps"]
        dec_full = 1000 / codec["decode_full_fps"]
        enc = 1000 / codec["encode_280x210_q95_fps"]
        limit = dec + enc
        codec.update({"decode_half_ms": dec, "decode_full_ms": dec_full, "encode_ms": enc,
                      "limit_ms": limit, "imgprep_1t_ms": ms_ours_1t,
                      "imgprep_2t_cpu_ms": ms_ours_2t_cpu})
        out.append("")
        out.append(f"Codec limit ({codec['tool']}, {codec['sample']}, {codec['sample_bytes']} B): "
                   f"decode 640x480 at 1/2 scale {dec:.3f} ms + encode 280x210 q95 {enc:.3f} ms "
                   f"= **{limit:.3f} ms/image** per core (full-size decode would be "
                   f"{dec_full:.3f} ms). imgprep on 1 thread: {fmt(ms_ours_1t, '.3f')} ms/image "
                   f"= {fmt(ms_ours_1t / limit if ms_ours_1t else None, '.2f')}x the limit; "
                   f"on 2 threads {fmt(ms_ours_2t_cpu, '.3f')} core-ms/image "
                   f"= {fmt(ms_ours_2t_cpu / limit if ms_ours_2t_cpu else None, '.2f')}x.")
    else:
        out.append("")
        out.append("Codec limit: tjbench not available, not measured.")
    summary["codec"] = codec

    # ---------------------------------------------------------- targets
    t = {}
    if "b_resize_t2" in c:
        t["resize_2t_speedup_ge_4x"] = (c["b_resize_t2"]["speedup"], c["b_resize_t2"]["speedup"] >= 4)
    if "c_pass_t2" in c:
        sp = c["c_pass_t2"]["speedup"]
        t["pass_through_speedup_ge_5x"] = (sp, sp >= 5)
        if t_cat:
            ratio = c["c_pass_t2"]["imgprep_median_s"] / t_cat
            t["pass_through_within_1_5x_cat"] = (ratio, ratio <= 1.5)
    if "g_resize_t2_10n" in c:
        sp = c["g_resize_t2_10n"]["speedup"]
        t["resize_2t_speedup_ge_4x_10n"] = (sp, sp >= 4)
    if "g_pass_t2_10n" in c:
        sp = c["g_pass_t2_10n"]["speedup"]
        t["pass_through_speedup_ge_5x_10n"] = (sp, sp >= 5)
    ours_rss = [r["imgprep_max_rss_mib"] for r in c.values()
                if isinstance(r, dict) and r.get("imgprep_max_rss_mib") is not None]
    ours_rss += [x for x in (f_n, f_10n) if x is not None]
    if ours_rss:
        t["peak_rss_le_100mb"] = (max(ours_rss), max(ours_rss) * MB * 1024 <= 100e6)
    if f_n and f_10n:
        # "The same": within 10% (allocator noise), i.e. not growing with N.
        t["rss_flat_n_vs_10n"] = (f_10n / f_n, f_10n / f_n <= 1.10)
    summary["targets"] = {k: {"value": v, "met": ok} for k, (v, ok) in t.items()}

    out.append("")
    out.append("| target | measured | result |")
    out.append("|---|---:|---|")
    names = {
        "resize_2t_speedup_ge_4x": ("`--resize 210`, 2 threads: >= 4x im2rec.py", ".2f", "x"),
        "pass_through_speedup_ge_5x": ("`--pass-through`: >= 5x im2rec.py", ".2f", "x"),
        "resize_2t_speedup_ge_4x_10n": (f"`--resize 210`, 2 threads, {10 * n if n else '?'} images "
                                        "(case g): >= 4x", ".2f", "x"),
        "pass_through_speedup_ge_5x_10n": (f"`--pass-through`, {10 * n if n else '?'} images "
                                           "(case g): >= 5x", ".2f", "x"),
        "pass_through_within_1_5x_cat": ("`--pass-through`: <= 1.5x the time of cat", ".2f", "x cat"),
        "peak_rss_le_100mb": ("peak RSS <= 100 MB in every run (worst run)", ".1f", " MiB"),
        "rss_flat_n_vs_10n": (f"peak RSS the same for {n} and {10 * n if n else '?'} images (<= 1.10x)",
                              ".2f", "x"),
    }
    for k, (v, ok) in t.items():
        label, spec, unit = names[k]
        out.append(f"| {label} | {fmt(v, spec, unit)} | {verdict(ok)} |")

    # ---------------------------------------------------------- other load
    # run.sh measures, per case, the share of CPU capacity used by processes
    # other than the benchmark itself (including VM steal).
    busy = {}
    for name in sorted(os.listdir(results)):
        if name.endswith(".busy.json"):
            busy[name[:-len(".busy.json")]] = load(results, name)
    summary["other_load"] = busy
    noisy = [f"{k} ({v['other_pct']}%)" for k, v in busy.items() if v.get("suspect")]
    worst = max((v.get("other_pct", 0) for v in busy.values()), default=0)
    worst_un = max((v.get("other_unniced_pct", 0) for v in busy.values()), default=0)
    out.append("")
    out.append("WARNING: other processes competed for the CPUs during " + ", ".join(noisy)
               + "; re-run those cases (CASES=...)." if noisy else
               f"Other processes used at most {worst}% of the CPUs during any case "
               f"({worst_un}% by processes that were not niced).")

    with open(os.path.join(results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print("\n".join(out))


if __name__ == "__main__":
    main()
