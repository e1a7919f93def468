/* handlers/pytree.c — PyTreeCheckpointHandler: PyTreeSave / PyTreeRestore over the shared
 * PyTree engine (pytree_save.c, pytree_restore.c, pytree_inspect.c), plus what those files
 * share: the key helpers (a leaf's repr for messages, a child's _METADATA key, which value
 * types are arrays), which live here rather than in one of them so that none of the three
 * depends on another, and the conversions of the generated per-leaf args (SaveArgs,
 * RestoreArgs) that Standard and Array reuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/pytree_internal.h"

/* ---------------------------------------------------------------- keys and names */

static const char k_repr_fallback[] = "(a key)";

char *ckpt_pt_repr(const ckpt_meta_key *keys, size_t depth) {
  const char **names = malloc((depth ? depth : 1) * sizeof *names);
  if (names == NULL)
    return (char *)k_repr_fallback;
  for (size_t i = 0; i < depth; i++)
    names[i] = keys[i].key;
  char *r = ckpt_py_tuple_repr(names, depth);
  free(names);
  return r ? r : (char *)k_repr_fallback;
}

void ckpt_pt_free_repr(char *repr) {
  if (repr != k_repr_fallback)
    free(repr);
}

const char *ckpt_pt_child_key(const ckpt_tree *node, size_t i, char idx[CKPT_PT_INDEX_KEY_SIZE],
                              int *type) {
  if (ckpt_tree_kind(node) == CKPT_NODE_DICT) {
    *type = CKPT_KEY_DICT;
    return ckpt_tree_key(node, i);
  }
  snprintf(idx, CKPT_PT_INDEX_KEY_SIZE, "%zu", i);
  *type = CKPT_KEY_SEQUENCE;
  return idx;
}

/* ---------------------------------------------------------------- per-leaf args */

const char *ckpt_pt_args_name(const ckpt_args *args) {
  if (args == NULL)
    return "NULL";
  if (args->desc == NULL || args->desc->name == NULL)
    return "(unknown args)";
  return args->desc->name;
}

ckpt_status ckpt_pt_save_args(const ckpt_SaveArgs *a, const char *param, bool standard,
                              const char *what, ckpt_pytree_leaf_save *out, ckpt_error *err) {
  memset(out, 0, sizeof *out);
  out->param = param;
  if (a->aggregate && standard)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "%s: save_args['%s'].aggregate=true is not supported (deprecated in "
                          "Orbax)",
                          what, param);
  if (a->dtype != NULL) {
    if (!ckpt_dtype_parse(a->dtype, &out->dtype))
      return ckpt_error_set(err, CKPT_EINVAL, "%s: save_args['%s'].dtype '%s' is not a dtype", what,
                            param, a->dtype);
    out->has_dtype = true;
  }
  if (a->has_chunk_byte_size) {
    if (a->chunk_byte_size <= 0)
      return ckpt_error_set(err, CKPT_EINVAL,
                            "%s: save_args['%s'].chunk_byte_size must be positive, got %lld", what,
                            param, (long long)a->chunk_byte_size);
    out->chunk_byte_size = a->chunk_byte_size;
  }
  out->n_shard_axes = a->n_shard_axes;
  out->shard_axes = a->shard_axes;
  if (a->compression != NULL) {
    if (strcmp(a->compression, "zstd") == 0)
      out->compression = CKPT_COMPRESSION_ZSTD;
    else if (strcmp(a->compression, "none") == 0)
      out->compression = CKPT_COMPRESSION_NONE;
    else
      return ckpt_error_set(err, CKPT_EINVAL,
                            "%s: save_args['%s'].compression '%s' is not \"zstd\" or \"none\"",
                            what, param, a->compression);
  }
  if (a->compression_level < 0 || a->compression_level > 22)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "%s: save_args['%s'].compression_level %d outside 0..22", what, param,
                          (int)a->compression_level);
  out->compression_level = a->compression_level;
  return CKPT_OK;
}

ckpt_status ckpt_pt_restore_args(const ckpt_RestoreArgs *a, const char *param, const char *what,
                                 ckpt_pytree_leaf_restore *out, ckpt_error *err) {
  memset(out, 0, sizeof *out);
  out->param = param;
  if (a->dtype != NULL) {
    if (!ckpt_dtype_parse(a->dtype, &out->dtype))
      return ckpt_error_set(err, CKPT_EINVAL, "%s: restore_args['%s'].dtype '%s' is not a dtype",
                            what, param, a->dtype);
    out->has_dtype = true;
  }
  if (a->has_global_shape) {
    if (a->n_global_shape > CKPT_MAX_RANK)
      return ckpt_error_set(err, CKPT_EINVAL, "%s: restore_args['%s'].global_shape has rank %zu",
                            what, param, a->n_global_shape);
    for (size_t d = 0; d < a->n_global_shape; d++)
      if (a->global_shape[d] < 0)
        return ckpt_error_set(err, CKPT_EINVAL,
                              "%s: restore_args['%s'].global_shape[%zu] is negative", what, param,
                              d);
    out->has_global_shape = true;
    out->ndim = (int)a->n_global_shape;
    out->global_shape = a->global_shape;
  }
  out->has_strict = true;
  out->strict = a->strict;
  if (a->restore_type != NULL) {
    static const char *const ok[] = {"np.ndarray", "jax.Array", "scalar", "string"};
    bool known = false;
    for (size_t i = 0; i < 4; i++)
      known |= strcmp(a->restore_type, ok[i]) == 0;
    if (!known)
      return ckpt_error_set(err, CKPT_EINVAL,
                            "%s: restore_args['%s'].restore_type '%s' is not one of np.ndarray, "
                            "jax.Array, scalar, string",
                            what, param, a->restore_type);
    out->restore_type = a->restore_type;
  }
  return CKPT_OK;
}

ckpt_status ckpt_PyTreeCheckpointHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                              const ckpt_args *args, ckpt_error *err) {
  (void)self;
  const ckpt_PyTreeSave *a = ckpt_PyTreeSave_cast(args);
  if (a == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "PyTreeCheckpointHandler: save into '%s' needs PyTreeSave args, got %s",
                          dir, ckpt_pt_args_name(args));
  ckpt_pytree_leaf_save *leaf = calloc(a->n_save_args ? a->n_save_args : 1, sizeof *leaf);
  if (leaf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "PyTreeSave: out of memory");
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < a->n_save_args && st == CKPT_OK; i++)
    st = ckpt_pt_save_args(&a->save_args[i].value, a->save_args[i].key, false, "PyTreeSave",
                           &leaf[i], err);
  if (st == CKPT_OK) {
    ckpt_pytree_save_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.tree = a->item;
    spec.n_leaf_args = a->n_save_args;
    spec.leaf_args = leaf;
    spec.custom_metadata = a->custom_metadata;
    spec.what = "PyTreeSave";
    st = ckpt_pytree_save(op, dir, &spec, err);
  }
  free(leaf);
  return st;
}

ckpt_status ckpt_PyTreeCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                                 const ckpt_args *args, ckpt_value *out,
                                                 ckpt_error *err) {
  (void)self;
  const ckpt_PyTreeRestore *a = NULL;
  if (args != NULL && (a = ckpt_PyTreeRestore_cast(args)) == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "PyTreeCheckpointHandler: restore of '%s' needs PyTreeRestore args, "
                          "got %s",
                          dir, ckpt_pt_args_name(args));
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.what = "PyTreeRestore";
  spec.transforms_default_to_original = true;
  ckpt_pytree_leaf_restore *leaf = NULL;
  ckpt_pytree_transform *tf = NULL;
  ckpt_status st = CKPT_OK;
  if (a != NULL) {
    spec.target = a->item;
    spec.partial_restore = a->partial_restore;
    spec.transforms_default_to_original = a->transforms_default_to_original;
    leaf = calloc(a->n_restore_args ? a->n_restore_args : 1, sizeof *leaf);
    tf = calloc(a->n_transforms ? a->n_transforms : 1, sizeof *tf);
    if (leaf == NULL || tf == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    for (size_t i = 0; st == CKPT_OK && i < a->n_restore_args; i++)
      st = ckpt_pt_restore_args(&a->restore_args[i].value, a->restore_args[i].key, "PyTreeRestore",
                                &leaf[i], err);
    spec.n_leaf_args = a->n_restore_args;
    spec.leaf_args = leaf;
    for (size_t i = 0; st == CKPT_OK && i < a->n_transforms; i++) {
      tf[i].pattern = a->transforms[i].pattern;
      tf[i].replacement = a->transforms[i].replacement;
    }
    spec.has_transforms = a->has_transforms;
    spec.n_transforms = a->n_transforms;
    spec.transforms = tf;
  }
  ckpt_tree *tree = NULL;
  if (st == CKPT_OK)
    st = ckpt_pytree_restore(op, dir, &spec, &tree, err);
  free(leaf);
  free(tf);
  if (st != CKPT_OK)
    return st;
  memset(out, 0, sizeof *out);
  out->kind = CKPT_VALUE_TREE;
  out->u.tree = tree;
  return CKPT_OK;
}

ckpt_status ckpt_PyTreeCheckpointHandler_metadata(ckpt_handler *self, ckpt_op *op, const char *dir,
                                                  cJSON **out, ckpt_error *err) {
  (void)self;
  return ckpt_pytree_metadata(op, dir, out, err);
}
