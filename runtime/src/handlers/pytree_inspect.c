/* handlers/pytree_inspect.c — looking at a PyTree item without restoring it: metadata()
 * (structure, dtypes, shapes, chunking; no chunk data read) and verify (every chunk's size
 * and checksum, for `ckpt verify`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/pytree_internal.h"
#include "storage/ocdbt/ocdbt.h"
#include "storage/packed.h"
#include "util/path.h"
#include "storage/zarr_io.h"

static cJSON *shape_json(int nd, const int64_t *shape) {
  cJSON *a = cJSON_CreateArray();
  for (int d = 0; a && d < nd; d++) {
    cJSON *n = cJSON_CreateNumber((double)shape[d]);
    if (n == NULL || !cJSON_AddItemToArray(a, n)) {
      cJSON_Delete(n);
      cJSON_Delete(a);
      return NULL;
    }
  }
  return a;
}

/* The description of one leaf. */
static ckpt_status describe(ckpt_io *io, const char *dir, const ckpt_meta_entry *e,
                            const cJSON *strings, const ckpt_packed_index *packed,
                            ckpt_ocdbt *ocdbt, cJSON **out, ckpt_error *err) {
  *out = NULL;
  if (ckpt_meta_is_empty_type(e->value_type)) {
    if (strcmp(e->value_type, CKPT_VT_LIST) == 0 || strcmp(e->value_type, CKPT_VT_TUPLE) == 0)
      *out = cJSON_CreateArray();
    else if (strcmp(e->value_type, CKPT_VT_NONE) == 0)
      *out = cJSON_CreateNull();
    else
      *out = cJSON_CreateObject();
    return *out ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  cJSON *o = cJSON_CreateObject();
  if (o == NULL || !cJSON_AddStringToObject(o, "value_type", e->value_type) ||
      !cJSON_AddStringToObject(o, "param", e->param)) {
    cJSON_Delete(o);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_status st = CKPT_OK;
  if (e->skip_deserialize && !ckpt_meta_is_empty_type(e->value_type)) {
    /* kept in the legacy aggregate file (storage/aggregate.h): no zarr metadata */
    if (!cJSON_AddTrueToObject(o, "aggregated"))
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  } else if (strcmp(e->value_type, CKPT_VT_STRING) == 0) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(strings, e->param);
    if (cJSON_IsString(v) && !cJSON_AddStringToObject(o, "value", v->valuestring))
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  } else if (ckpt_meta_is_array_type(e->value_type)) {
    ckpt_error local = CKPT_ERROR_INIT;
    if (ckpt_path_check_name(e->param, "parameter name", &local) != CKPT_OK) {
      st = ckpt_error_set(err, CKPT_EUNSAFE, "metadata of '%s': %s", dir, local.message);
    } else {
      const ckpt_packed_array *pa = ckpt_packed_find(packed, e->param);
      char *adir = pa || ocdbt ? NULL : ckpt_path_join(dir, e->param);
      ckpt_zarr_meta m;
      if (pa != NULL)
        m = pa->meta;
      else if (ocdbt != NULL)
        st = ckpt_zarr_read_meta_ocdbt(ocdbt, e->param, NULL, &m, err);
      else if (adir == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      else
        st = ckpt_zarr_read_meta(io, adir, e->param, NULL, &m, err);
      free(adir);
      if (st == CKPT_OK) {
        cJSON *shape = shape_json(m.ndim, m.shape), *chunks = shape_json(m.ndim, m.chunks);
        bool ok = shape && chunks &&
                  cJSON_AddStringToObject(o, "dtype", ckpt_dtype_name(m.dtype)) &&
                  cJSON_AddItemToObject(o, "shape", shape);
        if (ok)
          shape = NULL;
        ok = ok && cJSON_AddItemToObject(o, "chunk_shape", chunks);
        if (ok)
          chunks = NULL;
        ok = ok && cJSON_AddStringToObject(o, "compressor",
                                           m.compressor == CKPT_COMPRESSION_ZSTD ? "zstd" : "none");
        if (ok && e->has_write_shape) {
          cJSON *ws = shape_json(e->write_ndim, e->write_shape);
          ok = ws && cJSON_AddItemToObject(o, "write_shape", ws);
          if (!ok)
            cJSON_Delete(ws);
        }
        cJSON_Delete(shape);
        cJSON_Delete(chunks);
        if (!ok)
          st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      }
    }
  }
  if (st != CKPT_OK) {
    cJSON_Delete(o);
    return st;
  }
  *out = o;
  return CKPT_OK;
}

/* Inserts value at keys[0..depth) below node, which is the container keys[0] indexes (already
 * of the right JSON type), creating objects/arrays on the way. Takes value in all cases. */
static ckpt_status insert_into(cJSON *node, const ckpt_meta_key *keys, size_t depth,
                               const char *param, cJSON *value, ckpt_error *err) {
  bool seq = keys[0].key_type == CKPT_KEY_SEQUENCE;
  if (seq != (bool)cJSON_IsArray(node)) {
    cJSON_Delete(value);
    return ckpt_error_set(err, CKPT_ECORRUPT, "_METADATA: entry '%s' conflicts with another",
                          param);
  }
  bool last = depth == 1;
  cJSON *cur;
  if (seq) {
    long idx = strtol(keys[0].key, NULL, 10);
    if (idx < 0 || idx > 1000000) {
      cJSON_Delete(value);
      return ckpt_error_set(err, CKPT_ECORRUPT, "_METADATA: entry '%s' has a huge index", param);
    }
    while (cJSON_GetArraySize(node) <= idx) {
      cJSON *n = cJSON_CreateNull();
      if (n == NULL || !cJSON_AddItemToArray(node, n)) {
        cJSON_Delete(n);
        cJSON_Delete(value);
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      }
    }
    if (last) {
      cJSON_ReplaceItemInArray(node, (int)idx, value);
      return CKPT_OK;
    }
    cur = cJSON_GetArrayItem(node, (int)idx);
    if (cJSON_IsNull(cur)) {
      cJSON *fresh =
          keys[1].key_type == CKPT_KEY_SEQUENCE ? cJSON_CreateArray() : cJSON_CreateObject();
      if (fresh == NULL) {
        cJSON_Delete(value);
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      }
      cJSON_ReplaceItemInArray(node, (int)idx, fresh);
      cur = fresh;
    }
  } else {
    cur = cJSON_GetObjectItemCaseSensitive(node, keys[0].key);
    if (last) {
      if (cur != NULL) {
        cJSON_ReplaceItemInObjectCaseSensitive(node, keys[0].key, value);
        return CKPT_OK;
      }
      if (!cJSON_AddItemToObject(node, keys[0].key, value)) {
        cJSON_Delete(value);
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      }
      return CKPT_OK;
    }
    if (cur == NULL) {
      cur = keys[1].key_type == CKPT_KEY_SEQUENCE ? cJSON_CreateArray() : cJSON_CreateObject();
      if (cur == NULL || !cJSON_AddItemToObject(node, keys[0].key, cur)) {
        cJSON_Delete(cur);
        cJSON_Delete(value);
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      }
    }
  }
  return insert_into(cur, keys + 1, depth - 1, param, value, err);
}

static ckpt_status insert(cJSON **root, const ckpt_meta_entry *e, cJSON *value, ckpt_error *err) {
  if (e->depth == 0) {
    cJSON_Delete(*root);
    *root = value;
    return CKPT_OK;
  }
  if (*root == NULL) {
    *root = e->keys[0].key_type == CKPT_KEY_SEQUENCE ? cJSON_CreateArray() : cJSON_CreateObject();
    if (*root == NULL) {
      cJSON_Delete(value);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    }
  }
  return insert_into(*root, e->keys, e->depth, e->param, value, err);
}

ckpt_status ckpt_pytree_metadata_io(ckpt_io *io, const char *dir, cJSON **out, ckpt_error *err) {
  *out = NULL;
  if (io == NULL)
    io = ckpt_io_default();
  ckpt_pytree_meta meta;
  ckpt_packed_index packed;
  memset(&packed, 0, sizeof packed);
  ckpt_ocdbt *ocdbt = NULL;
  ckpt_meta_source source; /* items of older Orbax versions have no _METADATA */
  ckpt_status st = ckpt_pytree_meta_read_any(io, dir, &meta, NULL, &source, err);
  cJSON *strings = NULL, *tree = NULL, *doc = NULL;
  if (st == CKPT_OK)
    st = ckpt_packed_read(io, dir, &packed, err);
  if (st == CKPT_OK)
    st = ckpt_packed_check_meta(&packed, &meta, dir, err);
  if (st == CKPT_OK && meta.use_ocdbt && !meta.use_zarr3)
    st = ckpt_ocdbt_open(io, dir, &ocdbt, err);
  if (st != CKPT_OK)
    goto done;
  bool any_string = false;
  for (size_t i = 0; i < meta.n; i++)
    any_string |= strcmp(meta.entries[i].value_type, CKPT_VT_STRING) == 0;
  if (any_string)
    st = ckpt_pytree_strings_read(io, dir, &strings, NULL, err);
  for (size_t i = 0; st == CKPT_OK && i < meta.n; i++) {
    cJSON *leaf;
    st = describe(io, dir, &meta.entries[i], strings, &packed, ocdbt, &leaf, err);
    if (st == CKPT_OK)
      st = insert(&tree, &meta.entries[i], leaf, err);
  }
  if (st != CKPT_OK)
    goto done;
  doc = cJSON_CreateObject();
  if (tree == NULL)
    tree = cJSON_CreateObject();
  cJSON *cm =
      meta.custom_metadata ? cJSON_Duplicate(meta.custom_metadata, true) : cJSON_CreateNull();
  if (doc == NULL || tree == NULL || cm == NULL || !cJSON_AddItemToObject(doc, "tree", tree)) {
    cJSON_Delete(cm);
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    goto done;
  }
  tree = NULL;
  if (!cJSON_AddItemToObject(doc, "custom_metadata", cm) ||
      !cJSON_AddBoolToObject(doc, "use_ocdbt", meta.use_ocdbt) ||
      !cJSON_AddBoolToObject(doc, "use_zarr3", meta.use_zarr3)) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    goto done;
  }
  *out = doc;
  doc = NULL;
done:
  cJSON_Delete(doc);
  cJSON_Delete(tree);
  cJSON_Delete(strings);
  ckpt_packed_free(&packed);
  ckpt_ocdbt_close(ocdbt);
  ckpt_pytree_meta_free(&meta);
  return st;
}

ckpt_status ckpt_pytree_metadata(ckpt_op *op, const char *dir, cJSON **out, ckpt_error *err) {
  return ckpt_pytree_metadata_io(op ? ckpt_op_io(op) : NULL, dir, out, err);
}

/* ---------------------------------------------------------------- verify */

typedef struct verify_array {
  char *dir;
  const ckpt_packed_array *packed;
  const char *name;
  ckpt_zarr_meta m;
  const cJSON *sums;
} verify_array;

typedef struct verify_task {
  size_t array;
  uint64_t linear;
} verify_task;

typedef struct verify_ctx {
  ckpt_io *io;
  ckpt_ocdbt *ocdbt; /* the item's OCDBT database, or NULL */
  verify_array *arrays;
  verify_task *tasks;
  bool require;
  bool missing_is_error;
} verify_ctx;

static ckpt_status task_verify(void *ctx, size_t i, ckpt_scratch *scratch, ckpt_error *err) {
  verify_ctx *v = ctx;
  const verify_task *t = &v->tasks[i];
  const verify_array *a = &v->arrays[t->array];
  return ckpt_zarr_verify_chunk(v->io, a->dir, a->packed, v->ocdbt, a->name, &a->m, t->linear,
                                a->sums, v->require, v->missing_is_error, scratch, err);
}

ckpt_status ckpt_pytree_verify(ckpt_io *io, const char *dir, uint64_t *n_chunks, ckpt_error *err) {
  if (io == NULL)
    io = ckpt_io_default();
  if (n_chunks)
    *n_chunks = 0;
  ckpt_pytree_meta meta;
  ckpt_checksums *sums = NULL;
  cJSON *strings = NULL;
  verify_array *arrays = NULL;
  verify_task *tasks = NULL;
  size_t n_arrays = 0, n_tasks = 0;
  ckpt_packed_index packed;
  memset(&packed, 0, sizeof packed);
  ckpt_ocdbt *ocdbt = NULL;
  ckpt_status st = ckpt_pytree_meta_read(io, dir, &meta, err);
  if (st == CKPT_OK)
    st = ckpt_checksums_read(io, dir, &sums, err);
  if (st == CKPT_OK)
    st = ckpt_packed_read(io, dir, &packed, err);
  if (st == CKPT_OK)
    st = ckpt_packed_check_meta(&packed, &meta, dir, err);
  if (st == CKPT_OK)
    st = ckpt_checksums_check_item(sums, dir, &meta, &packed, NULL, err);
  if (st == CKPT_OK && meta.use_ocdbt)
    st = ckpt_ocdbt_open(io, dir, &ocdbt, err);
  if (st != CKPT_OK)
    goto done;
  arrays = calloc(meta.n ? meta.n : 1, sizeof *arrays);
  if (arrays == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    goto done;
  }
  uint64_t total = 0;
  bool strings_read = false;
  for (size_t i = 0; i < meta.n; i++) {
    const ckpt_meta_entry *e = &meta.entries[i];
    if (strcmp(e->value_type, CKPT_VT_STRING) == 0) {
      if (!strings_read) {
        ckpt_file_sum ssum;
        st = ckpt_pytree_strings_read(io, dir, &strings, &ssum, err);
        if (st == CKPT_OK)
          st = ckpt_checksums_check_file(sums, dir, CKPT_STRINGS_FILE, &ssum, err);
        if (st != CKPT_OK)
          goto done;
        strings_read = true;
      }
      if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(strings, e->param))) {
        st = ckpt_error_set(err, CKPT_ECORRUPT,
                            "verify of '%s': string leaf '%s' is missing from _strings.json", dir,
                            e->param);
        goto done;
      }
      continue;
    }
    if (!ckpt_meta_is_array_type(e->value_type))
      continue;
    ckpt_error local = CKPT_ERROR_INIT;
    if (ckpt_path_check_name(e->param, "parameter name", &local) != CKPT_OK) {
      st = ckpt_error_set(err, CKPT_EUNSAFE, "verify of '%s': %s", dir, local.message);
      goto done;
    }
    verify_array *a = &arrays[n_arrays++];
    a->name = e->param;
    a->dir = ckpt_path_join(dir, e->param);
    if (a->dir == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      goto done;
    }
    a->packed = ckpt_packed_find(&packed, e->param);
    if (a->packed != NULL)
      a->m = a->packed->meta;
    else if (ocdbt != NULL)
      st = ckpt_zarr_read_meta_ocdbt(ocdbt, e->param, sums, &a->m, err);
    else
      st = ckpt_zarr_read_meta(io, a->dir, e->param, sums, &a->m, err);
    if (st == CKPT_OK && a->packed == NULL)
      st = ckpt_zarr_check_format(&a->m, meta.use_zarr3, e->param, err);
    if (st != CKPT_OK)
      goto done;
    a->sums = ckpt_checksums_array(sums, e->param);
    int64_t grid[CKPT_MAX_RANK];
    total += ckpt_zarr_grid(&a->m, grid);
  }
  if (total > SIZE_MAX / sizeof *tasks) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "too many chunks");
    goto done;
  }
  tasks = calloc(total ? (size_t)total : 1, sizeof *tasks);
  if (tasks == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n_arrays; i++) {
    int64_t grid[CKPT_MAX_RANK];
    uint64_t n = ckpt_zarr_grid(&arrays[i].m, grid);
    for (uint64_t k = 0; k < n; k++) {
      tasks[n_tasks].array = i;
      tasks[n_tasks].linear = k;
      n_tasks++;
    }
  }
  verify_ctx v = {io,    ocdbt,        arrays,
                  tasks, sums != NULL, meta.store_array_data_equal_to_fill_value};
  st = ckpt_parallel_for(n_tasks, 0, task_verify, &v, err);
  if (st == CKPT_OK && n_chunks)
    *n_chunks = n_tasks;
done:
  for (size_t i = 0; i < n_arrays; i++)
    free(arrays[i].dir);
  free(arrays);
  free(tasks);
  ckpt_checksums_free(sums);
  cJSON_Delete(strings);
  ckpt_packed_free(&packed);
  ckpt_ocdbt_close(ocdbt);
  ckpt_pytree_meta_free(&meta);
  return st;
}
