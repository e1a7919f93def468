"""orbax_legacy.py — builds PyTree items the way older Orbax and Flax versions left them, for
tests/runtime/test_legacy_aggregate.c and tests/cli/test_cli_variants.c.

The aggregate file `checkpoint` is encoded exactly as flax/serialization.py msgpack_serialize
does (Orbax's msgpack_utils.py is a copy): ndarrays as msgpack ext 1 holding
msgpack((shape, dtype.name, bytes), use_bin_type=True), NumPy scalars as ext 3, Python complex
numbers as ext 2, Orbax's tuples as ext 4, arrays over MAX_CHUNK_SIZE split by _chunk, the
whole tree packed with strict_types=True. Only the functions are copied, not jax: trees here
are dicts, lists, numpy values and Python scalars.

Usage: orbax_legacy.py COMMAND DIR
  all DIR       DIR/checkpoint holds every leaf; no _METADATA (Orbax before 0.5)
  mixed DIR     DIR holds a ckpt StandardSave of {a, b} (zarr): add a checkpoint file with
                placeholders for a and b and the values of c.a and c.e, and _METADATA entries
                for c.a and c.e with skip_deserialize, as Orbax's aggregate_some test data
  chunked DIR   DIR/checkpoint holds one array split by _chunk (MAX_CHUNK_SIZE made small)
  no-metadata DIR  remove DIR/_METADATA and the checksum files (arrays stay in zarr)
"""
import json
import os
import sys

import msgpack
import numpy as np

NDARRAY, NATIVE_COMPLEX, NPSCALAR, TUPLE = 1, 2, 3, 4
MAX_CHUNK_SIZE = 2**30


def _ndarray_to_bytes(arr):
    if arr.dtype.hasobject or arr.dtype.isalignedstruct:
        raise ValueError("Object and structured dtypes not supported")
    tpl = (arr.shape, arr.dtype.name, arr.tobytes("C"))
    return msgpack.packb(tpl, use_bin_type=True)


def _msgpack_ext_pack(x):
    if isinstance(x, np.ndarray):
        return msgpack.ExtType(NDARRAY, _ndarray_to_bytes(x))
    if issubclass(type(x), np.generic):
        return msgpack.ExtType(NPSCALAR, _ndarray_to_bytes(np.asarray(x)))
    if isinstance(x, complex):
        return msgpack.ExtType(NATIVE_COMPLEX, msgpack.packb((x.real, x.imag)))
    if isinstance(x, tuple):
        return msgpack.ExtType(TUPLE, msgpack.packb(list(x), strict_types=True,
                                                    use_bin_type=True, default=_msgpack_ext_pack))
    raise ValueError(f"Unsupported msgpack object: {x}")


def _tuple_to_dict(tpl):
    return {str(x): y for x, y in enumerate(tpl)}


def _chunk(arr):
    chunksize = max(1, int(MAX_CHUNK_SIZE / arr.dtype.itemsize))
    data = {"__msgpack_chunked_array__": True, "shape": _tuple_to_dict(arr.shape)}
    flatarr = arr.reshape(-1)
    chunks = [flatarr[i:i + chunksize] for i in range(0, flatarr.size, chunksize)]
    data["chunks"] = _tuple_to_dict(chunks)
    return data


def _chunk_array_leaves_in_place(d):
    if isinstance(d, dict):
        for k, v in d.items():
            if isinstance(v, np.ndarray):
                if v.size * v.dtype.itemsize > MAX_CHUNK_SIZE:
                    d[k] = _chunk(v)
            elif isinstance(v, dict):
                _chunk_array_leaves_in_place(v)
    return d


def msgpack_serialize(pytree):
    pytree = _chunk_array_leaves_in_place(pytree)
    return msgpack.packb(pytree, default=_msgpack_ext_pack, strict_types=True)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def tree_all():
    return {
        "params": {
            "w": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
            "b": np.array([1.5, -2.0, 3.25], dtype=np.float32),
            "bf": np.array([1.0, 2.0], dtype=np.float16),
        },
        "step": np.int64(1234),          # NumPy scalar: ext 3
        "lr": 0.125,                     # Python float: msgpack float 64
        "epochs": 7,                     # Python int
        "big": -(2**40),
        "flag": True,
        "name": "run-7",
        "blob": b"\x00\x01raw",
        "z": complex(1.5, -2.0),         # ext 2
        "opt": [{"mu": np.array([[1, 2], [3, 4]], dtype=np.int32)}, None],
        "pair": (np.uint8(5), "x"),      # Orbax's tuple: ext 4
        "empty": {},
        "nothing": None,
    }


def cmd_all(d):
    write(os.path.join(d, "checkpoint"), msgpack_serialize(tree_all()))


def cmd_mixed(d):
    tree = {"a": "PLACEHOLDER://a", "b": "PLACEHOLDER://b",
            "c": {"a": np.arange(8, dtype=np.int64).reshape(2, 4) * 3,
                  "e": np.arange(16, dtype=np.int64).reshape(4, 4) * 4}}
    write(os.path.join(d, "checkpoint"), msgpack_serialize(tree))
    path = os.path.join(d, "_METADATA")
    with open(path) as f:
        meta = json.load(f)
    for key in ("a", "e"):
        meta["tree_metadata"][str(("c", key))] = {
            "key_metadata": [{"key": "c", "key_type": 2}, {"key": key, "key_type": 2}],
            "value_metadata": {"value_type": "np.ndarray", "skip_deserialize": True}}
    with open(path, "w") as f:
        json.dump(meta, f)
    remove_checksums(d)


def cmd_chunked(d):
    global MAX_CHUNK_SIZE
    MAX_CHUNK_SIZE = 16  # four float32 per chunk: the layout Flax uses above 1 GiB
    tree = {"emb": np.arange(10, dtype=np.float32).reshape(2, 5), "k": np.int32(3)}
    write(os.path.join(d, "checkpoint"), msgpack_serialize(tree))


def remove_checksums(d):
    """ckpt's checksum files: Orbax writes none, and the edits would not match them."""
    for name in ("_CHECKSUMS", "_CHECKPOINT_CHECKSUMS", os.path.join("..", "_CHECKPOINT_CHECKSUMS")):
        p = os.path.join(d, name)
        if os.path.exists(p):
            os.remove(p)


def cmd_no_metadata(d):
    os.remove(os.path.join(d, "_METADATA"))
    remove_checksums(d)


def main():
    cmd, d = sys.argv[1], sys.argv[2]
    {"all": cmd_all, "mixed": cmd_mixed, "chunked": cmd_chunked,
     "no-metadata": cmd_no_metadata}[cmd](d)


if __name__ == "__main__":
    main()
