#!/usr/bin/python3
"""The Python side of the `ckpt` tool's tests (tests/cli/), run with Debian's python3 (numpy and
zarr 2.13): it reads the same files with zarr-python and says what numpy says about them.

  print ARRAY_DIR...      print(np.asarray(zarr array)): numpy's own text for each array
                          (a 0-d array prints as its scalar), each followed by a line
                          "<<END>>".
  stats ARRAY_DIR         count nan inf zeros min max mean std, one per line (over the finite
                          elements, float64 arithmetic), as `ckpt cat --stats` defines them.
  orbax ITEM_DIR          writes a PyTree item the way Orbax does without OCDBT and without
                          ckpt's _CHECKSUMS: _METADATA with json.dumps, zarr arrays `w`
                          (float32 [8, 4], chunks [4, 4]) and `b` (int32 [5]).
"""
import json
import os
import sys

import numpy as np
import zarr


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "print":
        for p in sys.argv[2:]:
            a = zarr.open(p, mode="r")[...]
            if a.ndim == 0:
                print(a[()])
            else:
                print(a)
            print("<<END>>")
    elif cmd == "stats":
        a = np.asarray(zarr.open(path, mode="r")[...])
        if np.iscomplexobj(a):
            nan = int(np.count_nonzero(np.isnan(a)))
            v = np.abs(a[~np.isnan(a)]).astype(np.float64)
        else:
            nan = int(np.count_nonzero(np.isnan(a))) if a.dtype.kind == "f" else 0
            v = a.astype(np.float64).ravel()
        fin = v[np.isfinite(v)]
        inf = int(np.count_nonzero(np.isinf(v)))
        print(a.size)
        print(nan)
        print(inf)
        print(int(np.count_nonzero(fin == 0)))
        print(repr(float(fin.min())))
        print(repr(float(fin.max())))
        print(repr(float(fin.mean())))
        print(repr(float(fin.std())))
    elif cmd == "orbax":
        os.makedirs(path, exist_ok=True)
        w = np.arange(32, dtype=np.float32).reshape(8, 4) / 4
        b = np.array([1, -2, 3, -4, 5], dtype=np.int32)
        zarr.open(os.path.join(path, "w"), mode="w", shape=w.shape, chunks=(4, 4),
                  dtype=w.dtype, compressor=None, fill_value=None)[...] = w
        zarr.open(os.path.join(path, "b"), mode="w", shape=b.shape, chunks=(5,),
                  dtype=b.dtype, compressor=None, fill_value=None)[...] = b
        tree = {}
        for name, arr in (("b", b), ("w", w)):
            tree[str((name,))] = {
                "key_metadata": [{"key": name, "key_type": 2}],
                "value_metadata": {"value_type": "np.ndarray", "skip_deserialize": False,
                                   "write_shape": list(arr.shape)}}
        meta = {"tree_metadata": tree, "use_ocdbt": False, "use_zarr3": False,
                "store_array_data_equal_to_fill_value": True, "custom_metadata": None}
        with open(os.path.join(path, "_METADATA"), "w") as f:
            f.write(json.dumps(meta))
        print("OK")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
