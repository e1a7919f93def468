/* handlers/standard.c — StandardCheckpointHandler: Orbax's StandardSave / StandardRestore.
 *
 * The PyTree engine with Orbax's Standard rules: only arrays and numbers may be saved (a string
 * leaf is an error naming its key, as is SaveArgs.aggregate), and restore takes an optional
 * target whose arrays give dtype, shape and shard boxes, with `strict` (default true) deciding
 * whether a shape difference is an error or a pad/truncate. */
#include <stdlib.h>
#include <string.h>

#include "handlers/pytree_internal.h"

ckpt_status ckpt_StandardCheckpointHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                                const ckpt_args *args, ckpt_error *err) {
  (void)self;
  const ckpt_StandardSave *a = ckpt_StandardSave_cast(args);
  if (a == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "StandardCheckpointHandler: save into '%s' needs StandardSave args, "
                          "got %s",
                          dir, ckpt_pt_args_name(args));
  ckpt_pytree_leaf_save *leaf = calloc(a->n_save_args ? a->n_save_args : 1, sizeof *leaf);
  if (leaf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "StandardSave: out of memory");
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < a->n_save_args && st == CKPT_OK; i++)
    st = ckpt_pt_save_args(&a->save_args[i].value, a->save_args[i].key, true, "StandardSave",
                           &leaf[i], err);
  if (st == CKPT_OK) {
    ckpt_pytree_save_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.tree = a->item;
    spec.n_leaf_args = a->n_save_args;
    spec.leaf_args = leaf;
    spec.custom_metadata = a->custom_metadata;
    spec.standard = true;
    spec.what = "StandardSave";
    st = ckpt_pytree_save(op, dir, &spec, err);
  }
  free(leaf);
  return st;
}

ckpt_status ckpt_StandardCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                                   const ckpt_args *args, ckpt_value *out,
                                                   ckpt_error *err) {
  (void)self;
  const ckpt_StandardRestore *a = NULL;
  if (args != NULL && (a = ckpt_StandardRestore_cast(args)) == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "StandardCheckpointHandler: restore of '%s' needs StandardRestore "
                          "args, got %s",
                          dir, ckpt_pt_args_name(args));
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.what = "StandardRestore";
  spec.standard = true;
  spec.transforms_default_to_original = true;
  if (a != NULL) {
    spec.target = a->item;
    spec.non_strict = !a->strict;
  }
  ckpt_tree *tree = NULL;
  ckpt_status st = ckpt_pytree_restore(op, dir, &spec, &tree, err);
  if (st != CKPT_OK)
    return st;
  memset(out, 0, sizeof *out);
  out->kind = CKPT_VALUE_TREE;
  out->u.tree = tree;
  return CKPT_OK;
}
