/* storage/packed.c — the packed layout's index (_PACKED), read as untrusted input (see packed.h
 * and docs/format.md, "Packed arrays"). ckpt no longer writes the layout; its encoder went with
 * the packed writer. */
#include "storage/packed.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/json.h"
#include "util/crc32c.h"
#include "util/path.h"
#include "util/text.h"

/* Integers in the index are JSON numbers; doubles hold integers exactly up to 2^53. */
#define MAX_EXACT ((double)(1ull << 53))

void ckpt_packed_free(ckpt_packed_index *idx) {
  if (idx == NULL)
    return;
  for (size_t i = 0; i < idx->n_files; i++) {
    if (idx->files[i].fd >= 0)
      ckpt_io_close(idx->io, idx->files[i].fd, idx->files[i].path, NULL);
    free(idx->files[i].name);
    free(idx->files[i].path);
  }
  if (idx->mu_init)
    pthread_mutex_destroy(&idx->mu);
  free(idx->files);
  for (size_t i = 0; i < idx->n_arrays; i++) {
    free(idx->arrays[i].param);
    free(idx->arrays[i].chunks);
  }
  free(idx->arrays);
  memset(idx, 0, sizeof *idx);
}

static int cmp_array(const void *a, const void *b) {
  return strcmp(((const ckpt_packed_array *)a)->param, ((const ckpt_packed_array *)b)->param);
}

static int cmp_chunk(const void *a, const void *b) {
  uint64_t x = ((const ckpt_packed_chunk *)a)->linear, y = ((const ckpt_packed_chunk *)b)->linear;
  return x < y ? -1 : x > y;
}

/* A non-negative integral JSON number no larger than max. */
static bool get_uint(const cJSON *v, double max, uint64_t *out) {
  if (!cJSON_IsNumber(v))
    return false;
  double d = v->valuedouble;
  if (!(d >= 0 && d <= max) || d != (double)(uint64_t)d)
    return false;
  *out = (uint64_t)d;
  return true;
}

/* "_PACKED.<decimal>" without leading zeros: the only names a data file may have, so an index
 * cannot point outside the item ("../x", "/etc/passwd") or at another file of it. */
static bool valid_file_name(const char *s) {
  size_t p = strlen(CKPT_PACKED_INDEX_FILE);
  if (strncmp(s, CKPT_PACKED_INDEX_FILE ".", p + 1) != 0)
    return false;
  s += p + 1;
  size_t n = strlen(s);
  if (n == 0 || n > 9 || (s[0] == '0' && n > 1))
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

/* Chunk key → linear number in m's grid; false when the key does not name a chunk of m. */
static bool key_linear(const ckpt_zarr_meta *m, const char *key, uint64_t *linear) {
  int64_t grid[CKPT_MAX_RANK];
  ckpt_zarr_grid(m, grid);
  if (m->ndim == 0) {
    *linear = 0;
    return strcmp(key, "0") == 0;
  }
  uint64_t lin = 0;
  const char *s = key;
  for (int d = 0; d < m->ndim; d++) {
    if (d > 0 && *s++ != '.')
      return false;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
      return false;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
      v = v * 10 + (uint64_t)(*s++ - '0');
      if (v >= (uint64_t)grid[d])
        return false;
    }
    lin = lin * (uint64_t)grid[d] + v;
  }
  *linear = lin;
  return *s == '\0';
}

static ckpt_status bad(const char *where, const char *param, const char *what, ckpt_error *err) {
  if (param != NULL)
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': array '%s': %s", where, param, what);
  return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': %s", where, what);
}

static ckpt_status parse_files(ckpt_io *io, const char *dir, const char *where, const cJSON *files,
                               ckpt_packed_index *idx, ckpt_error *err) {
  int n = cJSON_GetArraySize(files);
  if (!cJSON_IsArray(files) || n > CKPT_PACKED_MAX_FILES)
    return bad(where, NULL, "\"files\" is not a list of at most 4096 names", err);
  idx->files = calloc(n > 0 ? (size_t)n : 1, sizeof *idx->files);
  if (idx->files == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", where);
  const cJSON *f;
  cJSON_ArrayForEach(f, files) {
    if (!cJSON_IsString(f) || !valid_file_name(f->valuestring))
      return bad(where, NULL, "a data file name is not of the form _PACKED.<n>", err);
    for (size_t i = 0; i < idx->n_files; i++)
      if (strcmp(idx->files[i].name, f->valuestring) == 0)
        return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': data file '%s' is listed twice", where,
                              f->valuestring);
    ckpt_packed_file *pf = &idx->files[idx->n_files++];
    pf->fd = -1;
    pf->name = strdup(f->valuestring);
    pf->path = ckpt_path_join(dir, f->valuestring);
    if (pf->name == NULL || pf->path == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", where);
    /* Kind and size now; a missing or wrong file is reported by the read that needs it, so
     * listing a damaged item still shows everything else. */
    ckpt_status st = ckpt_io_stat(io, pf->path, &pf->kind, &pf->size, err);
    if (st != CKPT_OK)
      return st;
  }
  return CKPT_OK;
}

ckpt_status ckpt_packed_fd(const ckpt_packed_array *a, uint32_t file, int *fd, ckpt_error *err) {
  ckpt_packed_index *idx = a->index;
  ckpt_packed_file *f = &idx->files[file];
  ckpt_status st = CKPT_OK;
  pthread_mutex_lock(&idx->mu);
  if (f->fd < 0) {
    int opened = -1;
    st = ckpt_io_open(idx->io, f->path, O_RDONLY | O_NOFOLLOW, 0, &opened, err);
    if (st == CKPT_OK)
      f->fd = opened;
  }
  *fd = f->fd;
  pthread_mutex_unlock(&idx->mu);
  return st;
}

static ckpt_status parse_array(const char *where, const cJSON *jv, ckpt_packed_index *idx,
                               ckpt_packed_array *a, ckpt_error *err) {
  a->index = idx;
  a->param = strdup(jv->string ? jv->string : "");
  if (a->param == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", where);
  ckpt_error local = CKPT_ERROR_INIT;
  if (ckpt_path_check_name(a->param, "parameter name", &local) != CKPT_OK)
    return ckpt_error_set(err, CKPT_EUNSAFE, "'%s': %s", where, local.message);
  const cJSON *za = cJSON_GetObjectItemCaseSensitive(jv, "zarray");
  const cJSON *chunks = cJSON_GetObjectItemCaseSensitive(jv, "chunks");
  if (!cJSON_IsObject(jv) || !cJSON_IsObject(za) || !cJSON_IsObject(chunks))
    return bad(where, a->param, "the entry needs objects \"zarray\" and \"chunks\"", err);
  char what[400];
  snprintf(what, sizeof what, "%.200s: array '%.150s' zarray", where, a->param);
  ckpt_status st = ckpt_zarr_meta_from_json(za, what, &a->meta, err);
  if (st != CKPT_OK)
    return st;
  if (a->meta.separator != '.')
    return bad(where, a->param, "packed arrays use the '.' dimension separator", err);
  int64_t grid[CKPT_MAX_RANK];
  uint64_t total = ckpt_zarr_grid(&a->meta, grid);
  int n = cJSON_GetArraySize(chunks);
  if ((uint64_t)n > total)
    return bad(where, a->param, "more chunks than the array's chunk grid has", err);
  a->chunks = calloc(n > 0 ? (size_t)n : 1, sizeof *a->chunks);
  if (a->chunks == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", where);
  const cJSON *c;
  cJSON_ArrayForEach(c, chunks) {
    ckpt_packed_chunk *pc = &a->chunks[a->n_chunks];
    uint64_t file = 0, crc = 0;
    if (c->string == NULL || !key_linear(&a->meta, c->string, &pc->linear))
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "'%s': array '%s': '%.40s' is not a chunk key of "
                            "its shape",
                            where, a->param, c->string ? c->string : "");
    if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 4 ||
        !get_uint(cJSON_GetArrayItem(c, 0), (double)(CKPT_PACKED_MAX_FILES - 1), &file) ||
        !get_uint(cJSON_GetArrayItem(c, 1), MAX_EXACT, &pc->offset) ||
        !get_uint(cJSON_GetArrayItem(c, 2), MAX_EXACT, &pc->nbytes) ||
        !get_uint(cJSON_GetArrayItem(c, 3), 4294967295.0, &crc))
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "'%s': array '%s': chunk '%s' is not [file, offset, nbytes, crc32c] "
                            "of non-negative integers",
                            where, a->param, c->string);
    if (file >= idx->n_files)
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "'%s': array '%s': chunk '%s' names data file %llu of %zu", where,
                            a->param, c->string, (unsigned long long)file, idx->n_files);
    if (pc->offset + pc->nbytes > (uint64_t)MAX_EXACT)
      return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': array '%s': chunk '%s' ends past 2^53",
                            where, a->param, c->string);
    pc->file = (uint32_t)file;
    pc->crc = (uint32_t)crc;
    a->n_chunks++;
  }
  qsort(a->chunks, a->n_chunks, sizeof *a->chunks, cmp_chunk);
  for (size_t i = 1; i < a->n_chunks; i++)
    if (a->chunks[i].linear == a->chunks[i - 1].linear)
      return bad(where, a->param, "a chunk is listed twice", err);
  return CKPT_OK;
}

ckpt_status ckpt_packed_read(ckpt_io *io, const char *dir, ckpt_packed_index *idx,
                             ckpt_error *err) {
  memset(idx, 0, sizeof *idx);
  if (io == NULL)
    io = ckpt_io_default();
  idx->io = io;
  if (pthread_mutex_init(&idx->mu, NULL) != 0)
    return ckpt_error_set(err, CKPT_ENOMEM, "cannot create a mutex reading '%s'", dir);
  idx->mu_init = true;
  char *path = ckpt_path_join(dir, CKPT_PACKED_INDEX_FILE);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  void *text = NULL;
  size_t len = 0;
  ckpt_io_kind kind;
  uint64_t size;
  cJSON *doc = NULL;
  ckpt_status st = ckpt_io_stat(io, path, &kind, &size, err);
  if (st != CKPT_OK || kind == CKPT_IO_KIND_MISSING)
    goto done;
  idx->present = true;
  if (kind != CKPT_IO_KIND_FILE) {
    st = ckpt_error_set(err, kind == CKPT_IO_KIND_SYMLINK ? CKPT_EUNSAFE : CKPT_ECORRUPT,
                        "'%s' is not a regular file", path);
    goto done;
  }
  st = ckpt_io_read_file(io, path, CKPT_PACKED_INDEX_MAX, &text, &len, err);
  if (st != CKPT_OK)
    goto done;
  idx->file_crc = ckpt_crc32c(0, text, len);
  idx->file_bytes = len;
  /* "<path>:line:col: ..."; an entry listed twice is damage, not "the last one wins" */
  st = ckpt_json_load_opts(text, len, path, CKPT_JSON_UNIQUE_KEYS, &doc, err);
  if (st != CKPT_OK)
    goto done;
  if (!cJSON_IsObject(doc)) {
    st = bad(path, NULL, "not a JSON object", err);
    goto done;
  }
  const cJSON *format = cJSON_GetObjectItemCaseSensitive(doc, "format");
  const cJSON *version = cJSON_GetObjectItemCaseSensitive(doc, "version");
  uint64_t v = 0;
  if (!cJSON_IsString(format) || strcmp(format->valuestring, CKPT_PACKED_FORMAT) != 0 ||
      !get_uint(version, MAX_EXACT, &v)) {
    st = bad(path, NULL, "not a ckpt-packed index (\"format\", \"version\")", err);
    goto done;
  }
  if (v != CKPT_PACKED_VERSION) {
    st = ckpt_error_set(err, CKPT_EUNSUPPORTED,
                        "'%s': packed layout version %llu is newer than this ckpt reads (1)", path,
                        (unsigned long long)v);
    goto done;
  }
  st = parse_files(io, dir, path, cJSON_GetObjectItemCaseSensitive(doc, "files"), idx, err);
  if (st != CKPT_OK)
    goto done;
  const cJSON *arrays = cJSON_GetObjectItemCaseSensitive(doc, "arrays");
  if (!cJSON_IsObject(arrays)) {
    st = bad(path, NULL, "\"arrays\" is not an object", err);
    goto done;
  }
  int n = cJSON_GetArraySize(arrays);
  idx->arrays = calloc(n > 0 ? (size_t)n : 1, sizeof *idx->arrays);
  if (idx->arrays == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", path);
    goto done;
  }
  const cJSON *a;
  cJSON_ArrayForEach(a, arrays) {
    st = parse_array(path, a, idx, &idx->arrays[idx->n_arrays++], err);
    if (st != CKPT_OK)
      goto done;
  }
  qsort(idx->arrays, idx->n_arrays, sizeof *idx->arrays, cmp_array);
  for (size_t i = 1; i < idx->n_arrays; i++)
    if (strcmp(idx->arrays[i].param, idx->arrays[i - 1].param) == 0) {
      st = bad(path, idx->arrays[i].param, "the array is listed twice", err);
      goto done;
    }
done:
  cJSON_Delete(doc);
  free(text);
  free(path);
  return st;
}

const ckpt_packed_array *ckpt_packed_find(const ckpt_packed_index *idx, const char *param) {
  if (idx == NULL || idx->n_arrays == 0)
    return NULL;
  size_t lo = 0, hi = idx->n_arrays;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(idx->arrays[mid].param, param);
    if (c == 0)
      return &idx->arrays[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

const ckpt_packed_chunk *ckpt_packed_chunk_find(const ckpt_packed_array *a, uint64_t linear) {
  size_t lo = 0, hi = a->n_chunks;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a->chunks[mid].linear == linear)
      return &a->chunks[mid];
    if (a->chunks[mid].linear < linear)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

uint64_t ckpt_packed_stored_bytes(const ckpt_packed_array *a) {
  uint64_t n = 0;
  for (size_t i = 0; i < a->n_chunks; i++)
    n += a->chunks[i].nbytes;
  return n;
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

ckpt_status ckpt_packed_check_meta(const ckpt_packed_index *idx, const ckpt_pytree_meta *meta,
                                   const char *dir, ckpt_error *err) {
  if (idx == NULL || idx->n_arrays == 0)
    return CKPT_OK;
  const char **names = malloc((meta->n ? meta->n : 1) * sizeof *names);
  if (names == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  size_t n = 0;
  for (size_t i = 0; i < meta->n; i++) {
    const char *vt = meta->entries[i].value_type;
    if (strcmp(vt, CKPT_VT_NDARRAY) == 0 || strcmp(vt, CKPT_VT_JAX_ARRAY) == 0 ||
        strcmp(vt, CKPT_VT_SCALAR) == 0)
      names[n++] = meta->entries[i].param;
  }
  qsort(names, n, sizeof *names, cmp_str_ptr);
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < idx->n_arrays && st == CKPT_OK; i++) {
    const char *p = idx->arrays[i].param;
    if (bsearch(&p, names, n, sizeof *names, cmp_str_ptr) == NULL)
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "'%s/%s' lists array '%s', which _METADATA does not have as an array "
                          "leaf (the index does not belong to this item)",
                          dir, CKPT_PACKED_INDEX_FILE, p);
  }
  free(names);
  return st;
}

ckpt_status ckpt_packed_locate(const ckpt_packed_array *a, uint64_t linear, const char *key,
                               const char **path, const ckpt_packed_chunk **chunk,
                               ckpt_error *err) {
  const ckpt_packed_chunk *c = ckpt_packed_chunk_find(a, linear);
  if (c == NULL)
    return ckpt_error_set(err, CKPT_EINCOMPLETE,
                          "array '%s': chunk '%s' is missing from the packed index '%s'", a->param,
                          key, CKPT_PACKED_INDEX_FILE);
  const ckpt_packed_file *f = &a->index->files[c->file];
  if (f->kind == CKPT_IO_KIND_MISSING)
    return ckpt_error_set(err, CKPT_EINCOMPLETE,
                          "array '%s': chunk '%s': data file '%s' is missing", a->param, key,
                          f->path);
  if (f->kind == CKPT_IO_KIND_SYMLINK)
    return ckpt_error_set(err, CKPT_EUNSAFE,
                          "array '%s': chunk '%s': data file '%s' is a symlink (not followed "
                          "inside a checkpoint)",
                          a->param, key, f->path);
  if (f->kind != CKPT_IO_KIND_FILE)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "array '%s': chunk '%s': data file '%s' is not a regular file", a->param,
                          key, f->path);
  if (c->offset > f->size || c->nbytes > f->size - c->offset)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "array '%s': chunk '%s': bytes %llu..%llu lie past the end of '%s' "
                          "(%llu bytes; truncated?)",
                          a->param, key, (unsigned long long)c->offset,
                          (unsigned long long)(c->offset + c->nbytes), f->path,
                          (unsigned long long)f->size);
  *path = f->path;
  *chunk = c;
  return CKPT_OK;
}
