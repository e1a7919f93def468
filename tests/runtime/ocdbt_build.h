/* ocdbt_build.h — a tiny OCDBT encoder for tests: builds manifests, B+tree nodes and version
 * tree nodes byte by byte (storage/ocdbt/format.h has the layout), so the reader is tested
 * without Orbax's fixtures and with every kind of damage placed exactly.
 *
 * Deliberately independent of the reader's code: it writes what the format says, field by
 * field, and uses only format.h's constants and util/crc32c.h. Header-only (static functions). */
#ifndef CKPT_TESTS_OCDBT_BUILD_H
#define CKPT_TESTS_OCDBT_BUILD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zstd.h>

#include "storage/ocdbt/format.h"
#include "util/crc32c.h"

typedef struct ob_buf {
  uint8_t *p;
  size_t n, cap;
} ob_buf;

static inline void ob_put(ob_buf *b, const void *data, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n)
      cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
      abort();
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->n, data, n);
  b->n += n;
}

static inline void ob_u8(ob_buf *b, uint8_t v) {
  ob_put(b, &v, 1);
}

static inline void ob_varint(ob_buf *b, uint64_t v) {
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    if (v)
      byte |= 0x80;
    ob_u8(b, byte);
  } while (v);
}

static inline void ob_u32le(ob_buf *b, uint32_t v) {
  for (int i = 0; i < 4; i++)
    ob_u8(b, (uint8_t)(v >> (8 * i)));
}

static inline void ob_u64le(ob_buf *b, uint64_t v) {
  for (int i = 0; i < 8; i++)
    ob_u8(b, (uint8_t)(v >> (8 * i)));
}

static inline void ob_free(ob_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* header (magic, length, version 0, compression) + body (zstd-compressed when zstd) + CRC. */
static inline void ob_envelope(ob_buf *out, uint32_t magic, const ob_buf *body, bool zstd) {
  ob_buf payload = {0};
  if (zstd) {
    size_t cap = ZSTD_compressBound(body->n);
    uint8_t *tmp = malloc(cap);
    size_t n = ZSTD_compress(tmp, cap, body->p, body->n, 3);
    if (ZSTD_isError(n))
      abort();
    ob_put(&payload, tmp, n);
    free(tmp);
  } else {
    ob_put(&payload, body->p, body->n);
  }
  size_t start = out->n;
  uint8_t m[4] = {(uint8_t)(magic >> 24), (uint8_t)(magic >> 16), (uint8_t)(magic >> 8),
                  (uint8_t)magic};
  ob_put(out, m, 4);
  size_t len_at = out->n;
  ob_u64le(out, 0); /* patched below */
  ob_varint(out, CKPT_OCDBT_FORMAT_VERSION);
  ob_varint(out, zstd ? CKPT_OCDBT_COMPRESSION_ZSTD : CKPT_OCDBT_COMPRESSION_NONE);
  ob_put(out, payload.p, payload.n);
  uint64_t total = out->n - start + 4;
  for (int i = 0; i < 8; i++)
    out->p[len_at + i] = (uint8_t)(total >> (8 * i));
  ob_u32le(out, ckpt_crc32c(0, out->p + start, out->n - start));
  ob_free(&payload);
}

static inline size_t ob_common(const char *a, size_t an, const char *b, size_t bn) {
  size_t i = 0;
  while (i < an && i < bn && a[i] == b[i])
    i++;
  return i;
}

/* A data-file table: paths[i] = base + relative, base_len[i] bytes of it the base path. */
static inline void ob_file_table(ob_buf *b, size_t n, const char *const *paths,
                                 const size_t *base_len) {
  ob_varint(b, n);
  for (size_t i = 1; i < n; i++)
    ob_varint(b, ob_common(paths[i - 1], strlen(paths[i - 1]), paths[i], strlen(paths[i])));
  for (size_t i = 0; i < n; i++) {
    size_t pre = i ? ob_common(paths[i - 1], strlen(paths[i - 1]), paths[i], strlen(paths[i])) : 0;
    ob_varint(b, strlen(paths[i]) - pre);
  }
  for (size_t i = 0; i < n; i++)
    ob_varint(b, base_len ? base_len[i] : 0);
  for (size_t i = 0; i < n; i++) {
    size_t pre = i ? ob_common(paths[i - 1], strlen(paths[i - 1]), paths[i], strlen(paths[i])) : 0;
    ob_put(b, paths[i] + pre, strlen(paths[i]) - pre);
  }
}

/* Prefix-compressed keys: prefix lengths (n - 1), suffix lengths (n), [subtree common prefix
 * lengths (n)], suffixes. */
static inline void ob_keys(ob_buf *b, size_t n, const char *const *keys, const size_t *scpl) {
  for (size_t i = 1; i < n; i++)
    ob_varint(b, ob_common(keys[i - 1], strlen(keys[i - 1]), keys[i], strlen(keys[i])));
  for (size_t i = 0; i < n; i++) {
    size_t pre = i ? ob_common(keys[i - 1], strlen(keys[i - 1]), keys[i], strlen(keys[i])) : 0;
    ob_varint(b, strlen(keys[i]) - pre);
  }
  for (size_t i = 0; scpl && i < n; i++)
    ob_varint(b, scpl[i]);
  for (size_t i = 0; i < n; i++) {
    size_t pre = i ? ob_common(keys[i - 1], strlen(keys[i - 1]), keys[i], strlen(keys[i])) : 0;
    ob_put(b, keys[i] + pre, strlen(keys[i]) - pre);
  }
}

/* One leaf entry: inline bytes (file == UINT32_MAX) or (file, offset, len) of a data file. */
typedef struct ob_kv {
  const char *key; /* relative to the leaf's prefix */
  const void *val; /* inline value */
  uint64_t len;
  uint32_t file; /* UINT32_MAX: inline */
  uint64_t offset;
} ob_kv;

/* A leaf B+tree node body: height 0, its data-file table, the entries (sorted). */
static inline void ob_leaf_body(ob_buf *b, size_t n_files, const char *const *files,
                                const size_t *base_len, size_t n, const ob_kv *kv) {
  ob_u8(b, 0);
  ob_file_table(b, n_files, files, base_len);
  ob_varint(b, n);
  const char **keys = calloc(n ? n : 1, sizeof *keys);
  for (size_t i = 0; i < n; i++)
    keys[i] = kv[i].key;
  ob_keys(b, n, keys, NULL);
  free(keys);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, kv[i].len);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, kv[i].file == UINT32_MAX ? CKPT_OCDBT_VALUE_INLINE : CKPT_OCDBT_VALUE_INDIRECT);
  for (size_t i = 0; i < n; i++)
    if (kv[i].file != UINT32_MAX)
      ob_varint(b, kv[i].file);
  for (size_t i = 0; i < n; i++)
    if (kv[i].file != UINT32_MAX)
      ob_varint(b, kv[i].offset);
  for (size_t i = 0; i < n; i++)
    if (kv[i].file == UINT32_MAX)
      ob_put(b, kv[i].val, kv[i].len);
}

/* A reference to a node: (file id, offset, length). */
typedef struct ob_ref {
  uint32_t file;
  uint64_t offset, length;
} ob_ref;

/* An interior B+tree node body of the given height: children with their first keys and subtree
 * common prefix lengths. */
static inline void ob_interior_body(ob_buf *b, uint8_t height, size_t n_files,
                                    const char *const *files, const size_t *base_len, size_t n,
                                    const char *const *keys, const size_t *scpl,
                                    const ob_ref *refs) {
  ob_u8(b, height);
  ob_file_table(b, n_files, files, base_len);
  ob_varint(b, n);
  ob_keys(b, n, keys, scpl);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, refs[i].file);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, refs[i].offset);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, refs[i].length);
  for (size_t k = 0; k < 3 * n; k++)
    ob_varint(b, 1); /* statistics */
}

/* The manifest configuration. */
static inline void ob_config(ob_buf *b, uint64_t kind, uint8_t arity_log2) {
  for (int i = 0; i < 16; i++)
    ob_u8(b, (uint8_t)(0xa0 + i));
  ob_varint(b, kind);
  ob_varint(b, CKPT_OCDBT_ORBAX_MAX_INLINE_VALUE_BYTES);
  ob_varint(b, CKPT_OCDBT_ORBAX_MAX_DECODED_NODE_BYTES);
  ob_u8(b, arity_log2);
  ob_varint(b, CKPT_OCDBT_CONFIG_COMPRESSION_ZSTD);
  ob_u32le(b, 1);
}

/* Leaf version entries: n versions with generation numbers gens, root heights and refs. */
static inline void ob_versions(ob_buf *b, size_t n, const uint64_t *gens, const uint8_t *heights,
                               const ob_ref *roots) {
  ob_varint(b, n);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, gens[i]);
  for (size_t i = 0; i < n; i++)
    ob_u8(b, heights[i]);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, roots[i].file);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, roots[i].offset);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, roots[i].length);
  for (size_t k = 0; k < 3 * n; k++)
    ob_varint(b, 1); /* statistics */
  for (size_t i = 0; i < n; i++)
    ob_u64le(b, 1700000000000000000ull + i);
}

/* Interior version entries (version_nodes of a manifest when heights is not NULL). */
static inline void ob_version_refs(ob_buf *b, size_t n, const uint64_t *gens, const ob_ref *refs,
                                   const uint8_t *heights) {
  ob_varint(b, n);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, gens[i]);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, refs[i].file);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, refs[i].offset);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, refs[i].length);
  for (size_t i = 0; i < n; i++)
    ob_varint(b, gens[i]); /* num_generations */
  for (size_t i = 0; i < n; i++)
    ob_u64le(b, 1700000000000ull);
  for (size_t i = 0; heights && i < n; i++)
    ob_u8(b, heights[i]);
}

/* A whole single-kind manifest whose only version (generation gen) has its root at root in
 * file files[root.file]. */
static inline void ob_manifest(ob_buf *out, size_t n_files, const char *const *files, uint64_t gen,
                               uint8_t root_height, ob_ref root, bool zstd) {
  ob_buf body = {0};
  ob_config(&body, CKPT_OCDBT_MANIFEST_KIND_SINGLE, 4);
  ob_file_table(&body, n_files, files, NULL);
  ob_versions(&body, 1, &gen, &root_height, &root);
  ob_version_refs(&body, 0, NULL, NULL, NULL);
  ob_envelope(out, CKPT_OCDBT_MANIFEST_MAGIC, &body, zstd);
  ob_free(&body);
}

/* Writes n bytes to dir/rel (creating dir/d when rel starts with "d/"). */
static inline void ob_write(const char *dir, const char *rel, const void *data, size_t n) {
  char path[4096];
  if (strncmp(rel, "d/", 2) == 0) {
    snprintf(path, sizeof path, "%s/d", dir);
    mkdir(path, 0755);
  }
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
    abort();
}

/* A database in dir whose root node is body alone in data file rel (offset 0): for hand-made
 * nodes (damaged ones, values in other files) that ob_simple_db cannot express. */
static inline void ob_root_node_db(const char *dir, const char *rel, const ob_buf *body,
                                   bool zstd) {
  const char *files[] = {rel};
  ob_buf node = {0}, man = {0};
  ob_envelope(&node, CKPT_OCDBT_BTREE_NODE_MAGIC, body, zstd);
  ob_write(dir, rel, node.p, node.n);
  ob_manifest(&man, 1, files, 1, 0, (ob_ref){0, 0, node.n}, false);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, man.p, man.n);
  ob_free(&node);
  ob_free(&man);
}

/* The common case: a database in dir with one leaf node holding kv (sorted). Values with
 * file != UINT32_MAX are written to data file "d/data" at increasing offsets (their offset and
 * file fields are filled here); the leaf node follows them in the same file. */
static inline void ob_simple_db(const char *dir, size_t n, ob_kv *kv, bool zstd) {
  const char *files[] = {"d/data"};
  ob_buf data = {0}, leaf = {0}, man = {0};
  for (size_t i = 0; i < n; i++)
    if (kv[i].file != UINT32_MAX) {
      kv[i].file = 0;
      kv[i].offset = data.n;
      ob_put(&data, kv[i].val, kv[i].len);
    }
  ob_leaf_body(&leaf, 1, files, NULL, n, kv);
  ob_ref root = {0, data.n, 0};
  ob_envelope(&data, CKPT_OCDBT_BTREE_NODE_MAGIC, &leaf, zstd);
  root.length = data.n - root.offset;
  ob_write(dir, "d/data", data.p, data.n);
  ob_manifest(&man, 1, files, 1, 0, root, zstd);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, man.p, man.n);
  ob_free(&data);
  ob_free(&leaf);
  ob_free(&man);
}

#endif
