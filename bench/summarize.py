"""bench/summarize.py — the median and range of the goal figures over several `make bench` runs.

One run's medians move by about ±10 % on this machine kind from one run to the next (the VM's
disk and memory, docs/performance.md "Page cache and deleted files"), so README's headline
table reports the median and the range (min–max) over runs taken at different times, and
whether each run met the goal.

Usage:
  python3 bench/summarize.py [RESULTS.json ...]
With no files it takes the last three full (not QUICK) runs kept by bench/run.py in
build/bench/runs/. It prints a Markdown table: figure, median, range, goal, runs that met it,
and the layout note of figures not measured on the default layout.
"""

import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goals  # noqa: E402


def default_runs(repo, count=3):
    """The last `count` full runs of build/bench/runs/ (their names sort by time)."""
    runs = sorted(p for p in glob.glob(os.path.join(repo, "build", "bench", "runs", "*.json"))
                  if not p.endswith("-quick.json"))
    return runs[-count:]


def load(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        if data.get("run", {}).get("quick"):
            sys.stderr.write(f"summarize: {path} is a QUICK run (1/16 states); its figures are "
                             "not comparable with full runs\n")
        runs.append((path, data))
    return runs


def fmt(v):
    return "n/a" if v is None else f"{v:.2f}"


def table(runs):
    lines = []
    when = ", ".join(f"{d['run'].get('date', '?')} ({str(d['run'].get('git_commit') or '?')[:7]})"
                     for _, d in runs)
    lines.append(f"Runs: {when}")
    lines.append("")
    lines.append("| figure | median | range | goal | met in runs | layout |")
    lines.append("|---|---|---|---|---|---|")
    for key, goal, _ in goals.GOALS:
        values = [d.get(key) for _, d in runs]
        have = [v for v in values if v is not None]
        met = sum(1 for v in have if goals.met(key, v))
        median = statistics.median(have) if have else None
        span = f"{fmt(min(have))}–{fmt(max(have))}" if have else "n/a"
        layout = "—" if key == "ckptgen_ms_per_kloc" else "OCDBT" if key in goals.LAYOUT_NOTES else "default"
        lines.append(f"| `{key}` | {fmt(median)} | {span} | ≤ {goal} | {met} of {len(values)} | {layout} |")
    return "\n".join(lines)


def main(argv):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = argv[1:] or default_runs(repo)
    if not paths:
        sys.stderr.write("summarize: no runs given and none kept in build/bench/runs/ "
                         "(run `make bench` first)\n")
        return 2
    try:
        runs = load(paths)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"summarize: {e}\n")
        return 2
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
