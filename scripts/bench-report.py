#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Report of a benchmark run (scripts/bench.sh): the table, results.json and
chart.png from what the guest half (tests/guest/bench.sh) left in the shared
directory: runs.tsv (one line per run), raw/ (fio's JSON output of each run),
bench.env (the settings) and guest.txt (what the guest was).

usage: bench-report.py --share DIR --out DIR [--host FILE] [--smoke TARGETS]

--host FILE      "key value" lines about the host side, kept in the JSON
--smoke TARGETS  also judge the run as the smoke form: a "PASS"/"FAIL" line
                 per target (the targets named, space-separated, must have a
                 number for every store and job; the others a number or n/a)
                 and for the JSON and the chart (and, with a compressed pass,
                 one for its figures)

The compressed pass (bench.env's BENCH_COMPRESSED: algorithms) is the store
"compressed": the same data read through lofi uncompressed and through lofi
as an image compressed with each algorithm (targets lofi-ALG); it gets a
table of its own, with the ratios ALG/lofi, and "compressed" in the JSON.

Throughput is IOPS (reads and writes added up) or MB/s (10^6 bytes per
second); p99 is fio's 99th percentile completion latency in microseconds, of
the slower direction for a mixed job.  Every figure is the median over the
rounds; the spread is (max - min) / median.
"""

import argparse
import json
import os
import statistics
import sys
import time

# Job name: (description, unit).  tests/guest/bench.sh has their fio options.
JOBS = {
    "randread-4k-qd1": ("4 KiB random read, psync, QD1, 1 job", "IOPS"),
    "randread-4k-qd32": ("4 KiB random read, libaio, QD32, 1 job per vCPU", "IOPS"),
    "randwrite-4k-qd32": ("4 KiB random write, libaio, QD32, 1 job per vCPU", "IOPS"),
    "seqread-1m-qd8": ("1 MiB sequential read, libaio, QD8, 1 job", "MB/s"),
    "seqwrite-1m-qd8": ("1 MiB sequential write, libaio, QD8, 1 job", "MB/s"),
    "randrw-16k-qd16": ("16 KiB random 70% read / 30% write, libaio, QD16, 1 job", "IOPS"),
}
TARGETS = {
    "raw": "fio on the backing file itself",
    "loop": "loop, buffered (losetup --direct-io=off)",
    "loop-dio": "loop, direct I/O (losetup --direct-io=on)",
    "lofi": "lofi, buffered (lofi_map map FILE)",
    "lofi-dio": "lofi, direct I/O (lofi_map map FILE direct)",
}
COLOURS = {
    "raw": "#7f7f7f",
    "loop": "#1f77b4",
    "loop-dio": "#9ecae1",
    "lofi": "#d62728",
    "lofi-dio": "#fc9272",
}
# Ratio name: (numerator, denominator).
RATIOS = [
    ("lofi/loop", "lofi", "loop"),
    ("lofi-dio/loop-dio", "lofi-dio", "loop-dio"),
    ("lofi/raw", "lofi", "raw"),
]


def read_kv(path):
    """'key value' or 'KEY=value' lines of a file, as a dict."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if "=" in line and (" " not in line or line.index("=") < line.index(" ")):
                k, v = line.split("=", 1)
                v = v.strip().strip("'\"")
            else:
                k, _, v = line.partition(" ")
            out[k.strip()] = v.strip()
    return out


_fio_cache = {}


def fio_output(path):
    """fio's JSON output, read once per file."""
    if path not in _fio_cache:
        with open(path) as f:
            text = f.read()
        # fio may print a note before its JSON.
        start = text.find("{")
        _fio_cache[path] = json.loads(text[start:]) if start >= 0 else {}
    return _fio_cache[path]


def fio_metrics(path, name):
    """The figures of the fio job NAME in the output PATH, or None."""
    jobs = [j for j in fio_output(path).get("jobs") or [] if j.get("jobname") == name]
    if not jobs:
        return None
    job = jobs[0]
    m = {}
    p99s = []
    for d in ("read", "write"):
        s = job.get(d) or {}
        m[d + "_iops"] = float(s.get("iops", 0.0))
        m[d + "_mbps"] = float(s.get("bw_bytes", 0)) / 1e6
        m[d + "_ios"] = int(s.get("total_ios", 0))
        pct = (s.get("clat_ns") or {}).get("percentile") or {}
        p = pct.get("99.000000")
        m[d + "_p99_us"] = p / 1000.0 if p is not None and m[d + "_ios"] > 0 else None
        if m[d + "_p99_us"] is not None:
            p99s.append(m[d + "_p99_us"])
    m["iops"] = m["read_iops"] + m["write_iops"]
    m["mbps"] = m["read_mbps"] + m["write_mbps"]
    m["p99_us"] = max(p99s) if p99s else None
    m["errors"] = int(job.get("error", 0))
    return m


def load(share):
    env = read_kv(os.path.join(share, "bench.env"))
    stores = env.get("BENCH_STORES", "").split()
    jobs = env.get("BENCH_JOBS", "").split()
    targets = env.get("BENCH_TARGETS", "").split()
    # results[store][job][target] = {"runs": [...]}
    results = {s: {j: {t: {"runs": []} for t in targets} for j in jobs} for s in stores}
    runs_path = os.path.join(share, "runs.tsv")
    if os.path.exists(runs_path):
        with open(runs_path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 6:
                    continue
                store, job, target, rnd, status, what = parts[:6]
                cell = results.setdefault(store, {}).setdefault(job, {}).setdefault(target, {"runs": []})
                run = {"round": int(rnd), "status": status}
                if status == "ok":
                    rel, _, name = what.partition("#")
                    why = None
                    try:
                        m = fio_metrics(os.path.join(share, rel), name)
                        if m is None:
                            why = "no job %s in the fio output %s" % (name, rel)
                        elif m["errors"]:
                            why = "fio reported error %d (%s)" % (m["errors"], os.strerror(m["errors"]))
                    except (OSError, ValueError) as e:
                        why = "unreadable fio output %s: %s" % (rel, e)
                    if why:
                        run["status"] = "failed"
                        run["reason"] = why
                    else:
                        run["fio_json"] = rel
                        run["fio_job"] = name
                        run.update(m)
                else:
                    run["reason"] = what
                cell["runs"].append(run)
    return env, stores, jobs, targets, results


def summarise(jobs_unit, results):
    """Per cell: status, medians, spread; per store and job: the ratios."""
    ratios = {}
    for store, by_job in results.items():
        ratios[store] = {}
        for job, by_target in by_job.items():
            unit = jobs_unit.get(job, "IOPS")
            key = "mbps" if unit == "MB/s" else "iops"
            for cell in by_target.values():
                ok = [r for r in cell["runs"] if r["status"] == "ok"]
                failed = [r for r in cell["runs"] if r["status"] == "failed"]
                na = [r for r in cell["runs"] if r["status"] == "na"]
                cell["unit"] = unit
                cell["rounds_ok"] = len(ok)
                cell["rounds_failed"] = len(failed)
                if ok:
                    vals = [r[key] for r in ok]
                    p99 = [r["p99_us"] for r in ok if r["p99_us"] is not None]
                    med = statistics.median(vals)
                    cell["status"] = "ok"
                    cell["median"] = med
                    cell["median_p99_us"] = statistics.median(p99) if p99 else None
                    cell["min"] = min(vals)
                    cell["max"] = max(vals)
                    cell["spread"] = (max(vals) - min(vals)) / med if med > 0 else None
                elif failed:
                    cell["status"] = "failed"
                    cell["reason"] = failed[0].get("reason", "")
                elif na:
                    cell["status"] = "n/a"
                    cell["reason"] = na[0].get("reason", "")
                else:
                    cell["status"] = "missing"
                    cell["reason"] = "no run recorded"
            ratios[store][job] = {}
            for name, num, den in RATIOS:
                a, b = by_target.get(num, {}), by_target.get(den, {})
                r = {"throughput": None, "p99": None}
                if a.get("status") == "ok" and b.get("status") == "ok":
                    if b["median"] > 0:
                        r["throughput"] = a["median"] / b["median"]
                    if a.get("median_p99_us") and b.get("median_p99_us"):
                        r["p99"] = a["median_p99_us"] / b["median_p99_us"]
                ratios[store][job][name] = r
    return ratios


def fmt_value(v, unit):
    if v is None:
        return "-"
    if unit == "MB/s":
        return "%.1f" % v if v < 100 else "%.0f" % v
    return "%.0f" % v


def fmt_ratio(r):
    if r["throughput"] is None:
        return "n/a"
    s = "%.2f" % r["throughput"]
    if r["p99"] is not None:
        s += " (p99 %.2f)" % r["p99"]
    return s


def table(meta, stores, jobs, targets, results, ratios):
    lines = []
    g = meta["guest"]
    s = meta["settings"]
    h = meta["host"]
    lines.append(
        "lofi benchmark%s: %s round(s) of %s s (+%s s ramp) per job and target, %s MiB file, "
        "%s vCPU(s), %s, kernel %s (%s)"
        % (
            " (smoke)" if meta.get("smoke") else "",
            s.get("BENCH_ROUNDS", "?"),
            s.get("BENCH_RUNTIME", "?"),
            s.get("BENCH_RAMP", "?"),
            int(s.get("BENCH_SIZE", "0")) // 1048576,
            g.get("cpus", "?"),
            "KVM" if h.get("kvm") == "1" else "TCG",
            g.get("kernel", "?"),
            h.get("kdir", "?"),
        )
    )
    lines.append(
        "Medians over the rounds. Throughput in IOPS or MB/s (10^6 B/s); p99: 99th percentile completion "
        "latency in us (the slower direction for randrw); spread: (max - min) / median. Ratios: "
        "throughput (p99 latency); above 1 lofi is faster (slower for p99)."
    )
    w = 10
    for store in stores:
        lines.append("")
        lines.append("== store %s" % store)
        lines.append("%-18s %-7s" % ("job", "") + "".join("%*s" % (w, t) for t in targets))
        for job in jobs:
            unit = JOBS.get(job, ("", "IOPS"))[1]
            cells = [results[store][job].get(t, {}) for t in targets]

            def col(c, what):
                if c.get("status") == "ok":
                    if what == "value":
                        return fmt_value(c["median"], unit)
                    if what == "p99":
                        return "-" if c["median_p99_us"] is None else "%.0f" % c["median_p99_us"]
                    return "-" if c.get("spread") is None else "%.0f%%" % (100 * c["spread"])
                return {"n/a": "n/a", "failed": "FAILED"}.get(c.get("status"), "-") if what == "value" else ""

            lines.append("%-18s %-7s" % (job, unit) + "".join("%*s" % (w, col(c, "value")) for c in cells))
            lines.append("%-18s %-7s" % ("", "p99 us") + "".join("%*s" % (w, col(c, "p99")) for c in cells))
            if int(s.get("BENCH_ROUNDS", "1")) > 1:
                lines.append("%-18s %-7s" % ("", "spread") + "".join("%*s" % (w, col(c, "spread")) for c in cells))
            lines.append(
                "  ratios: " + "   ".join("%s %s" % (name, fmt_ratio(ratios[store][job][name])) for name, _, _ in RATIOS)
            )
    # Why a target has no figure, once per store and reason.
    notes = []
    for store in stores:
        seen = {}
        for job in jobs:
            for t in targets:
                c = results[store][job].get(t, {})
                if c.get("status") in ("n/a", "failed", "missing"):
                    seen.setdefault((t, c["status"], c.get("reason", "")), []).append(job)
                elif c.get("rounds_failed"):
                    seen.setdefault((t, "failed in some rounds", ""), []).append(job)
        for (t, status, reason), js in seen.items():
            which = "all jobs" if len(js) == len(jobs) else ", ".join(js)
            notes.append("  %s %s (%s, %s)%s" % (t, status, store, which, ": " + reason if reason else ""))
    if notes:
        lines.append("")
        lines.append("targets without a figure:")
        lines.extend(notes)
    return "\n".join(lines) + "\n"


def compressed_summary(results, algorithms):
    """The compressed pass: per read job, lofi (uncompressed) and each
    lofi-ALG, with the ratio ALG/lofi of their medians."""
    out = {}
    for job, by_target in results.get("compressed", {}).items():
        base = by_target.get("lofi", {})
        row = {"lofi": base.get("median") if base.get("status") == "ok" else None}
        for alg in algorithms:
            c = by_target.get("lofi-" + alg, {})
            v = c.get("median") if c.get("status") == "ok" else None
            row[alg] = {"value": v, "ratio": v / row["lofi"] if v is not None and row["lofi"] else None}
        out[job] = row
    return out


def compressed_table(summary, algorithms):
    if not summary:
        return ""
    w = 14
    lines = ["", "== compressed images (store compressed: the same data uncompressed and compressed, tmpfs)"]
    lines.append("%-18s %-7s" % ("job", "") + "%*s" % (w, "lofi") + "".join("%*s" % (w, "lofi-" + a) for a in algorithms))
    for job, row in summary.items():
        unit = JOBS.get(job, ("", "IOPS"))[1]
        cells = "".join("%*s" % (w, fmt_value(row[a]["value"], unit) if row[a]["value"] is not None else "-")
                        for a in algorithms)
        lines.append("%-18s %-7s" % (job, unit) + "%*s" % (w, fmt_value(row["lofi"], unit)) + cells)
        ratios = "".join("%*s" % (w, "%.2f" % row[a]["ratio"] if row[a]["ratio"] is not None else "n/a")
                         for a in algorithms)
        lines.append("%-18s %-7s" % ("", "ratio") + "%*s" % (w, "1.00" if row["lofi"] else "n/a") + ratios)
    return "\n".join(lines) + "\n"


def chart(path, meta, stores, jobs, targets, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    nrow, ncol = max(1, len(stores)), max(1, len(jobs))
    height = 2.8 * nrow + 0.9  # and the title and the legend above the panels
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol + 0.6, height), squeeze=False, layout="constrained")
    for i, store in enumerate(stores):
        for j, job in enumerate(jobs):
            ax = axes[i][j]
            unit = JOBS.get(job, ("", "IOPS"))[1]
            for k, t in enumerate(targets):
                c = results[store][job].get(t, {})
                if c.get("status") == "ok":
                    med = c["median"]
                    err = [[med - c["min"]], [c["max"] - med]]
                    ax.bar(k, med, color=COLOURS.get(t, "#333333"), yerr=err, capsize=2, width=0.8)
                else:
                    ax.text(k, 0, " " + {"n/a": "n/a"}.get(c.get("status"), "failed"), rotation=90,
                            ha="center", va="bottom", fontsize=7, color="#555555")
            ax.set_xticks(range(len(targets)))
            ax.set_xticklabels(targets, rotation=45, ha="right", fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            ax.set_title("%s\n%s, %s" % (job, store, unit), fontsize=8)
            ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=COLOURS.get(t, "#333333"), label=t) for t in targets]
    g, s, h = meta["guest"], meta["settings"], meta["host"]
    fig.suptitle(
        "lofi and loop%s: medians of %s round(s) of %s s, %s vCPU(s), %s\nerror bars: the rounds' minimum and maximum"
        % (" (smoke)" if meta.get("smoke") else "", s.get("BENCH_ROUNDS"), s.get("BENCH_RUNTIME"),
           g.get("cpus", "?"), "KVM" if h.get("kvm") == "1" else "TCG"),
        fontsize=9,
    )
    fig.legend(handles=handles, loc="outside lower center", ncol=len(targets), fontsize=8, frameon=False)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--share", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--host")
    ap.add_argument("--smoke")
    a = ap.parse_args()

    env, stores, jobs, targets, results = load(a.share)
    jobs_unit = {j: JOBS.get(j, ("", "IOPS"))[1] for j in jobs}
    ratios = summarise(jobs_unit, results)
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "smoke": a.smoke is not None,
        "settings": env,
        "guest": read_kv(os.path.join(a.share, "guest.txt")),
        "host": read_kv(a.host) if a.host else {},
        "jobs": {j: {"description": JOBS.get(j, ("?", "?"))[0], "unit": jobs_unit[j]} for j in jobs},
        "targets": {t: TARGETS.get(t, "?") for t in targets},
        "metrics": "throughput: IOPS (read + write) or MB/s (10^6 B/s); p99_us: fio's 99th percentile "
        "completion latency, the slower direction for a mixed job; medians over the rounds",
    }
    os.makedirs(a.out, exist_ok=True)
    algorithms = env.get("BENCH_COMPRESSED", "").split()
    compressed = compressed_summary(results, algorithms)
    doc = {"meta": meta, "results": results, "ratios": ratios, "compressed": compressed}
    json_path = os.path.join(a.out, "results.json")
    with open(json_path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(json_path + ".tmp", json_path)

    text = table(meta, stores, jobs, targets, results, ratios) + compressed_table(compressed, algorithms)
    with open(os.path.join(a.out, "table.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)

    png_path = os.path.join(a.out, "chart.png")
    chart_error = None
    try:
        chart(png_path, meta, stores, jobs, targets, results)
    except Exception as e:  # the table and the JSON stand without the chart
        chart_error = "%s: %s" % (type(e).__name__, e)
        print("chart: %s" % chart_error, file=sys.stderr)

    if a.smoke is None:
        return 0 if chart_error is None else 1
    # The smoke form: every target has a figure for every store and job (an
    # optional target may be n/a), and the JSON and the chart are written.
    required = a.smoke.split()
    print()
    for t in targets:
        bad, na, figs = [], [], []
        for store in stores:
            for job in jobs:
                c = results[store][job].get(t, {})
                if c.get("status") == "ok" and c["median"] > 0:
                    figs.append("%s %s %s" % (job, fmt_value(c["median"], jobs_unit[job]), jobs_unit[job]))
                elif c.get("status") == "n/a" and t not in required:
                    na.append(c.get("reason", ""))
                else:
                    bad.append("%s %s: %s%s" % (store, job, c.get("status", "missing"),
                                                 " (" + c["reason"] + ")" if c.get("reason") else ""))
        if bad:
            print("FAIL bench-smoke-%s %s" % (t, "; ".join(bad)))
        elif na:
            print("PASS bench-smoke-%s n/a: %s" % (t, na[0]))
        else:
            print("PASS bench-smoke-%s %s" % (t, ", ".join(figs)))
    if algorithms:
        bad = ["%s %s" % (job, a) for job, row in compressed.items() for a in ["lofi"] + algorithms
               if (row["lofi"] if a == "lofi" else row[a]["value"]) is None]
        if not compressed:
            bad = ["no compressed run recorded"]
        if bad:
            print("FAIL bench-smoke-compressed no figure: %s" % ", ".join(bad))
        else:
            print("PASS bench-smoke-compressed %s" % ", ".join(
                "%s %s/lofi %.2f" % (job, a, row[a]["ratio"]) for job, row in compressed.items() for a in algorithms))
    try:
        with open(json_path) as f:
            ok = json.load(f)["results"] is not None
    except (OSError, ValueError, KeyError):
        ok = False
    print("%s bench-smoke-json %s" % ("PASS" if ok else "FAIL", json_path))
    try:
        with open(png_path, "rb") as f:
            png_ok = f.read(8) == b"\x89PNG\r\n\x1a\n" and chart_error is None
    except OSError:
        png_ok = False
    print("%s bench-smoke-chart %s%s" % ("PASS" if png_ok else "FAIL", png_path,
                                          " (" + chart_error + ")" if chart_error else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
