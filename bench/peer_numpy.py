"""bench/peer_numpy.py — the NumPy peer of `make bench`: the benchmark state through
numpy.save (one .npy file per array) and numpy.savez (one .npz file), each made durable.

    save    numpy.save of every array into its own file, each fsync'd, then the directory
    load    numpy.load of every .npy file (hot: right after the save)
    savez   numpy.savez of all arrays into one file, fsync'd, then the directory
    loadz   numpy.load of the .npz and every member read (hot)

Usage: /usr/bin/python3 bench/peer_numpy.py MANIFEST DIR   (files truncated at exit)
Output: JSON lines, as bench_common.c prints them.
"""

import os
import sys

import numpy as np

import peer_common as pc
import state

PROG = "numpy"


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: peer_numpy.py MANIFEST DIR\n")
        return 2
    name, arrays = state.generate(sys.argv[1])
    root = sys.argv[2]
    pc.emit_fingerprint(PROG, name, arrays)
    total = sum(a.nbytes for _, a in arrays)
    warm = pc.prewarm_bytes(total)

    npy_dir = os.path.join(root, "npy")
    os.makedirs(npy_dir, exist_ok=True)
    paths = [os.path.join(npy_dir, aname + ".npy") for aname, _ in arrays]
    pc.prewarm(warm)
    t0 = pc.now()
    for path, (_, a) in zip(paths, arrays):
        with open(path, "wb") as f:
            np.save(f, a)
            f.flush()
            os.fsync(f.fileno())
    pc.fsync_path(npy_dir, directory=True)
    pc.emit_time(PROG, name, "save", pc.now() - t0, total)

    pc.prewarm(warm)
    t0 = pc.now()
    loaded = [np.load(path) for path in paths]
    pc.emit_time(PROG, name, "load", pc.now() - t0, total)
    for (aname, a), b in zip(arrays, loaded):
        pc.check_equal(PROG, aname, a, b)
    del loaded
    for path in paths:
        pc.retire_file(path)

    npz = os.path.join(root, "state.npz")
    pc.prewarm(warm)
    t0 = pc.now()
    with open(npz, "wb") as f:
        np.savez(f, **dict(arrays))
        f.flush()
        os.fsync(f.fileno())
    pc.fsync_path(root, directory=True)
    pc.emit_time(PROG, name, "savez", pc.now() - t0, total)

    pc.prewarm(warm)
    t0 = pc.now()
    with np.load(npz) as z:
        loaded = {k: z[k] for k in z.files}
    pc.emit_time(PROG, name, "loadz", pc.now() - t0, total)
    for aname, a in arrays:
        pc.check_equal(PROG, aname, a, loaded[aname])
    pc.retire_file(npz)
    return 0


if __name__ == "__main__":
    sys.exit(main())
