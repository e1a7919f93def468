"""tests/bench/check_summary.py — checks bench/summarize.py's arithmetic (see
test_bench_summary.c): three results files with known figures give the median, the range and
the count of runs that met each goal, and a figure missing from one run is left out of its
median, not counted as met. Usage: check_summary.py BENCH_DIR TMPDIR
Exits 0 when every row is right, 1 with the first wrong row on stderr."""

import json
import os
import sys

sys.path.insert(0, sys.argv[1])
import goals  # noqa: E402
import summarize  # noqa: E402


def fail(msg):
    sys.stderr.write(f"check_summary: {msg}\n")
    sys.exit(1)


def write_run(tmp, name, figures, quick=False):
    data = {k: None for k in goals.GOAL_KEYS}
    data.update(figures)
    data["run"] = {"date": name, "quick": quick, "git_commit": "0123456789abcdef"}
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def row(text, key):
    for line in text.splitlines():
        if line.startswith(f"| `{key}` |"):
            return [c.strip() for c in line.strip("|").split("|")]
    fail(f"no row for {key}")


def main():
    tmp = sys.argv[2]
    paths = [write_run(tmp, "a", {"save_vs_device": 1.05, "small_vs_large": 2.4}),
             write_run(tmp, "b", {"save_vs_device": 0.95, "small_vs_large": 1.9}),
             write_run(tmp, "c", {"save_vs_device": 1.30})]
    text = summarize.table(summarize.load(paths))
    got = row(text, "save_vs_device")
    if got[1:5] != ["1.05", "0.95–1.30", "≤ 1.1", "2 of 3"] or got[5] != "default":
        fail(f"save_vs_device row {got}")
    got = row(text, "small_vs_large")  # missing in run c: median of two, met in one of three
    if got[1:5] != ["2.15", "1.90–2.40", "≤ 2.0", "1 of 3"] or got[5] != "OCDBT":
        fail(f"small_vs_large row {got}")
    got = row(text, "restore_vs_read")  # in no run
    if got[1:5] != ["n/a", "n/a", "≤ 1.2", "0 of 3"]:
        fail(f"restore_vs_read row {got}")
    # The default runs are the last three full ones of build/bench/runs, by name (= time).
    runs_dir = os.path.join(tmp, "repo", "build", "bench", "runs")
    os.makedirs(runs_dir)
    for name in ("20261201T000000Z", "20261202T000000Z", "20261203T000000Z", "20261204T000000Z"):
        open(os.path.join(runs_dir, name + ".json"), "w").close()
    open(os.path.join(runs_dir, "20261205T000000Z-quick.json"), "w").close()
    picked = [os.path.basename(p) for p in summarize.default_runs(os.path.join(tmp, "repo"))]
    if picked != ["20261202T000000Z.json", "20261203T000000Z.json", "20261204T000000Z.json"]:
        fail(f"default runs {picked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
