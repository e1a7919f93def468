/* storage/zarr_io.c — the file helpers both sides of zarr v2 share: array directories, the
 * all-zero test, zstd compression, the _CHECKSUMS table and reading .zarray. Writing a save's
 * arrays lives in zarr_write.c, reading chunks in zarr_read.c. */
#include "storage/zarr_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "text/json.h"
#include "util/path.h"

ckpt_status ckpt_zarr_make_array_dir(ckpt_io *io, const char *array_dir, ckpt_error *err) {
  ckpt_error local = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_io_mkdir(io, array_dir, &local);
  if (st == CKPT_EEXIST) {
    /* Accept a directory left by an earlier attempt, never a symlink or a file. */
    ckpt_io_kind kind;
    uint64_t size;
    st = ckpt_io_stat(io, array_dir, &kind, &size, err);
    if (st != CKPT_OK)
      return st;
    if (kind != CKPT_IO_KIND_DIR)
      return ckpt_error_set(err, CKPT_EUNSAFE, "'%s' exists and is not a directory", array_dir);
  } else if (st != CKPT_OK) {
    if (err != NULL && err->code == CKPT_OK)
      *err = local;
    return st;
  }
  return CKPT_OK;
}

bool ckpt_zarr_all_zero(const void *data, size_t n) {
  const unsigned char *p = data;
  /* Word at a time after the first bytes; the early exit makes non-zero data cost nothing. */
  size_t i = 0;
  for (; i < n && ((uintptr_t)(p + i) & 7) != 0; i++)
    if (p[i])
      return false;
  for (; i + 64 <= n; i += 64) {
    uint64_t acc = 0, w;
    for (int k = 0; k < 8; k++) {
      memcpy(&w, p + i + 8 * k, 8);
      acc |= w;
    }
    if (acc)
      return false;
  }
  for (; i < n; i++)
    if (p[i])
      return false;
  return true;
}

ckpt_status ckpt_zarr_compress(const void *data, size_t n, int level, void **out, size_t *out_len,
                               const char *what, ckpt_error *err) {
  *out = NULL;
  size_t cap = ZSTD_compressBound(n);
  void *buf = malloc(cap > 0 ? cap : 1);
  if (buf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: cannot allocate %zu bytes for compression", what,
                          cap);
  size_t r = ZSTD_compress(buf, cap, data, n, level == 0 ? 1 : level);
  if (ZSTD_isError(r)) {
    free(buf);
    return ckpt_error_set(err, CKPT_EIO, "%s: zstd compression failed: %s", what,
                          ZSTD_getErrorName(r));
  }
  *out = buf;
  *out_len = r;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- checksums */

cJSON *ckpt_checksums_new(void) {
  cJSON *doc = cJSON_CreateObject();
  if (doc == NULL)
    return NULL;
  if (!cJSON_AddStringToObject(doc, "format", "ckpt-checksums") ||
      !cJSON_AddNumberToObject(doc, "version", 1) ||
      !cJSON_AddStringToObject(doc, "algorithm", "crc32c") ||
      !cJSON_AddObjectToObject(doc, "arrays")) {
    cJSON_Delete(doc);
    return NULL;
  }
  return doc;
}

cJSON *ckpt_checksums_append_array(cJSON *doc, const char *param) {
  cJSON *arrays = cJSON_GetObjectItemCaseSensitive(doc, "arrays");
  return arrays != NULL ? cJSON_AddObjectToObject(arrays, param) : NULL;
}

bool ckpt_checksums_add(cJSON *doc, const char *param, const char *key, uint32_t crc,
                        uint64_t bytes) {
  cJSON *arrays = cJSON_GetObjectItemCaseSensitive(doc, "arrays");
  if (arrays == NULL)
    return false;
  cJSON *a = cJSON_GetObjectItemCaseSensitive(arrays, param);
  if (a == NULL)
    a = cJSON_AddObjectToObject(arrays, param);
  return a != NULL && ckpt_checksums_add_chunk(a, key, crc, bytes);
}

bool ckpt_checksums_add_chunk(cJSON *a, const char *key, uint32_t crc, uint64_t bytes) {
  /* cJSON_AddItemTo* only fail on NULL arguments or a failed key copy; an item not attached
   * is freed here. */
  cJSON *entry = cJSON_CreateArray();
  if (entry == NULL)
    return false;
  cJSON *c = cJSON_CreateNumber((double)crc);
  if (c == NULL || !cJSON_AddItemToArray(entry, c)) {
    cJSON_Delete(c);
    cJSON_Delete(entry);
    return false;
  }
  cJSON *b = cJSON_CreateNumber((double)bytes);
  if (b == NULL || !cJSON_AddItemToArray(entry, b)) {
    cJSON_Delete(b);
    cJSON_Delete(entry);
    return false;
  }
  if (!cJSON_AddItemToObject(a, key, entry)) {
    cJSON_Delete(entry);
    return false;
  }
  return true;
}

struct ckpt_checksums {
  cJSON *doc;
  size_t n;
  const cJSON **arrays; /* the children of doc's "arrays", sorted by name (->string) */
};

static int cmp_entry_name(const void *a, const void *b) {
  return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Indexes doc's arrays; takes doc (freed on failure). */
static ckpt_status index_checksums(cJSON *doc, const char *path, ckpt_checksums **out,
                                   ckpt_error *err) {
  const cJSON *arrays = cJSON_GetObjectItemCaseSensitive(doc, "arrays");
  ckpt_checksums *s = calloc(1, sizeof *s);
  size_t n = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, arrays) n++;
  if (s != NULL)
    s->arrays = malloc((n ? n : 1) * sizeof *s->arrays);
  if (s == NULL || s->arrays == NULL) {
    free(s);
    cJSON_Delete(doc);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", path);
  }
  s->doc = doc;
  cJSON_ArrayForEach(a, arrays) s->arrays[s->n++] = a;
  qsort(s->arrays, s->n, sizeof *s->arrays, cmp_entry_name);
  for (size_t i = 1; i < s->n; i++) {
    if (strcmp(s->arrays[i - 1]->string, s->arrays[i]->string) == 0) {
      ckpt_status st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' lists array '%s' twice", path,
                                      s->arrays[i]->string);
      ckpt_checksums_free(s);
      return st;
    }
  }
  *out = s;
  return CKPT_OK;
}

void ckpt_checksums_free(ckpt_checksums *s) {
  if (s == NULL)
    return;
  cJSON_Delete(s->doc);
  free(s->arrays);
  free(s);
}

cJSON *ckpt_checksums_doc(ckpt_checksums *s) {
  return s != NULL ? s->doc : NULL;
}

ckpt_status ckpt_checksums_read(ckpt_io *io, const char *dir, ckpt_checksums **out,
                                ckpt_error *err) {
  *out = NULL;
  char *path = ckpt_path_join(dir, CKPT_CHECKSUMS_FILE);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_kind kind;
  uint64_t size;
  ckpt_status st = ckpt_io_stat(io, path, &kind, &size, err);
  if (st == CKPT_OK && kind == CKPT_IO_KIND_MISSING) {
    free(path);
    return CKPT_OK;
  }
  void *data = NULL;
  size_t n = 0;
  if (st == CKPT_OK)
    st = ckpt_io_read_file(io, path, CKPT_CHECKSUMS_MAX, &data, &n, err);
  if (st == CKPT_OK) {
    cJSON *d = NULL;
    /* "<path>:line:col: ..."; an array or chunk listed twice is damage, not "last one wins" */
    st = ckpt_json_load_opts(data, n, path, CKPT_JSON_UNIQUE_KEYS, &d, err);
    const cJSON *arrays = d ? cJSON_GetObjectItemCaseSensitive(d, "arrays") : NULL;
    const cJSON *alg = d ? cJSON_GetObjectItemCaseSensitive(d, "algorithm") : NULL;
    if (st == CKPT_OK && (!cJSON_IsObject(arrays) || !cJSON_IsString(alg) ||
                          strcmp(alg->valuestring, "crc32c") != 0)) {
      cJSON_Delete(d);
      st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' is malformed", path);
    } else if (st == CKPT_OK) {
      st = index_checksums(d, path, out, err);
    }
  }
  free(data);
  free(path);
  return st;
}

const cJSON *ckpt_checksums_array(const ckpt_checksums *s, const char *param) {
  if (s == NULL || param == NULL)
    return NULL;
  cJSON key = {.string = (char *)param};
  const cJSON *kp = &key;
  const cJSON *const *hit = bsearch(&kp, s->arrays, s->n, sizeof *s->arrays, cmp_entry_name);
  return hit != NULL && cJSON_IsObject(*hit) ? *hit : NULL;
}

/* ---------------------------------------------------------------- metadata read */

ckpt_status ckpt_zarr_read_meta(ckpt_io *io, const char *array_dir, const char *name,
                                ckpt_zarr_meta *m, ckpt_error *err) {
  ckpt_io_kind kind;
  uint64_t size;
  ckpt_status st = ckpt_io_stat(io, array_dir, &kind, &size, err);
  if (st != CKPT_OK)
    return st;
  if (kind == CKPT_IO_KIND_MISSING)
    return ckpt_error_set(err, CKPT_EINCOMPLETE, "array '%s': directory '%s' is missing", name,
                          array_dir);
  if (kind == CKPT_IO_KIND_SYMLINK)
    return ckpt_error_set(err, CKPT_EUNSAFE,
                          "array '%s': '%s' is a symlink (not followed inside a checkpoint)", name,
                          array_dir);
  if (kind != CKPT_IO_KIND_DIR)
    return ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': '%s' is not a directory", name,
                          array_dir);
  char *path = ckpt_path_join(array_dir, CKPT_ZARR_METADATA_FILE);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  void *data = NULL;
  size_t n = 0;
  ckpt_error local = CKPT_ERROR_INIT;
  st = ckpt_io_read_file(io, path, CKPT_ZARR_METADATA_MAX, &data, &n, &local);
  if (st == CKPT_ENOENT)
    st = ckpt_error_set(err, CKPT_EINCOMPLETE, "array '%s': '%s' is missing", name, path);
  else if (st != CKPT_OK && err != NULL && err->code == CKPT_OK)
    *err = local;
  if (st == CKPT_OK)
    st = ckpt_zarr_meta_decode(data, n, path, m, err);
  free(data);
  free(path);
  return st;
}
