#!/usr/bin/python3
"""Python peer for tests/interop/test_interop_random.c.

Reads and writes the random-key checkpoints of Orbax's NumpyRandomKeyCheckpointHandler and
JaxRandomKeyCheckpointHandler with zarr-python, numpy and json only (no Orbax, no JAX), exactly
as Orbax lays them out (non-OCDBT, zarr v2):

  <ckpt>/_CHECKPOINT_METADATA
  <ckpt>/np_random_key/_METADATA            tree_metadata keyed "('0',)" ... "('4',)"
  <ckpt>/np_random_key/_strings.json        {"0": "MT19937"}
  <ckpt>/np_random_key/1/.zarray, 1/0       uint32[624]
  <ckpt>/np_random_key/{2,3,4}/.zarray, /0  0-d int64, int64, float64 (Orbax's scalar handler)
  <ckpt>/np_random_key_metadata/metadata    {"legacy": true}
  (dict form: bit_generator in _strings.json, state.key, state.pos, has_gauss, gauss)

  <ckpt>/jax_random_key/_METADATA, checkpoint/.zarray ...   ArraySave of the key data
  <ckpt>/jax_random_key_metadata/metadata   {"typed": bool}

Commands (results are printed as one JSON object; floats as float.hex strings):
  read-np DIR N         restore the state into a RandomState with set_state, draw N of each kind
  write-np DIR SEED ADVANCE FORM    write a state (FORM = legacy | dict), print the continuation
  read-jax DIR          print the key data, its shape and "typed"
  write-jax DIR TYPED   write a key (uint32 data of shape (3, 2)), print it
"""
import json
import os
import sys

import numpy as np
import zarr

NP_TYPESTR = ("orbax.checkpoint._src.handlers.random_key_checkpoint_handler."
              "NumpyRandomKeyCheckpointHandler")
JAX_TYPESTR = ("orbax.checkpoint._src.handlers.random_key_checkpoint_handler."
               "JaxRandomKeyCheckpointHandler")


def draws(rs, n):
    return {
        "u32": [int(x) for x in rs.randint(0, 2**32, size=n, dtype=np.uint32)],
        "double": [float(x).hex() for x in rs.random_sample(n)],
        "normal": [float(x).hex() for x in rs.standard_normal(n)],
    }


def load_json(path):
    with open(path) as f:
        return json.load(f)


def check_step_metadata(ckpt, typestr):
    meta = load_json(os.path.join(ckpt, "_CHECKPOINT_METADATA"))
    for key in ("item_handlers", "metrics", "performance_metrics", "init_timestamp_nsecs",
                "commit_timestamp_nsecs", "custom_metadata"):
        assert key in meta, "_CHECKPOINT_METADATA lacks %r: %r" % (key, meta)
    assert meta["item_handlers"] == typestr, meta["item_handlers"]


def read_leaf(item, param, strings):
    """A leaf of a PyTree item as Orbax would restore it: strings from _strings.json, arrays and
    scalars from zarr (a 0-d array's value is a Python scalar, as ScalarHandler returns)."""
    if param in strings:
        return strings[param]
    arr = zarr.open(os.path.join(item, param), mode="r")
    value = arr[...]
    return value.item() if arr.ndim == 0 else value


def read_np(ckpt, n):
    check_step_metadata(ckpt, NP_TYPESTR)
    item = os.path.join(ckpt, "np_random_key")
    meta = load_json(os.path.join(item, "_METADATA"))
    tree = meta["tree_metadata"]
    assert meta["use_ocdbt"] is False and meta["use_zarr3"] is False, meta
    legacy = load_json(os.path.join(ckpt, "np_random_key_metadata", "metadata"))["legacy"]
    strings = load_json(os.path.join(item, "_strings.json"))
    if legacy:
        # Orbax's post_restore: tuple(restored list), leaves named by their sequence index.
        assert sorted(tree) == ["('%d',)" % i for i in range(5)], sorted(tree)
        for i in range(5):
            assert tree["('%d',)" % i]["key_metadata"] == [{"key": str(i), "key_type": 1}]
        kinds = [tree["('%d',)" % i]["value_metadata"]["value_type"] for i in range(5)]
        assert kinds[0] == "string" and kinds[2:] == ["scalar"] * 3, kinds
        state = tuple(read_leaf(item, str(i), strings) for i in range(5))
        dtypes = [zarr.open(os.path.join(item, str(i)), mode="r").dtype.str for i in range(1, 5)]
        assert dtypes == ["<u4", "<i8", "<i8", "<f8"], dtypes
        assert state[1].shape == (624,)
    else:
        state = {
            "bit_generator": strings["bit_generator"],
            "state": {"key": read_leaf(item, "state.key", strings),
                      "pos": read_leaf(item, "state.pos", strings)},
            "has_gauss": read_leaf(item, "has_gauss", strings),
            "gauss": read_leaf(item, "gauss", strings),
        }
    rs = np.random.RandomState()
    rs.set_state(state)
    out = {"legacy": legacy, "pos": int(rs.get_state()[2])}
    out.update(draws(rs, n))
    return out


def write_zarr(path, value):
    value = np.asarray(value)
    arr = zarr.open(path, mode="w", shape=value.shape, chunks=value.shape or None,
                    dtype=value.dtype, compressor=None, fill_value=None,
                    dimension_separator=".")
    arr[...] = value


def tree_entry(keys, key_type, value_type, shape=None):
    vm = {"value_type": value_type, "skip_deserialize": False}
    if shape is not None:
        vm["write_shape"] = list(shape)
    return {"key_metadata": [{"key": k, "key_type": key_type} for k in keys],
            "value_metadata": vm}


def tuple_repr(keys):
    return "(" + ", ".join("'%s'" % k for k in keys) + ("," if len(keys) == 1 else "") + ")"


def write_pytree_item(item, leaves, key_type):
    """leaves: [(keys, value)], written the way Orbax's non-OCDBT PyTree handler lays them out."""
    os.makedirs(item)
    tree, strings = {}, {}
    for keys, value in leaves:
        param = ".".join(keys)
        if isinstance(value, str):
            strings[param] = value
            tree[tuple_repr(keys)] = tree_entry(keys, key_type, "string")
        elif isinstance(value, np.ndarray):
            write_zarr(os.path.join(item, param), value)
            tree[tuple_repr(keys)] = tree_entry(keys, key_type, "np.ndarray", value.shape)
        else:
            write_zarr(os.path.join(item, param), np.asarray(value))
            tree[tuple_repr(keys)] = tree_entry(keys, key_type, "scalar")
    with open(os.path.join(item, "_METADATA"), "w") as f:
        json.dump({"tree_metadata": tree, "use_ocdbt": False, "use_zarr3": False,
                   "store_array_data_equal_to_fill_value": True, "custom_metadata": None}, f)
    if strings:
        with open(os.path.join(item, "_strings.json"), "w") as f:
            json.dump(strings, f)


def write_json_item(path, obj):
    os.makedirs(path)
    with open(os.path.join(path, "metadata"), "w") as f:
        f.write(json.dumps(obj))


def finish_checkpoint(ckpt, typestr):
    with open(os.path.join(ckpt, "_CHECKPOINT_METADATA"), "w") as f:
        json.dump({"item_handlers": typestr, "metrics": {}, "performance_metrics": {},
                   "init_timestamp_nsecs": 1, "commit_timestamp_nsecs": 2,
                   "custom_metadata": {}}, f)
    with open(os.path.join(ckpt, "commit_success.txt"), "w") as f:
        f.write("Checkpoint commit was successful to %s" % ckpt)


def write_np(ckpt, seed, advance, form):
    rs = np.random.RandomState(seed)
    rs.random_sample(advance)
    rs.standard_normal()  # leaves a cached gaussian: has_gauss = 1
    os.makedirs(ckpt)
    item = os.path.join(ckpt, "np_random_key")
    if form == "legacy":
        state = rs.get_state()
        write_pytree_item(item, [((str(i),), v) for i, v in enumerate(state)], 1)
    else:
        st = rs.get_state(legacy=False)
        write_pytree_item(item, [(("bit_generator",), st["bit_generator"]),
                                 (("gauss",), st["gauss"]),
                                 (("has_gauss",), st["has_gauss"]),
                                 (("state", "key"), st["state"]["key"]),
                                 (("state", "pos"), st["state"]["pos"])], 2)
    write_json_item(os.path.join(ckpt, "np_random_key_metadata"), {"legacy": form == "legacy"})
    finish_checkpoint(ckpt, NP_TYPESTR)
    out = {"pos": int(rs.get_state()[2])}
    out.update(draws(rs, 1000))
    return out


def read_jax(ckpt):
    check_step_metadata(ckpt, JAX_TYPESTR)
    item = os.path.join(ckpt, "jax_random_key")
    tree = load_json(os.path.join(item, "_METADATA"))["tree_metadata"]
    assert list(tree) == ["('checkpoint',)"], list(tree)
    arr = zarr.open(os.path.join(item, "checkpoint"), mode="r")
    assert arr.dtype == np.uint32, arr.dtype
    typed = load_json(os.path.join(ckpt, "jax_random_key_metadata", "metadata"))["typed"]
    return {"shape": list(arr.shape), "data": [int(x) for x in arr[...].ravel()], "typed": typed}


def write_jax(ckpt, typed):
    data = (np.arange(6, dtype=np.uint32).reshape(3, 2) * np.uint32(2654435761))
    os.makedirs(ckpt)
    write_pytree_item(os.path.join(ckpt, "jax_random_key"), [(("checkpoint",), data)], 2)
    write_json_item(os.path.join(ckpt, "jax_random_key_metadata"), {"typed": typed})
    finish_checkpoint(ckpt, JAX_TYPESTR)
    return {"shape": list(data.shape), "data": [int(x) for x in data.ravel()], "typed": typed}


def main(argv):
    cmd = argv[1]
    if cmd == "read-np":
        out = read_np(argv[2], int(argv[3]))
    elif cmd == "write-np":
        out = write_np(argv[2], int(argv[3]), int(argv[4]), argv[5])
    elif cmd == "read-jax":
        out = read_jax(argv[2])
    elif cmd == "write-jax":
        out = write_jax(argv[2], argv[3] == "true")
    else:
        raise SystemExit("unknown command %r" % cmd)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
