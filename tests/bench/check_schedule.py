"""tests/bench/check_schedule.py — checks bench/run.py's round schedule (see
test_bench_schedule.c). Usage: check_schedule.py BENCH_DIR ROUNDS QUICK [broken|no_ocdbt]
Exits 0 when the schedule holds every property, 1 with the first failure on stderr."""

import sys

sys.path.insert(0, sys.argv[1])
import goals  # noqa: E402
import run  # noqa: E402


# bench_ckpt's records made by an op of another name (bench_ckpt.c's header).
RECORDED_BY = {"restore_ocdbt": "save_ocdbt", "async_blocking": "async", "async_blocking_cold": "async",
               "async_total": "async", "restore_reshard": "reshard", "restore_aligned": "reshard"}


def fail(msg):
    sys.stderr.write(f"check_schedule: {msg}\n")
    sys.exit(1)


def main():
    rounds, quick = int(sys.argv[2]), sys.argv[3] == "1"
    if len(sys.argv) > 4 and sys.argv[4] == "broken":
        run.CONTEXT_JOBS.add(("llm", "hdf5"))
        run.QUICK_ROUNDS[("llm", "hdf5")] = 1
    if len(sys.argv) > 4 and sys.argv[4] == "no_ocdbt":
        run.LLM_CKPT_OPS.remove("save_ocdbt")  # llm_ocdbt_save_vs_save's numerator is not measured
    if len(sys.argv) > 4 and sys.argv[4] == "broken-mpi":
        run.FULL_ROUNDS["mpi"] = 1  # the MPI goals on one round: fewer than the checker asks
    # The MPI section (state mpi) runs in its first rounds only, at least 3 of a full run's
    # (FULL_ROUNDS in run.py: its jobs take 40-60 s a round), and in QUICK's first.
    mpi_rounds = 1 if quick else min(3, rounds)
    r = run.Run.__new__(run.Run)
    r.quick, r.reps, r.rounds_of = quick, rounds, {}
    r.built = {name: name for name in run.PROGRAM.values()}
    schedule = []  # per round: [(state, prog, args)] in the order run
    for rnd in range(rounds):
        schedule.append([(st, p, a) for st in run.JOBS for p, a in r.jobs_of_round(rnd, st)])

    # Every job a goal's ratio needs runs in every round (QUICK: in the first round; it runs
    # zarr-python once on purpose). The llm limits and the device limit (fio) come from ckpt's
    # process, right before the ops they pair with.
    needed = {(st, prog) for num, den in goals.TIME_RATIOS.values() for st, prog, _ in (num, den)}
    needed.discard(("llm", "limits"))
    needed.discard(("llm", "device"))
    for rnd, jobs in enumerate(schedule):
        ran = {(st, p) for st, p, _ in jobs}
        for job in sorted(needed) if rnd == 0 or not quick else []:
            if job[0] == "mpi" and rnd >= mpi_rounds:
                continue
            if job not in ran:
                fail(f"round {rnd + 1}: {job[1]} on {job[0]} does not run (a goal needs it)")
        # ...with the op that records each ckpt-side measurement among its arguments (the
        # small state's goals and llm_ocdbt_save_vs_save need save_ocdbt, which also records
        # restore_ocdbt).
        args_of = {(st, p): a for st, p, a in jobs}
        for num, den in goals.TIME_RATIOS.values() if rnd == 0 or not quick else []:
            for st, prog, ops in (num, den):
                if run.PROGRAM.get(prog) != "bench_ckpt" or (st, prog) not in args_of:
                    continue
                for op in ops:
                    if RECORDED_BY.get(op, op) not in args_of[(st, prog)]:
                        fail(f"round {rnd + 1}: {prog} on {st} runs {args_of[(st, prog)]}, "
                             f"without the op that records {op}")
        # Each rank count's ckpt and parallel HDF5 jobs run back to back; the 4-rank ckpt job
        # holds every op the MPI goals need.
        order = [(st, p) for st, p, _ in jobs]
        for n in (1, 2, 4) if ("mpi", "mpi_ckpt_4") in ran else []:
            a, b = ("mpi", f"mpi_ckpt_{n}"), ("mpi", f"phdf5_{n}")
            if a not in order or b not in order or abs(order.index(a) - order.index(b)) != 1:
                fail(f"round {rnd + 1}: mpi_ckpt_{n} and phdf5_{n} do not run back to back: {order}")
            ops = [a for st, p, a in jobs if (st, p) == ("mpi", "mpi_ckpt_4")][0]
            if ops[:2] != ["save", "restore"] or "reshard" not in ops or "async" not in ops:
                fail(f"round {rnd + 1}: mpi_ckpt_4 ops {ops} lack save, restore (first), reshard or async")
        ckpt = [a for st, p, a in jobs if (st, p) == ("llm", "ckpt")][0]
        for before, op in (("limits", "save"), ("memcpy", "async")):
            if op in ckpt and (before not in ckpt or ckpt.index(before) + 1 != ckpt.index(op)):
                fail(f"round {rnd + 1}: llm ckpt ops {ckpt}: {before} is not right before {op}")
        if "save" not in ckpt or "restore" not in ckpt or "limits" not in ckpt:
            fail(f"round {rnd + 1}: llm ckpt ops {ckpt} lack limits, save or restore")
        if (rnd == 0 or not quick) and ("device" not in ckpt or ckpt.index("device") > ckpt.index("save")
                                        or "restore_cold" not in ckpt):
            fail(f"round {rnd + 1}: llm ckpt ops {ckpt}: no device limit before save, or no restore_cold")
        if not quick:
            for op in run.LLM_CKPT_OPS:
                if op not in ckpt:
                    fail(f"round {rnd + 1}: llm ckpt op {op} does not run")
        order = [(st, p) for st, p, _ in jobs]
        i = order.index(("small", "ckpt"))
        if order[i + 1] != ("small1", "ckpt"):
            fail(f"round {rnd + 1}: small1's save does not follow small's: {order}")

    # Each peer of a goal runs next to ckpt in most rounds (QUICK runs zarr-python once and
    # does not promise this).
    for key, (num, den) in goals.TIME_RATIOS.items() if not quick else []:
        a, b = (num[0], num[1]), (den[0], den[1])
        if a[1] != "ckpt" or b[1] == "ckpt" or b in (("llm", "limits"), ("llm", "device")):
            continue
        together, both = 0, 0
        for jobs in schedule:
            order = [(st, p) for st, p, _ in jobs]
            if a in order and b in order:
                both += 1
                together += abs(order.index(a) - order.index(b)) == 1
        if together * 2 <= both:
            fail(f"{key}: {b[1]} on {b[0]} runs next to ckpt in {together} of {both} rounds")

    # Context work never runs in the rounds (it has its pass after them); QUICK's trimmed jobs
    # run in their first rounds only.
    for rnd, jobs in enumerate(schedule):
        for st, p, _ in jobs:
            if not quick and run.is_context(st, p):
                fail(f"round {rnd + 1}: context job {p} on {st} runs in the rounds")
            keys = [k for k in ((st, p), ("*", p), (st, "*")) if k in run.QUICK_ROUNDS]
            if quick and keys and rnd >= min(run.QUICK_ROUNDS[k] for k in keys):
                fail(f"round {rnd + 1}: {p} on {st} runs, but QUICK trims it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
