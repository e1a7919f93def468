/* ocdbt_walk.h — a test-side walker of OCDBT databases, independent of the library's OCDBT
 * reader: it opens the manifest and every B+tree node with the shared format primitives
 * (storage/ocdbt/format.h: envelopes, varints, data-file tables), checks each structural rule
 * the format states (heights, key order, child key bounds, subtree prefixes, statistics) and
 * lists every key with its value. The writer's tests use it to check what ckpt writes without
 * trusting the code that wrote it.
 *
 * Header-only (static functions): included by the OCDBT tests only. */
#ifndef CKPT_TESTS_OCDBT_WALK_H
#define CKPT_TESTS_OCDBT_WALK_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ocdbt/format.h"
#include "test_pytree_util.h"

typedef struct ow_entry {
  char *key;
  size_t key_len;
  bool indirect;
  char *file;           /* indirect: the value's file, relative to the database directory */
  uint64_t offset;      /* indirect */
  uint64_t length;      /* the value's bytes */
  unsigned char *value; /* the value (read from its file when indirect) */
} ow_entry;

typedef struct ow_db {
  /* The manifest. */
  unsigned char uuid[16];
  uint64_t manifest_kind, max_inline, max_decoded;
  uint8_t arity_log2;
  uint64_t compression_method;
  uint32_t zstd_level;
  uint8_t root_height;
  uint64_t n_versions, generation; /* of the manifest's inline versions; the walk's is the last */
  uint64_t num_keys, num_tree_bytes, num_indirect_value_bytes, commit_time;
  char *root_file; /* relative to the database directory */
  /* The walk. */
  size_t n, cap;
  ow_entry *e; /* in key order */
  size_t nodes, leaves, files_named;
  uint64_t tree_bytes_seen;
} ow_db;

static inline void ow_free(ow_db *db) {
  for (size_t i = 0; i < db->n; i++) {
    free(db->e[i].key);
    free(db->e[i].file);
    free(db->e[i].value);
  }
  free(db->e);
  free(db->root_file);
  memset(db, 0, sizeof *db);
}

static inline uint64_t ow_varint(ckpt_ocdbt_in *in, const char *what) {
  uint64_t v = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_ocdbt_get_varint(in, what, &v, &err), CKPT_OK, "%s", err.message);
  return v;
}

static inline uint8_t ow_u8(ckpt_ocdbt_in *in, const char *what) {
  uint8_t v = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_ocdbt_get_u8(in, what, &v, &err), CKPT_OK, "%s", err.message);
  return v;
}

static inline const uint8_t *ow_bytes(ckpt_ocdbt_in *in, uint64_t n, const char *what) {
  const uint8_t *p = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_ocdbt_get_bytes(in, what, n, &p, &err), CKPT_OK, "%s", err.message);
  return p;
}

/* bytes [off, off + len) of dir/rel, malloc'ed. */
static inline unsigned char *ow_slice(const char *dir, const char *rel, uint64_t off,
                                      uint64_t len) {
  char *path = pt_fmt("%s/%s", dir, rel);
  size_t n = 0;
  char *all = pt_read(path, &n);
  cr_assert(off + len <= n, "'%s': bytes %llu..%llu past its end (%zu)", path,
            (unsigned long long)off, (unsigned long long)(off + len), n);
  unsigned char *out = malloc(len ? len : 1);
  memcpy(out, all + off, len);
  free(all);
  free(path);
  return out;
}

static inline int ow_keycmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c ? c : (an < bn ? -1 : an > bn ? 1 : 0);
}

/* Walks the node at transitive + rel [off, off + len) of database dir whose keys carry prefix;
 * height: what its parent says. Returns the node's key count; *first receives its first key. */
static inline uint64_t ow_node(ow_db *db, const char *dir, const char *transitive, const char *rel,
                               uint64_t off, uint64_t len, const char *prefix, size_t prefix_len,
                               int height, uint64_t *tree_bytes, uint64_t *indirect_bytes) {
  char *file = pt_fmt("%s%s", transitive, rel);
  unsigned char *enc = ow_slice(dir, file, off, len);
  uint8_t *body = NULL;
  size_t body_len = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_ocdbt_open_envelope(enc, len, CKPT_OCDBT_BTREE_NODE_MAGIC,
                                        CKPT_OCDBT_ORBAX_MAX_DECODED_NODE_BYTES, file, &body,
                                        &body_len, &err),
               CKPT_OK, "%s", err.message);
  cr_assert_eq(enc[12], 0, "version");
  cr_assert_eq(enc[13], 1, "zstd");
  free(enc);
  db->nodes++;
  *tree_bytes = len;
  *indirect_bytes = 0;
  ckpt_ocdbt_in in = ckpt_ocdbt_in_make(body, body_len, file);
  cr_assert_eq(ow_u8(&in, "height"), height, "'%s' at %llu: height", file, (unsigned long long)off);
  ckpt_ocdbt_file_table ft;
  cr_assert_eq(ckpt_ocdbt_get_file_table(&in, &ft, &err), CKPT_OK, "%s", err.message);
  db->files_named += ft.n;
  for (size_t i = 1; i < ft.n; i++)
    cr_assert(strcmp(ft.path[i - 1], ft.path[i]) < 0, "data-file table not sorted");
  uint64_t n = ow_varint(&in, "num_entries");
  cr_assert_gt(n, 0, "an empty node");
  cr_assert_leq(n, body_len, "more entries than bytes");
  uint64_t *pl = calloc(n, sizeof *pl), *sl = calloc(n, sizeof *sl), *sc = calloc(n, sizeof *sc);
  for (uint64_t i = 1; i < n; i++)
    pl[i] = ow_varint(&in, "key prefix length");
  for (uint64_t i = 0; i < n; i++)
    sl[i] = ow_varint(&in, "key suffix length");
  if (height > 0)
    for (uint64_t i = 0; i < n; i++)
      sc[i] = ow_varint(&in, "subtree common prefix length");
  char **keys = calloc(n, sizeof *keys);
  size_t *klen = calloc(n, sizeof *klen);
  for (uint64_t i = 0; i < n; i++) {
    size_t prev = i ? klen[i - 1] : 0;
    cr_assert_leq(pl[i], prev, "key prefix past the previous key");
    klen[i] = pl[i] + sl[i];
    keys[i] = malloc(klen[i] + 1);
    if (pl[i])
      memcpy(keys[i], keys[i - 1], pl[i]);
    memcpy(keys[i] + pl[i], ow_bytes(&in, sl[i], "key suffix"), sl[i]);
    if (i > 0)
      cr_assert_lt(ow_keycmp(keys[i - 1], klen[i - 1], keys[i], klen[i]), 0, "keys out of order");
  }
  uint64_t total = 0;
  if (height == 0) {
    db->leaves++;
    uint64_t *vl = calloc(n, sizeof *vl);
    uint8_t *kind = calloc(n, 1);
    for (uint64_t i = 0; i < n; i++)
      vl[i] = ow_varint(&in, "value length");
    for (uint64_t i = 0; i < n; i++) {
      kind[i] = ow_u8(&in, "value kind");
      cr_assert_leq(kind[i], 1);
    }
    uint64_t *fid = calloc(n, sizeof *fid), *fo = calloc(n, sizeof *fo);
    for (uint64_t i = 0; i < n; i++)
      if (kind[i])
        fid[i] = ow_varint(&in, "data file id");
    for (uint64_t i = 0; i < n; i++)
      if (kind[i])
        fo[i] = ow_varint(&in, "data file offset");
    for (uint64_t i = 0; i < n; i++) {
      if (db->n == db->cap) {
        db->cap = db->cap ? 2 * db->cap : 64;
        db->e = realloc(db->e, db->cap * sizeof *db->e);
      }
      ow_entry *e = &db->e[db->n++];
      memset(e, 0, sizeof *e);
      e->key_len = prefix_len + klen[i];
      e->key = malloc(e->key_len + 1);
      memcpy(e->key, prefix, prefix_len);
      memcpy(e->key + prefix_len, keys[i], klen[i]);
      e->key[e->key_len] = '\0';
      e->length = vl[i];
      e->indirect = kind[i] == 1;
      if (e->indirect) {
        cr_assert_lt(fid[i], ft.n, "data file id past the table");
        e->file = pt_fmt("%s%s", transitive, ft.path[fid[i]]);
        e->offset = fo[i];
        e->value = ow_slice(dir, e->file, e->offset, e->length);
        *indirect_bytes += e->length;
      } else {
        cr_assert_leq(vl[i], db->max_inline, "an inline value over the limit");
        e->value = malloc(vl[i] ? vl[i] : 1);
        memcpy(e->value, ow_bytes(&in, vl[i], "inline value"), vl[i]);
      }
    }
    total = n;
    free(vl);
    free(kind);
    free(fid);
    free(fo);
  } else {
    uint64_t *fid = calloc(n, sizeof *fid), *fo = calloc(n, sizeof *fo),
             *fl = calloc(n, sizeof *fl), *nk = calloc(n, sizeof *nk), *nt = calloc(n, sizeof *nt),
             *ni = calloc(n, sizeof *ni);
    for (uint64_t i = 0; i < n; i++)
      fid[i] = ow_varint(&in, "child file id");
    for (uint64_t i = 0; i < n; i++)
      fo[i] = ow_varint(&in, "child offset");
    for (uint64_t i = 0; i < n; i++)
      fl[i] = ow_varint(&in, "child length");
    for (uint64_t i = 0; i < n; i++)
      nk[i] = ow_varint(&in, "num_keys");
    for (uint64_t i = 0; i < n; i++)
      nt[i] = ow_varint(&in, "num_tree_bytes");
    for (uint64_t i = 0; i < n; i++)
      ni[i] = ow_varint(&in, "num_indirect_value_bytes");
    for (uint64_t i = 0; i < n; i++) {
      cr_assert_lt(fid[i], ft.n);
      cr_assert_leq(sc[i], klen[i], "subtree prefix longer than the key");
      char *cp = malloc(prefix_len + sc[i] + 1);
      memcpy(cp, prefix, prefix_len);
      memcpy(cp + prefix_len, keys[i], sc[i]);
      char *ctrans = pt_fmt("%s%.*s", transitive, (int)ft.base_len[fid[i]], ft.path[fid[i]]);
      size_t before = db->n;
      uint64_t tb = 0, ib = 0;
      uint64_t got = ow_node(db, dir, ctrans, ft.path[fid[i]] + ft.base_len[fid[i]], fo[i], fl[i],
                             cp, prefix_len + sc[i], height - 1, &tb, &ib);
      cr_assert_eq(got, nk[i], "num_keys of child %llu", (unsigned long long)i);
      cr_assert_eq(tb, nt[i], "num_tree_bytes of child %llu", (unsigned long long)i);
      cr_assert_eq(ib, ni[i], "num_indirect_value_bytes of child %llu", (unsigned long long)i);
      /* The entry's key bounds the child's keys from below; the next entry's from above. */
      char *full = pt_fmt("%.*s%.*s", (int)prefix_len, prefix, (int)klen[i], keys[i]);
      cr_assert_geq(ow_keycmp(db->e[before].key, db->e[before].key_len, full, strlen(full)), 0);
      if (i + 1 < n) {
        char *next = pt_fmt("%.*s%.*s", (int)prefix_len, prefix, (int)klen[i + 1], keys[i + 1]);
        cr_assert_lt(ow_keycmp(db->e[db->n - 1].key, db->e[db->n - 1].key_len, next, strlen(next)),
                     0);
        free(next);
      }
      free(full);
      total += got;
      *tree_bytes += tb;
      *indirect_bytes += ib;
      free(ctrans);
      free(cp);
    }
    free(fid);
    free(fo);
    free(fl);
    free(nk);
    free(nt);
    free(ni);
  }
  cr_assert_eq(ckpt_ocdbt_in_left(&in), 0, "'%s': %zu bytes after the node's fields", file,
               ckpt_ocdbt_in_left(&in));
  for (uint64_t i = 0; i < n; i++)
    free(keys[i]);
  free(keys);
  free(klen);
  free(pl);
  free(sl);
  free(sc);
  ckpt_ocdbt_file_table_free(&ft);
  free(body);
  free(file);
  return total;
}

/* Reads dir/manifest.ocdbt and walks the whole tree of its one version. */
static inline void ow_read(const char *dir, ow_db *db) {
  memset(db, 0, sizeof *db);
  char *path = pt_fmt("%s/manifest.ocdbt", dir);
  size_t n = 0;
  char *enc = pt_read(path, &n);
  cr_assert_geq(n, 18u);
  const unsigned char *u = (const unsigned char *)enc;
  cr_assert_eq(u[0], 0x0c);
  cr_assert_eq(u[1], 0xdb);
  cr_assert_eq(u[2], 0x3a);
  cr_assert_eq(u[3], 0x2a);
  uint8_t *body = NULL;
  size_t body_len = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_ocdbt_open_envelope(enc, n, CKPT_OCDBT_MANIFEST_MAGIC, CKPT_OCDBT_MANIFEST_MAX,
                                        path, &body, &body_len, &err),
               CKPT_OK, "%s", err.message);
  free(enc);
  ckpt_ocdbt_in in = ckpt_ocdbt_in_make(body, body_len, path);
  memcpy(db->uuid, ow_bytes(&in, 16, "uuid"), 16);
  db->manifest_kind = ow_varint(&in, "manifest_kind");
  db->max_inline = ow_varint(&in, "max_inline_value_bytes");
  db->max_decoded = ow_varint(&in, "max_decoded_node_bytes");
  db->arity_log2 = ow_u8(&in, "version_tree_arity_log2");
  db->compression_method = ow_varint(&in, "compression_method");
  if (db->compression_method == 1) {
    const uint8_t *l = ow_bytes(&in, 4, "zstd level");
    db->zstd_level =
        (uint32_t)l[0] | (uint32_t)l[1] << 8 | (uint32_t)l[2] << 16 | (uint32_t)l[3] << 24;
  }
  ckpt_ocdbt_file_table ft;
  cr_assert_eq(ckpt_ocdbt_get_file_table(&in, &ft, &err), CKPT_OK, "%s", err.message);
  /* Inline versions, column by column; the walk reads the latest. (ckpt writes one; Orbax's
   * per-process databases have several.) */
  uint64_t nv = ow_varint(&in, "num_versions");
  cr_assert(nv >= 1 && nv <= 16, "%llu versions", (unsigned long long)nv);
  uint64_t col[8][16];
  for (uint64_t i = 0; i < nv; i++)
    col[0][i] = ow_varint(&in, "generation");
  for (uint64_t i = 0; i < nv; i++)
    col[1][i] = ow_u8(&in, "root_height");
  const char *names[] = {"root file id", "root offset", "root length", "num_keys",
                         "num_tree_bytes", "num_indirect_value_bytes"};
  for (int c = 0; c < 6; c++)
    for (uint64_t i = 0; i < nv; i++)
      col[2 + c][i] = ow_varint(&in, names[c]);
  for (uint64_t i = 0; i < nv; i++) {
    const uint8_t *t = ow_bytes(&in, 8, "commit_time");
    db->commit_time = 0;
    for (int k = 7; k >= 0; k--)
      db->commit_time = db->commit_time << 8 | t[k];
    if (i > 0)
      cr_assert_gt(col[0][i], col[0][i - 1], "generations increase");
  }
  uint64_t last = nv - 1;
  db->n_versions = nv;
  db->generation = col[0][last];
  db->root_height = (uint8_t)col[1][last];
  uint64_t fid = col[2][last], off = col[3][last], len = col[4][last];
  db->num_keys = col[5][last];
  db->num_tree_bytes = col[6][last];
  db->num_indirect_value_bytes = col[7][last];
  cr_assert_eq(ow_varint(&in, "version nodes"), 0);
  cr_assert_eq(ckpt_ocdbt_in_left(&in), 0, "bytes after the manifest's fields");
  cr_assert_lt(fid, ft.n);
  db->root_file = strdup(ft.path[fid]);
  char *trans = pt_fmt("%.*s", (int)ft.base_len[fid], ft.path[fid]);
  uint64_t tb = 0, ib = 0;
  uint64_t got = ow_node(db, dir, trans, ft.path[fid] + ft.base_len[fid], off, len, "", 0,
                         db->root_height, &tb, &ib);
  cr_assert_eq(got, db->num_keys);
  cr_assert_eq(tb, db->num_tree_bytes);
  cr_assert_eq(ib, db->num_indirect_value_bytes);
  db->tree_bytes_seen = tb;
  free(trans);
  ckpt_ocdbt_file_table_free(&ft);
  free(body);
  free(path);
}

/* The entry of key, or NULL. */
static inline const ow_entry *ow_find(const ow_db *db, const char *key) {
  for (size_t i = 0; i < db->n; i++)
    if (strcmp(db->e[i].key, key) == 0)
      return &db->e[i];
  return NULL;
}

#endif
