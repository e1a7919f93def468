/* handlers/pytree_internal.h — shared between the PyTree engine's save, restore and metadata
 * files (private to those files). */
#ifndef CKPT_HANDLERS_PYTREE_INTERNAL_H
#define CKPT_HANDLERS_PYTREE_INTERNAL_H

#include "ckpt/builtin.ckpt.h"
#include "handlers/pytree.h"
#include "storage/pytree_meta.h"

/* "('a', 'b')" for messages; never NULL (falls back to a static text). Caller frees unless it
 * equals the fallback — use ckpt_pt_free_repr. */
char *ckpt_pt_repr(const ckpt_meta_key *keys, size_t depth);
void ckpt_pt_free_repr(char *repr);

/* The key of child i of a dict, list or tuple node as _METADATA names it: the dict key
 * (*type CKPT_KEY_DICT), or for lists and tuples the decimal index, written into idx
 * (*type CKPT_KEY_SEQUENCE). The result is borrowed from node or idx. */
#define CKPT_PT_INDEX_KEY_SIZE 32
const char *ckpt_pt_child_key(const ckpt_tree *node, size_t i, char idx[CKPT_PT_INDEX_KEY_SIZE],
                              int *type);

/* Converts a generated SaveArgs (the value of save_args[param]) into engine options; strings
 * (dtype, compression) are validated with errors naming param. StandardSave rejects
 * aggregate=true. */
ckpt_status ckpt_pt_save_args(const ckpt_SaveArgs *a, const char *param, bool standard,
                              const char *what, ckpt_pytree_leaf_save *out, ckpt_error *err);
/* Converts a generated RestoreArgs into engine options (pointers borrowed from a). */
ckpt_status ckpt_pt_restore_args(const ckpt_RestoreArgs *a, const char *param, const char *what,
                                 ckpt_pytree_leaf_restore *out, ckpt_error *err);
/* The restored leaf for aggregated value v (from the legacy aggregate file:
 * ckpt_meta_entry_aggregate) and target leaf tnode (NULL: as saved), cast to the
 * target's or la's dtype; *out owned by the caller. On a mismatch returns its code (ETYPE,
 * EMISMATCH) with msg describing it; CKPT_ENOMEM without a message. */
ckpt_status ckpt_pt_aggregate_leaf(const ckpt_tree *v, const ckpt_tree *tnode,
                                   const ckpt_pytree_leaf_restore *la, ckpt_tree **out, char *msg,
                                   size_t msg_size);

/* The name of an args type for messages ("NULL" when there is none). */
const char *ckpt_pt_args_name(const ckpt_args *args);

#endif
