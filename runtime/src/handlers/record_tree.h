/* record_tree.h — private extensions of ckpt_record_to_tree / ckpt_record_from_tree that the
 * record handler and the random-key handlers need (not part of the public API).
 *
 * The public functions in ckpt/record_handler.h are thin wrappers over these. */
#ifndef CKPT_SRC_RECORD_TREE_H
#define CKPT_SRC_RECORD_TREE_H

#include <stdbool.h>

#include "ckpt/desc.h"
#include "ckpt/random.h"
#include "ckpt/tree.h"

/* Called for every array leaf produced from a field that carries storage annotations
 * (@chunk_bytes, @compress, @save_dtype); param is the leaf's parameter name below the record
 * ("w1", "layers.0.w", "adam_m.w1"). The strings are valid only during the call. */
typedef ckpt_status (*ckpt_record_leaf_fn)(void *ctx, const char *param,
                                           const ckpt_leaf_options *options, ckpt_error *err);

/* What ckpt_record_to_tree_ex puts at an array leaf. */
typedef enum ckpt_record_arrays {
  CKPT_RECORD_ARRAYS_VIEW, /* arrays sharing the record's memory (ckpt_array_view) */
  CKPT_RECORD_ARRAYS_COPY, /* deep copies */
  CKPT_RECORD_ARRAYS_SHAPE /* a restore target: arrays with the same dtype, shape and shard
                              boxes but fresh memory (never aliasing the record); unset strings
                              and JSON become "", bytes and protos empty bytes leaves, an unset
                              numpy state a dummy one (their stored values are what count);
                              an unset array, JAX key or tree is an error */
} ckpt_record_arrays;

/* ckpt_record_to_tree, plus a callback for annotated leaves (may be NULL). */
ckpt_status ckpt_record_to_tree_ex(const ckpt_record_desc *desc, const void *record,
                                   ckpt_record_arrays arrays, ckpt_record_leaf_fn leaf_fn,
                                   void *leaf_ctx, ckpt_tree **out, ckpt_error *err);

/* ckpt_record_from_tree with two additions:
 *  - take: move arrays (and subtrees) out of tree instead of copying them; tree is left with
 *    None leaves where arrays were, and must still be freed by the caller;
 *  - target: a record of the same type (or NULL) whose bare `proto` fields tell which message
 *    type to unpack (a bare proto carries no type in the schema).
 * On error *record holds what was filled so far; release it with ckpt_record_free. */
ckpt_status ckpt_record_from_tree_ex(const ckpt_record_desc *desc, ckpt_tree *tree, bool take,
                                     const void *target, void *record, ckpt_error *err);

/* The layouts a numpy MT19937 state and a JAX key take inside a record's tree (sub-dicts),
 * shared with the tests and the documentation:
 *   numpy_random_key → {"bit_generator": "MT19937", "state": {"key": uint32[624], "pos": int64},
 *                       "has_gauss": int64, "gauss": float64, "legacy": bool}
 *     (numpy's RandomState.get_state(legacy=False) dict, accepted as is by set_state)
 *   jax_random_key   → {"key_data": uint32[..., k], "typed": bool, "impl": string ("" = the
 *                       default implementation)}
 * path names the value in error messages. *out owned by the caller. */
ckpt_status ckpt_numpy_rng_to_tree(const ckpt_numpy_rng *rng, ckpt_record_arrays arrays,
                                   const char *path, ckpt_tree **out, ckpt_error *err);
ckpt_status ckpt_numpy_rng_from_tree(const ckpt_tree *node, const char *path, ckpt_numpy_rng **out,
                                     ckpt_error *err);
ckpt_status ckpt_jax_key_to_tree(const ckpt_jax_key *key, ckpt_record_arrays arrays,
                                 const char *path, ckpt_tree **out, ckpt_error *err);
ckpt_status ckpt_jax_key_from_tree(ckpt_tree *node, bool take, const char *path, ckpt_jax_key **out,
                                   ckpt_error *err);

/* Checks what numpy's generator relies on but set_state does not check: pos in [0, 624] (numpy
 * indexes key[pos] unchecked) and has_gauss 0 or 1; path names the state in the message. */
ckpt_status ckpt_numpy_rng_validate(const ckpt_numpy_rng *rng, const char *path, ckpt_error *err);

/* Copies a uint32[624] array (one contiguous shard) into key; errors name path. */
ckpt_status ckpt_numpy_rng_key_from_array(const ckpt_array *a, const char *path, uint32_t *key,
                                          ckpt_error *err);

#endif
