"""bench/peer_zarr.py — the zarr-python 2.13 peer of `make bench` (Debian's python3-zarr): the
benchmark state as one zarr v2 group, one array per state array (dotted names become nested
groups), chunks as zarr chooses them by default.

    save     zarr.group + create_dataset(data=...) of every array, then fsync of every file and
             directory of the store (zarr itself never fsyncs): a durable save
    restore  zarr.open_group and arr[...] of every array (hot: right after the save)

COMPRESSOR is "default" (zarr's default, Blosc lz4 level 5 with shuffle) or "none".
Usage: /usr/bin/python3 bench/peer_zarr.py MANIFEST DIR COMPRESSOR   (files truncated at exit)
Output: JSON lines, as bench_common.c prints them; prog is "zarr" or "zarr_none".
"""

import os
import sys

import zarr

import peer_common as pc
import state


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("default", "none"):
        sys.stderr.write("usage: peer_zarr.py MANIFEST DIR default|none\n")
        return 2
    compressed = sys.argv[3] == "default"
    prog = "zarr" if compressed else "zarr_none"
    name, arrays = state.generate(sys.argv[1])
    pc.emit_fingerprint(prog, name, arrays)
    total = sum(a.nbytes for _, a in arrays)
    warm = pc.prewarm_bytes(total)
    path = os.path.join(sys.argv[2], "state.zarr")
    extra = {} if compressed else {"compressor": None}

    pc.prewarm(warm)
    t0 = pc.now()
    root = zarr.group(store=zarr.DirectoryStore(path), overwrite=True)
    for aname, a in arrays:
        root.create_dataset(aname.replace(".", "/"), data=a, **extra)
    pc.fsync_tree(path)
    pc.fsync_path(sys.argv[2], directory=True)
    pc.emit_time(prog, name, "save", pc.now() - t0, total)

    pc.prewarm(warm)
    t0 = pc.now()
    root = zarr.open_group(store=zarr.DirectoryStore(path), mode="r")
    loaded = [root[aname.replace(".", "/")][...] for aname, _ in arrays]
    pc.emit_time(prog, name, "restore", pc.now() - t0, total)
    for (aname, a), b in zip(arrays, loaded):
        pc.check_equal(prog, aname, a, b)
    pc.retire_tree(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
