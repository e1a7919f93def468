#!/usr/bin/python3
"""The Python side of the model_state example: reads a checkpoint written by
`model_state save DIR` with zarr-python 2.13 + numpy + json only (no Orbax, no JAX) and checks
it against the lines the C program printed.

  check_zarr.py DIR SAVE_STDOUT

* state/: every array of _METADATA's tree_metadata is opened with zarr, compared element by
  element with the values numpy regenerates from the seed (the definition in state_gen.h), and
  fingerprinted the way the C program does; the fingerprint must equal the C "leaf" line.
  bfloat16 arrays: NumPy has no bfloat16, and zarr-python refuses the dtype name "bfloat16"
  that TensorStore (and so Orbax and ckpt) writes in .zarray. They are opened through a store
  that shows zarr the same .zarray with dtype "<u2": zarr then reads and decodes the chunks as
  raw uint16, and the float32 value is (uint32(bits) << 16).view(float32), exact for every
  bfloat16.
* meta/: _strings.json and the integer leaves against the C "string"/"leaf" lines.
* rng/: the JAX key data (uint32[2], through zarr) and its threefry2x32 continuation.
* np_rng/: the MT19937 state through zarr, given to np.random.RandomState.set_state; the next
  draws must equal what C printed (C continues the same stream with its own MT19937).
* _CHECKPOINT_METADATA and every _METADATA through json: Orbax typestrs, custom metadata.
Prints "OK ..." and exits 0, or "FAIL <reason>" and exits 1.
"""
import json
import os
import sys

import numpy as np
import zarr
from zarr.storage import DirectoryStore

M64 = (1 << 64) - 1


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


class Bfloat16AsUint16(DirectoryStore):
    """A zarr store whose .zarray reads dtype '<u2' where the file says 'bfloat16'."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if key.endswith(".zarray"):
            meta = json.loads(value)
            if meta["dtype"] == "bfloat16":
                meta["dtype"] = "<u2"
                value = json.dumps(meta).encode()
        return value


def open_array(path):
    """(values, dtype name): float32 values for bfloat16 arrays, as stored otherwise."""
    with open(os.path.join(path, ".zarray")) as f:
        stored = json.load(f)["dtype"]
    if stored == "bfloat16":
        bits = zarr.open_array(Bfloat16AsUint16(path), mode="r")[...]
        if bits.dtype != np.uint16:
            fail("%s: bfloat16 read as %s" % (path, bits.dtype))
        return (bits.astype(np.uint32) << 16).view(np.float32), "bfloat16", bits
    a = zarr.open_array(path, mode="r")[...]
    return a, str(a.dtype), a


def splitmix64(z):
    z = z.copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xbf58476d1ce4e5b9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94d049bb133111eb)
    z ^= z >> np.uint64(31)
    return z


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def regenerate(seed, name, dtype, n):
    base = splitmix64(np.array([seed ^ fnv1a64(name.encode())], dtype=np.uint64))[0]
    i = np.arange(1, n + 1, dtype=np.uint64)
    z = splitmix64(base + i * np.uint64(0x9E3779B97F4A7C15))
    if dtype == "bfloat16":
        v = ((z >> np.uint64(56)).astype(np.int64) - 128).astype(np.float32) * np.float32(2.0 ** -10)
    else:
        v = ((z >> np.uint64(40)).astype(np.int64) - (1 << 23)).astype(np.float32) * np.float32(2.0 ** -26)
    if ".nu." in name:
        v = np.abs(v)
    return v


def fingerprint(raw):
    """ms_fingerprint: sum of splitmix64(bits_i ^ i * 0xD1B54A32D192ED03) mod 2^64."""
    flat = np.ascontiguousarray(raw).reshape(-1)
    width = flat.dtype.itemsize
    bits = flat.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[width]).astype(np.uint64)
    i = np.arange(flat.size, dtype=np.uint64)
    return int(splitmix64(bits ^ (i * np.uint64(0xD1B54A32D192ED03))).sum(dtype=np.uint64))


def threefry2x32(key, ctr):
    rot = [13, 15, 26, 6, 17, 29, 16, 24]
    m = 0xffffffff
    ks = [key[0], key[1], 0x1BD11BDA ^ key[0] ^ key[1]]
    x0, x1 = (ctr[0] + ks[0]) & m, (ctr[1] + ks[1]) & m
    for r in range(20):
        x0 = (x0 + x1) & m
        x1 = (((x1 << rot[r % 8]) | (x1 >> (32 - rot[r % 8]))) & m) ^ x0
        if r % 4 == 3:
            s = r // 4 + 1
            x0 = (x0 + ks[s % 3]) & m
            x1 = (x1 + ks[(s + 1) % 3] + s) & m
    return x0, x1


def tree_params(item):
    with open(os.path.join(item, "_METADATA")) as f:
        meta = json.load(f)
    if meta.get("use_ocdbt") is not False or meta.get("use_zarr3") is not False:
        fail(item + ": use_ocdbt/use_zarr3 must be false")
    out = {}
    for keystr, entry in meta["tree_metadata"].items():
        keys = [k["key"] for k in entry["key_metadata"]]
        if keystr != str(tuple(keys)):
            fail("%s: tree_metadata key %r is not str(%r)" % (item, keystr, tuple(keys)))
        out[".".join(keys)] = entry["value_metadata"]["value_type"]
    return out


def main():
    ckpt, save_out = sys.argv[1], sys.argv[2]
    leaves, strings, rng_lines = {}, {}, {}
    with open(save_out, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("leaf "):
                _, name, dtype, shape, fp = line.split(" ")
                leaves[name] = (dtype, shape, int(fp[3:], 16))
            elif line.startswith("string "):
                _, name, value = line.split(" ", 2)
                strings[name] = value
            elif line.startswith(("rng ", "np_rng ")):
                words = line.split(" ")
                rng_lines[words[0] + " " + words[1]] = words[2:]
    if not leaves:
        fail(save_out + ": no leaf lines")

    with open(os.path.join(ckpt, "_CHECKPOINT_METADATA")) as f:
        cm = json.load(f)
    prefix = "orbax.checkpoint._src.handlers."
    want_handlers = {
        "state": prefix + "standard_checkpoint_handler.StandardCheckpointHandler",
        "meta": prefix + "pytree_checkpoint_handler.PyTreeCheckpointHandler",
        "rng": prefix + "random_key_checkpoint_handler.JaxRandomKeyCheckpointHandler",
        "np_rng": prefix + "random_key_checkpoint_handler.NumpyRandomKeyCheckpointHandler"}
    if cm.get("item_handlers") != want_handlers:
        fail("_CHECKPOINT_METADATA item_handlers: %r" % cm.get("item_handlers"))
    seed = cm.get("custom_metadata", {}).get("seed")
    if not isinstance(seed, int):
        fail("_CHECKPOINT_METADATA has no custom_metadata.seed")

    # state: every array and scalar, element by element and by fingerprint.
    state = os.path.join(ckpt, "state")
    params = tree_params(state)
    n_arrays = n_elems = n_bf16 = 0
    for name, vt in sorted(params.items()):
        if vt not in ("np.ndarray", "scalar"):
            fail("state/%s: unexpected value_type %s" % (name, vt))
        values, dtype, raw = open_array(os.path.join(state, name))
        want = leaves.pop("state/" + name, None)
        if want is None:
            fail("state/%s: not printed by the C program" % name)
        shape = "x".join(str(d) for d in values.shape) if values.ndim else "()"
        if (dtype, shape) != want[:2]:
            fail("state/%s: zarr sees %s %s, C printed %s %s" % (name, dtype, shape, *want[:2]))
        if fingerprint(raw) != want[2]:
            fail("state/%s: fingerprint %016x, C printed %016x" % (name, fingerprint(raw), want[2]))
        if vt == "np.ndarray":
            expect = regenerate(seed, name, dtype, values.size).reshape(values.shape)
            bad = np.flatnonzero(expect.view(np.uint32) != values.view(np.uint32))
            if bad.size:
                fail("state/%s: %d elements differ from numpy's regeneration (first at %d)"
                     % (name, bad.size, bad[0]))
            n_arrays += 1
            n_elems += values.size
            n_bf16 += dtype == "bfloat16"
    leftover = [k for k in leaves if k.startswith("state/")]
    if leftover:
        fail("state leaves printed by C but missing on disk: %s" % leftover)

    # meta: strings from _strings.json, integers through zarr.
    meta_dir = os.path.join(ckpt, "meta")
    with open(os.path.join(meta_dir, "_strings.json"), encoding="utf-8") as f:
        on_disk = json.load(f)
    for name, vt in tree_params(meta_dir).items():
        if vt == "string":
            if on_disk.get(name) != strings.get("meta/" + name):
                fail("meta/%s: %r on disk, C printed %r" % (name, on_disk.get(name),
                                                            strings.get("meta/" + name)))
        else:
            _, dtype, raw = open_array(os.path.join(meta_dir, name))
            if fingerprint(raw) != leaves["meta/" + name][2]:
                fail("meta/%s: fingerprint differs" % name)
    if zarr.open_array(os.path.join(meta_dir, "seed"), mode="r")[...] != seed:
        fail("meta/seed differs from custom_metadata.seed")

    # rng: the JAX key and its threefry continuation.
    key = zarr.open_array(os.path.join(ckpt, "rng", "jax_random_key", "checkpoint"), mode="r")[...]
    if key.dtype != np.uint32 or key.shape != (2,):
        fail("rng: key data is %s %s" % (key.dtype, key.shape))
    if ["%08x" % int(k) for k in key] != rng_lines["rng key_data"]:
        fail("rng: key data %s, C printed %s" % (key, rng_lines["rng key_data"]))
    nxt = ["%08x%08x" % threefry2x32([int(key[0]), int(key[1])], [j, 1]) for j in range(4)]
    if nxt != rng_lines["rng jax_next"]:
        fail("rng: threefry continuation %s, C printed %s" % (nxt, rng_lines["rng jax_next"]))
    with open(os.path.join(ckpt, "rng", "jax_random_key_metadata", "metadata")) as f:
        json.load(f)

    # np_rng: Orbax's layout of get_state(), then numpy continues the stream.
    npd = os.path.join(ckpt, "np_rng", "np_random_key")
    with open(os.path.join(npd, "_strings.json")) as f:
        bitgen = json.load(f)["0"]
    mt_key = zarr.open_array(os.path.join(npd, "1"), mode="r")[...]
    pos = int(zarr.open_array(os.path.join(npd, "2"), mode="r")[...])
    has_gauss = int(zarr.open_array(os.path.join(npd, "3"), mode="r")[...])
    gauss = float(zarr.open_array(os.path.join(npd, "4"), mode="r")[...])
    rs = np.random.RandomState()
    rs.set_state((bitgen, mt_key, pos, has_gauss, gauss))
    if ["%d" % pos, "has_gauss", "%d" % has_gauss] != rng_lines["np_rng pos"]:
        fail("np_rng: pos/has_gauss %d/%d, C printed %s" % (pos, has_gauss, rng_lines["np_rng pos"]))
    u32 = ["%d" % v for v in rs.randint(0, 2 ** 32, size=4, dtype=np.uint64)]
    if u32 != rng_lines["np_rng next_u32"]:
        fail("np_rng: numpy draws %s, C drew %s" % (u32, rng_lines["np_rng next_u32"]))
    g0, g1 = rs.standard_normal(), rs.standard_normal()
    d = rs.random_sample()
    got = [float.hex(g0), float.hex(g1), "next_double", float.hex(d)]
    want = [float.hex(float.fromhex(x)) if x != "next_double" else x
            for x in rng_lines["np_rng next_normal"]]
    if got != want:
        fail("np_rng: numpy continues with %s, C with %s" % (got, want))

    print("OK %d arrays (%d bfloat16), %d elements, %d scalars, %d strings, JAX key and "
          "MT19937 continuations match (seed %d)"
          % (n_arrays, n_bf16, n_elems, sum(1 for v in params.values() if v == "scalar"),
             len(strings), seed))


if __name__ == "__main__":
    main()
