/* storage/zarr_io.c — the file helpers both sides of zarr v2 share: array directories, the
 * all-zero test, zstd compression, the _CHECKSUMS table and reading .zarray. Writing a save's
 * arrays lives in zarr_write.c, reading chunks in zarr_read.c. */
#include "storage/zarr_io.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "storage/ocdbt/ocdbt.h"
#include "storage/packed.h"
#include "storage/pytree_meta.h"
#include "text/json.h"
#include "util/arena.h"
#include "util/crc32c.h"
#include "util/path.h"
#include "util/sort.h"

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
      !cJSON_AddObjectToObject(doc, "arrays") || !cJSON_AddObjectToObject(doc, "files")) {
    cJSON_Delete(doc);
    return NULL;
  }
  return doc;
}

cJSON *ckpt_checksums_append_array(cJSON *doc, const char *param) {
  cJSON *arrays = cJSON_GetObjectItemCaseSensitive(doc, "arrays");
  return arrays != NULL ? cJSON_AddObjectToObject(arrays, param) : NULL;
}

bool ckpt_checksums_add_file(cJSON *doc, const char *rel, uint32_t crc, uint64_t bytes) {
  cJSON *files = cJSON_GetObjectItemCaseSensitive(doc, "files");
  return files != NULL && ckpt_checksums_add_chunk(files, rel, crc, bytes);
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
  cJSON *doc;        /* its items live in arena (ckpt_json_load_arena) */
  ckpt_arena arena;
  char *path; /* <item>/_CHECKSUMS, for messages */
  ckpt_file_sum self;
  size_t n;
  const cJSON **arrays; /* the children of doc's "arrays", sorted by name (->string) */
  bool has_files;       /* doc has "files" */
  size_t n_files;
  const cJSON **files; /* the children of "files", sorted by name */
  /* The index after the last hit of each lookup: a restore looks its arrays (and their
   * metadata files) up in name order, so the successor of the last hit is tried before the
   * binary search. Relaxed atomics because tasks on several threads look up in one index; a
   * stale hint only costs the binary search it would have saved. */
  atomic_size_t next_array, next_file;
};

static int cmp_entry_name(const void *a, const void *b) {
  return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* The entry named name in v (sorted by name), or NULL; *hint as in struct ckpt_checksums
 * (const only for the callers' sake: the index itself is never const). */
static const cJSON *find_entry(const cJSON *const *v, size_t n, const char *name,
                               const atomic_size_t *hint) {
  atomic_size_t *h = (atomic_size_t *)hint;
  size_t i = atomic_load_explicit(h, memory_order_relaxed);
  if (!(i < n && strcmp(v[i]->string, name) == 0)) {
    cJSON key = {.string = (char *)name};
    const cJSON *kp = &key;
    const cJSON *const *hit = bsearch(&kp, v, n, sizeof *v, cmp_entry_name);
    if (hit == NULL)
      return NULL;
    i = (size_t)(hit - v);
  }
  atomic_store_explicit(h, i + 1, memory_order_relaxed);
  return v[i];
}

/* The children of obj sorted by name in *out (malloc'ed); false when memory runs out or a
 * name appears twice (*dup names it then). */
static bool sorted_children(const cJSON *obj, const cJSON ***out, size_t *n, const char **dup) {
  size_t count = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, obj) count++;
  *out = malloc((count ? count : 1) * sizeof **out);
  if (*out == NULL)
    return false;
  *n = 0;
  cJSON_ArrayForEach(a, obj)(*out)[(*n)++] = a;
  ckpt_sort(*out, *n, sizeof **out, cmp_entry_name); /* written sorted */
  for (size_t i = 1; i < *n; i++) {
    if (strcmp((*out)[i - 1]->string, (*out)[i]->string) == 0) {
      *dup = (*out)[i]->string;
      return false;
    }
  }
  return true;
}

/* Indexes doc's arrays and files; takes doc and the arena its items live in (freed on
 * failure). */
static ckpt_status index_checksums(cJSON *doc, ckpt_arena *arena, const char *path,
                                   ckpt_checksums **out, ckpt_error *err) {
  const cJSON *arrays = cJSON_GetObjectItemCaseSensitive(doc, "arrays");
  const cJSON *files = cJSON_GetObjectItemCaseSensitive(doc, "files");
  ckpt_checksums *s = calloc(1, sizeof *s);
  if (s == NULL) {
    ckpt_arena_free(arena);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", path);
  }
  atomic_init(&s->next_array, 0);
  atomic_init(&s->next_file, 0);
  s->doc = doc;
  s->arena = *arena;
  *arena = (ckpt_arena)CKPT_ARENA_INIT;
  s->path = ckpt_path_join(path, "");
  if (s->path != NULL)
    s->path[strlen(s->path) - 1] = '\0';
  const char *dup = NULL;
  ckpt_status st = CKPT_OK;
  if (files != NULL && !cJSON_IsObject(files))
    st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' is malformed (\"files\" is not an object)", path);
  else if (s->path == NULL || !sorted_children(arrays, &s->arrays, &s->n, &dup))
    st = dup ? ckpt_error_set(err, CKPT_ECORRUPT, "'%s' lists array '%s' twice", path, dup)
             : ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", path);
  else if (files != NULL && !sorted_children(files, &s->files, &s->n_files, &dup))
    st = dup ? ckpt_error_set(err, CKPT_ECORRUPT, "'%s' lists file '%s' twice", path, dup)
             : ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", path);
  s->has_files = files != NULL;
  if (st != CKPT_OK) {
    ckpt_checksums_free(s);
    return st;
  }
  *out = s;
  return CKPT_OK;
}

void ckpt_checksums_free(ckpt_checksums *s) {
  if (s == NULL)
    return;
  ckpt_arena_free(&s->arena); /* s->doc */
  free(s->arrays);
  free(s->files);
  free(s->path);
  free(s);
}

cJSON *ckpt_checksums_doc(ckpt_checksums *s) {
  return s != NULL ? s->doc : NULL;
}

ckpt_status ckpt_checksums_read(ckpt_io *io, const char *dir, ckpt_checksums **out,
                                ckpt_error *err) {
  return ckpt_checksums_read_named(io, dir, CKPT_CHECKSUMS_FILE, out, err);
}

size_t ckpt_checksums_n_files(const ckpt_checksums *s) {
  return s != NULL ? s->n_files : 0;
}

const char *ckpt_checksums_file_name(const ckpt_checksums *s, size_t i) {
  return s != NULL && i < s->n_files ? s->files[i]->string : NULL;
}

ckpt_status ckpt_manifest_write_noted(ckpt_io *io, const char *dir, const cJSON *noted,
                                      const ckpt_file_sum *meta_sum, ckpt_error *err) {
  cJSON *files = cJSON_CreateObject();
  bool ok = files != NULL && ckpt_checksums_add_chunk(files, CKPT_CHECKPOINT_METADATA_FILE,
                                                      meta_sum->crc, meta_sum->bytes);
  size_t dl = strlen(dir), sl = strlen(CKPT_TMP_SUFFIX);
  const cJSON *f;
  cJSON_ArrayForEach(f, noted) {
    if (!ok)
      break;
    if (strncmp(f->string, dir, dl) != 0 || f->string[dl] != '/')
      continue; /* not inside the checkpoint */
    const char *rel = f->string + dl + 1;
    char *name = ckpt_path_join(rel, "");
    if (name == NULL) {
      ok = false;
      break;
    }
    name[strlen(name) - 1] = '\0';
    char *slash = strchr(name, '/');
    if (slash != NULL && (size_t)(slash - name) > sl &&
        strncmp(slash - sl, CKPT_TMP_SUFFIX, sl) == 0)
      memmove(slash - sl, slash, strlen(slash) + 1);
    cJSON *copy = cJSON_Duplicate(f, true);
    ok = copy != NULL && cJSON_AddItemToObject(files, name, copy);
    if (!ok)
      cJSON_Delete(copy);
    free(name);
  }
  ckpt_status st = ok ? ckpt_manifest_write(io, dir, files, err)
                      : ckpt_error_set(err, CKPT_ENOMEM, "out of memory writing '%s/%s'", dir,
                                       CKPT_MANIFEST_FILE);
  cJSON_Delete(files);
  return st;
}

ckpt_status ckpt_manifest_write(ckpt_io *io, const char *dir, const cJSON *files, ckpt_error *err) {
  cJSON *doc = ckpt_checksums_new();
  cJSON *copy = files != NULL ? cJSON_Duplicate(files, true) : cJSON_CreateObject();
  char *path = ckpt_path_join(dir, CKPT_MANIFEST_FILE), *text = NULL;
  size_t len = 0;
  ckpt_status st = CKPT_OK;
  if (doc == NULL || copy == NULL || path == NULL ||
      !cJSON_ReplaceItemInObjectCaseSensitive(doc, "files", copy)) {
    if (doc != NULL && copy != NULL && cJSON_GetObjectItemCaseSensitive(doc, "files") != copy)
      cJSON_Delete(copy);
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory writing '%s'", dir);
  }
  cJSON_DeleteItemFromObjectCaseSensitive(doc, "arrays");
  if (st == CKPT_OK)
    st = ckpt_json_dump_compact(doc, &text, &len, err);
  if (st == CKPT_OK)
    st = ckpt_io_write_file(io, path, text, len, false, err);
  free(text);
  free(path);
  cJSON_Delete(doc);
  return st;
}

ckpt_status ckpt_checksums_read_named(ckpt_io *io, const char *dir, const char *name,
                                      ckpt_checksums **out, ckpt_error *err) {
  *out = NULL;
  char *path = ckpt_path_join(dir, name);
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
    /* "<path>:line:col: ..."; an array or chunk listed twice is damage, not "last one wins".
     * The document's items come from one arena, freed at once with the index: 20,000 entries
     * of 4 items each for the small state, freed one by one before. */
    ckpt_arena arena = CKPT_ARENA_INIT;
    st = ckpt_json_load_arena(data, n, path, CKPT_JSON_UNIQUE_KEYS, &arena, &d, err);
    const cJSON *arrays = d ? cJSON_GetObjectItemCaseSensitive(d, "arrays") : NULL;
    const cJSON *alg = d ? cJSON_GetObjectItemCaseSensitive(d, "algorithm") : NULL;
    /* the manifest has files only: an empty "arrays", from the arena too (a constant name,
     * so cJSON allocates nothing) */
    if (st == CKPT_OK && arrays == NULL && strcmp(name, CKPT_MANIFEST_FILE) == 0 &&
        cJSON_IsObject(d)) {
      cJSON *empty = ckpt_arena_calloc(&arena, sizeof *empty);
      if (empty == NULL) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", path);
      } else {
        empty->type = cJSON_Object;
        if (cJSON_AddItemToObjectCS(d, "arrays", empty))
          arrays = empty;
      }
    }
    if (st == CKPT_OK && (!cJSON_IsObject(arrays) || !cJSON_IsString(alg) ||
                          strcmp(alg->valuestring, "crc32c") != 0)) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' is malformed", path);
    } else if (st == CKPT_OK) {
      st = index_checksums(d, &arena, path, out, err); /* takes the arena */
      if (st == CKPT_OK)
        ckpt_file_sum_of(&(*out)->self, data, n);
    }
    ckpt_arena_free(&arena); /* what a failure left */
  }
  free(data);
  free(path);
  return st;
}

const cJSON *ckpt_checksums_array(const ckpt_checksums *s, const char *param) {
  if (s == NULL || param == NULL)
    return NULL;
  const cJSON *hit = find_entry(s->arrays, s->n, param, &s->next_array);
  return hit != NULL && cJSON_IsObject(hit) ? hit : NULL;
}

bool ckpt_checksums_has_files(const ckpt_checksums *s) {
  return s != NULL && s->has_files;
}

ckpt_file_sum ckpt_checksums_self(const ckpt_checksums *s) {
  ckpt_file_sum none = {false, 0, 0};
  return s != NULL ? s->self : none;
}

/* [crc32c, bytes] of a files entry; false when it is not that shape. */
static bool entry_values(const cJSON *e, uint32_t *crc, uint64_t *bytes) {
  const cJSON *c = cJSON_GetArrayItem(e, 0), *b = cJSON_GetArrayItem(e, 1);
  if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsNumber(c) || !cJSON_IsNumber(b) ||
      c->valuedouble < 0 || c->valuedouble > 4294967295.0 || b->valuedouble < 0 ||
      b->valuedouble > 9007199254740992.0)
    return false;
  *crc = (uint32_t)c->valuedouble;
  *bytes = (uint64_t)b->valuedouble;
  return true;
}

ckpt_status ckpt_checksums_check_file(const ckpt_checksums *s, const char *dir, const char *rel,
                                      const ckpt_file_sum *sum, ckpt_error *err) {
  if (s == NULL || !s->has_files)
    return CKPT_OK;
  const cJSON *hit = find_entry(s->files, s->n_files, rel, &s->next_file);
  if (hit == NULL && !sum->present)
    return CKPT_OK;
  if (hit == NULL)
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s/%s' is not listed in '%s' (a file added?)", dir,
                          rel, s->path);
  uint32_t crc;
  uint64_t bytes;
  if (!entry_values(hit, &crc, &bytes))
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s' is malformed (entry of file '%s')", s->path,
                          rel);
  if (!sum->present)
    return ckpt_error_set(err, CKPT_EINCOMPLETE, "'%s/%s' is missing, but '%s' records it", dir,
                          rel, s->path);
  if (sum->crc != crc || sum->bytes != bytes)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "'%s/%s' does not match its checksum (crc32c %08x, %llu bytes; '%s' "
                          "records %08x, %llu bytes): the file was changed",
                          dir, rel, (unsigned)sum->crc, (unsigned long long)sum->bytes, s->path,
                          (unsigned)crc, (unsigned long long)bytes);
  return CKPT_OK;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

ckpt_status ckpt_checksums_check_item(const ckpt_checksums *s, const char *dir,
                                      const ckpt_pytree_meta *meta, const ckpt_packed_index *packed,
                                      const ckpt_file_sum *strings, ckpt_error *err) {
  if (s == NULL)
    return CKPT_OK;
  ckpt_status st = CKPT_OK;
  /* The cross-check first: its message says what happened, a CRC mismatch only that the file
   * changed. */
  /* Every array _CHECKSUMS lists was written as a zarr array leaf: one that _METADATA lacks
   * (deleted, or its value_type changed) would silently vanish from the restored tree. */
  const char **names = malloc((meta->n ? meta->n : 1) * sizeof *names);
  if (names == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory checking '%s'", s->path);
  size_t n = 0;
  for (size_t i = 0; i < meta->n; i++)
    if (ckpt_meta_is_array_type(meta->entries[i].value_type) &&
        (packed == NULL || ckpt_packed_find(packed, meta->entries[i].param) == NULL))
      names[n++] = meta->entries[i].param;
  ckpt_sort(names, n, sizeof *names, cmp_str);
  /* s->arrays is sorted by strcmp too: one walk along both lists finds each of its names */
  size_t j = 0;
  for (size_t i = 0; i < s->n && st == CKPT_OK; i++) {
    const char *param = s->arrays[i]->string;
    while (j < n && strcmp(names[j], param) < 0)
      j++;
    if (j == n || strcmp(names[j], param) != 0)
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "'%s' lists array '%s', but '%s/%s' has no array leaf '%s' (a leaf "
                          "deleted from %s or its value_type changed)",
                          s->path, param, dir, CKPT_METADATA_FILE, param, CKPT_METADATA_FILE);
  }
  free(names);
  if (st != CKPT_OK)
    return st;
  ckpt_file_sum ms = {meta->file_read, meta->file_crc, meta->file_bytes};
  st = ckpt_checksums_check_file(s, dir, CKPT_METADATA_FILE, &ms, err);
  if (st == CKPT_OK && packed != NULL) {
    ckpt_file_sum ps = {packed->present, packed->file_crc, packed->file_bytes};
    st = ckpt_checksums_check_file(s, dir, CKPT_PACKED_INDEX_FILE, &ps, err);
  }
  if (st == CKPT_OK && strings != NULL)
    st = ckpt_checksums_check_file(s, dir, CKPT_STRINGS_FILE, strings, err);
  return st;
}

/* ---------------------------------------------------------------- metadata read */

ckpt_status ckpt_zarr_check_format(const ckpt_zarr_meta *m, bool use_zarr3, const char *name,
                                   ckpt_error *err) {
  if (m->zarr3 == use_zarr3)
    return CKPT_OK;
  return ckpt_error_set(err, CKPT_ECORRUPT,
                        "array '%s': stored as zarr v%d (%s/%s) but %s says use_zarr3 %s", name,
                        m->zarr3 ? 3 : 2, name, ckpt_zarr_meta_file(m), CKPT_METADATA_FILE,
                        use_zarr3 ? "true" : "false");
}

ckpt_status ckpt_zarr_read_meta(ckpt_io *io, const char *array_dir, const char *name,
                                const ckpt_checksums *sums, ckpt_zarr_meta *m, ckpt_error *err) {
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
  /* zarr v2's .zarray, else zarr v3's zarr.json */
  const char *file = CKPT_ZARR_METADATA_FILE;
  bool is_v3 = false;
  char *path = ckpt_path_join(array_dir, file);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  void *data = NULL;
  size_t n = 0;
  ckpt_error local = CKPT_ERROR_INIT;
  st = ckpt_io_read_file(io, path, CKPT_ZARR_METADATA_MAX, &data, &n, &local);
  if (st == CKPT_ENOENT) {
    char *v3 = ckpt_path_join(array_dir, CKPT_ZARR3_METADATA_FILE);
    if (v3 == NULL) {
      free(path);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    }
    local = (ckpt_error)CKPT_ERROR_INIT;
    st = ckpt_io_read_file(io, v3, CKPT_ZARR_METADATA_MAX, &data, &n, &local);
    if (st == CKPT_ENOENT) {
      free(v3);
    } else {
      free(path);
      path = v3;
      file = CKPT_ZARR3_METADATA_FILE;
      is_v3 = true;
    }
  }
  if (st == CKPT_ENOENT)
    st = ckpt_error_set(err, CKPT_EINCOMPLETE, "array '%s': '%s' is missing (and no %s beside it)",
                        name, path, CKPT_ZARR3_METADATA_FILE);
  else if (st != CKPT_OK && err != NULL && err->code == CKPT_OK)
    *err = local;
  if (st == CKPT_OK && ckpt_checksums_has_files(sums)) {
    /* checked against the item's _CHECKSUMS before it is believed: a changed dtype, byte order
     * or shape decodes fine and matches every chunk's CRC */
    ckpt_file_sum sum;
    ckpt_file_sum_of(&sum, data, n);
    size_t dl = strlen(array_dir) - strlen(name) - 1;
    char *rel = ckpt_path_join(name, file), *dir = strndup(array_dir, dl);
    if (rel == NULL || dir == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    else
      st = ckpt_checksums_check_file(sums, dir, rel, &sum, err);
    free(rel);
    free(dir);
  }
  if (st == CKPT_OK && is_v3)
    st = ckpt_zarr3_meta_decode(data, n, path, m, err);
  else if (st == CKPT_OK)
    st = ckpt_zarr_meta_decode(data, n, path, m, err);
  free(data);
  free(path);
  return st;
}

ckpt_status ckpt_zarr_read_meta_ocdbt(ckpt_ocdbt *db, const char *name, const ckpt_checksums *sums,
                                      ckpt_zarr_meta *m, ckpt_error *err) {
  char *key = ckpt_path_join(name, CKPT_ZARR_METADATA_FILE);
  if (key == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  void *data = NULL;
  size_t n = 0;
  ckpt_error local = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_ocdbt_read_key(db, key, CKPT_ZARR_METADATA_MAX, &data, &n, &local);
  bool is_v3 = false;
  if (st == CKPT_ENOENT) {
    /* zarr v3 (use_zarr3): "<name>/zarr.json" */
    char *v3 = ckpt_path_join(name, CKPT_ZARR3_METADATA_FILE);
    if (v3 == NULL) {
      free(key);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    }
    local = (ckpt_error)CKPT_ERROR_INIT;
    st = ckpt_ocdbt_read_key(db, v3, CKPT_ZARR_METADATA_MAX, &data, &n, &local);
    if (st == CKPT_ENOENT) {
      free(v3);
    } else {
      free(key);
      key = v3;
      is_v3 = true;
    }
  }
  if (st == CKPT_ENOENT)
    st = ckpt_error_set(err, CKPT_EINCOMPLETE,
                        "array '%s': key '%s' (and '%s/%s') is missing from the OCDBT database "
                        "'%s'", name, key, name, CKPT_ZARR3_METADATA_FILE, ckpt_ocdbt_dir(db));
  else if (st != CKPT_OK && err != NULL && err->code == CKPT_OK)
    *err = local;
  if (st == CKPT_OK && ckpt_checksums_has_files(sums)) {
    ckpt_file_sum sum;
    ckpt_file_sum_of(&sum, data, n);
    st = ckpt_checksums_check_file(sums, ckpt_ocdbt_dir(db), key, &sum, err);
  }
  /* Arrays of the same shape and type have the same text: decoded once (the memo compares the
   * whole text, so a different document is always decoded; zarr v3's is decoded every time). */
  if (st == CKPT_OK && !(!is_v3 && ckpt_ocdbt_memo_get(db, data, n, m, sizeof *m))) {
    char where[512];
    snprintf(where, sizeof where, "'%s' (OCDBT) key '%s'", ckpt_ocdbt_dir(db), key);
    st = is_v3 ? ckpt_zarr3_meta_decode(data, n, where, m, err)
               : ckpt_zarr_meta_decode(data, n, where, m, err);
    if (st == CKPT_OK && !is_v3)
      ckpt_ocdbt_memo_put(db, data, n, m, sizeof *m);
  }
  free(data);
  free(key);
  return st;
}
