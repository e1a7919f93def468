/* storage/pytree_meta.c — encoding and parsing Orbax's _METADATA, and Python's str(tuple) of
 * its keys. The document is written as text with text/json.h's primitives (building a cJSON
 * tree of 10,000 entries first would cost more than the save's I/O); the bytes match what
 * Orbax's json.dumps writes, since tools diff checkpoints written by Python and C. */
#include "storage/pytree_meta.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/zarr_io.h"
#include "text/json.h"
#include "util/arena.h"
#include "util/crc32c.h"
#include "util/path.h"
#include "util/sort.h"
#include "util/text.h"

bool ckpt_meta_is_empty_type(const char *vt) {
  return strcmp(vt, CKPT_VT_DICT) == 0 || strcmp(vt, CKPT_VT_LIST) == 0 ||
         strcmp(vt, CKPT_VT_TUPLE) == 0 || strcmp(vt, CKPT_VT_NAMEDTUPLE) == 0 ||
         strcmp(vt, CKPT_VT_NONE) == 0;
}

/* ---------------------------------------------------------------- Python repr of str */

static void put_py_str_repr(ckpt_tf_buf *b, const char *s) {
  bool has_sq = strchr(s, '\'') != NULL, has_dq = strchr(s, '"') != NULL;
  char q = (has_sq && !has_dq) ? '"' : '\'';
  ckpt_tf_buf_putc(b, q);
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      if (c == '\\' || c == (unsigned char)q) {
        ckpt_tf_buf_putc(b, '\\');
        ckpt_tf_buf_putc(b, (char)c);
      } else if (c == '\n') {
        ckpt_tf_buf_puts(b, "\\n");
      } else if (c == '\r') {
        ckpt_tf_buf_puts(b, "\\r");
      } else if (c == '\t') {
        ckpt_tf_buf_puts(b, "\\t");
      } else if (c < 0x20 || c == 0x7f) {
        ckpt_tf_buf_printf(b, "\\x%02x", c);
      } else {
        ckpt_tf_buf_putc(b, (char)c);
      }
      i++;
      continue;
    }
    size_t bad;
    uint32_t cp;
    if (!ckpt_tf_utf8_valid(p + i, n - i, &bad) && bad == 0) {
      /* Not UTF-8 (Python keys always are); show the byte. */
      ckpt_tf_buf_printf(b, "\\x%02x", c);
      i++;
      continue;
    }
    size_t len = ckpt_tf_utf8_decode(p + i, n - i, &cp);
    if (len == 0)
      len = 1;
    if ((cp >= 0x80 && cp <= 0xa0) || cp == 0xad)
      ckpt_tf_buf_printf(b, "\\x%02x", (unsigned)cp); /* Python's non-printable Latin-1 range */
    else
      ckpt_tf_buf_append(b, p + i, len);
    i += len;
  }
  ckpt_tf_buf_putc(b, q);
}

char *ckpt_py_tuple_repr(const char *const *keys, size_t n) {
  ckpt_tf_buf b = CKPT_TF_BUF_INIT;
  ckpt_tf_buf_putc(&b, '(');
  for (size_t i = 0; i < n; i++) {
    if (i)
      ckpt_tf_buf_puts(&b, ", ");
    put_py_str_repr(&b, keys[i]);
  }
  if (n == 1)
    ckpt_tf_buf_putc(&b, ',');
  ckpt_tf_buf_putc(&b, ')');
  char *out = NULL;
  size_t len;
  if (ckpt_tf_buf_take(&b, "tuple repr", &out, &len, NULL) != CKPT_OK)
    return NULL;
  return out;
}

/* ---------------------------------------------------------------- _METADATA encode */

/* A string as json.dumps writes it (ASCII, \uXXXX escapes). */
static void put_py_json_string(ckpt_tf_buf *b, const char *s) {
  ckpt_json_put_string_style(b, s, strlen(s), CKPT_JSON_STYLE_PYTHON);
}

ckpt_status ckpt_pytree_meta_encode(const ckpt_pytree_meta *meta, char **text, size_t *len,
                                    ckpt_error *err) {
  *text = NULL;
  ckpt_tf_buf b = CKPT_TF_BUF_INIT;
  ckpt_tf_buf_puts(&b, "{\"tree_metadata\": {");
  for (size_t i = 0; i < meta->n; i++) {
    const ckpt_meta_entry *e = &meta->entries[i];
    const char **names = malloc((e->depth ? e->depth : 1) * sizeof *names);
    if (names == NULL) {
      ckpt_tf_buf_free(&b);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory encoding _METADATA");
    }
    for (size_t k = 0; k < e->depth; k++)
      names[k] = e->keys[k].key;
    char *repr = ckpt_py_tuple_repr(names, e->depth);
    free(names);
    if (repr == NULL) {
      ckpt_tf_buf_free(&b);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory encoding _METADATA");
    }
    if (i)
      ckpt_tf_buf_puts(&b, ", ");
    put_py_json_string(&b, repr);
    free(repr);
    ckpt_tf_buf_puts(&b, ": {\"key_metadata\": [");
    for (size_t k = 0; k < e->depth; k++) {
      if (k)
        ckpt_tf_buf_puts(&b, ", ");
      ckpt_tf_buf_puts(&b, "{\"key\": ");
      put_py_json_string(&b, e->keys[k].key);
      ckpt_tf_buf_printf(&b, ", \"key_type\": %d}", e->keys[k].key_type);
    }
    ckpt_tf_buf_puts(&b, "], \"value_metadata\": {\"value_type\": ");
    put_py_json_string(&b, e->value_type);
    ckpt_tf_buf_printf(&b, ", \"skip_deserialize\": %s", e->skip_deserialize ? "true" : "false");
    if (e->has_write_shape) {
      ckpt_tf_buf_puts(&b, ", \"write_shape\": [");
      for (int d = 0; d < e->write_ndim; d++)
        ckpt_tf_buf_printf(&b, "%s%lld", d ? ", " : "", (long long)e->write_shape[d]);
      ckpt_tf_buf_putc(&b, ']');
    }
    ckpt_tf_buf_puts(&b, "}}");
  }
  ckpt_tf_buf_printf(&b,
                     "}, \"use_ocdbt\": %s, \"use_zarr3\": %s, "
                     "\"store_array_data_equal_to_fill_value\": %s, \"custom_metadata\": ",
                     meta->use_ocdbt ? "true" : "false", meta->use_zarr3 ? "true" : "false",
                     meta->store_array_data_equal_to_fill_value ? "true" : "false");
  if (meta->custom_metadata == NULL) {
    ckpt_tf_buf_puts(&b, "null");
  } else {
    /* The JSON handler's json.dumps-compatible writer, so custom metadata reads back in Python
     * as the same value (NaN, big integers and non-ASCII included). */
    char *cm = NULL;
    size_t cml = 0;
    ckpt_status st = ckpt_json_dump(meta->custom_metadata, &cm, &cml, err);
    if (st != CKPT_OK) {
      ckpt_tf_buf_free(&b);
      ckpt_error_prefix(err, "custom_metadata: ");
      return st;
    }
    ckpt_tf_buf_append(&b, cm, cml);
    free(cm);
  }
  ckpt_tf_buf_putc(&b, '}');
  return ckpt_tf_buf_take(&b, "_METADATA", text, len, err);
}

/* ---------------------------------------------------------------- _METADATA parse */

void ckpt_pytree_meta_free(ckpt_pytree_meta *meta) {
  if (meta == NULL)
    return;
  for (size_t i = 0; meta->arena == NULL && i < meta->n; i++) {
    ckpt_meta_entry *e = &meta->entries[i];
    for (size_t k = 0; k < e->depth; k++)
      free(e->keys[k].key);
    free(e->keys);
    free(e->param);
    free(e->value_type);
  }
  free(meta->entries);
  cJSON_Delete(meta->custom_metadata);
  ckpt_arena_free(meta->arena);
  free(meta->arena);
  memset(meta, 0, sizeof *meta);
}

static bool get_bool(const cJSON *obj, const char *key, bool dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static ckpt_status parse_entry(ckpt_arena *arena, const cJSON *item, const char *where,
                               ckpt_meta_entry *e, ckpt_error *err) {
  const char *tk = item->string ? item->string : "?";
  const cJSON *km = cJSON_GetObjectItemCaseSensitive(item, "key_metadata");
  const cJSON *vm = cJSON_GetObjectItemCaseSensitive(item, "value_metadata");
  if (!cJSON_IsArray(km) || !cJSON_IsObject(vm))
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: entry %.80s lacks key_metadata or value_metadata", where, tk);
  const cJSON *vt = cJSON_GetObjectItemCaseSensitive(vm, "value_type");
  if (!cJSON_IsString(vt))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: entry %.80s has no value_type", where, tk);
  e->value_type = ckpt_arena_strdup(arena, vt->valuestring);
  if (e->value_type == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  e->skip_deserialize = get_bool(vm, "skip_deserialize", false);
  const cJSON *ws = cJSON_GetObjectItemCaseSensitive(vm, "write_shape");
  if (cJSON_IsArray(ws) && cJSON_GetArraySize(ws) <= CKPT_MAX_RANK) {
    e->has_write_shape = true;
    const cJSON *d;
    cJSON_ArrayForEach(d, ws) {
      /* Exactly, or not at all: converting an out-of-range double to int64 is undefined. */
      int64_t v;
      if (!ckpt_json_get_int64(d, &v) || v < 0)
        return ckpt_error_set(err, CKPT_ECORRUPT,
                              "%s: entry %.80s has a write_shape that is not a list of sizes",
                              where, tk);
      e->write_shape[e->write_ndim++] = v;
    }
  }
  size_t depth = (size_t)cJSON_GetArraySize(km);
  e->keys = ckpt_arena_calloc(arena, (depth ? depth : 1) * sizeof *e->keys);
  if (e->keys == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  size_t plen = 0;
  const cJSON *k;
  cJSON_ArrayForEach(k, km) {
    const cJSON *kn = cJSON_GetObjectItemCaseSensitive(k, "key");
    const cJSON *kt = cJSON_GetObjectItemCaseSensitive(k, "key_type");
    char buf[32];
    const char *name;
    if (cJSON_IsString(kn)) {
      name = kn->valuestring;
    } else if (cJSON_IsNumber(kn) && kn->valuedouble >= 0 && kn->valuedouble < 1e15 &&
               kn->valuedouble == floor(kn->valuedouble)) {
      /* Newer Orbax versions store sequence indices as numbers. */
      snprintf(buf, sizeof buf, "%lld", (long long)kn->valuedouble);
      name = buf;
    } else {
      return ckpt_error_set(err, CKPT_ECORRUPT, "%s: entry %.80s has a malformed key", where, tk);
    }
    /* Read exactly: (int) of a double beyond int's range (1e300) is undefined behaviour. */
    int64_t type = 0;
    if (!ckpt_json_get_int64(kt, &type) || (type != CKPT_KEY_SEQUENCE && type != CKPT_KEY_DICT))
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "%s: entry %.80s has a key_type that is not %d or %d", where, tk,
                            CKPT_KEY_SEQUENCE, CKPT_KEY_DICT);
    if (type == CKPT_KEY_SEQUENCE) {
      bool digits = name[0] != '\0';
      for (const char *c = name; *c; c++)
        digits &= *c >= '0' && *c <= '9';
      if (!digits || strlen(name) > 15)
        return ckpt_error_set(err, CKPT_ECORRUPT,
                              "%s: entry %.80s has a sequence key that is not an index", where, tk);
    }
    e->keys[e->depth].key = ckpt_arena_strdup(arena, name);
    if (e->keys[e->depth].key == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    e->keys[e->depth].key_type = (int)type;
    plen += strlen(name) + 1;
    e->depth++;
  }
  if (e->depth == 0 && !ckpt_meta_is_empty_type(e->value_type))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: a %s leaf at the root of the tree", where,
                          e->value_type);
  e->param = ckpt_arena_alloc(arena, plen + 1);
  if (e->param == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  size_t pos = 0;
  for (size_t i = 0; i < e->depth; i++) {
    size_t l = strlen(e->keys[i].key);
    if (i)
      e->param[pos++] = '.';
    memcpy(e->param + pos, e->keys[i].key, l);
    pos += l;
  }
  e->param[pos] = '\0';
  return CKPT_OK;
}

static int cmp_param(const void *a, const void *b) {
  return strcmp((*(const ckpt_meta_entry *const *)a)->param,
                (*(const ckpt_meta_entry *const *)b)->param);
}

/* Two entries with one parameter name (the same key path twice, or keys that join to the same
 * name) cannot both be restored: the restore refuses them, and verify, which runs this parser,
 * must too. */
static ckpt_status check_unique_params(const ckpt_pytree_meta *meta, const char *where,
                                       ckpt_error *err) {
  if (meta->n < 2)
    return CKPT_OK;
  const ckpt_meta_entry **v = malloc(meta->n * sizeof *v);
  if (v == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading %s", where);
  for (size_t i = 0; i < meta->n; i++)
    v[i] = &meta->entries[i];
  ckpt_sort(v, meta->n, sizeof *v, cmp_param); /* Orbax writes tree_metadata sorted */
  ckpt_status st = CKPT_OK;
  for (size_t i = 1; i < meta->n && st == CKPT_OK; i++)
    if (strcmp(v[i - 1]->param, v[i]->param) == 0 && v[i]->param[0] != '\0')
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: two entries of tree_metadata are the leaf '%s' (a key path listed "
                          "twice, or keys that join to the same name)",
                          where, v[i]->param);
  free(v);
  return st;
}

ckpt_status ckpt_pytree_meta_parse(const char *text, size_t len, const char *where,
                                   ckpt_pytree_meta *meta, ckpt_error *err) {
  memset(meta, 0, sizeof *meta);
  cJSON *doc = NULL;
  /* The document is read and dropped here (entries copy what they keep): its items come
   * from one arena, freed at once, rather than one malloc and free per item (a fifth of a
   * small state's restore, docs/performance.md). */
  ckpt_arena arena = CKPT_ARENA_INIT;
  ckpt_status st = ckpt_json_load_arena(text, len, where, 0, &arena, &doc, err);
  if (st != CKPT_OK) {
    ckpt_arena_free(&arena);
    return st;
  }
  const cJSON *tm = cJSON_GetObjectItemCaseSensitive(doc, "tree_metadata");
  if (!cJSON_IsObject(doc) || !cJSON_IsObject(tm)) {
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: no \"tree_metadata\" object", where);
    goto done;
  }
  meta->use_ocdbt = get_bool(doc, "use_ocdbt", false);
  meta->use_zarr3 = get_bool(doc, "use_zarr3", false);
  meta->store_array_data_equal_to_fill_value =
      get_bool(doc, "store_array_data_equal_to_fill_value", false);
  const cJSON *cm = cJSON_GetObjectItemCaseSensitive(doc, "custom_metadata");
  if (cm != NULL && !cJSON_IsNull(cm)) {
    meta->custom_metadata = cJSON_Duplicate(cm, true);
    if (meta->custom_metadata == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading %s", where);
      goto done;
    }
  }
  size_t n = (size_t)cJSON_GetArraySize(tm);
  meta->entries = calloc(n ? n : 1, sizeof *meta->entries);
  meta->arena = malloc(sizeof *meta->arena);
  if (meta->arena != NULL)
    *meta->arena = (ckpt_arena)CKPT_ARENA_INIT;
  if (meta->entries == NULL || meta->arena == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading %s", where);
    goto done;
  }
  const cJSON *item;
  cJSON_ArrayForEach(item, tm) {
    ckpt_meta_entry *e = &meta->entries[meta->n++];
    st = parse_entry(meta->arena, item, where, e, err);
    if (st != CKPT_OK)
      goto done;
  }
  st = check_unique_params(meta, where, err);
done:
  ckpt_arena_free(&arena);
  return st;
}

bool ckpt_meta_is_array_type(const char *vt) {
  return strcmp(vt, CKPT_VT_NDARRAY) == 0 || strcmp(vt, CKPT_VT_JAX_ARRAY) == 0 ||
         strcmp(vt, CKPT_VT_SCALAR) == 0;
}

/* ---------------------------------------------------------------- reading the files */

/* Reads dir/name (at most CKPT_METADATA_MAX bytes) into *data (caller frees) and sets *path to
 * the file's path (caller frees, also on error). A missing file returns CKPT_ENOENT without
 * touching err, so each caller decides what absence means. */
static ckpt_status read_item_file(ckpt_io *io, const char *dir, const char *name, char **path,
                                  void **data, size_t *n, ckpt_error *err) {
  *data = NULL;
  *n = 0;
  *path = ckpt_path_join(dir, name);
  if (*path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_error local = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_io_read_file(io, *path, CKPT_METADATA_MAX, data, n, &local);
  if (st != CKPT_OK && st != CKPT_ENOENT && err != NULL && err->code == CKPT_OK)
    *err = local;
  return st;
}

ckpt_status ckpt_pytree_meta_read(ckpt_io *io, const char *dir, ckpt_pytree_meta *meta,
                                  ckpt_error *err) {
  memset(meta, 0, sizeof *meta);
  char *path;
  void *data;
  size_t n;
  ckpt_status st = read_item_file(io, dir, CKPT_METADATA_FILE, &path, &data, &n, err);
  if (st == CKPT_ENOENT)
    st = ckpt_error_set(err, CKPT_ENOENT, "'%s' has no _METADATA (not a PyTree checkpoint item)",
                        dir);
  if (st == CKPT_OK)
    st = ckpt_pytree_meta_parse(data, n, path, meta, err);
  if (st == CKPT_OK) {
    meta->file_read = true;
    meta->file_crc = ckpt_crc32c(0, data, n);
    meta->file_bytes = n;
  }
  free(data);
  free(path);
  return st;
}

ckpt_status ckpt_pytree_strings_read(ckpt_io *io, const char *dir, cJSON **doc,
                                     ckpt_file_sum *sum, ckpt_error *err) {
  *doc = NULL;
  if (sum != NULL)
    sum->present = false;
  char *path;
  void *data;
  size_t n;
  ckpt_status st = read_item_file(io, dir, CKPT_STRINGS_FILE, &path, &data, &n, err);
  if (st == CKPT_ENOENT) {
    st = CKPT_OK;
  } else if (st == CKPT_OK) {
    if (sum != NULL)
      ckpt_file_sum_of(sum, data, n);
    cJSON *d = NULL;
    st = ckpt_json_load(data, n, path, &d, err); /* "<path>:line:col: ..." */
    if (st == CKPT_OK && !cJSON_IsObject(d)) {
      cJSON_Delete(d);
      st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' is not a JSON object", path);
    } else if (st == CKPT_OK) {
      *doc = d;
    }
  }
  free(data);
  free(path);
  return st;
}
