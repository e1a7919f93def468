"""bench/peer_common.py — what the Python peers of `make bench` share with the C programs:
JSON-lines output in the same shape, pre-warming before each timed section (bench_prewarm in
bench_common.c explains why), and fsync of every file and directory of a tree.

The peers run with Debian's /usr/bin/python3 (numpy, zarr 2.13), one process per run.
"""

import json
import mmap
import os
import sys
import time

import state


def now():
    return time.perf_counter()


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def emit_time(prog, state_name, op, seconds, nbytes):
    emit(prog=prog, state=state_name, op=op, seconds=seconds, bytes=nbytes)


def emit_fingerprint(prog, state_name, arrays):
    emit(prog=prog, state=state_name, fingerprint=str(state.fingerprint(arrays)),
         bytes=sum(a.nbytes for _, a in arrays), arrays=len(arrays))


def prewarm_bytes(total_bytes):
    """bench_prewarm_bytes in bench_common.c."""
    return total_bytes + total_bytes // 4 + (64 << 20)


def prewarm(nbytes):
    """Touches nbytes of fresh anonymous memory and unmaps it (bench_prewarm)."""
    # MAP_POPULATE: the kernel faults every page in, as bench_prewarm does.
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    m.close()


def fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root):
    """fsync every file, then every directory bottom-up (what a durable save needs)."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            fsync_path(os.path.join(dirpath, name))
        fsync_path(dirpath, directory=True)


def retire_file(path):
    """Truncates path: its blocks and page cache are freed, its inode is not (bench_retire_file
    in bench_common.h says why nothing is deleted while a run measures)."""
    os.truncate(path, 0)


def retire_tree(root):
    """retire_file on every regular file below root; the tree stays until the run ends."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                retire_file(path)


def check_equal(prog, what, expected, got):
    """Exits 1 (the orchestrator reports it) when a restore returned other bytes."""
    import numpy as np
    if expected.shape != got.shape or expected.dtype != got.dtype or not np.array_equal(
            expected.reshape(-1).view(np.uint32), got.reshape(-1).view(np.uint32)):
        sys.stderr.write(f"bench {prog}: {what} restored different data\n")
        sys.exit(1)
