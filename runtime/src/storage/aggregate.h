/* storage/aggregate.h — the legacy aggregate file `checkpoint` of a PyTree item (private).
 *
 * Older Orbax and Flax versions kept a PyTree's leaves — or, once arrays moved to
 * TensorStore, the tree's structure with a placeholder per stored array — in one msgpack file
 * `<item>/checkpoint`, in Flax's encoding (flax/serialization.py msgpack_serialize; Orbax's
 * msgpack_utils.py is a copy of it):
 *
 *   map (str keys)        dict             array             list
 *   nil, bool, int, float None / scalars   str, bin          string / bytes leaves
 *   "PLACEHOLDER://<p>"   a leaf stored in TensorStore at parameter <p> (decoded as a
 *                         CKPT_NODE_PLACEHOLDER leaf: "read it from the zarr array")
 *   ext 1 (ndarray)       msgpack [shape, dtype name, C-order bytes]   → array leaf
 *   ext 2 (complex)       msgpack [re, im]                             → 0-d complex128 array
 *   ext 3 (numpy scalar)  as ext 1 with shape []                       → scalar leaf
 *   ext 4 (tuple)         msgpack array of the elements (Orbax only)   → tuple
 *   {"__msgpack_chunked_array__": true, "shape": {"0": n, ...}, "chunks": {"0": <ext 1>, ...}}
 *                         an array over 1 GiB split into 1-d chunks   → one array leaf
 *
 * Decoded with Debian's msgpack-c. The file is untrusted: before msgpack-c sees it, the
 * element counts its containers claim are bounded by the bytes that could hold them (msgpack-c
 * allocates a container's slots from the claim), and every ndarray's byte count must equal
 * prod(shape) × itemsize of a dtype ckpt knows (byte order: little endian, as every machine
 * Flax ran on wrote it). Errors are CKPT_ECORRUPT naming the file and the key path. Nesting
 * deeper than CKPT_AGGREGATE_MAX_DEPTH is refused. */
#ifndef CKPT_SRC_STORAGE_AGGREGATE_H
#define CKPT_SRC_STORAGE_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>

#include "ckpt/error.h"
#include "ckpt/io.h"
#include "ckpt/tree.h"

#define CKPT_AGGREGATE_FILE "checkpoint"
#define CKPT_AGGREGATE_PLACEHOLDER_PREFIX "PLACEHOLDER://"
#define CKPT_AGGREGATE_MAX_BYTES ((size_t)8 << 30)
#define CKPT_AGGREGATE_MAX_DEPTH 64

/* Decodes the bytes of an aggregate file; where names it in messages. *out owned by the caller
 * (ckpt_tree_free); NULL on failure. */
ckpt_status ckpt_aggregate_parse(const void *data, size_t len, const char *where, ckpt_tree **out,
                                 ckpt_error *err);

/* The value at a leaf's key path in a decoded aggregate tree (dict keys; sequence indices in
 * decimal, also looked up as dict keys, as Flax's state dicts store lists): NULL when the tree
 * has none there or holds a placeholder (the value is in the leaf's zarr array). */
const ckpt_tree *ckpt_aggregate_value(const ckpt_tree *aggregate, const char *const *keys,
                                      size_t depth);

/* Reads and decodes <dir>/checkpoint. CKPT_ENOENT (message naming the path) when there is
 * none, or when it is a directory (ArrayCheckpointHandler's array parameter `checkpoint`); a
 * symlink is CKPT_EUNSAFE. */
ckpt_status ckpt_aggregate_read(ckpt_io *io, const char *dir, ckpt_tree **out, ckpt_error *err);

#endif
