"""bench/goals.py — the goals table of performance.md as data, and the arithmetic that turns the
benchmark's samples into its figures.

Every figure is a ratio of two measurements taken in the same round of the same run (the
orchestrator interleaves ckpt, the limits and the peers); the figure is the median over rounds
of those paired ratios, so a slow patch of a shared machine moves numerator and denominator
together instead of biasing one of them.
"""

import statistics

# (key, goal, what). The order is performance.md's.
GOALS = [
    ("blocking_vs_memcpy", 1.2, "async save blocking time / memcpy of S (warm buffer pool), llm"),
    ("blocking_cold_vs_memcpy", 1.2, "first async save's blocking time (cold process, snapshot_bytes_hint) / memcpy of S, llm"),
    ("save_vs_device", 1.1, "durable save / fio's best durable write of S (device limit), llm"),
    ("restore_cold_vs_device", 1.1, "restore after dropping the page cache / fio's best cold read of S, llm"),
    ("save_vs_write_fsync", 1.1, "durable save (commit included) / write+fsync of S, llm"),
    ("restore_vs_read", 1.2, "restore into caller buffers / read of S (hot), llm"),
    ("save_vs_hdf5", 1.0, "durable save / libhdf5 durable save, llm"),
    ("save_vs_numpy", 0.6, "durable save / numpy durable save (faster of save, savez), llm"),
    ("save_vs_zarr_python", 0.12, "durable save / zarr-python default compressor, llm"),
    ("restore_vs_hdf5", 0.1, "restore / libhdf5 restore (hot), llm"),
    ("restore_vs_numpy", 0.3, "restore / numpy restore (faster of load, loadz; hot), llm"),
    ("restore_vs_zarr_python", 0.1, "restore / zarr-python restore (hot), llm"),
    ("small_vs_large", 2.0, "OCDBT save of 10,000 x 4 KiB / save of one array of the same bytes"),
    ("small_save_vs_hdf5", 0.2, "small-state durable OCDBT save / libhdf5 on the same state"),
    ("small_restore_vs_hdf5", 0.5, "small-state OCDBT restore / libhdf5 restore (hot)"),
    ("llm_ocdbt_save_vs_save", 0.8, "durable save as OCDBT / durable save in zarr v2 directories, llm"),
    ("extra_rss_vs_state", 1.05, "peak extra RSS during an async save / S, llm"),
    ("reshard_vs_aligned", 1.3, "restore into shards cutting across 4 MiB chunks / aligned restore, llm"),
    ("partial_read_amplification", 1.1, "bytes read for a quarter of every array / bytes of the 4 MiB chunks it needs, llm"),
    ("ckptgen_ms_per_kloc", 5.0, "ckptgen ms per 1,000 schema lines (50,000-line schema)"),
    # The MPI section (state "mpi": the llm state's bytes, rank r holding block r of every
    # array's rows; performance.md, "The MPI section").
    ("mpi_save_vs_phdf5", 0.8, "4-rank durable save / parallel HDF5's (one shared file, collective writes), mpi"),
    ("mpi_restore_vs_phdf5", 0.5, "4-rank restore / parallel HDF5's (collective reads; hot), mpi"),
    ("mpi_blocking_vs_memcpy", 1.2, "4-rank async save's blocking time / memcpy of the rank's bytes, worst rank, mpi"),
    ("mpi_reshard_restore_vs_aligned", 1.3, "4-rank checkpoint restored into a 3-rank split / into the 4-rank split, mpi"),
    ("mpi_save_4_vs_1", 1.1, "4-rank durable save / 1 process saving the same bytes (same program, same disk), mpi"),
]
GOAL_KEYS = [k for k, _, _ in GOALS]

# Which on-disk layout a goal's ckpt figure used, when it is not the default (Orbax's zarr
# layout): written into results.json's notes.
LAYOUT_NOTES = {
    "small_vs_large": "ckpt side: OCDBT (op save_ocdbt, use_ocdbt); the one-array save it is "
                      "compared with is one zarr array; the default layout's figure is context "
                      "small.zarr_save_vs_large",
    "small_save_vs_hdf5": "ckpt side: OCDBT (op save_ocdbt, use_ocdbt); the default layout's "
                          "figure is context small.zarr_save_vs_hdf5",
    "small_restore_vs_hdf5": "ckpt side: OCDBT (op restore_ocdbt, the restore of save_ocdbt's "
                             "checkpoint); the default layout's figure is context "
                             "small.zarr_restore_vs_hdf5",
    "llm_ocdbt_save_vs_save": "both sides ckpt, in the same process: save_ocdbt (use_ocdbt) / save "
                              "(the default layout, Orbax's use_ocdbt=False)",
}

# Ratios of two timed ops: key -> (numerator, denominator); each side is (state, prog, [ops]),
# and with several ops the faster one (per round) stands for that peer.
TIME_RATIOS = {
    "blocking_vs_memcpy": (("llm", "ckpt", ["async_blocking"]), ("llm", "limits", ["memcpy"])),
    "blocking_cold_vs_memcpy": (("llm", "ckpt", ["async_blocking_cold"]), ("llm", "limits", ["memcpy"])),
    "save_vs_device": (("llm", "ckpt", ["save"]), ("llm", "device", ["write"])),
    "restore_cold_vs_device": (("llm", "ckpt", ["restore_cold"]), ("llm", "device", ["read_cold"])),
    "save_vs_write_fsync": (("llm", "ckpt", ["save"]), ("llm", "limits", ["write_fsync"])),
    "restore_vs_read": (("llm", "ckpt", ["restore"]), ("llm", "limits", ["read_hot"])),
    "save_vs_hdf5": (("llm", "ckpt", ["save"]), ("llm", "hdf5", ["save"])),
    "save_vs_numpy": (("llm", "ckpt", ["save"]), ("llm", "numpy", ["save", "savez"])),
    "save_vs_zarr_python": (("llm", "ckpt", ["save"]), ("llm", "zarr", ["save"])),
    "restore_vs_hdf5": (("llm", "ckpt", ["restore"]), ("llm", "hdf5", ["restore"])),
    "restore_vs_numpy": (("llm", "ckpt", ["restore"]), ("llm", "numpy", ["load", "loadz"])),
    "restore_vs_zarr_python": (("llm", "ckpt", ["restore"]), ("llm", "zarr", ["restore"])),
    # The small state's goals use OCDBT (save_ocdbt, restore_ocdbt): performance.md says why.
    "small_vs_large": (("small", "ckpt", ["save_ocdbt"]), ("small1", "ckpt", ["save"])),
    "small_save_vs_hdf5": (("small", "ckpt", ["save_ocdbt"]), ("small", "hdf5", ["save"])),
    "small_restore_vs_hdf5": (("small", "ckpt", ["restore_ocdbt"]), ("small", "hdf5", ["restore"])),
    "llm_ocdbt_save_vs_save": (("llm", "ckpt", ["save_ocdbt"]), ("llm", "ckpt", ["save"])),
    "reshard_vs_aligned": (("llm", "ckpt", ["restore_reshard"]), ("llm", "ckpt", ["restore_aligned"])),
    "mpi_save_vs_phdf5": (("mpi", "mpi_ckpt_4", ["save"]), ("mpi", "phdf5_4", ["save"])),
    "mpi_restore_vs_phdf5": (("mpi", "mpi_ckpt_4", ["restore"]), ("mpi", "phdf5_4", ["restore"])),
    # Both from the same rank of the same process (bench_mpi_ckpt.c reports the worst rank's).
    "mpi_blocking_vs_memcpy": (("mpi", "mpi_ckpt_4", ["async_blocking"]), ("mpi", "mpi_ckpt_4", ["memcpy"])),
    "mpi_reshard_restore_vs_aligned": (("mpi", "mpi_ckpt_4", ["restore_reshard"]), ("mpi", "mpi_ckpt_4", ["restore"])),
    "mpi_save_4_vs_1": (("mpi", "mpi_ckpt_4", ["save"]), ("mpi", "mpi_ckpt_1", ["save"])),
}

# More ratios for the "context" section: the same comparisons on the other states and against
# the peers' other variants. No goals; they show where time goes.
CONTEXT_RATIOS = {
    "large.save_vs_write_fsync": (("large", "ckpt", ["save"]), ("large", "limits", ["write_fsync"])),
    "large.restore_vs_read": (("large", "ckpt", ["restore"]), ("large", "limits", ["read_hot"])),
    "large.save_vs_hdf5": (("large", "ckpt", ["save"]), ("large", "hdf5", ["save"])),
    "large.restore_vs_hdf5": (("large", "ckpt", ["restore"]), ("large", "hdf5", ["restore"])),
    "llm.save_vs_zarr_python_none": (("llm", "ckpt", ["save"]), ("llm", "zarr_none", ["save"])),
    "llm.restore_vs_zarr_python_none": (("llm", "ckpt", ["restore"]), ("llm", "zarr_none", ["restore"])),
    "llm.async_total_vs_write_fsync": (("llm", "ckpt", ["async_total"]), ("llm", "limits", ["write_fsync"])),
    "llm.restore_cold_vs_read_cold": (("llm", "ckpt", ["restore_cold"]), ("llm", "limits", ["read_cold"])),
    "llm.write_fsync_vs_device": (("llm", "limits", ["write_fsync"]), ("llm", "device", ["write"])),
    "llm.read_cold_vs_device": (("llm", "limits", ["read_cold"]), ("llm", "device", ["read_cold"])),
    "llm.ocdbt_save_vs_device": (("llm", "ckpt", ["save_ocdbt"]), ("llm", "device", ["write"])),
    "llm.numpy_savez_vs_device": (("llm", "numpy", ["savez"]), ("llm", "device", ["write"])),
    "llm.hdf5_save_vs_device": (("llm", "hdf5", ["save"]), ("llm", "device", ["write"])),
    "llm.restore_vs_read_cold": (("llm", "ckpt", ["restore"]), ("llm", "limits", ["read_cold"])),
    "llm.save_chunked_vs_save": (("llm", "ckpt", ["save_chunked"]), ("llm", "ckpt", ["save"])),
    "llm.hdf5_save_vs_write_fsync": (("llm", "hdf5", ["save"]), ("llm", "limits", ["write_fsync"])),
    "llm.numpy_save_vs_write_fsync": (("llm", "numpy", ["save"]), ("llm", "limits", ["write_fsync"])),
    "llm.numpy_savez_vs_write_fsync": (("llm", "numpy", ["savez"]), ("llm", "limits", ["write_fsync"])),
    "llm.zarr_save_vs_write_fsync": (("llm", "zarr", ["save"]), ("llm", "limits", ["write_fsync"])),
    "llm.zarr_none_save_vs_write_fsync": (("llm", "zarr_none", ["save"]), ("llm", "limits", ["write_fsync"])),
    "llm.hdf5_restore_vs_read": (("llm", "hdf5", ["restore"]), ("llm", "limits", ["read_hot"])),
    "llm.numpy_load_vs_read": (("llm", "numpy", ["load"]), ("llm", "limits", ["read_hot"])),
    "llm.zarr_restore_vs_read": (("llm", "zarr", ["restore"]), ("llm", "limits", ["read_hot"])),
    "small.save_vs_write_fsync": (("small", "ckpt", ["save_ocdbt"]), ("small", "limits", ["write_fsync"])),
    # The small state in the default layout (zarr v2 directories: variant ckpt_zarr).
    "small.zarr_save_vs_large": (("small", "ckpt_zarr", ["save"]), ("small1", "ckpt", ["save"])),
    "small.zarr_save_vs_hdf5": (("small", "ckpt_zarr", ["save"]), ("small", "hdf5", ["save"])),
    "small.ocdbt_save_vs_zarr": (("small", "ckpt", ["save_ocdbt"]), ("small", "ckpt_zarr", ["save"])),
    "small.ocdbt_restore_vs_zarr": (("small", "ckpt", ["restore_ocdbt"]), ("small", "ckpt_zarr", ["restore"])),
    "llm.ocdbt_save_vs_write_fsync": (("llm", "ckpt", ["save_ocdbt"]), ("llm", "limits", ["write_fsync"])),
    "llm.ocdbt_restore_vs_restore": (("llm", "ckpt", ["restore_ocdbt"]), ("llm", "ckpt", ["restore"])),
    "small.hdf5_save_vs_write_fsync": (("small", "hdf5", ["save"]), ("small", "limits", ["write_fsync"])),
    "small.zarr_restore_vs_hdf5": (("small", "ckpt_zarr", ["restore"]), ("small", "hdf5", ["restore"])),
    # The engine's other I/O backend and durability modes (docs/io-engine.md), llm, against the
    # default (io_uring when the kernel allows it, write-behind flushing).
    "llm.pwrite_backend_save_vs_save": (("llm", "ckpt_pwrite", ["save"]), ("llm", "ckpt", ["save"])),
    "llm.pwrite_backend_restore_vs_restore": (("llm", "ckpt_pwrite", ["restore"]), ("llm", "ckpt", ["restore"])),
    "llm.o_direct_save_vs_save": (("llm", "ckpt_direct", ["save"]), ("llm", "ckpt", ["save"])),
    "llm.fsync_at_end_save_vs_save": (("llm", "ckpt_fsync_end", ["save"]), ("llm", "ckpt", ["save"])),
    "llm.syncfs_save_vs_save": (("llm", "ckpt_syncfs", ["save"]), ("llm", "ckpt", ["save"])),
    "llm.syncfs_save_vs_device": (("llm", "ckpt_syncfs", ["save"]), ("llm", "device", ["write"])),
    # The MPI section at 1 and 2 ranks, and the scaling of each side.
    "mpi.save_1_vs_phdf5_1": (("mpi", "mpi_ckpt_1", ["save"]), ("mpi", "phdf5_1", ["save"])),
    "mpi.save_2_vs_phdf5_2": (("mpi", "mpi_ckpt_2", ["save"]), ("mpi", "phdf5_2", ["save"])),
    "mpi.restore_1_vs_phdf5_1": (("mpi", "mpi_ckpt_1", ["restore"]), ("mpi", "phdf5_1", ["restore"])),
    "mpi.restore_2_vs_phdf5_2": (("mpi", "mpi_ckpt_2", ["restore"]), ("mpi", "phdf5_2", ["restore"])),
    "mpi.save_2_vs_1": (("mpi", "mpi_ckpt_2", ["save"]), ("mpi", "mpi_ckpt_1", ["save"])),
    "mpi.restore_4_vs_1": (("mpi", "mpi_ckpt_4", ["restore"]), ("mpi", "mpi_ckpt_1", ["restore"])),
    "mpi.phdf5_save_4_vs_1": (("mpi", "phdf5_4", ["save"]), ("mpi", "phdf5_1", ["save"])),
    # One rank with a process group against the single-process save of the same bytes (llm).
    "mpi.save_1_vs_llm_save": (("mpi", "mpi_ckpt_1", ["save"]), ("llm", "ckpt", ["save"])),
}


class Samples:
    """Measurements keyed by (state, prog, op or value key), one entry per round."""

    def __init__(self):
        self.times = {}   # (state, prog, op) -> {round: seconds}
        self.values = {}  # (state, prog, key) -> {round: value}

    def add(self, rnd, record):
        if "op" in record and "seconds" in record:
            self.times.setdefault((record["state"], record["prog"], record["op"]), {})[rnd] = float(record["seconds"])
        elif "key" in record and "value" in record:
            self.values.setdefault((record["state"], record["prog"], record["key"]), {})[rnd] = float(record["value"])

    def side(self, spec):
        """{round: seconds} for (state, prog, [ops]): the fastest of the ops in each round."""
        state, prog, ops = spec
        out = {}
        for op in ops:
            for rnd, sec in self.times.get((state, prog, op), {}).items():
                out[rnd] = min(sec, out.get(rnd, sec))
        return out

    def median_time(self, state, prog, op):
        xs = list(self.times.get((state, prog, op), {}).values())
        return statistics.median(xs) if xs else None

    def median_value(self, state, prog, key):
        xs = list(self.values.get((state, prog, key), {}).values())
        return statistics.median(xs) if xs else None


def paired_ratio(samples, num_spec, den_spec):
    """(median of per-round ratios, number of rounds paired), or (None, 0)."""
    num, den = samples.side(num_spec), samples.side(den_spec)
    ratios = [num[r] / den[r] for r in num if r in den and den[r] > 0]
    if not ratios:
        return None, 0
    return statistics.median(ratios), len(ratios)


def value_ratio(samples, num_key, den):
    """Median over rounds of values[num_key] / den(round) where den is a callable or number."""
    vals = samples.values.get(num_key, {})
    ratios = []
    for rnd, v in vals.items():
        d = den(rnd) if callable(den) else den
        if d:
            ratios.append(v / d)
    return (statistics.median(ratios), len(ratios)) if ratios else (None, 0)


def met(key, value):
    goal = dict((k, g) for k, g, _ in GOALS)[key]
    return None if value is None else value <= goal
