/* record_handler.c — the runtime half of `handler H for Record;`.
 *
 * ckptgen emits the handler's descriptor with this vtable and `impl` = the record's descriptor,
 * plus args RSave { const R *item } and RRestore { const R *target; bool strict }. Save turns
 * the record into a tree (array leaves are views: the PyTree engine snapshots them, or, in a
 * zero-copy save, reads them in place later) and writes it with the PyTree engine, so Python
 * opens the item as a dict of arrays; field annotations become per-leaf save options. Restore reads
 * the tree back and fills a freshly allocated, initialised struct (ckpt_value RECORD), validating
 * dtypes, fixed and tied dimensions, optional fields, nested records, lists and maps.
 *
 * In a multi-process save (docs/multiprocess.md) every process calls save with its own record.
 * Scalars and strings are written by the primary alone (the PyTree engine's rule); so are the
 * arrays a process holds whole (one shard covering the array, replica 0): the ones the walk
 * makes from bytes, protos and random-key states, which every process holds alike, and plain
 * arrays of the record — only sharded arrays are split between the processes. */
#include <stdlib.h>
#include <string.h>

#include "ckpt/builtin.ckpt.h"
#include "ckpt/layout.h"
#include "handlers/pytree.h"
#include "handlers/record_tree.h"

static const ckpt_record_desc *handler_record(const ckpt_handler *self, const char *dir,
                                              ckpt_error *err) {
  const ckpt_record_desc *rec = self && self->desc ? self->desc->impl : NULL;
  if (rec == NULL || rec->magic != CKPT_RECORD_DESC_MAGIC) {
    ckpt_error_set(err, CKPT_EINVAL,
                   "%s: handler %s is not a record handler (no record descriptor)", dir,
                   self && self->desc && self->desc->name ? self->desc->name : "(unknown)");
    return NULL;
  }
  return rec;
}

static const char *handler_name(const ckpt_handler *self) {
  return self->desc->name ? self->desc->name : "record handler";
}

/* The borrowed record pointer in args field `name` (kind RECORD_REF, for record rec). */
static ckpt_status record_ref(const ckpt_handler *self, const ckpt_record_desc *rec,
                              const ckpt_args *args, const char *name, const void **out,
                              ckpt_error *err) {
  *out = NULL;
  const ckpt_field_desc *f = args && args->desc ? ckpt_record_field(args->desc, name) : NULL;
  if (f == NULL || f->type == NULL || f->type->kind != CKPT_KIND_RECORD_REF ||
      f->type->record != rec)
    return ckpt_error_set(err, CKPT_ETYPE, "%s: args %s are not %s%s args of record %s",
                          handler_name(self),
                          args && args->desc && args->desc->name ? args->desc->name : "(none)",
                          rec->name, strcmp(name, "item") == 0 ? "Save" : "Restore",
                          rec->full_name ? rec->full_name : rec->name);
  *out = *(const void *const *)((const char *)args + f->offset);
  return CKPT_OK;
}

/* ------------------------------------------------------------------ save */

typedef struct leaf_list {
  ckpt_pytree_leaf_save *items;
  size_t n, cap;
} leaf_list;

static void leaf_list_free(leaf_list *l) {
  for (size_t i = 0; i < l->n; i++)
    free((char *)l->items[i].param);
  free(l->items);
}

/* Field annotations → per-leaf SaveArgs of the PyTree engine. */
static ckpt_status collect_leaf(void *ctx, const char *param, const ckpt_leaf_options *o,
                                ckpt_error *err) {
  leaf_list *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    ckpt_pytree_leaf_save *items = realloc(l->items, cap * sizeof *items);
    if (items == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", param);
    l->items = items;
    l->cap = cap;
  }
  ckpt_pytree_leaf_save *s = &l->items[l->n];
  memset(s, 0, sizeof *s);
  if ((s->param = strdup(param)) == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", param);
  s->has_dtype = o->has_save_dtype;
  s->dtype = o->save_dtype;
  s->chunk_byte_size = o->chunk_bytes;
  s->compression = o->compression;
  s->compression_level = o->compression_level;
  l->n++;
  return CKPT_OK;
}

/* The tree a record becomes is the handler's own: besides views of the record's arrays it holds
 * memory of its own (packed protos, for instance, are uint8 arrays the walk allocated). A
 * normal save lets the PyTree engine snapshot every leaf before ckpt_pytree_save returns, so the
 * tree can go at once. A zero-copy save does not snapshot: the engine's deferred job reads the
 * leaves in place when it runs, later and on another thread, so the tree must live until that
 * job is over. It is handed to the op as a deferred job of its own, queued right after the
 * engine's: the op runs (or, for a failed save, releases) its jobs one at a time in queue order,
 * so the tree is released only after the engine's job has run or been dropped. */
static ckpt_status keep_tree_run(void *arg, ckpt_error *err) {
  (void)arg;
  (void)err;
  return CKPT_OK;
}

static void keep_tree_release(void *arg) {
  ckpt_tree_free(arg);
}

static ckpt_status record_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                               const ckpt_args *args, ckpt_error *err) {
  const ckpt_record_desc *rec = handler_record(self, dir, err);
  if (rec == NULL)
    return CKPT_EINVAL;
  const void *item = NULL;
  ckpt_status st = record_ref(self, rec, args, "item", &item, err);
  if (st != CKPT_OK)
    return st;
  if (item == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: save into %s: item is NULL", handler_name(self),
                          dir);
  leaf_list leaves = {0};
  ckpt_tree *tree = NULL;
  st =
      ckpt_record_to_tree_ex(rec, item, CKPT_RECORD_ARRAYS_VIEW, collect_leaf, &leaves, &tree, err);
  if (st == CKPT_OK)
    ckpt_pytree_whole_arrays_to_primary(op, tree);
  if (st == CKPT_OK) {
    /* Planning (parameter names, chunking, per-leaf options) runs here in every mode, so a
     * problem is reported by this save, not by the deferred write. */
    ckpt_pytree_save_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.tree = tree;
    spec.n_leaf_args = leaves.n;
    spec.leaf_args = leaves.items;
    spec.what = handler_name(self);
    st = ckpt_pytree_save(op, dir, &spec, err);
  }
  /* The engine keeps none of the leaf options (it copied what it needs while planning). */
  leaf_list_free(&leaves);
  if (st == CKPT_OK && ckpt_op_zero_copy(op)) {
    /* Ownership passes to the op even when queueing fails (ckpt_op_defer then releases the tree
     * at once): this save fails then, and a failed save's queued jobs are released unrun. */
    st = ckpt_op_defer(op, keep_tree_run, tree, keep_tree_release, err);
    tree = NULL;
  }
  ckpt_tree_free(tree);
  return st;
}

/* ------------------------------------------------------------------ restore */

static ckpt_status record_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                  const ckpt_args *args, ckpt_value *out, ckpt_error *err) {
  const ckpt_record_desc *rec = handler_record(self, dir, err);
  if (rec == NULL)
    return CKPT_EINVAL;
  const void *target = NULL;
  bool strict = true;
  ckpt_status st;
  if (args != NULL) {
    st = record_ref(self, rec, args, "target", &target, err);
    if (st != CKPT_OK)
      return st;
    const ckpt_field_desc *f = ckpt_record_field(args->desc, "strict");
    if (f != NULL && f->type != NULL && f->type->kind == CKPT_KIND_BOOL)
      strict = *(const bool *)((const char *)args + f->offset);
  }

  /* A target's arrays give the restore target (dtype, global shape, shard boxes); they are
   * replaced by fresh arrays of the same shape so the restore never writes into the target. */
  ckpt_tree *target_tree = NULL;
  if (target != NULL) {
    st = ckpt_record_to_tree_ex(rec, target, CKPT_RECORD_ARRAYS_SHAPE, NULL, NULL, &target_tree,
                                err);
    if (st != CKPT_OK) {
      ckpt_error_prefix(err, "%s: restore of %s: target: ", handler_name(self), dir);
      return st;
    }
  }
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target_tree;
  spec.non_strict = !strict;
  spec.what = handler_name(self);
  ckpt_tree *tree = NULL;
  st = ckpt_pytree_restore(op, dir, &spec, &tree, err);

  void *data = NULL;
  if (st == CKPT_OK && (data = calloc(1, rec->size ? rec->size : 1)) == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", dir);
  if (st == CKPT_OK && (st = ckpt_record_init(rec, data)) != CKPT_OK)
    st = ckpt_error_set(err, st, "%s: initialising a %s failed", dir, rec->name);
  if (st == CKPT_OK) {
    st = ckpt_record_from_tree_ex(rec, tree, true, target, data, err);
    if (st != CKPT_OK)
      ckpt_error_prefix(err, "%s: ", dir);
  }
  ckpt_tree_free(tree);
  ckpt_tree_free(target_tree);
  if (st != CKPT_OK) {
    if (data != NULL)
      ckpt_record_free(rec, data);
    free(data);
    return st;
  }
  memset(out, 0, sizeof *out);
  out->kind = CKPT_VALUE_RECORD;
  out->u.record.desc = rec;
  out->u.record.data = data;
  return CKPT_OK;
}

/* What the directory holds, without reading array data (the PyTree engine's description). */
static ckpt_status record_metadata(ckpt_handler *self, ckpt_op *op, const char *dir, cJSON **out,
                                   ckpt_error *err) {
  (void)self;
  return ckpt_pytree_metadata(op, dir, out, err);
}

const ckpt_handler_vtable ckpt_record_handler_vtable = {
    NULL, record_save, record_restore, record_metadata, NULL, NULL};
