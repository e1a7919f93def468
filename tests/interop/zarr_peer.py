#!/usr/bin/python3
"""The Python side of tests/interop/test_interop_zarr.c (run with Debian's python3, which has
numpy and zarr 2.13).

  check ITEM_DIR EXPECT_DIR   Reads every array ckpt wrote into ITEM_DIR with zarr-python and
                              compares it bit for bit with EXPECT_DIR/<param>.bin (raw C-order
                              bytes written by the C test); checks _METADATA's Orbax structure
                              and _strings.json. Prints "OK <n>" on success.
  write ITEM_DIR EXPECT_DIR   Writes a checkpoint item the way Orbax does without OCDBT (zarr
                              arrays through zarr-python, _METADATA with json.dumps,
                              _strings.json) and the expected bytes of every leaf for C to
                              compare against.
  casts IN_DIR                For each <from>.bin in IN_DIR (values of dtype <from>), writes
                              <from>-<to>.bin with NumPy's astype(<to>) for every other dtype.
"""
import json
import os
import sys
import warnings

import numpy as np
import zarr
from numcodecs import Zstd

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def check(item, expect):
    with open(os.path.join(item, "_METADATA")) as f:
        meta = json.load(f)
    for key in ("tree_metadata", "use_ocdbt", "use_zarr3", "store_array_data_equal_to_fill_value",
                "custom_metadata"):
        if key not in meta:
            fail("_METADATA lacks " + key)
    if meta["use_ocdbt"] is not False or meta["use_zarr3"] is not False:
        fail("use_ocdbt/use_zarr3 must be false")
    strings = {}
    if os.path.exists(os.path.join(item, "_strings.json")):
        with open(os.path.join(item, "_strings.json")) as f:
            strings = json.load(f)
    with open(os.path.join(expect, "manifest.json")) as f:
        manifest = json.load(f)
    checked = 0
    for keypath, entry in meta["tree_metadata"].items():
        names = [k["key"] for k in entry["key_metadata"]]
        if keypath != str(tuple(names)):
            fail("tree_metadata key %r is not str(%r)" % (keypath, tuple(names)))
        for k in entry["key_metadata"]:
            if k["key_type"] not in (1, 2):
                fail("bad key_type in " + keypath)
        vm = entry["value_metadata"]
        param = ".".join(names)
        if vm["value_type"] == "string":
            if strings.get(param) != manifest["strings"][param]:
                fail("string %s: %r" % (param, strings.get(param)))
            checked += 1
            continue
        if vm["value_type"] not in ("np.ndarray", "scalar"):
            continue
        info = manifest["arrays"].get(param)
        if info is None:
            fail("no expectation for " + param)
        if info["dtype"] == "bfloat16":
            with open(os.path.join(item, param, ".zarray")) as f:
                if json.load(f)["dtype"] != "bfloat16":
                    fail("bfloat16 dtype name")
            continue  # NumPy has no bfloat16; zarr-python cannot open it
        arr = zarr.open_array(os.path.join(item, param), mode="r")
        data = arr[...]
        if str(arr.dtype) != info["dtype"] or list(arr.shape) != info["shape"]:
            fail("%s: zarr sees %s %s, expected %s %s" % (param, arr.dtype, arr.shape,
                                                          info["dtype"], info["shape"]))
        with open(os.path.join(expect, param + ".bin"), "rb") as f:
            want = f.read()
        if np.ascontiguousarray(data).tobytes() != want:
            fail("%s: bytes differ" % param)
        checked += 1
    print("OK %d" % checked)


def write(item, expect):
    os.makedirs(item, exist_ok=True)
    os.makedirs(expect, exist_ok=True)
    rng = np.random.default_rng(7)
    leaves = {}  # param -> (keys, key types, value type, array or str)
    def add(keys, types, vt, value):
        leaves[".".join(keys)] = (keys, types, vt, value)

    for i, dt in enumerate(DTYPES):
        if dt == "bool":
            a = rng.integers(0, 2, size=(5, 3)).astype(dt)
        elif dt.startswith("complex"):
            a = (rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))).astype(dt)
        elif dt.startswith("float"):
            a = rng.standard_normal((5, 3)).astype(dt)
        else:
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=(5, 3), dtype=dt, endpoint=True)
        add(["arrays", dt], [2, 2], "np.ndarray", a)
    add(["big", "endian"], [2, 2], "np.ndarray", np.arange(10, dtype=">i4").reshape(2, 5))
    add(["big", "f8"], [2, 2], "np.ndarray", np.linspace(0, 1, 7).astype(">f8"))
    add(["layers", "0", "w"], [2, 1, 2], "np.ndarray", rng.standard_normal((9, 4)).astype("float32"))
    add(["layers", "1", "w"], [2, 1, 2], "np.ndarray", rng.standard_normal((3, 4, 2)).astype("float32"))
    add(["step"], [2], "scalar", np.array(42, dtype="int64"))
    add(["lr"], [2], "scalar", np.array(0.25, dtype="float64"))
    add(["name"], [2], "string", "orbax-written")
    add(["empty"], [2], "np.ndarray", np.zeros((0, 3), dtype="float32"))
    # Orbax (TensorStore) keeps control characters in directory names as they are.
    add(["odd", "t\tab"], [2, 2], "np.ndarray", np.arange(6, dtype="int16").reshape(2, 3))
    add(["odd", "new\nline"], [2, 2], "scalar", np.array(-7, dtype="int32"))

    tree_metadata = {}
    strings = {}
    for n, (param, (keys, types, vt, value)) in enumerate(sorted(leaves.items())):
        tree_metadata[str(tuple(keys))] = {
            "key_metadata": [{"key": k, "key_type": t} for k, t in zip(keys, types)],
            "value_metadata": {"value_type": vt, "skip_deserialize": False}}
        if vt == "string":
            strings[param] = value
            continue
        # Alternate layouts zarr-python can produce: compressors, chunking, separators.
        chunks = tuple(max(1, (s + 1) // 2) for s in value.shape) if value.ndim else ()
        compressor = Zstd(level=3) if n % 2 else None
        kwargs = {}
        if n % 3 == 0 and value.ndim >= 2:
            kwargs["dimension_separator"] = "/"
        z = zarr.open_array(os.path.join(item, param), mode="w", shape=value.shape,
                            chunks=chunks or True, dtype=value.dtype, compressor=compressor,
                            fill_value=None, **kwargs)
        z[...] = value
        with open(os.path.join(expect, param + ".bin"), "wb") as f:
            f.write(np.ascontiguousarray(value.astype(value.dtype.newbyteorder("<"))).tobytes())
    tree_metadata["('none',)"] = {"key_metadata": [{"key": "none", "key_type": 2}],
                                  "value_metadata": {"value_type": "None", "skip_deserialize": True}}
    meta = {"tree_metadata": tree_metadata, "use_ocdbt": False, "use_zarr3": False,
            "store_array_data_equal_to_fill_value": True, "custom_metadata": {"by": "python"}}
    with open(os.path.join(item, "_METADATA"), "w") as f:
        f.write(json.dumps(meta))
    with open(os.path.join(item, "_strings.json"), "w") as f:
        f.write(json.dumps(strings))
    print("OK %d" % len(leaves))


def casts(d):
    warnings.simplefilter("ignore")
    for src in DTYPES:
        a = np.fromfile(os.path.join(d, src + ".bin"), dtype=src)
        for dst in DTYPES:
            np.ascontiguousarray(a.astype(dst)).tofile(os.path.join(d, "%s-%s.bin" % (src, dst)))
    print("OK")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "check":
        check(sys.argv[2], sys.argv[3])
    elif cmd == "write":
        write(sys.argv[2], sys.argv[3])
    elif cmd == "casts":
        casts(sys.argv[2])
    else:
        fail("unknown command " + cmd)
