/* handlers/array_handler.c — ArrayCheckpointHandler: one array, stored as Orbax stores it —
 * the PyTree {"checkpoint": item} without OCDBT, i.e. <dir>/_METADATA and the zarr array
 * <dir>/checkpoint/. */
#include <stdlib.h>
#include <string.h>

#include "handlers/pytree_internal.h"

#define ARRAY_PARAM "checkpoint"

/* A tree {"checkpoint": view} whose array shares a's shard memory (nothing is copied here;
 * the engine snapshots it on save). For a restore target, shards whose memory a owns become
 * "allocate" boxes, so only memory the caller lent (borrowed shards) is filled in place.
 * *out owned by the caller; freeing it never frees a's memory. */
static ckpt_status wrap_item(const ckpt_array *a, bool for_restore, ckpt_tree **out,
                             ckpt_error *err) {
  *out = NULL;
  ckpt_array *view;
  ckpt_status st = ckpt_array_new_sharded(a->dtype, a->ndim, a->shape, &view, err);
  if (st != CKPT_OK)
    return st;
  for (size_t s = 0; s < a->n_shards && st == CKPT_OK; s++) {
    const ckpt_shard *sh = &a->shards[s];
    void *mem = (for_restore && sh->owns_data) ? NULL : sh->data;
    st = ckpt_array_add_shard(view, sh->offset, sh->shape, mem, sh->replica_id, err);
  }
  if (st != CKPT_OK) {
    ckpt_array_free(view);
    return st;
  }
  ckpt_tree *t = ckpt_tree_new_dict();
  if (t == NULL) {
    ckpt_array_free(view);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  st = ckpt_tree_dict_set(t, ARRAY_PARAM, ckpt_tree_new_array(view), err);
  if (st != CKPT_OK) {
    ckpt_tree_free(t);
    return st;
  }
  *out = t;
  return CKPT_OK;
}

ckpt_status ckpt_ArrayCheckpointHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                             const ckpt_args *args, ckpt_error *err) {
  (void)self;
  const ckpt_ArraySave *a = ckpt_ArraySave_cast(args);
  if (a == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "ArrayCheckpointHandler: save into '%s' needs ArraySave args, got %s",
                          dir, ckpt_pt_args_name(args));
  if (a->item == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ArraySave into '%s': no item", dir);
  ckpt_pytree_leaf_save leaf;
  ckpt_status st = CKPT_OK;
  if (a->has_save_args)
    st = ckpt_pt_save_args(&a->save_args, ARRAY_PARAM, false, "ArraySave", &leaf, err);
  ckpt_tree *tree = NULL;
  if (st == CKPT_OK)
    st = wrap_item(a->item, false, &tree, err);
  if (st == CKPT_OK) {
    ckpt_pytree_save_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.tree = tree;
    spec.n_leaf_args = a->has_save_args ? 1 : 0;
    spec.leaf_args = &leaf;
    spec.what = "ArraySave";
    st = ckpt_pytree_save(op, dir, &spec, err);
  }
  ckpt_tree_free(tree); /* the view borrows a->item's memory: nothing of the caller's is freed */
  return st;
}

ckpt_status ckpt_ArrayCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                                const ckpt_args *args, ckpt_value *out,
                                                ckpt_error *err) {
  (void)self;
  const ckpt_ArrayRestore *a = NULL;
  if (args != NULL && (a = ckpt_ArrayRestore_cast(args)) == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "ArrayCheckpointHandler: restore of '%s' needs ArrayRestore args, got %s",
                          dir, ckpt_pt_args_name(args));
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.what = "ArrayRestore";
  spec.transforms_default_to_original = true;
  ckpt_pytree_leaf_restore leaf;
  ckpt_tree *target = NULL;
  ckpt_status st = CKPT_OK;
  if (a != NULL && a->has_restore_args) {
    st = ckpt_pt_restore_args(&a->restore_args, ARRAY_PARAM, "ArrayRestore", &leaf, err);
    spec.n_leaf_args = 1;
    spec.leaf_args = &leaf;
  }
  if (st == CKPT_OK && a != NULL && a->item != NULL) {
    st = wrap_item(a->item, true, &target, err);
    spec.target = target;
  }
  ckpt_tree *tree = NULL;
  if (st == CKPT_OK)
    st = ckpt_pytree_restore(op, dir, &spec, &tree, err);
  ckpt_tree_free(target);
  if (st != CKPT_OK)
    return st;
  ckpt_tree *node = ckpt_tree_dict_get(tree, ARRAY_PARAM);
  ckpt_array *arr = NULL;
  if (node != NULL && ckpt_tree_kind(node) == CKPT_NODE_SCALAR) {
    /* A 0-d array saved as an Orbax scalar: give it back as a 0-d array. */
    ckpt_scalar s;
    ckpt_tree_scalar(node, &s);
    st = ckpt_array_new(s.dtype, 0, NULL, &arr, err);
    if (st == CKPT_OK)
      ckpt_scalar_store(&s, ckpt_array_data(arr));
  } else {
    arr = ckpt_tree_take_array(node);
    if (arr == NULL)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "ArrayRestore of '%s': no array '%s' in the item",
                          dir, ARRAY_PARAM);
  }
  ckpt_tree_free(tree);
  if (st != CKPT_OK)
    return st;
  memset(out, 0, sizeof *out);
  out->kind = CKPT_VALUE_ARRAY;
  out->u.array = arr;
  return CKPT_OK;
}
