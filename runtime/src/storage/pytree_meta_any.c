/* storage/pytree_meta_any.c — the tree of a PyTree item whatever Orbax version wrote it
 * (ckpt_pytree_meta_read_any in pytree_meta.h).
 *
 * _METADATA appeared in Orbax 0.5 (2024). Before it, the tree was the legacy msgpack aggregate
 * file `checkpoint` (leaves in it, or "PLACEHOLDER://<param>" for leaves in TensorStore), and
 * without either Orbax lists the item's arrays (its `utils.pytree_structure`): a parameter name
 * is the '.'-joined key path, so the rebuilt tree is nested dicts. The entries built here are
 * the ones Orbax's _METADATA has for the same trees — aggregated leaves are `skip_deserialize`
 * with their value type, stored leaves are not — so every reader handles one model. An item
 * whose arrays are in OCDBT (a manifest.ocdbt) lists them as the database's `<param>/.zarray`
 * and `<param>/zarr.json` keys; a zarr.json (in the database or a directory) sets use_zarr3,
 * which _METADATA would have said. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/aggregate.h"
#include "storage/ocdbt/ocdbt.h"
#include "storage/pytree_meta.h"
#include "storage/subdirs.h"
#include "storage/zarr_io.h"
#include "text/json.h"
#include "util/path.h"

#define ARRAY_METADATAS_MAX (64u << 20)

typedef struct builder {
  ckpt_pytree_meta *meta;
  size_t cap;
  ckpt_meta_key stack[CKPT_AGGREGATE_MAX_DEPTH + 1];
  size_t depth;
} builder;

static ckpt_status oom(ckpt_error *err) {
  return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
}

/* Appends an entry for the keys on b's stack (copied). */
static ckpt_status add_entry(builder *b, const char *value_type, bool skip, int ndim,
                             const int64_t *write_shape, ckpt_error *err) {
  ckpt_pytree_meta *m = b->meta;
  if (m->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    ckpt_meta_entry *v = realloc(m->entries, cap * sizeof *v);
    if (v == NULL)
      return oom(err);
    m->entries = v;
    b->cap = cap;
  }
  ckpt_meta_entry *e = &m->entries[m->n];
  memset(e, 0, sizeof *e);
  size_t plen = 0;
  for (size_t i = 0; i < b->depth; i++)
    plen += strlen(b->stack[i].key) + 1;
  e->keys = calloc(b->depth ? b->depth : 1, sizeof *e->keys);
  e->param = malloc(plen + 1);
  e->value_type = strdup(value_type);
  if (e->keys == NULL || e->param == NULL || e->value_type == NULL) {
    free(e->keys);
    free(e->param);
    free(e->value_type);
    return oom(err);
  }
  e->param[0] = '\0';
  for (size_t i = 0; i < b->depth; i++) {
    e->keys[i].key_type = b->stack[i].key_type;
    e->keys[i].key = strdup(b->stack[i].key);
    if (e->keys[i].key != NULL) {
      if (i > 0)
        strcat(e->param, ".");
      strcat(e->param, b->stack[i].key);
    }
    e->depth = i + 1;
    if (e->keys[i].key == NULL) {
      m->n++; /* freed with the rest by ckpt_pytree_meta_free */
      return oom(err);
    }
  }
  e->skip_deserialize = skip;
  if (write_shape != NULL) {
    e->has_write_shape = true;
    e->write_ndim = ndim;
    memcpy(e->write_shape, write_shape, sizeof(int64_t) * (size_t)ndim);
  }
  m->n++;
  return CKPT_OK;
}

/* The entries of an aggregate tree, in its order (dict keys sorted, as jax flattens). */
static ckpt_status from_tree(builder *b, const ckpt_tree *node, ckpt_error *err) {
  ckpt_node_kind k = ckpt_tree_kind(node);
  size_t n = ckpt_tree_count(node);
  bool inner = k == CKPT_NODE_DICT || k == CKPT_NODE_LIST || k == CKPT_NODE_TUPLE;
  if (!inner || n == 0) {
    const char *vt = CKPT_VT_NDARRAY;
    bool skip = true; /* the value is in the aggregate file */
    switch (k) {
      case CKPT_NODE_DICT: vt = CKPT_VT_DICT; break;
      case CKPT_NODE_LIST: vt = CKPT_VT_LIST; break;
      case CKPT_NODE_TUPLE: vt = CKPT_VT_TUPLE; break;
      case CKPT_NODE_NONE: vt = CKPT_VT_NONE; break;
      case CKPT_NODE_SCALAR: vt = CKPT_VT_SCALAR; break;
      case CKPT_NODE_STRING: vt = CKPT_VT_STRING; break;
      case CKPT_NODE_PLACEHOLDER: skip = false; break; /* in the item's zarr array */
      case CKPT_NODE_ARRAY:
      case CKPT_NODE_BYTES: break;
    }
    return add_entry(b, vt, skip, 0, NULL, err);
  }
  if (b->depth >= CKPT_AGGREGATE_MAX_DEPTH)
    return ckpt_error_set(err, CKPT_ECORRUPT, "the aggregate tree nests too deep");
  char idx[32];
  for (size_t i = 0; i < n; i++) {
    ckpt_meta_key *key = &b->stack[b->depth];
    if (k == CKPT_NODE_DICT) {
      key->key = (char *)ckpt_tree_key(node, i);
      key->key_type = CKPT_KEY_DICT;
    } else {
      snprintf(idx, sizeof idx, "%zu", i);
      key->key = idx;
      key->key_type = CKPT_KEY_SEQUENCE;
    }
    b->depth++;
    ckpt_status st = from_tree(b, ckpt_tree_child(node, i), err);
    b->depth--;
    if (st != CKPT_OK)
      return st;
  }
  return CKPT_OK;
}

/* An entry for a parameter name split at its dots (dict keys), unless one with that name exists. */
static ckpt_status add_param(builder *b, const char *param, const char *value_type, int ndim,
                             const int64_t *write_shape, ckpt_error *err) {
  for (size_t i = 0; i < b->meta->n; i++)
    if (strcmp(b->meta->entries[i].param, param) == 0)
      return CKPT_OK;
  char *copy = strdup(param);
  if (copy == NULL)
    return oom(err);
  b->depth = 0;
  char *save = copy;
  ckpt_status st = CKPT_OK;
  for (char *p = copy;; p++) {
    if (*p != '.' && *p != '\0')
      continue;
    bool end = *p == '\0';
    *p = '\0';
    if (b->depth == CKPT_AGGREGATE_MAX_DEPTH) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "parameter name '%s' has too many parts", param);
      break;
    }
    b->stack[b->depth++] = (ckpt_meta_key){save, CKPT_KEY_DICT};
    save = p + 1;
    if (end)
      break;
  }
  if (st == CKPT_OK)
    st = add_entry(b, value_type, false, ndim, write_shape, err);
  b->depth = 0;
  free(copy);
  return st;
}

/* array_metadatas/process_0: the parameter names and write shapes of the jax.Array leaves. */
static ckpt_status from_array_metadatas(ckpt_io *io, const char *dir, builder *b, bool *found,
                                        ckpt_error *err) {
  *found = false;
  char *path = ckpt_path_join(dir, CKPT_ARRAY_METADATAS_FILE);
  if (path == NULL)
    return oom(err);
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  ckpt_status st = ckpt_io_stat(io, path, &kind, &size, err);
  cJSON *doc = NULL;
  if (st == CKPT_OK && kind == CKPT_IO_KIND_FILE)
    st = ckpt_json_read_file(io, path, ARRAY_METADATAS_MAX, &doc, err);
  if (st == CKPT_OK && doc != NULL) {
    *found = true;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "array_metadatas");
    if (!cJSON_IsArray(list))
      st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s': \"array_metadatas\" must be a list", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
      if (st != CKPT_OK)
        break;
      const cJSON *am = cJSON_GetObjectItemCaseSensitive(it, "array_metadata");
      const cJSON *name = cJSON_GetObjectItemCaseSensitive(am, "param_name");
      const cJSON *ws = cJSON_GetObjectItemCaseSensitive(am, "write_shape");
      if (!cJSON_IsString(name)) {
        st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s': an entry has no \"param_name\" string",
                            path);
        break;
      }
      int64_t shape[CKPT_MAX_RANK];
      int nd = cJSON_IsArray(ws) ? cJSON_GetArraySize(ws) : -1;
      bool shape_ok = nd >= 0 && nd <= CKPT_MAX_RANK;
      for (int d = 0; shape_ok && d < nd; d++)
        shape_ok = ckpt_json_get_int64(cJSON_GetArrayItem(ws, d), &shape[d]) && shape[d] >= 0;
      st = add_param(b, name->valuestring, CKPT_VT_NDARRAY, nd, shape_ok ? shape : NULL, err);
    }
  }
  cJSON_Delete(doc);
  free(path);
  return st;
}

static ckpt_status param_dir_name_ok(const char *name, ckpt_error *err) {
  return ckpt_path_check_name(name, "parameter name", err);
}

/* The name before a key's last '/' when the rest is `name` and the name is one path part
 * (Orbax's parameter names hold no '/'); NULL otherwise. Owned by the caller. */
static char *array_key_param(const char *key, size_t len, const char *name) {
  size_t nl = strlen(name);
  if (len <= nl + 1 || strcmp(key + len - nl, name) != 0 || key[len - nl - 1] != '/')
    return NULL;
  size_t pl = len - nl - 1;
  if (memchr(key, '/', pl) != NULL || memchr(key, '\0', pl) != NULL)
    return NULL;
  char *p = malloc(pl + 1);
  if (p != NULL) {
    memcpy(p, key, pl);
    p[pl] = '\0';
  }
  return p;
}

/* The arrays in the item's OCDBT database: its `<param>/.zarray` (zarr v2) and
 * `<param>/zarr.json` (zarr v3) keys. A database that does not open is the error (it names
 * the missing or damaged file): its arrays cannot be read either. */
static ckpt_status from_ocdbt(ckpt_io *io, const char *dir, builder *b, bool *zarr3,
                              ckpt_error *err) {
  ckpt_ocdbt *db = NULL;
  ckpt_status st = ckpt_ocdbt_open(io, dir, &db, err);
  size_t n = st == CKPT_OK ? ckpt_ocdbt_count(db) : 0;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    size_t len;
    const char *key = ckpt_ocdbt_key(db, i, &len);
    bool v3 = false;
    char *param = array_key_param(key, len, ".zarray");
    if (param == NULL) {
      param = array_key_param(key, len, "zarr.json");
      v3 = param != NULL;
    }
    if (param == NULL)
      continue; /* a chunk, or a key that names no array */
    st = param_dir_name_ok(param, err);
    if (st == CKPT_OK)
      st = add_param(b, param, CKPT_VT_NDARRAY, 0, NULL, err);
    *zarr3 = *zarr3 || v3;
    free(param);
  }
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "the OCDBT database of '%s' (no %s to say what it holds): ", dir,
                      CKPT_METADATA_FILE);
  ckpt_ocdbt_close(db);
  return st;
}

/* The item's zarr arrays (subdirectories holding a .zarray, or a zarr v3 zarr.json) and its
 * _strings.json leaves. */
static ckpt_status from_files(ckpt_io *io, const char *dir, builder *b, bool *zarr3,
                              ckpt_error *err) {
  char **names = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_list_subdirs(io, dir, param_dir_name_ok, &names, &n, err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    char *sub = ckpt_path_join(dir, names[i]);
    char *za = sub != NULL ? ckpt_path_join(sub, ".zarray") : NULL;
    ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
    uint64_t size;
    if (za == NULL)
      st = oom(err);
    else
      st = ckpt_io_stat(io, za, &kind, &size, err);
    if (st == CKPT_OK && kind != CKPT_IO_KIND_FILE) {
      free(za);
      za = ckpt_path_join(sub, "zarr.json");
      if (za == NULL)
        st = oom(err);
      else
        st = ckpt_io_stat(io, za, &kind, &size, err);
      if (st == CKPT_OK && kind == CKPT_IO_KIND_FILE)
        *zarr3 = true;
    }
    if (st == CKPT_OK && kind == CKPT_IO_KIND_FILE)
      st = add_param(b, names[i], CKPT_VT_NDARRAY, 0, NULL, err);
    free(za);
    free(sub);
  }
  ckpt_io_free_names(names, n);
  cJSON *strings = NULL;
  if (st == CKPT_OK)
    st = ckpt_pytree_strings_read(io, dir, &strings, NULL, err);
  const cJSON *s;
  cJSON_ArrayForEach(s, strings) {
    if (st == CKPT_OK && cJSON_IsString(s) && s->string != NULL)
      st = add_param(b, s->string, CKPT_VT_STRING, 0, NULL, err);
  }
  cJSON_Delete(strings);
  return st;
}

const ckpt_tree *ckpt_meta_entry_aggregate(const ckpt_tree *aggregate, const ckpt_meta_entry *e) {
  const char *keys[CKPT_AGGREGATE_MAX_DEPTH + 1];
  if (aggregate == NULL || e->depth > CKPT_AGGREGATE_MAX_DEPTH)
    return NULL; /* deeper than any aggregate tree can be */
  for (size_t i = 0; i < e->depth; i++)
    keys[i] = e->keys[i].key;
  return ckpt_aggregate_value(aggregate, keys, e->depth);
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const ckpt_meta_entry *)a)->param, ((const ckpt_meta_entry *)b)->param);
}

ckpt_status ckpt_pytree_meta_read_any(ckpt_io *io, const char *dir, ckpt_pytree_meta *meta,
                                      ckpt_tree **aggregate, ckpt_meta_source *source,
                                      ckpt_error *err) {
  memset(meta, 0, sizeof *meta);
  if (aggregate != NULL)
    *aggregate = NULL;
  *source = CKPT_META_FROM_FILE;
  ckpt_error local = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_pytree_meta_read(io, dir, meta, &local);
  bool have_meta = st == CKPT_OK;
  if (st != CKPT_OK && st != CKPT_ENOENT)
    return ckpt_error_set(err, st, "%s", local.message);
  ckpt_tree *agg = NULL;
  ckpt_error agg_err = CKPT_ERROR_INIT;
  /* The aggregate file (up to gigabytes) is read only when someone uses it: the caller's
   * values, or the tree when _METADATA is missing. */
  ckpt_status ast = aggregate != NULL || !have_meta ? ckpt_aggregate_read(io, dir, &agg, &agg_err)
                                                    : CKPT_ENOENT;
  if (ast != CKPT_OK && ast != CKPT_ENOENT) {
    ckpt_pytree_meta_free(meta);
    return ckpt_error_set(err, ast, "%s", agg_err.message);
  }
  if (!have_meta && agg == NULL) {
    /* ckpt writes _METADATA in every item that has _CHECKSUMS: without it, that is damage,
     * not an item of an older Orbax. */
    char *sums = ckpt_path_join(dir, CKPT_CHECKSUMS_FILE);
    ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
    uint64_t size;
    st = sums == NULL ? oom(err) : ckpt_io_stat(io, sums, &kind, &size, err);
    free(sums);
    if (st == CKPT_OK && kind != CKPT_IO_KIND_MISSING)
      st = ckpt_error_set(err, CKPT_ENOENT,
                          "%s (ckpt wrote this item, with %s: its %s was deleted)",
                          local.message, CKPT_CHECKSUMS_FILE, CKPT_METADATA_FILE);
    if (st != CKPT_OK) {
      ckpt_pytree_meta_free(meta);
      return st;
    }
  }
  builder b = {.meta = meta};
  st = CKPT_OK;
  if (!have_meta && agg != NULL) {
    /* Older Orbax: the aggregate file is the tree. */
    *source = CKPT_META_FROM_AGGREGATE;
    ckpt_pytree_meta_free(meta);
    b.meta = meta;
    st = from_tree(&b, agg, err);
    if (st != CKPT_OK)
      ckpt_error_prefix(err, "'%s/%s': ", dir, CKPT_AGGREGATE_FILE);
  } else if (!have_meta) {
    ckpt_pytree_meta_free(meta);
    b.meta = meta;
    bool found;
    st = from_array_metadatas(io, dir, &b, &found, err);
    *source = found ? CKPT_META_FROM_ARRAY_METADATAS : CKPT_META_FROM_ZARRAYS;
    bool zarr3 = false;
    meta->use_ocdbt = ckpt_ocdbt_present(io, dir);
    if (st == CKPT_OK && meta->use_ocdbt)
      st = from_ocdbt(io, dir, &b, &zarr3, err);
    if (st == CKPT_OK)
      st = from_files(io, dir, &b, &zarr3, err);
    meta->use_zarr3 = zarr3;
    if (st == CKPT_OK && meta->n == 0)
      st = ckpt_error_set(err, CKPT_ENOENT,
                          "'%s' holds no PyTree: no %s, no legacy aggregate file '%s', no %s and "
                          "no zarr arrays (directories or OCDBT keys)",
                          dir, CKPT_METADATA_FILE, CKPT_AGGREGATE_FILE, CKPT_ARRAY_METADATAS_FILE);
    if (st == CKPT_OK)
      qsort(meta->entries, meta->n, sizeof *meta->entries, cmp_entry);
  }
  if (st != CKPT_OK || aggregate == NULL)
    ckpt_tree_free(agg);
  else
    *aggregate = agg;
  if (st != CKPT_OK)
    ckpt_pytree_meta_free(meta);
  return st;
}
