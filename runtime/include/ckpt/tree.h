/* ckpt/tree.h — PyTrees in C: dicts (string keys, kept sorted), lists, tuples and None as
 * inner nodes; arrays, scalars, strings, bytes and placeholders as leaves.
 *
 * Ownership: a node owns its children; adding a child transfers it to the parent. Builders
 * return NULL only when memory runs out, and every adder accepts a NULL child and reports
 * CKPT_ENOMEM for it, so trees can be built in one expression per node without checking
 * each constructor:
 *
 *   ckpt_tree *t = ckpt_tree_new_dict();
 *   ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(w), &err);
 *   ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 10), &err);
 */
#ifndef CKPT_TREE_H
#define CKPT_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/api.h"
#include "ckpt/array.h"
#include "ckpt/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_tree ckpt_tree;

typedef enum ckpt_node_kind {
  CKPT_NODE_DICT,
  CKPT_NODE_LIST,
  CKPT_NODE_TUPLE,
  CKPT_NODE_NONE,
  CKPT_NODE_ARRAY,
  CKPT_NODE_SCALAR,
  CKPT_NODE_STRING,
  CKPT_NODE_BYTES,
  CKPT_NODE_PLACEHOLDER
} ckpt_node_kind;

/* A scalar leaf (Orbax "scalar", stored as a 0-d array). */
typedef struct ckpt_scalar {
  ckpt_dtype dtype;
  union {
    bool b;
    int64_t i;  /* signed integer dtypes */
    uint64_t u; /* unsigned integer dtypes */
    double f;   /* float dtypes (float16/bfloat16/float32 values held as double) */
  } v;
} ckpt_scalar;

CKPT_API ckpt_tree *ckpt_tree_new_dict(void);
CKPT_API ckpt_tree *ckpt_tree_new_list(void);
CKPT_API ckpt_tree *ckpt_tree_new_tuple(void);
CKPT_API ckpt_tree *ckpt_tree_new_none(void);
CKPT_API ckpt_tree *ckpt_tree_new_placeholder(void);
/* Takes ownership of array (freed even when NULL is returned). */
CKPT_API ckpt_tree *ckpt_tree_new_array(ckpt_array *array);
CKPT_API ckpt_tree *ckpt_tree_new_scalar(ckpt_scalar value);
CKPT_API ckpt_tree *ckpt_tree_new_int(ckpt_dtype dtype, int64_t value);
CKPT_API ckpt_tree *ckpt_tree_new_float(ckpt_dtype dtype, double value);
CKPT_API ckpt_tree *ckpt_tree_new_string(const char *value);              /* copied */
CKPT_API ckpt_tree *ckpt_tree_new_bytes(const void *data, size_t len);    /* copied */

/* Inserts or replaces key (copied); child is owned by the dict afterwards, also on error. */
CKPT_API ckpt_status ckpt_tree_dict_set(ckpt_tree *dict, const char *key, ckpt_tree *child,
                                        ckpt_error *err);
/* Appends to a list or tuple; child owned by the sequence afterwards, also on error. */
CKPT_API ckpt_status ckpt_tree_append(ckpt_tree *seq, ckpt_tree *child, ckpt_error *err);

CKPT_API ckpt_node_kind ckpt_tree_kind(const ckpt_tree *node);
CKPT_API const char *ckpt_node_kind_name(ckpt_node_kind kind);
/* Children of a dict/list/tuple (dict children in sorted key order); 0 for leaves. */
CKPT_API size_t ckpt_tree_count(const ckpt_tree *node);
CKPT_API ckpt_tree *ckpt_tree_child(const ckpt_tree *node, size_t index);
/* The key of child index of a dict; NULL for other nodes. */
CKPT_API const char *ckpt_tree_key(const ckpt_tree *node, size_t index);
/* Dict child by key; NULL when absent. */
CKPT_API ckpt_tree *ckpt_tree_dict_get(const ckpt_tree *dict, const char *key);
/* Look-up by a '.'-separated path of dict keys and sequence indices ("layer0.w", "opt.1.mu");
 * NULL when absent. Dict keys may contain '.': a key equal to the rest of the path is taken
 * first, otherwise keys that are a prefix of it are tried in key order. */
CKPT_API ckpt_tree *ckpt_tree_get(const ckpt_tree *root, const char *path);

/* Leaf accessors: NULL / false when the node is of another kind. */
CKPT_API ckpt_array *ckpt_tree_array(const ckpt_tree *node); /* borrowed */
CKPT_API bool ckpt_tree_scalar(const ckpt_tree *node, ckpt_scalar *out);
CKPT_API const char *ckpt_tree_string(const ckpt_tree *node);
CKPT_API bool ckpt_tree_bytes(const ckpt_tree *node, const void **data, size_t *len);

/* Deep copy; NULL on allocation failure. */
CKPT_API ckpt_tree *ckpt_tree_clone(const ckpt_tree *node);
/* Structure, keys and leaf values (arrays by dtype, shape and bytes). */
CKPT_API bool ckpt_tree_equal(const ckpt_tree *a, const ckpt_tree *b);
CKPT_API void ckpt_tree_free(ckpt_tree *node);

/* Depth-first visit of every leaf (and of empty dicts/lists/tuples and None, which Orbax
 * also records) in key order. path is the leaf's key names; returning non-OK stops the walk
 * and is returned. */
typedef ckpt_status (*ckpt_tree_visit_fn)(void *ctx, const char *const *path, size_t depth,
                                          const ckpt_tree *node, ckpt_error *err);
CKPT_API ckpt_status ckpt_tree_walk(const ckpt_tree *root, ckpt_tree_visit_fn fn, void *ctx,
                                    ckpt_error *err);

/* ---- Additions (runtime/src/core/tree.c) ---- */

/* Removes and returns the array of an array leaf, leaving the leaf as None; the caller owns the
 * result (ckpt_array_free). NULL when node is not an array leaf. */
CKPT_API ckpt_array *ckpt_tree_take_array(ckpt_tree *node);
/* Removes key from a dict and frees the child; false when absent or not a dict. */
CKPT_API bool ckpt_tree_dict_remove(ckpt_tree *dict, const char *key);
/* Replaces child index of a dict/list/tuple (the old child is freed; child owned afterwards,
 * also on error). */
CKPT_API ckpt_status ckpt_tree_set_child(ckpt_tree *node, size_t index, ckpt_tree *child,
                                         ckpt_error *err);
/* A scalar's value as the dtype-size little-endian bytes of its dtype (NumPy's 0-d array). */
CKPT_API void ckpt_scalar_store(const ckpt_scalar *value, void *dst);
/* The scalar held in one element of dtype at src. */
CKPT_API ckpt_scalar ckpt_scalar_load(ckpt_dtype dtype, const void *src);
/* Number of leaves (arrays, scalars, strings, bytes, placeholders) below node. */
CKPT_API size_t ckpt_tree_num_leaves(const ckpt_tree *node);

#ifdef __cplusplus
}
#endif
#endif
