"""bench/run.py — the orchestrator of `make bench` (called as `scripts/bench BUILD_DIR`).

It builds the C programs of bench/, writes the state manifests, then runs rounds: in each
round, for each state, every program once, each as its own process, ckpt between two of its
peers (rotated from round to round, order_of_round), and on the llm state ckpt's process also
measures the limits right before the ops they pair with. Work that feeds only the context
section runs once after the last round, within the time budget (CONTEXT_JOBS). The MPI section
(state "mpi": the llm state's bytes split across 1, 2 and 4 ranks, ckpt against parallel HDF5)
runs under mpirun in the first MPI_ROUNDS rounds only. The figures of performance.md are medians
over rounds of ratios paired within a round (goals.py). It writes results.json and prints the
goals table.

Environment:
  QUICK=1          states scaled down 16x, 3 rounds, more work trimmed (QUICK_ROUNDS): the whole
                   run in about a minute (the MPI section's one round adds 15-25 s)
  BENCH_REPS=N     rounds (default 5; 3 with QUICK)
  BENCH_STATES=a,b only these states (llm, large, small, small1, mpi)
  BENCH_BUDGET=S   seconds the whole run may take (default 570; 55 with QUICK; 0 = no limit):
                   past the first round, the slowest jobs give up rounds to stay within it
  BENCH_DIR=DIR    where the data goes (default BUILD_DIR/bench/data). Each process's files are
                   truncated once it ends and the whole directory removed after the last job:
                   no inode is freed while the run measures (bench_retire_file in
                   bench_common.h says why)
  BENCH_RESULTS=F  where results go (default bench/results.json; its run.quick says which kind);
                   a copy of every run also goes to BUILD_DIR/bench/runs/<UTC time>[-quick].json,
                   which bench/summarize.py reads for the median and range over runs
  CC               the compiler for the C programs (default cc)
  BENCH_SETTLE=S   seconds a full run waits, before it starts, after the previous run removed
                   its data (default 360; 0 = do not wait): see settle() below
"""

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import build_tools  # noqa: E402
import goals  # noqa: E402
import machine  # noqa: E402
import peer_common  # noqa: E402
import state  # noqa: E402

PYTHON = "/usr/bin/python3"
PROCESS_TIMEOUT = 900

# What runs on each state, in the order a round runs it. ckpt's ops are bench_ckpt's (see its
# header comment): on the llm state it also measures the limits its goals compare with, right
# before the ops they pair with (the device's limit with fio and limits before save, memcpy
# before async), so those pairs are seconds apart in one process. The peers run where a goal (or its calibration) needs them;
# the small state's 10,000 files make zarr-python and numpy.save take minutes there, so they
# are left out.
LLM_CKPT_OPS = ["device", "limits", "save", "restore", "restore_cold", "save_ocdbt", "save_chunked", "reshard", "partial",
                "memcpy", "async"]
JOBS = {
    "llm": [("hdf5", []), ("ckpt", LLM_CKPT_OPS), ("numpy", []), ("zarr", ["default"]),
            ("limits", ["write_nosync", "read_cold"]), ("zarr_none", ["none"]),
            ("ckpt_pwrite", ["save", "restore"]), ("ckpt_direct", ["save"]),
            ("ckpt_fsync_end", ["save"]), ("ckpt_syncfs", ["save"])],
    "large": [("limits", []), ("ckpt", ["save", "restore"]), ("hdf5", [])],
    # The small state's goals use OCDBT (save_ocdbt, which also restores it as restore_ocdbt);
    # its default-layout save (10,000 directories, 20-30 s) is context.
    "small": [("hdf5", []), ("ckpt", ["save_ocdbt"]), ("limits", []),
              ("ckpt_zarr", ["save", "restore"])],
    "small1": [("ckpt", ["save"])],
    # The MPI section (docs/performance.md, "The MPI section"): the llm state's bytes split
    # across 1, 2 and 4 ranks (bench_split.h), ckpt with a process group against parallel HDF5
    # on one shared file; the 4-rank ckpt job also restores into a 3-rank split and measures
    # the async save's blocking time against each rank's memcpy.
    "mpi": [("mpi_ckpt_1", ["save", "restore"]), ("phdf5_1", []),
            ("mpi_ckpt_2", ["save", "restore"]), ("phdf5_2", []),
            ("mpi_ckpt_4", ["save", "restore", "reshard", "async"]), ("phdf5_4", [])],
}
# The peers of each state's ckpt job: a round puts ckpt between two of them, rotating which two
# from round to round (see order_of_round), so every paired peer ran right before or right
# after ckpt in most rounds.
PEERS = {"llm": ("hdf5", "numpy", "zarr"), "large": ("limits", "hdf5"), "small": ("hdf5",)}
# States whose figures pair with each other's (small_vs_large) lose rounds together, and run
# back to back: small1's one ckpt save follows small's ckpt job.
STATE_GROUP = {"small1": "small"}
PROGRAM = {"limits": "bench_limits", "hdf5": "bench_hdf5", "ckpt": "bench_ckpt"}
# The MPI section's jobs: program and number of ranks. Each runs as
# `mpirun --oversubscribe --bind-to none -np N PROGRAM MANIFEST DIR ARGS` (4 ranks on this
# machine kind's 2 cores share them; unbound, the kernel balances them).
MPI_RANKS = {}
for _n in (1, 2, 4):
    PROGRAM[f"mpi_ckpt_{_n}"], MPI_RANKS[f"mpi_ckpt_{_n}"] = "bench_mpi_ckpt", _n
    PROGRAM[f"phdf5_{_n}"], MPI_RANKS[f"phdf5_{_n}"] = "bench_mpi_hdf5", _n
# States that run in their first N rounds only in a full run: the MPI section's round is six
# mpirun jobs, each saving and restoring 1.06 GiB durably (26 s at QUICK's 1/16 on a loaded
# machine, mostly job starts and per-file costs; an estimated 40-90 s at full size, not yet
# measured), so it runs 3 of the 5 rounds to leave the single-process goals their time budget.
FULL_ROUNDS = {"mpi": 3}
# Variants of ckpt's job: bench_ckpt run with an environment that selects another I/O backend
# or durability mode of the engine (docs/io-engine.md), or the default layout where the goal
# job uses OCDBT. BENCH_PROG makes bench_ckpt label its records with the variant's
# name, so they never mix with the default job's.
VARIANTS = {
    "ckpt_pwrite": {"CKPT_IO_BACKEND": "pwrite"},    # pwrite/pread workers instead of io_uring
    "ckpt_direct": {"CKPT_IO_FLUSH": "direct"},      # O_DIRECT writes instead of write-behind
    "ckpt_fsync_end": {"CKPT_IO_FLUSH": "end"},      # buffered writes, one fsync per file
    "ckpt_syncfs": {"CKPT_IO_DURABILITY": "syncfs"},  # one syncfs per group, not 909 fsyncs
    "ckpt_zarr": {},                                 # the small state in the default layout
}
for _name in VARIANTS:
    PROGRAM[_name] = "bench_ckpt"
# Work no goal depends on: the large state (its ratios are context, and README's headline on
# it), zarr-python's compressor=None variant, bench_limits' own process on llm (write_nosync
# and read_cold; the llm limits the goals use come from bench_ckpt) and on the small state,
# and ckpt's variants. It runs once, after the last round, and only while the run is within
# its time budget, so the goal figures get their rounds first (docs/performance.md, "How a run
# goes").
CONTEXT_JOBS = {("*", "zarr_none"), ("large", "*"), ("llm", "limits"), ("small", "limits")} | {
    ("*", name) for name in VARIANTS}
# QUICK runs in rounds what it runs (round counts per job below), with no context pass: the
# large state, the MPI section, zarr-python (hundreds of per-file fsyncs even scaled down) and ckpt's variants
# in the first round only, ckpt's device/restore_cold/save_chunked/reshard/partial/memcpy/async
# ops too, and neither zarr-python without compressor nor bench_limits' own processes.
QUICK_ROUNDS = {("*", "zarr"): 1, ("large", "*"): 1, ("mpi", "*"): 1, ("*", "zarr_none"): 0, ("llm", "limits"): 0,
                ("small", "limits"): 0, **{("*", name): 1 for name in VARIANTS}}
QUICK_LATER_CKPT_OPS = ("limits", "save", "restore", "save_ocdbt")


def is_context(st, prog):
    return any(key in CONTEXT_JOBS for key in ((st, prog), ("*", prog), (st, "*")))


def job_args(quick, rnd, st, prog, args):
    """The args of a job in round rnd, or None when it sits this round out."""
    if not quick and is_context(st, prog):
        return None
    if not quick and rnd >= FULL_ROUNDS.get(st, rnd + 1):
        return None
    for key in ((st, prog), ("*", prog), (st, "*")):
        if quick and key in QUICK_ROUNDS and rnd >= QUICK_ROUNDS[key]:
            return None
    if quick and prog == "ckpt" and rnd > 0:
        return [op for op in args if op in QUICK_LATER_CKPT_OPS]
    return args


def order_of_round(rnd, st, jobs):
    """jobs (a list of (prog, args)) in the order round rnd runs them: the rest (context work)
    first, then ckpt between two of its peers, the peers rotated by the round number. ckpt comes
    last but for one peer, so the small state's ckpt job is followed by small1's. The MPI
    section runs each rank count's ckpt and parallel HDF5 jobs back to back, which one first
    alternating from round to round."""
    if st == "mpi":
        out = []
        for n in sorted({MPI_RANKS[p] for p, _ in jobs}):
            pair = [j for j in jobs if MPI_RANKS[j[0]] == n]
            out += pair[::-1] if rnd % 2 else pair
        return out
    peers = [j for j in jobs if j[0] in PEERS.get(st, ())]
    ckpt = [j for j in jobs if j[0] == "ckpt"]
    rest = [j for j in jobs if j not in peers and j not in ckpt]
    if peers:
        k = rnd % len(peers)
        peers = peers[k:] + peers[:k]
    return rest + peers[:1] + ckpt + peers[1:]


def log(msg):
    sys.stdout.write(f"[bench] {msg}\n")
    sys.stdout.flush()


class Run:
    def __init__(self, repo, build_dir):
        self.repo = repo
        self.build_dir = build_dir
        self.quick = os.environ.get("QUICK", "") not in ("", "0")
        self.scale = 16 if self.quick else 1
        self.reps = int(os.environ.get("BENCH_REPS") or (3 if self.quick else 5))
        wanted = os.environ.get("BENCH_STATES")
        self.states = [s for s in JOBS if not wanted or s in wanted.split(",")]
        self.cc = os.environ.get("CC") or "cc"
        self.out_dir = os.path.join(build_dir, "bench")
        self.log_dir = os.path.join(self.out_dir, "logs")
        self.results_path = os.environ.get("BENCH_RESULTS") or os.path.join(repo, "bench", "results.json")
        self.samples = goals.Samples()
        self.notes = {}        # (state, prog) -> [notes printed by the program]
        self.failures = {}     # (state, prog) -> [failure texts]
        self.fingerprints = {}  # state -> (fingerprint, who)
        self.manifests = {}    # state -> (path, bytes, arrays)
        self.built, self.build_failed = {}, {}
        # Seconds for the whole run (0: no limit): 9.5 minutes, or 55 s with QUICK.
        self.budget = float(os.environ.get("BENCH_BUDGET") or (55 if self.quick else 570))
        self.job_seconds = {}  # (state, prog) -> wall seconds of each of its runs so far
        self.ckptgen_seconds = None
        self.rounds_of = {}    # (state, prog) -> rounds left to it by the time budget
        self.context_skipped = []  # "prog on state" of context jobs the budget left out

    # ---------------------------------------------------------------- one process

    def command(self, prog, args, manifest, data):
        if prog in MPI_RANKS:
            return [self.mpirun, "--oversubscribe", "--bind-to", "none", "-np", str(MPI_RANKS[prog]),
                    self.built[PROGRAM[prog]], manifest, data] + args
        if prog in PROGRAM:
            return [self.built[PROGRAM[prog]], manifest, data] + args
        script = "peer_numpy.py" if prog == "numpy" else "peer_zarr.py"
        return [PYTHON, os.path.join(self.repo, "bench", script), manifest, data] + args

    def available(self, prog):
        return prog not in PROGRAM or PROGRAM[prog] in self.built

    def run_one(self, rnd, st, prog, args, data_root):
        manifest = self.manifests[st][0]
        data = os.path.join(data_root, f"{st}-{prog}-r{rnd}")
        os.makedirs(data)
        os.sync()  # nothing left dirty by the previous process runs behind this one
        cmd = self.command(prog, args, manifest, data)
        t0 = time.monotonic()
        try:
            env = None
            if prog in VARIANTS:
                env = dict(os.environ, BENCH_PROG=prog, **VARIANTS[prog])
            if prog in MPI_RANKS:
                # Open MPI refuses to start as root without both (tests/mpi does the same).
                env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROCESS_TIMEOUT, cwd=self.repo,
                                  env=env)
            out, err, rc = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err, rc = f"timed out after {PROCESS_TIMEOUT} s", -1
        elapsed = time.monotonic() - t0
        with open(os.path.join(self.log_dir, f"{st}-{prog}-r{rnd}.log"), "w") as f:
            f.write("$ " + " ".join(cmd) + "\n" + out + err)
        for line in out.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "fingerprint" in rec:
                self.check_fingerprint(st, prog, rec["fingerprint"])
            elif "note" in rec:
                notes = self.notes.setdefault((st, prog), [])
                if rec["note"] not in notes:
                    notes.append(rec["note"])
            else:
                self.samples.add(rnd, rec)
        if rc != 0:
            last = [l for l in err.splitlines() if l.strip()]
            text = f"round {rnd + 1}: exit status {rc}: {last[-1] if last else 'no message'}"
            self.failures.setdefault((st, prog), []).append(text)
            log(f"  FAILED {st} {prog}: {text}")
        try:
            peer_common.retire_tree(data)  # removed with data_root after the last job
        except OSError as e:
            log(f"  cannot truncate the files of {data}: {e}")
        return elapsed

    def check_fingerprint(self, st, prog, fp):
        if st not in self.fingerprints:
            self.fingerprints[st] = (fp, prog)
        elif self.fingerprints[st][0] != fp:
            other = self.fingerprints[st][1]
            raise SystemExit(f"bench: {prog} and {other} generated different bytes for state {st} "
                             f"(fingerprints {fp} and {self.fingerprints[st][0]}): "
                             "bench_common.c and state.py disagree")

    # ---------------------------------------------------------------- the run

    def settle(self):
        """Waits until BENCH_SETTLE seconds (default 360) have passed since the previous run
        removed its data directory (its time is in BUILD/bench/last-removal). That removal frees
        every inode the run created at once (over 30,000: the small state's default-layout save
        alone makes 10,000 directories and 20,000 files), and on ext4 without a journal, this
        machine kind's disk, the inode allocator skips and looks up every inode freed in the last
        60-300 s (docs/performance.md, "Deleted inodes"): a run started right after another pays
        that scan on every file ckpt's default layout creates (creating one llm save's 900 files
        took 0.34-0.37 s right after 900 deletions, 0.026-0.05 s with none), while the peers
        that write one file pay nothing. QUICK runs do not wait (they are not a measurement). Returns the seconds since that removal when the run started, or None."""
        try:
            with open(self.removal_stamp) as f:
                removed = float(f.read().strip())
        except (OSError, ValueError):
            return None
        settle = float(os.environ.get("BENCH_SETTLE") or 360)
        waited = 0.0
        age = time.time() - removed
        if not self.quick and settle > 0 and 0 <= age < settle:
            waited = settle - age
            log(f"waiting {waited:.0f} s: the previous run freed its inodes {age:.0f} s ago "
                "(BENCH_SETTLE=0 skips the wait; docs/performance.md, \"Deleted inodes\")")
            time.sleep(waited)
        return round(age + waited, 1)

    def execute(self):
        os.makedirs(self.log_dir, exist_ok=True)
        self.removal_stamp = os.path.join(self.out_dir, "last-removal")
        self.since_removal = self.settle()
        started = time.monotonic()
        load_start = machine.loadavg()
        log(f"building the C programs with {self.cc}")
        self.built, self.build_failed = build_tools.build(self.repo, self.build_dir, self.out_dir, self.cc)
        self.mpirun = shutil.which("mpirun")
        if self.mpirun is None:
            for name in ("bench_mpi_ckpt", "bench_mpi_hdf5"):
                if self.built.pop(name, None) is not None:
                    self.build_failed[name] = "mpirun not found (Open MPI's openmpi-bin; scripts/install-deps)"
        for name, err in self.build_failed.items():
            log(f"  {name} did not build: {err}")
        for st in self.states:
            # QUICK's 1/16 states get names of their own, so a QUICK run never leaves scaled-down
            # manifests where a full-size state is expected (profiling by hand uses them).
            path = os.path.join(self.out_dir, f"{st}{'.quick' if self.quick else ''}.manifest")
            nbytes, narrays = state.write_manifest(st, self.scale, path)
            self.manifests[st] = (path, nbytes, narrays)
        data_parent = os.environ.get("BENCH_DIR") or os.path.join(self.out_dir, "data")
        os.makedirs(data_parent, exist_ok=True)
        data_root = tempfile.mkdtemp(prefix="run-", dir=data_parent)
        info = machine.info(data_root, self.cc, PYTHON)
        # The generator benchmark first: its duration is known before the rounds are budgeted.
        t0 = time.monotonic()
        ckptgen, ckptgen_note = self.run_ckptgen_bench()
        self.ckptgen_seconds = round(time.monotonic() - t0, 1)
        try:
            for rnd in range(self.reps):
                if rnd >= 1 and self.budget:
                    self.plan_rounds(rnd, self.budget - (time.monotonic() - started))
                for st in self.states:
                    for prog, args in self.jobs_of_round(rnd, st):
                        secs = self.run_one(rnd, st, prog, args, data_root)
                        self.job_seconds.setdefault((st, prog), []).append(secs)
                        log(f"round {rnd + 1}/{self.reps} {st:6} {prog:9} {secs:6.1f} s")
            if not self.quick:
                self.run_context(data_root, started)
        finally:
            shutil.rmtree(data_root, ignore_errors=True)
            with open(self.removal_stamp, "w") as f:
                f.write(f"{time.time():.3f}\n")
        info["loadavg_start"] = load_start
        info["loadavg_end"] = machine.loadavg()
        results = self.figures(ckptgen, ckptgen_note, info, time.monotonic() - started)
        os.makedirs(os.path.dirname(self.results_path), exist_ok=True)
        with open(self.results_path, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        self.keep_in_history(results)
        print_table(results)
        log(f"results written to {self.results_path} ({time.monotonic() - started:.0f} s)")
        return 1 if self.failures else 0

    def keep_in_history(self, results):
        """A copy of every run's results in BUILD_DIR/bench/runs/, named by the UTC time it
        ended (and "-quick" for QUICK runs), so bench/summarize.py can report the median and
        range of several runs at different times (results.json holds only the last)."""
        runs_dir = os.path.join(self.out_dir, "runs")
        os.makedirs(runs_dir, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"{stamp}{'-quick' if self.quick else ''}.json"
        with open(os.path.join(runs_dir, name), "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")

    def run_context(self, data_root, started):
        """The context pass after the last round: each CONTEXT_JOBS job once, as round index
        self.reps (so its ratios pair within the pass), skipped once the run is past its
        budget."""
        for st in self.states:
            jobs = [(p, a) for p, a in JOBS[st] if is_context(st, p) and self.available(p)]
            for prog, args in order_of_round(0, st, jobs):
                if self.budget and time.monotonic() - started >= self.budget:
                    self.context_skipped.append(f"{prog} on {st}")
                    log(f"time budget: context {prog} on {st} skipped")
                    continue
                secs = self.run_one(self.reps, st, prog, args, data_root)
                self.job_seconds.setdefault((st, prog), []).append(secs)
                log(f"context   {st:6} {prog:9} {secs:6.1f} s")

    def jobs_of_round(self, rnd, st):
        """(prog, args) to run on state st in round rnd, in the order to run them."""
        jobs = [(p, job_args(self.quick, rnd, st, p, a)) for p, a in JOBS[st] if self.available(p)]
        jobs = [(p, a) for p, a in jobs if a is not None]
        jobs = [(p, a) for p, a in jobs if rnd < self.rounds_of.get((st, p), self.reps)]
        return order_of_round(rnd, st, jobs)

    def cost(self, job):
        """Expected wall seconds of one more run of job: the mean of its runs so far."""
        xs = self.job_seconds[job]
        return sum(xs) / len(xs)

    def plan_rounds(self, rnd, remaining):
        """Keeps the run within its time budget; called before every round from the second on.
        When the rounds still to come, at the durations measured so far, would not fit in
        `remaining` seconds, rounds are taken away: first from jobs no goal depends on
        (by default none: CONTEXT_JOBS run after the rounds), most expensive first, down to
        the rounds they already ran; then from whole states (small and small1 together): the
        MPI section first, then the state that would spend the most time in its remaining
        rounds. Cutting a state's jobs
        together keeps the pairs of every ratio in the same rounds. A job always runs in a
        prefix of the rounds, so cutting it means lowering its last round. Each call plans
        afresh for the jobs still running: a cut made when the first rounds were slow is
        undone when later rounds show there is time after all."""
        planned = dict(self.rounds_of)
        for job, last in planned.items():
            if last > rnd:
                del self.rounds_of[job]
        later = {}
        for st in self.states:
            for prog, _ in JOBS[st]:
                job = (st, prog)
                if job in self.job_seconds:
                    later[job] = sum(1 for r in range(rnd, self.reps)
                                     if any(p == prog for p, _ in self.jobs_of_round(r, st)))
        needed = {(st, prog) for num, den in goals.TIME_RATIOS.values() for st, prog, _ in (num, den)}
        needed.add(("llm", "ckpt"))
        total = sum(self.cost(j) * n for j, n in later.items())
        before = dict(later)
        for job in sorted((j for j in later if j not in needed), key=lambda j: -self.cost(j) * later[j]):
            if total <= remaining:
                break
            total -= self.cost(job) * later[job]
            later[job] = 0
        group = lambda st: STATE_GROUP.get(st, st)  # noqa: E731
        while total > remaining:
            def group_cost(g):
                top = max([later[j] for j in later if group(j[0]) == g] + [0])
                return top * sum(self.cost(j) for j in later if group(j[0]) == g and later[j] == top)
            # The MPI section (FULL_ROUNDS) gives up its rounds before the single-process
            # states do: their goals are the headline, its own are measured on fewer rounds anyway.
            first = [st for st in FULL_ROUNDS if st in self.states and group_cost(group(st)) > 0]
            g = group(first[0]) if first else max({group(st) for st in self.states}, key=group_cost)
            if group_cost(g) == 0:
                break
            top = max(later[j] for j in later if group(j[0]) == g)
            for j in later:
                if group(j[0]) == g and later[j] == top:
                    later[j] -= 1
                    total -= self.cost(j)
        for job, n in later.items():
            if n < before[job]:
                self.rounds_of[job] = rnd + n
            if self.rounds_of.get(job) != planned.get(job):
                st, prog = job
                last = self.rounds_of.get(job, self.reps)
                log(f"time budget: {prog} on {st} stops after round {last} "
                    f"({self.cost(job):.0f} s a run, {remaining:.0f} s left)")

    def run_ckptgen_bench(self):
        """Runs bench/ckptgen_bench OUT.json (engineer G2's generator benchmark) if present."""
        tool = os.path.join(self.repo, "bench", "ckptgen_bench")
        if not os.path.exists(tool):
            return None, "bench/ckptgen_bench is not there yet"
        if not os.access(tool, os.X_OK):
            return None, "bench/ckptgen_bench is not executable"
        out = os.path.join(self.out_dir, "ckptgen.json")
        if os.path.exists(out):
            os.unlink(out)
        env = dict(os.environ, CKPTGEN=os.path.join(self.build_dir, "bin", "ckptgen"),
                   CKPT_BUILD_DIR=self.build_dir, BUILD=self.build_dir)
        log("running bench/ckptgen_bench")
        # QUICK: fewer runs and no 500,000-line schema (its own options, see its usage line).
        extra = ["--runs", "3", "--sizes", "5000,50000"] if self.quick else []
        try:
            proc = subprocess.run([tool, out] + extra, capture_output=True, text=True, cwd=self.repo, env=env,
                                  timeout=PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None, f"bench/ckptgen_bench timed out after {PROCESS_TIMEOUT} s"
        with open(os.path.join(self.log_dir, "ckptgen_bench.log"), "w") as f:
            f.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            last = [l for l in proc.stderr.splitlines() if l.strip()]
            return None, f"bench/ckptgen_bench exited {proc.returncode}: {last[-1] if last else ''}"
        try:
            with open(out) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            return None, f"bench/ckptgen_bench wrote no readable {out}: {e}"
        if not isinstance(data, dict):
            return None, f"bench/ckptgen_bench wrote {type(data).__name__}, not an object"
        return data, None

    # ---------------------------------------------------------------- figures

    def why_missing(self, st, prog, ops):
        if prog == "device":
            prog = "ckpt"  # fio runs from bench_ckpt's process (op "device"), its notes are ckpt's
        if st not in self.states:
            return f"state {st} was not run (BENCH_STATES)"
        if prog in PROGRAM and PROGRAM[prog] in self.build_failed:
            return f"{PROGRAM[prog]} did not build: {self.build_failed[PROGRAM[prog]]}"
        for text in self.notes.get((st, prog), []):
            if any(text.startswith(op) for op in ops + [o.split("_")[0] for o in ops]):
                return f"{prog} on {st}: {text}"
        if (st, prog) in self.failures:
            return f"{prog} on {st} failed: {self.failures[(st, prog)][0]}"
        if self.notes.get((st, prog)):
            return f"{prog} on {st}: {self.notes[(st, prog)][0]}"
        return f"no {'/'.join(ops)} figure from {prog} on {st}"

    def figures(self, ckptgen, ckptgen_note, info, duration):
        s = self.samples
        results = {k: None for k in goals.GOAL_KEYS}
        notes, rounds = {}, {}
        for key, (num, den) in goals.TIME_RATIOS.items():
            value, n = goals.paired_ratio(s, num, den)
            rounds[key] = n
            if value is None:
                side = num if not s.side(num) else den
                notes[key] = self.why_missing(*side)
            else:
                results[key] = round(value, 4)
        if results["blocking_vs_memcpy"] is None and not s.side(goals.TIME_RATIOS["blocking_vs_memcpy"][0]):
            detail = self.why_missing("llm", "ckpt", ["async"])
            notes["blocking_vs_memcpy"] = f"n/a (async save not available: {detail})"
        else:
            blocking = s.median_time("llm", "ckpt", "async_blocking")
            total = s.median_time("llm", "ckpt", "async_total")
            if blocking and total and blocking >= 0.9 * total:
                notes["blocking_vs_memcpy"] = (f"the async save blocked for {blocking:.3f} s of "
                                               f"{total:.3f} s: it does not run in the background")

        if "llm" in self.manifests:
            value, n = goals.value_ratio(s, ("llm", "ckpt", "async_extra_rss_bytes"), self.manifests["llm"][1])
            results["extra_rss_vs_state"] = None if value is None else round(value, 4)
            rounds["extra_rss_vs_state"] = n
        if results["extra_rss_vs_state"] is None:
            notes["extra_rss_vs_state"] = ("n/a (async save not available: "
                                           f"{self.why_missing('llm', 'ckpt', ['async'])})")

        amp, n, amp_note = self.partial_amplification()
        results["partial_read_amplification"] = amp
        rounds["partial_read_amplification"] = n
        if amp_note:
            notes["partial_read_amplification"] = amp_note

        for key, (num, den) in goals.TIME_RATIOS.items():
            n = rounds.get(key, 0)
            if results[key] is not None and n < self.reps and key not in notes:
                trimmed = [f"{prog} on {st} gave up rounds to the time budget "
                           f"({self.cost((st, prog)):.0f} s a run)"
                           for st, prog, _ in (num, den) if (st, prog) in self.rounds_of]
                trimmed += [f"{prog} on {st} failed in {len(self.failures[(st, prog)])} round(s): "
                            f"{self.failures[(st, prog)][0]}"
                            for st, prog, _ in (num, den) if (st, prog) in self.failures]
                trimmed = list(dict.fromkeys(trimmed))  # reshard_vs_aligned: one job on both sides
                if not trimmed and self.quick:
                    trimmed = ["QUICK runs it in fewer rounds (QUICK_ROUNDS in bench/run.py)"]
                elif not trimmed and num[0] in FULL_ROUNDS:
                    trimmed = [f"the {num[0]} section runs in its first {FULL_ROUNDS[num[0]]} rounds "
                               "(FULL_ROUNDS in bench/run.py)"]
                notes[key] = f"median of {n} round(s), not {self.reps}" + (
                    ": " + "; ".join(trimmed) if trimmed else "")

        for key, note in self.read_floor_notes().items():
            notes[key] = (notes[key] + "; " if key in notes else "") + note
        for key, text in goals.LAYOUT_NOTES.items():
            notes[key] = text + ("; " + notes[key] if key in notes else "")

        context_ckptgen = {}
        if ckptgen is not None:
            for k, v in ckptgen.items():
                if k in results and k in ("ckptgen_ms_per_kloc",):
                    results[k] = v
                elif k == "notes" and isinstance(v, dict):
                    notes.update({nk: nv for nk, nv in v.items() if nk.startswith("ckptgen")})
                else:
                    context_ckptgen[k] = v
        if results["ckptgen_ms_per_kloc"] is None:
            notes.setdefault("ckptgen_ms_per_kloc", ckptgen_note or "bench/ckptgen_bench gave no ckptgen_ms_per_kloc")

        out = dict(results)
        out["notes"] = notes
        out["goals"] = {k: {"goal": f"<= {g}", "met": goals.met(k, results[k]), "rounds": rounds.get(k),
                            "what": what} for k, g, what in goals.GOALS}
        out["context"] = self.context(context_ckptgen)
        out["machine"] = info
        out["run"] = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": self.quick, "scale": self.scale, "rounds": self.reps, "states": self.states,
            "duration_seconds": round(duration, 1), "git_commit": self.git_commit(),
            "method": ("each figure is the median over rounds of the ratio of two measurements taken in "
                       "the same round: ckpt and the limits in one process, seconds apart; ckpt and "
                       "each peer in processes run back to back in most rounds; every timed section "
                       "starts right after pre-warming S*1.25+64 MiB of memory (bench_common.h: "
                       "bench_prewarm)"),
            "budget_seconds": self.budget or None,
            "seconds_since_previous_removal": self.since_removal,
            "ckptgen_bench_seconds": self.ckptgen_seconds,
            "context_skipped_by_budget": self.context_skipped,
            "rounds_cut_by_budget": {f"{st}/{prog}": n for (st, prog), n in self.rounds_of.items()},
            "process_seconds": {f"{st}/{prog}": [round(t, 1) for t in ts] for (st, prog), ts in self.job_seconds.items()},
            "failures": {f"{st}/{prog}": texts for (st, prog), texts in self.failures.items()},
            "program_notes": {f"{st}/{prog}": texts for (st, prog), texts in self.notes.items()},
        }
        return out

    def read_floor_notes(self):
        """Notes for the restore goals set against the peers (restore_vs_hdf5 ≤ 0.1,
        restore_vs_zarr_python ≤ 0.1): what each asks of ckpt in units of this run's hot read()
        limit. The goals came from a Python-side calibration (h5py at 15x a read); libhdf5's C
        API reads a contiguous dataset with one pread, at about the read() limit, so a goal of
        0.1 against it asks for a restore ten times faster than reading the bytes once."""
        s = self.samples
        read = ("llm", "limits", ["read_hot"])
        notes = {}
        for key in ("restore_vs_hdf5", "restore_vs_zarr_python"):
            peer = goals.TIME_RATIOS[key][1]
            ratio, n = goals.paired_ratio(s, peer, read)
            if ratio is None:
                continue
            need = dict((k, g) for k, g, _ in goals.GOALS)[key] * ratio
            notes[key] = (f"the goal asks for a restore in {need:.2f}x the time of one read() of the "
                          f"bytes ({peer[1]} restore / read_hot = {ratio:.2f}, median of {n})"
                          + ("; no reader reaches that" if need < 0.5 else ""))
        return notes

    def partial_amplification(self):
        s = self.samples
        chunk = s.values.get(("llm", "ckpt", "partial_chunk_bytes"), {})
        dev = s.values.get(("llm", "ckpt", "partial_device_read_bytes"), {})
        rchar = s.values.get(("llm", "ckpt", "partial_rchar_bytes"), {})
        ratios, used_rchar = [], False
        for rnd, c in chunk.items():
            if not c:
                continue
            d = dev.get(rnd, 0)
            # Device reads below half the chunk bytes mean the cache was not dropped (or the
            # kernel does not account them): fall back to the bytes passed through read calls.
            if d >= 0.5 * c:
                ratios.append(d / c)
            elif rchar.get(rnd):
                ratios.append(rchar[rnd] / c)
                used_rchar = True
        if not ratios:
            return None, 0, self.why_missing("llm", "ckpt", ["partial", "restore_partial", "layout"])
        note = None
        if used_rchar:
            note = "measured with rchar (bytes through read calls) in some rounds: device reads were not counted"
        return round(statistics.median(ratios), 4), len(ratios), note

    def context(self, ckptgen):
        s = self.samples
        seconds, values = {}, {}
        for (st, prog, op) in sorted(s.times):
            seconds.setdefault(st, {}).setdefault(prog, {})[op] = round(s.median_time(st, prog, op), 6)
        for (st, prog, key) in sorted(s.values):
            values.setdefault(st, {}).setdefault(prog, {})[key] = s.median_value(st, prog, key)
        ratios, unpaired = {}, []
        for key, (num, den) in goals.CONTEXT_RATIOS.items():
            value, _ = goals.paired_ratio(s, num, den)
            if value is None:
                # A goal job against a context job (run once, after the rounds): the ratio of
                # their medians, listed as unpaired.
                a, b = s.side(num), s.side(den)
                if a and b and statistics.median(b.values()) > 0:
                    value = statistics.median(a.values()) / statistics.median(b.values())
                    unpaired.append(key)
            ratios[key] = None if value is None else round(value, 4)
        # The partial restore's device reads against the bytes asked for, not rounded to chunks.
        req = s.values.get(("llm", "ckpt", "partial_requested_bytes"), {})
        dev = s.values.get(("llm", "ckpt", "partial_device_read_bytes"), {})
        pairs = [dev[r] / req[r] for r in dev if req.get(r)]
        ratios["llm.partial_read_vs_requested_unrounded"] = round(statistics.median(pairs), 4) if pairs else None
        return {
            "states": {st: {"bytes": b, "arrays": n} for st, (_, b, n) in self.manifests.items()},
            "seconds": seconds,
            "values": values,
            "ratios": ratios,
            "unpaired_ratios": unpaired,
            "ckptgen": ckptgen,
        }

    def git_commit(self):
        try:
            out = subprocess.run(["git", "-C", self.repo, "rev-parse", "HEAD"], capture_output=True, text=True)
            return out.stdout.strip() or None
        except OSError:
            return None


def print_table(results):
    print()
    print(f"{'figure':31} {'result':>9}  {'goal':>7}  met  note")
    for key, goal, _ in goals.GOALS:
        v = results[key]
        met = results["goals"][key]["met"]
        shown = "n/a" if v is None else f"{v:.3f}"
        mark = "-" if met is None else ("yes" if met else "NO")
        note = results["notes"].get(key, "")
        print(f"{key:31} {shown:>9}  <= {goal:<4}  {mark:3}  {note[:90]}")
    secs = results["context"]["seconds"]
    states = results["context"]["states"]
    print()
    print("absolute medians (context only; seconds, and GB/s of the state's bytes):")
    for st in secs:
        nbytes = states.get(st, {}).get("bytes") or 0
        for prog, ops in secs[st].items():
            parts = []
            for op, t in ops.items():
                rate = f" {nbytes / t / 1e9:.2f} GB/s" if t and nbytes and not op.startswith("restore_partial") else ""
                parts.append(f"{op} {t:.3f}s{rate}")
            print(f"  {st:6} {prog:9} " + ", ".join(parts))


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: scripts/bench BUILD_DIR\n")
        return 2
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return Run(repo, os.path.abspath(argv[1])).execute()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
