"""zarr3_peer.py — an independent zarr v3 codec implementation (NumPy for layouts, numcodecs
for zstd / blosc / gzip, a table CRC-32C) that test_interop_zarr3.c checks ckpt's codec
pipeline against, both ways. Debian's zarr-python (2.13) cannot read v3, so this follows the
zarr v3 spec directly (core: bytes, transpose, crc32c, zstd, blosc, gzip; sharding_indexed).

  zarr3_peer.py make DIR   writes, per case, DIR/<case>.json (zarr.json), DIR/<case>.raw (one
                           chunk, C order, little-endian) and DIR/<case>.bin (that chunk
                           encoded here), and DIR/cases.txt
  zarr3_peer.py check DIR  decodes DIR/<case>.c.bin (ckpt's encoding of <case>.raw) here and
                           compares it with <case>.raw; exit 1 naming the first difference
"""
import json
import os
import sys

import numpy as np
import numcodecs

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


DTYPES = {"bool": "?", "int8": "i1", "int16": "i2", "int32": "i4", "int64": "i8",
          "uint8": "u1", "uint16": "u2", "uint32": "u4", "uint64": "u8", "float16": "f2",
          "float32": "f4", "float64": "f8", "complex64": "c8", "complex128": "c16"}


def codec(c):
    if isinstance(c, str):
        return c, {}
    return c["name"], c.get("configuration", {})


def split(chain):
    """array→array codecs, the array→bytes codec, bytes→bytes codecs"""
    names = [codec(c)[0] for c in chain]
    ab = next(i for i, n in enumerate(names) if n in ("bytes", "sharding_indexed"))
    return chain[:ab], chain[ab], chain[ab + 1:]


def bb_encode(c, data, itemsize):
    name, cfg = codec(c)
    if name == "crc32c":
        return data + crc32c(data).to_bytes(4, "little")
    if name == "zstd":
        return numcodecs.Zstd(level=cfg.get("level", 0)).encode(data)
    if name == "gzip":
        return numcodecs.GZip(level=cfg.get("level", 6)).encode(data)
    if name == "blosc":
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[cfg.get("shuffle", "noshuffle")]
        # numcodecs takes the typesize from the buffer's item size
        arr = np.frombuffer(data, dtype="u%d" % cfg.get("typesize", itemsize))
        return numcodecs.Blosc(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=shuffle,
                               blocksize=cfg.get("blocksize", 0)).encode(arr)
    raise ValueError(name)


def bb_decode(c, data):
    name, cfg = codec(c)
    if name == "crc32c":
        if crc32c(data[:-4]) != int.from_bytes(data[-4:], "little"):
            raise ValueError("crc32c mismatch")
        return data[:-4]
    if name == "zstd":
        return bytes(numcodecs.Zstd().decode(data))
    if name == "gzip":
        return bytes(numcodecs.GZip().decode(data))
    if name == "blosc":
        return bytes(numcodecs.Blosc().decode(data))
    raise ValueError(name)


def encode(chain, arr, fill):
    aa, ab, bb = split(chain)
    for c in aa:
        arr = np.transpose(arr, codec(c)[1]["order"])
    name, cfg = codec(ab)
    if name == "bytes":
        end = ">" if cfg.get("endian") == "big" else "<"
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder(end)).tobytes()
    else:
        data = shard_encode(cfg, arr, fill)
    for c in bb:
        data = bb_encode(c, data, arr.dtype.itemsize)
    return data


def decode(chain, data, shape, dtype, fill):
    aa, ab, bb = split(chain)
    for c in reversed(bb):
        data = bb_decode(c, data)
    eshape = list(shape)
    for c in aa:
        eshape = [eshape[i] for i in codec(c)[1]["order"]]
    name, cfg = codec(ab)
    if name == "bytes":
        end = ">" if cfg.get("endian") == "big" else "<"
        arr = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder(end)).reshape(eshape)
    else:
        arr = shard_decode(cfg, data, eshape, dtype, fill)
    for c in reversed(aa):
        arr = np.transpose(arr, np.argsort(codec(c)[1]["order"]))
    return np.ascontiguousarray(arr).astype(np.dtype(dtype).newbyteorder("<"))


def inner_boxes(shape, inner):
    grid = [s // i for s, i in zip(shape, inner)]
    for idx in np.ndindex(*grid):
        yield idx, tuple(slice(j * i, (j + 1) * i) for j, i in zip(idx, inner))


def shard_encode(cfg, arr, fill):
    inner = cfg["chunk_shape"]
    grid = [s // i for s, i in zip(arr.shape, inner)]
    index = np.full(grid + [2], 2**64 - 1, dtype="<u8")
    at_start = cfg.get("index_location", "end") == "start"
    index_size = int(np.prod(grid)) * 16 + 4 * sum(codec(c)[0] == "crc32c"
                                                   for c in cfg["index_codecs"])
    body = b""
    for idx, box in inner_boxes(arr.shape, inner):
        part = arr[box]
        if np.all(part == fill):
            continue  # not stored: reads as the fill value
        enc = encode(cfg["codecs"], part, fill)
        index[idx] = [len(body) + (index_size if at_start else 0), len(enc)]
        body += enc
    ienc = encode(cfg["index_codecs"], index, None)
    assert len(ienc) == index_size
    return ienc + body if at_start else body + ienc


def shard_decode(cfg, data, shape, dtype, fill):
    inner = cfg["chunk_shape"]
    grid = [s // i for s, i in zip(shape, inner)]
    index_size = int(np.prod(grid)) * 16 + 4 * sum(codec(c)[0] == "crc32c"
                                                   for c in cfg["index_codecs"])
    at_start = cfg.get("index_location", "end") == "start"
    ibytes = data[:index_size] if at_start else data[len(data) - index_size:]
    index = decode(cfg["index_codecs"], ibytes, grid + [2], "uint64", None)
    out = np.full(shape, fill, dtype=dtype)
    for idx, box in inner_boxes(shape, inner):
        off, n = (int(v) for v in index[idx])
        if off == 2**64 - 1:
            continue
        out[box] = decode(cfg["codecs"], data[off:off + n], inner, dtype, fill)
    return out


def sharding(inner, codecs, index_codecs, location):
    return {"name": "sharding_indexed",
            "configuration": {"chunk_shape": inner, "codecs": codecs,
                              "index_codecs": index_codecs, "index_location": location}}


LE = {"name": "bytes", "configuration": {"endian": "little"}}
BE = {"name": "bytes", "configuration": {"endian": "big"}}

CASES = {
    # Orbax's chain
    "orbax": ("int32", [4, 6], 0, [sharding([4, 6], [LE, {"name": "zstd", "configuration":
                                                           {"level": 1, "checksum": False}}],
                                            [LE, {"name": "crc32c"}], "end")]),
    # inner chunks equal to the fill value are not stored; index first
    "shard_missing_start": ("float32", [4, 6], 1.5, [sharding(
        [2, 3], [LE, {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5,
                                                         "shuffle": "shuffle", "typesize": 4,
                                                         "blocksize": 0}}],
        [LE, "crc32c"], "start")]),
    "transpose_big_gzip": ("int16", [3, 5], 0, [
        {"name": "transpose", "configuration": {"order": [1, 0]}}, BE,
        {"name": "gzip", "configuration": {"level": 5}}]),
    "f64_rank3": ("float64", [2, 3, 4], 0, [
        {"name": "transpose", "configuration": {"order": [2, 0, 1]}}, BE,
        {"name": "zstd", "configuration": {"level": 3, "checksum": True}}, {"name": "crc32c"}]),
    "blosc_bitshuffle": ("uint16", [8, 8], 7, [LE, {"name": "blosc", "configuration": {
        "cname": "zstd", "clevel": 3, "shuffle": "bitshuffle", "typesize": 2, "blocksize": 0}}]),
    "complex_shard_no_crc": ("complex64", [2, 6], 0, [sharding(
        [1, 3], [LE], [{"name": "bytes", "configuration": {"endian": "big"}}], "end")]),
}


def sample(dtype, shape, fill):
    rng = np.random.default_rng(7)
    n = int(np.prod(shape))
    if dtype.startswith("complex"):
        arr = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(DTYPES[dtype])
    elif dtype.startswith("float"):
        arr = rng.standard_normal(n).astype(DTYPES[dtype])
    else:
        arr = rng.integers(0, 1000, n).astype(DTYPES[dtype])
    arr = arr.reshape(shape)
    if dtype == "float32":
        arr[0:2, 3:6] = fill  # one inner chunk equal to the fill value
    return arr


def zarr_json(dtype, shape, fill, codecs):
    return {"zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": shape}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": [fill, 0] if dtype.startswith("complex") else fill,
            "codecs": codecs, "attributes": {}}


def main():
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "make":
        for name, (dtype, shape, fill, codecs) in CASES.items():
            arr = sample(dtype, shape, fill)
            with open(os.path.join(out, name + ".json"), "w") as f:
                json.dump(zarr_json(dtype, shape, fill, codecs), f)
            with open(os.path.join(out, name + ".raw"), "wb") as f:
                f.write(arr.astype(np.dtype(DTYPES[dtype]).newbyteorder("<")).tobytes())
            with open(os.path.join(out, name + ".bin"), "wb") as f:
                f.write(encode(codecs, arr, fill))
        with open(os.path.join(out, "cases.txt"), "w") as f:
            f.write("\n".join(CASES) + "\n")
        return 0
    for name, (dtype, shape, fill, codecs) in CASES.items():
        with open(os.path.join(out, name + ".c.bin"), "rb") as f:
            data = f.read()
        with open(os.path.join(out, name + ".raw"), "rb") as f:
            raw = f.read()
        got = decode(codecs, data, shape, DTYPES[dtype], fill).tobytes()
        if got != raw:
            print("%s: ckpt's encoding decodes to different values here" % name)
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
