/* random_key.c — JaxRandomKeyCheckpointHandler and NumpyRandomKeyCheckpointHandler.
 *
 * Orbax implements both as a nested CompositeCheckpointHandler with two items (its
 * random_key_checkpoint_handler.py), so the directory of such an item holds:
 *
 *   jax_random_key/                ArraySave of the raw uint32 key data (trailing impl dim)
 *   jax_random_key_metadata/metadata   {"typed": bool}
 *
 *   np_random_key/                 the state saved as a PyTree: for the legacy tuple, leaves
 *                                  0 = "MT19937" (_strings.json), 1 = uint32[624] key,
 *                                  2 = pos (int64), 3 = has_gauss (int64), 4 = gauss (float64)
 *                                  (Orbax's scalar handler stores np.asarray(int/float)); for
 *                                  the dict form, numpy's get_state(legacy=False) dict
 *   np_random_key_metadata/metadata    {"legacy": bool}
 *
 * Nested items carry no _CHECKPOINT_METADATA of their own (Orbax's composite creates item
 * directories without a metadata store). Orbax writes them as `<item>.orbax-checkpoint-tmp` and
 * renames them at finalize; ckpt writes them under their final names directly, since the
 * enclosing checkpoint's temporary directory already makes the whole save atomic and these
 * handlers have no finalize hook. The committed layout is the same.
 *
 * The array and the PyTree go through the same engine as ArraySave / PyTreeSave (so the array
 * item is byte-for-byte what ArrayCheckpointHandler writes); the small metadata files are
 * written by a deferred job, like the bulk data, so an async save does no file I/O on the
 * caller's thread beyond creating directories. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/builtin.ckpt.h"
#include "ckpt/layout.h"
#include "core/array_internal.h"
#include "handlers/pytree.h"
#include "handlers/op.h"
#include "handlers/record_tree.h"
#include "text/json.h"
#include "util/path.h"

#define JAX_ITEM "jax_random_key"
#define JAX_META_ITEM "jax_random_key_metadata"
#define NP_ITEM "np_random_key"
#define NP_META_ITEM "np_random_key_metadata"
#define META_FILE "metadata"
#define META_MAX_BYTES (1u << 20)

/* ------------------------------------------------------------------ helpers */

typedef struct meta_job {
  ckpt_io *io;
  ckpt_op *op;    /* claims item_dir durable once written (op.h) */
  char *dir;      /* the handler's directory */
  char *item_dir; /* <dir>/<x>_metadata */
  char *file;     /* <dir>/<x>_metadata/metadata */
  char text[64];  /* {"typed": true} */
} meta_job;

static void meta_job_release(void *arg) {
  meta_job *job = arg;
  free(job->dir);
  free(job->item_dir);
  free(job->file);
  free(job);
}

/* Writes the metadata file durably, then makes the new directory entries durable. */
static ckpt_status meta_job_run(void *arg, ckpt_error *err) {
  meta_job *job = arg;
  ckpt_status st = ckpt_io_write_file(job->io, job->file, job->text, strlen(job->text), true, err);
  if (st == CKPT_OK) /* into the checkpoint's manifest, like every file ckpt writes */
    ckpt_op_note_file(job->op, job->file, job->text, strlen(job->text));
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(job->io, job->item_dir, err);
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(job->io, job->dir, err);
  /* The metadata directory is complete and durable: the commit skips it (op.h). */
  if (st == CKPT_OK)
    ckpt_op_note_durable(job->op, job->item_dir);
  return st;
}

/* Creates <dir>/<meta_item>/ now and queues the write of {"<key>": value} into its `metadata`
 * file, formatted as Python's json.dumps formats it. */
static ckpt_status queue_metadata(ckpt_op *op, const char *dir, const char *meta_item,
                                  const char *key, bool value, ckpt_error *err) {
  meta_job *job = calloc(1, sizeof *job);
  if (job == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", dir);
  job->io = ckpt_op_io(op);
  job->op = op;
  job->dir = strdup(dir);
  job->item_dir = ckpt_path_join(dir, meta_item);
  job->file = job->item_dir ? ckpt_path_join(job->item_dir, META_FILE) : NULL;
  snprintf(job->text, sizeof job->text, "{\"%s\": %s}", key, value ? "true" : "false");
  if (job->dir == NULL || job->item_dir == NULL || job->file == NULL) {
    meta_job_release(job);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", dir);
  }
  if (!ckpt_op_writes_shared(op)) { /* multi-process: the primary writes it */
    meta_job_release(job);
    return CKPT_OK;
  }
  ckpt_status st = ckpt_io_mkdir(job->io, job->item_dir, err);
  if (st != CKPT_OK) {
    meta_job_release(job);
    return st;
  }
  return ckpt_op_defer(op, meta_job_run, job, meta_job_release, err);
}

/* Reads <dir>/<meta_item>/metadata and returns its boolean <key>. */
static ckpt_status read_metadata(ckpt_op *op, const char *dir, const char *meta_item,
                                 const char *key, bool *value, ckpt_error *err) {
  char *item_dir = ckpt_path_join(dir, meta_item);
  char *file = item_dir ? ckpt_path_join(item_dir, META_FILE) : NULL;
  free(item_dir);
  if (file == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", dir);
  void *data = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_read_file(ckpt_op_io(op), file, META_MAX_BYTES, &data, &n, err);
  if (st != CKPT_OK) {
    free(file);
    return st;
  }
  cJSON *json = NULL;
  st = ckpt_json_load(data, n, file, &json, err); /* "<file>:line:col: ..." */
  const cJSON *item = cJSON_IsObject(json) ? cJSON_GetObjectItemCaseSensitive(json, key) : NULL;
  if (st == CKPT_OK && !cJSON_IsBool(item))
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: expected a JSON object {\"%s\": true|false}", file,
                        key);
  else if (st == CKPT_OK)
    *value = cJSON_IsTrue(item);
  cJSON_Delete(json);
  free(data);
  free(file);
  return st;
}

/* Creates <dir>/<item>/ for the data item. */
static ckpt_status make_item_dir(ckpt_op *op, const char *dir, const char *item, char **out,
                                 ckpt_error *err) {
  *out = ckpt_path_join(dir, item);
  if (*out == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", dir);
  ckpt_status st = CKPT_OK;
  if (ckpt_op_writes_shared(op)) /* multi-process: the primary creates it */
    st = ckpt_io_mkdir(ckpt_op_io(op), *out, err);
  if (st != CKPT_OK) {
    free(*out);
    *out = NULL;
  }
  return st;
}

/* An item directory that must exist for a restore; a clear error otherwise. */
static ckpt_status need_item_dir(ckpt_op *op, const char *dir, const char *item, const char *what,
                                 char **out, ckpt_error *err) {
  *out = ckpt_path_join(dir, item);
  if (*out == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", dir);
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size = 0;
  ckpt_status st = ckpt_io_stat(ckpt_op_io(op), *out, &kind, &size, err);
  if (st == CKPT_OK && kind != CKPT_IO_KIND_DIR)
    st = ckpt_error_set(err, kind == CKPT_IO_KIND_MISSING ? CKPT_ENOENT : CKPT_ECORRUPT,
                        "%s: not a %s checkpoint: item '%s' is %s", dir, what, item,
                        kind == CKPT_IO_KIND_MISSING ? "missing" : "not a directory");
  if (st != CKPT_OK) {
    free(*out);
    *out = NULL;
  }
  return st;
}

static const char *args_name(const ckpt_args *args) {
  return args && args->desc && args->desc->name ? args->desc->name : "(none)";
}

/* ------------------------------------------------------------------ JAX keys */

/* A zero-copy save reads the key data's view when the array handler's deferred job runs: the
 * view is released by a job of its own queued after that one (the op runs its jobs in order). */
static ckpt_status keep_view_run(void *arg, ckpt_error *err) {
  (void)arg;
  (void)err;
  return CKPT_OK;
}

static void keep_view_release(void *arg) {
  ckpt_array_free(arg);
}

ckpt_status ckpt_JaxRandomKeyCheckpointHandler_save(ckpt_handler *self, ckpt_op *op,
                                                    const char *dir, const ckpt_args *args,
                                                    ckpt_error *err) {
  (void)self;
  const ckpt_JaxRandomKeySave *a = ckpt_JaxRandomKeySave_cast(args);
  if (a == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "JaxRandomKeyCheckpointHandler: save into %s needs JaxRandomKeySave "
                          "args, got %s",
                          dir, args_name(args));
  const ckpt_jax_key *key = a->item;
  if (key == NULL || key->data == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "JaxRandomKeySave into %s: the key is NULL", dir);
  if (key->data->dtype != CKPT_DTYPE_UINT32 || key->data->ndim < 1)
    return ckpt_error_set(
        err, CKPT_ETYPE,
        "JaxRandomKeySave into %s: key data must be uint32 with a trailing "
        "implementation dim, found a %d-d %s array",
        dir, key->data->ndim,
        ckpt_dtype_name(key->data->dtype) ? ckpt_dtype_name(key->data->dtype) : "?");

  char *item_dir = NULL;
  ckpt_status st = make_item_dir(op, dir, JAX_ITEM, &item_dir, err);
  if (st != CKPT_OK)
    return st;

  /* ArraySave of the key data, borrowed (the array handler snapshots it, or keeps pointers to
   * it in a zero-copy save, exactly as for any ArraySave). In a multi-process save every
   * process holds the key: every process but the primary passes a view of it whose replica
   * id leaves the write to the primary (kept until the save's deferred work is over). */
  ckpt_array *view = NULL;
  if (ckpt_op_multiprocess(op) && !ckpt_op_is_primary(op)) {
    st = ckpt_array_view(key->data, &view, err);
    if (st == CKPT_OK)
      ckpt_array_whole_to_primary(op, view);
    if (st != CKPT_OK) {
      free(item_dir);
      return st;
    }
  }
  ckpt_ArraySave array_args;
  memset(&array_args, 0, sizeof array_args);
  array_args.base.desc = &ckpt_ArraySave_desc;
  array_args.item = view != NULL ? view : key->data;
  if (a->has_save_args) {
    array_args.has_save_args = true;
    array_args.save_args = a->save_args;
  }
  ckpt_handler *array_handler = NULL;
  st = ckpt_handler_create(&ckpt_ArrayCheckpointHandler_desc, &array_handler, err);
  if (st == CKPT_OK)
    st = array_handler->desc->vtable->save(array_handler, op, item_dir, &array_args.base, err);
  ckpt_handler_destroy(array_handler);
  if (view != NULL && st == CKPT_OK && ckpt_op_zero_copy(op))
    st = ckpt_op_defer(op, keep_view_run, view, keep_view_release, err); /* owns it now */
  else
    ckpt_array_free(view); /* snapshotted, or the save failed */
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "JaxRandomKeySave item '%s': ", JAX_ITEM);
  free(item_dir);
  if (st != CKPT_OK)
    return st;
  return queue_metadata(op, dir, JAX_META_ITEM, "typed", key->typed, err);
}

ckpt_status ckpt_JaxRandomKeyCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op,
                                                       const char *dir, const ckpt_args *args,
                                                       ckpt_value *out, ckpt_error *err) {
  (void)self;
  const ckpt_JaxRandomKeyRestore *a = NULL;
  if (args != NULL && (a = ckpt_JaxRandomKeyRestore_cast(args)) == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "JaxRandomKeyCheckpointHandler: restore of %s needs JaxRandomKeyRestore "
                          "args, got %s",
                          dir, args_name(args));
  char *item_dir = NULL;
  ckpt_status st = need_item_dir(op, dir, JAX_ITEM, "JaxRandomKey", &item_dir, err);
  if (st != CKPT_OK)
    return st;
  bool typed = false;
  st = read_metadata(op, dir, JAX_META_ITEM, "typed", &typed, err);
  if (st != CKPT_OK) {
    free(item_dir);
    return st;
  }

  ckpt_ArrayRestore array_args;
  memset(&array_args, 0, sizeof array_args);
  array_args.base.desc = &ckpt_ArrayRestore_desc;
  if (a != NULL && a->has_restore_args) {
    array_args.has_restore_args = true;
    array_args.restore_args = a->restore_args; /* borrowed, not freed here */
  }
  ckpt_value value;
  memset(&value, 0, sizeof value);
  ckpt_handler *array_handler = NULL;
  st = ckpt_handler_create(&ckpt_ArrayCheckpointHandler_desc, &array_handler, err);
  if (st == CKPT_OK)
    st = array_handler->desc->vtable->restore(array_handler, op, item_dir, &array_args.base, &value,
                                              err);
  ckpt_handler_destroy(array_handler);
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "JaxRandomKeyRestore item '%s': ", JAX_ITEM);
  if (st == CKPT_OK && value.kind != CKPT_VALUE_ARRAY)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: expected an array, the array handler returned %s",
                        item_dir, ckpt_value_kind_name(value.kind));
  const ckpt_array *data = st == CKPT_OK ? value.u.array : NULL;
  if (st == CKPT_OK && (data->dtype != CKPT_DTYPE_UINT32 || data->ndim < 1))
    st = ckpt_error_set(err, CKPT_ECORRUPT,
                        "%s: JAX key data must be uint32 with a trailing implementation dim, "
                        "found a %d-d %s array",
                        item_dir, data->ndim,
                        ckpt_dtype_name(data->dtype) ? ckpt_dtype_name(data->dtype) : "?");
  ckpt_jax_key *key = NULL;
  if (st == CKPT_OK && (key = calloc(1, sizeof *key)) == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", dir);
  if (st == CKPT_OK) {
    key->data = value.u.array; /* moved into the key */
    key->typed = typed;
    value.kind = CKPT_VALUE_NONE;
    memset(out, 0, sizeof *out);
    out->kind = CKPT_VALUE_JAX_KEY;
    out->u.jax_key = key;
  }
  ckpt_value_free(&value);
  free(item_dir);
  return st;
}

/* ------------------------------------------------------------------ numpy RandomState */

/* The tuple of np.random.get_state(): ("MT19937", key, pos, has_gauss, cached_gaussian). The key
 * is a view of rng->key; ckpt_pytree_save snapshots it (or, zero-copy, keeps it under the
 * caller's promise). */
static ckpt_status legacy_tuple(const ckpt_numpy_rng *rng, ckpt_tree **out, ckpt_error *err) {
  *out = NULL;
  int64_t shape[1] = {CKPT_MT19937_N};
  ckpt_array *key = NULL;
  ckpt_status st = ckpt_array_wrap(CKPT_DTYPE_UINT32, 1, shape, (void *)rng->key, &key, err);
  if (st != CKPT_OK)
    return st;
  ckpt_tree *tuple = ckpt_tree_new_tuple();
  if (tuple == NULL) {
    ckpt_array_free(key);
    return ckpt_error_set(err, CKPT_ENOMEM, "NumpyRandomKeySave: out of memory");
  }
  st = ckpt_tree_append(tuple, ckpt_tree_new_string("MT19937"), err);
  if (st == CKPT_OK)
    st = ckpt_tree_append(tuple, ckpt_tree_new_array(key), err);
  else
    ckpt_array_free(key);
  if (st == CKPT_OK)
    st = ckpt_tree_append(tuple, ckpt_tree_new_int(CKPT_DTYPE_INT64, rng->pos), err);
  if (st == CKPT_OK)
    st = ckpt_tree_append(tuple, ckpt_tree_new_int(CKPT_DTYPE_INT64, rng->has_gauss), err);
  if (st == CKPT_OK)
    st =
        ckpt_tree_append(tuple, ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, rng->cached_gaussian), err);
  if (st != CKPT_OK) {
    ckpt_tree_free(tuple);
    return st;
  }
  *out = tuple;
  return CKPT_OK;
}

ckpt_status ckpt_NumpyRandomKeyCheckpointHandler_save(ckpt_handler *self, ckpt_op *op,
                                                      const char *dir, const ckpt_args *args,
                                                      ckpt_error *err) {
  (void)self;
  const ckpt_NumpyRandomKeySave *a = ckpt_NumpyRandomKeySave_cast(args);
  if (a == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "NumpyRandomKeyCheckpointHandler: save into %s needs NumpyRandomKeySave "
                          "args, got %s",
                          dir, args_name(args));
  const ckpt_numpy_rng *rng = a->item;
  if (rng == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "NumpyRandomKeySave into %s: the state is NULL", dir);
  ckpt_status st = ckpt_numpy_rng_validate(rng, "NumpyRandomKeySave", err);
  if (st != CKPT_OK)
    return st;

  ckpt_tree *tree = NULL;
  if (rng->legacy) {
    st = legacy_tuple(rng, &tree, err);
  } else {
    /* The dict form is numpy's get_state(legacy=False) dict, without ckpt's "legacy" key
     * (the metadata item records that). */
    st = ckpt_numpy_rng_to_tree(rng, CKPT_RECORD_ARRAYS_VIEW, "NumpyRandomKeySave", &tree, err);
    if (st == CKPT_OK)
      ckpt_tree_dict_remove(tree, "legacy");
  }
  if (st != CKPT_OK)
    return st;

  ckpt_pytree_whole_arrays_to_primary(op, tree); /* multi-process: the primary writes it */
  char *item_dir = NULL;
  st = make_item_dir(op, dir, NP_ITEM, &item_dir, err);
  if (st == CKPT_OK) {
    ckpt_pytree_save_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.tree = tree;
    spec.what = "NumpyRandomKeySave";
    st = ckpt_pytree_save(op, item_dir, &spec, err);
    if (st != CKPT_OK)
      ckpt_error_prefix(err, "NumpyRandomKeySave item '%s': ", NP_ITEM);
  }
  ckpt_tree_free(tree);
  free(item_dir);
  if (st != CKPT_OK)
    return st;
  return queue_metadata(op, dir, NP_META_ITEM, "legacy", rng->legacy, err);
}

/* The scalar at node (a scalar or a 0-d array) as an integer or a float. */
static ckpt_status tuple_scalar(const ckpt_tree *node, const char *where, bool want_float,
                                ckpt_scalar *s, ckpt_error *err) {
  bool ok = node != NULL && ckpt_tree_scalar(node, s);
  const ckpt_array *a = node ? ckpt_tree_array(node) : NULL;
  if (!ok && a != NULL && a->ndim == 0 && ckpt_array_data(a) != NULL) {
    *s = ckpt_scalar_load(a->dtype, ckpt_array_data(a));
    ok = true;
  }
  if (!ok)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: expected a scalar, found %s", where,
                          node ? ckpt_node_kind_name(ckpt_tree_kind(node)) : "nothing");
  bool is_float = s->dtype == CKPT_DTYPE_FLOAT32 || s->dtype == CKPT_DTYPE_FLOAT64;
  bool is_int = s->dtype >= CKPT_DTYPE_INT8 && s->dtype <= CKPT_DTYPE_UINT32;
  if (want_float ? !is_float : !is_int)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: expected %s scalar, found %s", where,
                          want_float ? "a float" : "an integer",
                          ckpt_dtype_name(s->dtype) ? ckpt_dtype_name(s->dtype) : "?");
  if (!want_float && s->dtype >= CKPT_DTYPE_UINT8)
    s->v.i = (int64_t)s->v.u;
  return CKPT_OK;
}

/* Element i of a restored tuple: Orbax records tuple indices as sequence keys, which read back
 * as a list; a dict keyed "0".."4" is accepted too. */
static const ckpt_tree *tuple_elem(const ckpt_tree *t, size_t i) {
  if (ckpt_tree_kind(t) == CKPT_NODE_DICT) {
    char key[32];
    snprintf(key, sizeof key, "%zu", i);
    return ckpt_tree_dict_get(t, key);
  }
  return i < ckpt_tree_count(t) ? ckpt_tree_child(t, i) : NULL;
}

static ckpt_status rng_from_tuple(const ckpt_tree *t, const char *where, ckpt_numpy_rng *rng,
                                  ckpt_error *err) {
  size_t n = ckpt_tree_count(t);
  if (n != 5 && n != 3)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: the legacy state tuple has %zu elements, expected 5 (or 3)", where,
                          n);
  const char *name = ckpt_tree_string(tuple_elem(t, 0));
  if (name == NULL)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s.0: expected the bit generator's name", where);
  if (strcmp(name, "MT19937") != 0)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED,
                          "%s: bit generator '%s' is not supported (only MT19937)", where, name);
  ckpt_status st =
      ckpt_numpy_rng_key_from_array(ckpt_tree_array(tuple_elem(t, 1)), where, rng->key, err);
  ckpt_scalar s;
  char at[512];
  snprintf(at, sizeof at, "%s.2", where);
  if (st == CKPT_OK && (st = tuple_scalar(tuple_elem(t, 2), at, false, &s, err)) == CKPT_OK)
    rng->pos = s.v.i;
  if (n == 5) {
    snprintf(at, sizeof at, "%s.3", where);
    if (st == CKPT_OK && (st = tuple_scalar(tuple_elem(t, 3), at, false, &s, err)) == CKPT_OK)
      rng->has_gauss = s.v.i;
    snprintf(at, sizeof at, "%s.4", where);
    if (st == CKPT_OK && (st = tuple_scalar(tuple_elem(t, 4), at, true, &s, err)) == CKPT_OK)
      rng->cached_gaussian = s.v.f;
  }
  return st;
}

ckpt_status ckpt_NumpyRandomKeyCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op,
                                                         const char *dir, const ckpt_args *args,
                                                         ckpt_value *out, ckpt_error *err) {
  (void)self;
  if (args != NULL && ckpt_NumpyRandomKeyRestore_cast(args) == NULL)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "NumpyRandomKeyCheckpointHandler: restore of %s needs "
                          "NumpyRandomKeyRestore args, got %s",
                          dir, args_name(args));
  char *item_dir = NULL;
  ckpt_status st = need_item_dir(op, dir, NP_ITEM, "NumpyRandomKey", &item_dir, err);
  if (st != CKPT_OK)
    return st;
  bool legacy = false;
  ckpt_tree *tree = NULL;
  ckpt_numpy_rng *rng = NULL;
  st = read_metadata(op, dir, NP_META_ITEM, "legacy", &legacy, err);
  if (st == CKPT_OK) {
    st = ckpt_pytree_restore(op, item_dir, NULL, &tree, err);
    if (st != CKPT_OK)
      ckpt_error_prefix(err, "NumpyRandomKeyRestore item '%s': ", NP_ITEM);
  }
  if (st == CKPT_OK) {
    ckpt_node_kind k = ckpt_tree_kind(tree);
    bool dict_form = k == CKPT_NODE_DICT && ckpt_tree_dict_get(tree, "bit_generator") != NULL;
    if (dict_form) {
      st = ckpt_numpy_rng_from_tree(tree, item_dir, &rng, err);
    } else if (k == CKPT_NODE_LIST || k == CKPT_NODE_TUPLE || k == CKPT_NODE_DICT) {
      if ((rng = calloc(1, sizeof *rng)) == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", dir);
      else
        st = rng_from_tuple(tree, item_dir, rng, err);
      if (st == CKPT_OK)
        st = ckpt_numpy_rng_validate(rng, item_dir, err);
    } else {
      st =
          ckpt_error_set(err, CKPT_ECORRUPT, "%s: expected numpy's state tuple or dict, found a %s",
                         item_dir, ckpt_node_kind_name(k));
    }
  }
  if (st == CKPT_OK) {
    rng->legacy = legacy;
    memset(out, 0, sizeof *out);
    out->kind = CKPT_VALUE_NUMPY_RNG;
    out->u.numpy_rng = rng;
    rng = NULL;
  }
  ckpt_numpy_rng_free(rng);
  ckpt_tree_free(tree);
  free(item_dir);
  return st;
}
