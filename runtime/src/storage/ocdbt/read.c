/* storage/ocdbt/read.c — an open OCDBT database (ocdbt.h): lookups in its sorted key table, the
 * data files it references, reading values, closing. */
#include "storage/ocdbt/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/path.h"

void ckpt_ocdbt_close(ckpt_ocdbt *db) {
  if (!db)
    return;
  for (size_t i = 0; i < db->n_files; i++) {
    if (db->files[i].fd >= 0)
      ckpt_io_close(db->io, db->files[i].fd, db->files[i].path, NULL);
    free(db->files[i].rel);
    free(db->files[i].path);
  }
  free(db->files);
  free(db->entries);
  ckpt_arena_free(&db->arena); /* the entries' keys and inline values */
  free(db->seen);
  free(db->memo_src);
  free(db->memo_result);
  pthread_mutex_destroy(&db->mu);
  free(db->dir);
  free(db);
}

bool ckpt_ocdbt_present(ckpt_io *io, const char *dir) {
  char *path = ckpt_path_join(dir, CKPT_OCDBT_MANIFEST_FILE);
  if (!path)
    return false;
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  bool ok = ckpt_io_stat(io, path, &kind, &size, NULL) == CKPT_OK && kind != CKPT_IO_KIND_MISSING;
  free(path);
  return ok;
}

/* ---------------------------------------------------------------- lookups */

const char *ckpt_ocdbt_dir(const ckpt_ocdbt *db) {
  return db->dir;
}
uint64_t ckpt_ocdbt_generation(const ckpt_ocdbt *db) {
  return db->generation;
}
size_t ckpt_ocdbt_count(const ckpt_ocdbt *db) {
  return db->n;
}

const char *ckpt_ocdbt_key(const ckpt_ocdbt *db, size_t i, size_t *len) {
  if (len)
    *len = db->entries[i].key_len;
  return db->entries[i].key;
}

const ckpt_ocdbt_value *ckpt_ocdbt_value_at(const ckpt_ocdbt *db, size_t i) {
  return &db->entries[i].v;
}

/* First entry whose key is >= (key, len). */
static size_t lower_bound(const ckpt_ocdbt *db, const char *key, size_t len) {
  entry probe = {(char *)key, len, {0}, NULL};
  size_t lo = 0, hi = db->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ocdbt_cmp_entry(&db->entries[mid], &probe) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bool ckpt_ocdbt_find(const ckpt_ocdbt *db, const char *key, size_t *index) {
  size_t len = strlen(key), i = lower_bound(db, key, len);
  if (i < db->n && db->entries[i].key_len == len && memcmp(db->entries[i].key, key, len) == 0) {
    *index = i;
    return true;
  }
  return false;
}

void ckpt_ocdbt_prefix_range(const ckpt_ocdbt *db, const char *prefix, size_t *begin, size_t *end) {
  size_t len = strlen(prefix), i = lower_bound(db, prefix, len), j = i;
  while (j < db->n && db->entries[j].key_len >= len && memcmp(db->entries[j].key, prefix, len) == 0)
    j++;
  *begin = i;
  *end = j;
}

size_t ckpt_ocdbt_n_files(const ckpt_ocdbt *db) {
  return db->n_files;
}

const char *ckpt_ocdbt_file_path(const ckpt_ocdbt *db, uint32_t file) {
  return file < db->n_files ? db->files[file].path : NULL;
}

/* ---------------------------------------------------------------- values */

ckpt_status ckpt_ocdbt_value_fd(ckpt_ocdbt *db, const ckpt_ocdbt_value *v, const char *key, int *fd,
                                const char **path, ckpt_error *err) {
  if (v->is_inline || v->file >= db->n_files)
    return ckpt_error_set(err, CKPT_EINVAL, "'%s': key '%s' has no data file", db->dir, key);
  char what[300];
  snprintf(what, sizeof what, "the value of key '%.250s'", key);
  uint64_t size;
  ckpt_status st = ocdbt_file_fd(db, v->file, what, fd, &size, err);
  if (st == CKPT_OK)
    st = ocdbt_check_range(&db->files[v->file], v->offset, v->length, size, what, err);
  *path = db->files[v->file].path;
  return st;
}

ckpt_status ckpt_ocdbt_read(ckpt_ocdbt *db, size_t i, void *buf, ckpt_error *err) {
  const entry *e = &db->entries[i];
  if (e->v.is_inline) {
    if (e->v.length)
      memcpy(buf, e->v.bytes, (size_t)e->v.length);
    return CKPT_OK;
  }
  int fd;
  const char *path;
  ckpt_status st = ckpt_ocdbt_value_fd(db, &e->v, e->key, &fd, &path, err);
  if (st != CKPT_OK)
    return st;
  size_t got = 0;
  st = ckpt_io_pread_all(db->io, fd, path, buf, (size_t)e->v.length, e->v.offset, &got, err);
  if (st == CKPT_OK && got != e->v.length)
    st = ckpt_error_set(err, CKPT_ECORRUPT,
                        "'%s': the value of key '%s' at offset %llu: file "
                        "shrank while being read",
                        path, e->key, (unsigned long long)e->v.offset);
  return st;
}

ckpt_status ckpt_ocdbt_read_key(ckpt_ocdbt *db, const char *key, size_t max, void **data, size_t *n,
                                ckpt_error *err) {
  size_t i;
  if (!ckpt_ocdbt_find(db, key, &i))
    return ckpt_error_set(err, CKPT_ENOENT, "key '%s' is not in the OCDBT database '%s'", key,
                          db->dir);
  uint64_t len = db->entries[i].v.length;
  if (len > max)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "'%s': the value of key '%s' has %llu bytes, more "
                          "than the %zu allowed",
                          db->dir, key, (unsigned long long)len, max);
  char *buf = malloc((size_t)len + 1);
  if (!buf)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = ckpt_ocdbt_read(db, i, buf, err);
  if (st != CKPT_OK) {
    free(buf);
    return st;
  }
  buf[len] = '\0';
  *data = buf;
  *n = (size_t)len;
  return CKPT_OK;
}
int ocdbt_cmp_entry(const void *a, const void *b) {
  const entry *x = a, *y = b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  if (c)
    return c;
  return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* ---------------------------------------------------------------- the reader's memo */

bool ckpt_ocdbt_memo_get(ckpt_ocdbt *db, const void *src, size_t n, void *out, size_t out_len) {
  pthread_mutex_lock(&db->mu);
  bool hit = db->memo_src != NULL && db->memo_n == n && db->memo_result_len == out_len &&
             memcmp(db->memo_src, src, n) == 0;
  if (hit)
    memcpy(out, db->memo_result, out_len);
  pthread_mutex_unlock(&db->mu);
  return hit;
}

void ckpt_ocdbt_memo_put(ckpt_ocdbt *db, const void *src, size_t n, const void *result,
                         size_t result_len) {
  unsigned char *s = malloc(n ? n : 1), *r = malloc(result_len ? result_len : 1);
  if (s == NULL || r == NULL) { /* only a memo: the next value is decoded again */
    free(s);
    free(r);
    return;
  }
  memcpy(s, src, n);
  memcpy(r, result, result_len);
  pthread_mutex_lock(&db->mu);
  free(db->memo_src);
  free(db->memo_result);
  db->memo_src = s;
  db->memo_n = n;
  db->memo_result = r;
  db->memo_result_len = result_len;
  pthread_mutex_unlock(&db->mu);
}
