"""examples/train_mlp_mpi/check_zarr.py STEP_DIR DUMP — zarr-python reads the checkpoint that
the ranks of train_mlp_mpi saved together (STEP_DIR/default) and finds in it, bit for bit, the
final state one run dumped (--dump: int64 step, uint32[624] generator key, int64 position, then
per tensor w1, b1, w2, b2 its parameters, first and second moments, float32, gathered whole)."""
import os
import sys

import numpy as np
import zarr

step_dir, dump = sys.argv[1], sys.argv[2]
item = os.path.join(step_dir, "default")
raw = open(dump, "rb").read()
pos = 0


def take(dtype, count):
    global pos
    a = np.frombuffer(raw, dtype=dtype, count=count, offset=pos)
    pos += a.nbytes
    return a


def read(name):
    return zarr.open(os.path.join(item, name), mode="r")[...]


bad = []
if read("step") != take("<i8", 1)[0]:
    bad.append("step")
if not np.array_equal(read("rng.state.key"), take("<u4", 624)):
    bad.append("rng.state.key")
if read("rng.state.pos") != take("<i8", 1)[0]:
    bad.append("rng.state.pos")
names = []
for t in ("w1", "b1", "w2", "b2"):
    for prefix in ("", "m_", "v_"):
        a = read(prefix + t)
        names.append("%s%s %s" % (prefix, t, "x".join(map(str, a.shape))))
        if a.dtype != np.float32 or not np.array_equal(a.ravel(), take("<f4", a.size)):
            bad.append(prefix + t)
if pos != len(raw):
    bad.append("(dump has %d bytes, read %d)" % (len(raw), pos))
print("zarr-python read %d arrays (%s) and the step and generator: %s"
      % (len(names), ", ".join(names[:3]) + ", ...", "identical" if not bad else "DIFFERENT"),
      *bad)
sys.exit(1 if bad else 0)
