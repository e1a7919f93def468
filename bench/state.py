"""bench/state.py — the benchmark states of `make bench`: what arrays each holds (written as a
manifest that every benchmark process reads) and the deterministic generator that fills them.

The generator is the NumPy twin of bench_fill() in bench_common.c; both produce the same bytes,
which the orchestrator checks through fingerprints on every run. Manifest format (text):

    ckpt-bench-state 1 NAME COUNT
    DOTTED.NAME SEED float32 NDIM D0 D1 ...      (COUNT lines)

States (performance.md): large = 8 x 128 MiB; llm = a transformer-like tree (params + two Adam
moments, ~1 GiB, arrays of 4 KiB to 64 MiB); small = 10,000 x 4 KiB; small1 = one array of the
small state's total bytes (the denominator of small_vs_large); mpi = the llm state's arrays and
bytes under their own name, for the MPI section (bench_split.h says how its programs divide it
among ranks). `scale` divides them for QUICK=1.
"""

import numpy as np

BASE_WORDS = 262144  # 1 MiB of float32 words; must match BENCH_BASE_WORDS
M32 = 0xFFFFFFFF


def _lowbias32(x):
    """Vectorised lowbias32 on a uint32 array (wraps modulo 2^32 like the C version)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    x = x ^ (x >> np.uint32(16))
    return x


_BASE = None


def _base():
    global _BASE
    if _BASE is None:
        i = np.arange(BASE_WORDS, dtype=np.uint32)
        h = _lowbias32(i + np.uint32(0x9E3779B9))
        exponent = np.uint32(117) + ((h >> np.uint32(23)) & np.uint32(7))
        _BASE = (h & np.uint32(0x80000000)) | (exponent << np.uint32(23)) | (h & np.uint32(0x007FFFFF))
    return _BASE


def fill(seed, n):
    """n float32 words of array `seed`, as a uint32 array (bench_fill in bench_common.c)."""
    base = _base()
    nblocks = (n + BASE_WORDS - 1) // BASE_WORDS
    blocks = np.arange(nblocks, dtype=np.uint32)
    start = np.uint32((seed * 0x9E3779B9 + 1) & M32)
    keys = _lowbias32(start + blocks * np.uint32(0x85EBCA6B)) & np.uint32(0x007FFFFF)
    out = np.empty(n, dtype=np.uint32)
    full = n // BASE_WORDS
    if full:
        np.bitwise_xor(base[None, :], keys[:full, None], out=out[: full * BASE_WORDS].reshape(full, BASE_WORDS))
    tail = n - full * BASE_WORDS
    if tail:
        np.bitwise_xor(base[:tail], keys[full], out=out[full * BASE_WORDS:])
    return out


def read_manifest(path):
    """(state name, [(dotted name, seed, shape)])."""
    with open(path) as f:
        head = f.readline().split()
        if len(head) != 4 or head[0] != "ckpt-bench-state" or head[1] != "1":
            raise ValueError(f"{path}:1: expected 'ckpt-bench-state 1 NAME COUNT'")
        name, count = head[2], int(head[3])
        arrays = []
        for lineno in range(2, count + 2):
            parts = f.readline().split()
            if len(parts) < 4 or parts[2] != "float32" or len(parts) != 4 + int(parts[3]):
                raise ValueError(f"{path}:{lineno}: expected 'NAME SEED float32 NDIM DIMS...'")
            arrays.append((parts[0], int(parts[1]), tuple(int(d) for d in parts[4:])))
    return name, arrays


def generate(path):
    """(state name, [(dotted name, float32 ndarray)]) for the manifest at path."""
    name, arrays = read_manifest(path)
    out = []
    for aname, seed, shape in arrays:
        n = int(np.prod(shape, dtype=np.int64))
        out.append((aname, fill(seed, n).view(np.float32).reshape(shape)))
    return name, out


def fingerprint(arrays):
    """Sum over arrays k of (k + 1) * (sum of uint32 words), mod 2^64 (bench_state_fingerprint)."""
    total = 0
    for k, (_, a) in enumerate(arrays):
        total += (k + 1) * int(a.reshape(-1).view(np.uint32).sum(dtype=np.uint64))
    return total & 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------- the states


def _large(scale):
    rows = max(8192 // scale, 1)
    return [(f"w{k}", (rows, 4096)) for k in range(8)]


def _llm_params(scale):
    """A GPT-like parameter tree: embeddings, `layers` blocks of attention + MLP + layer norms."""
    # scale 1: d_model 1024, d_ff 4096, vocab 16384, 6 layers -> 360 MiB of params.
    div = {1: 1, 16: 4}.get(scale, max(int(scale ** 0.5), 1))
    d, ff, vocab, ctx = 1024 // div, 4096 // div, 16384 // div, 2048 // div
    out = [("embed.tok", (vocab, d)), ("embed.pos", (ctx, d))]
    for layer in range(6):
        p = f"layer_{layer:02d}"
        for w in ("wq", "wk", "wv", "wo"):
            out.append((f"{p}.attn.{w}", (d, d)))
        for b in ("bq", "bk", "bv", "bo"):
            out.append((f"{p}.attn.{b}", (d,)))
        out += [(f"{p}.mlp.w1", (d, ff)), (f"{p}.mlp.b1", (ff,)),
                (f"{p}.mlp.w2", (ff, d)), (f"{p}.mlp.b2", (d,))]
        for ln in ("ln1", "ln2"):
            out += [(f"{p}.{ln}.scale", (d,)), (f"{p}.{ln}.bias", (d,))]
    out += [("final_ln.scale", (d,)), ("final_ln.bias", (d,))]
    return out


def _llm(scale):
    params = _llm_params(scale)
    out = [(f"params.{n}", s) for n, s in params]
    for moment in ("mu", "nu"):
        out += [(f"opt_state.{moment}.{n}", s) for n, s in params]
    return out


def _small(scale):
    count = max(10000 // scale, 1)
    return [(f"leaf_{k:05d}", (1024,)) for k in range(count)]


def _small1(scale):
    return [("all", (max(10000 // scale, 1), 1024))]


STATES = {"large": _large, "llm": _llm, "small": _small, "small1": _small1, "mpi": _llm}
# The MPI section saves the llm state's very bytes (its seeds), so its one-process figure and
# the llm state's single-process save write the same data.
SEEDS_OF = {"mpi": "llm"}


def write_manifest(state, scale, path):
    arrays = STATES[state](scale)
    with open(path, "w") as f:
        f.write(f"ckpt-bench-state 1 {state} {len(arrays)}\n")
        for k, (name, shape) in enumerate(arrays):
            # Seeds differ across states too, so no two arrays anywhere share their bytes.
            seed = (list(STATES).index(SEEDS_OF.get(state, state)) + 1) * 100000 + k + 1
            f.write(f"{name} {seed} float32 {len(shape)} {' '.join(map(str, shape))}\n")
    return sum(4 * int(np.prod(s)) for _, s in arrays), len(arrays)
