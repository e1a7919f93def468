/* storage/ocdbt/read.c — the OCDBT reader (ocdbt.h): manifest → version tree → the latest
 * B+tree, flattened into a sorted key table; data files opened lazily and shared. */
#include "storage/ocdbt/ocdbt.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ocdbt/format.h"
#include "util/path.h"

typedef struct data_file {
  char *rel;  /* relative to the database directory */
  char *path; /* dir/rel */
  int fd;     /* -1 until first use */
  bool checked;
  uint64_t size;
} data_file;

typedef struct entry {
  char *key;
  size_t key_len;
  ckpt_ocdbt_value v;
  uint8_t *owned; /* inline bytes */
} entry;

struct ckpt_ocdbt {
  ckpt_io *io;
  char *dir;
  char *manifest_path; /* the manifest holding the version tree (for messages) */
  uint64_t generation;
  uint64_t max_decoded; /* config.max_decoded_node_bytes, bounded by CKPT_OCDBT_DECODED_MAX */
  uint8_t arity_log2;
  pthread_mutex_t mu; /* guards files[].fd/checked/size */
  size_t n_files, cap_files;
  data_file *files;
  size_t n, cap;
  entry *entries;
};

/* ---------------------------------------------------------------- data files */

/* The index of the data file at rel (transitive + base + relative), added when new. */
static ckpt_status file_index(ckpt_ocdbt *db, const char *rel, uint32_t *index, ckpt_error *err) {
  for (size_t i = 0; i < db->n_files; i++)
    if (strcmp(db->files[i].rel, rel) == 0) {
      *index = (uint32_t)i;
      return CKPT_OK;
    }
  if (db->n_files >= UINT32_MAX)
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': too many data files", db->dir);
  if (db->n_files == db->cap_files) {
    size_t cap = db->cap_files ? 2 * db->cap_files : 8;
    data_file *f = realloc(db->files, cap * sizeof *f);
    if (!f) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    db->files = f;
    db->cap_files = cap;
  }
  data_file *f = &db->files[db->n_files];
  memset(f, 0, sizeof *f);
  f->fd = -1;
  f->rel = strdup(rel);
  f->path = ckpt_path_join(db->dir, rel);
  if (!f->rel || !f->path) {
    free(f->rel);
    free(f->path);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  *index = (uint32_t)db->n_files++;
  return CKPT_OK;
}

/* Every directory between the database and the file must be a real directory: O_NOFOLLOW
 * guards the last component only. */
static ckpt_status check_parents(ckpt_ocdbt *db, data_file *f, const char *what,
                                 ckpt_error *err) {
  size_t dl = strlen(db->dir);
  for (char *s = strchr(f->path + dl + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    ckpt_io_kind kind;
    uint64_t size;
    ckpt_status st = ckpt_io_stat(db->io, f->path, &kind, &size, err);
    if (st == CKPT_OK && kind == CKPT_IO_KIND_MISSING)
      st = ckpt_error_set(err, CKPT_EINCOMPLETE, "'%s' is missing (the directory of data file "
                          "'%s', which holds %s)", f->path, f->rel, what);
    else if (st == CKPT_OK && kind != CKPT_IO_KIND_DIR)
      st = ckpt_error_set(err, CKPT_EUNSAFE, "'%s' is not a directory (symlinks are not "
                          "followed inside a checkpoint)", f->path);
    *s = '/';
    if (st != CKPT_OK) return st;
  }
  return CKPT_OK;
}

/* Opens (once) and sizes data file i; *what names the referrer in a missing-file error. */
static ckpt_status file_fd(ckpt_ocdbt *db, uint32_t i, const char *what, int *fd, uint64_t *size,
                           ckpt_error *err) {
  data_file *f = &db->files[i];
  ckpt_status st = CKPT_OK;
  pthread_mutex_lock(&db->mu);
  if (!f->checked) {
    ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
    st = check_parents(db, f, what, err);
    if (st == CKPT_OK) st = ckpt_io_stat(db->io, f->path, &kind, &f->size, err);
    if (st == CKPT_OK && kind == CKPT_IO_KIND_MISSING)
      st = ckpt_error_set(err, CKPT_EINCOMPLETE, "data file '%s' is missing (it holds %s)",
                          f->path, what);
    else if (st == CKPT_OK && kind != CKPT_IO_KIND_FILE)
      st = ckpt_error_set(err, kind == CKPT_IO_KIND_SYMLINK ? CKPT_EUNSAFE : CKPT_ECORRUPT,
                          "data file '%s' is not a regular file", f->path);
    if (st == CKPT_OK) st = ckpt_io_open(db->io, f->path, O_RDONLY | O_NOFOLLOW, 0, &f->fd, err);
    if (st == CKPT_OK) f->checked = true;
  }
  *fd = f->fd;
  *size = f->size;
  pthread_mutex_unlock(&db->mu);
  return st;
}

static ckpt_status check_range(const data_file *f, uint64_t offset, uint64_t length,
                               uint64_t size, const char *what, ckpt_error *err) {
  if (offset > size || length > size - offset)
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': %s at offset %llu, %llu bytes, lies past "
                          "the end of the file (%llu bytes; truncated?)", f->path, what,
                          (unsigned long long)offset, (unsigned long long)length,
                          (unsigned long long)size);
  return CKPT_OK;
}

/* Reads [offset, offset + length) of data file i into a new buffer. */
static ckpt_status read_range(ckpt_ocdbt *db, uint32_t i, uint64_t offset, uint64_t length,
                              const char *what, uint8_t **out, ckpt_error *err) {
  int fd;
  uint64_t size;
  ckpt_status st = file_fd(db, i, what, &fd, &size, err);
  if (st != CKPT_OK) return st;
  if ((st = check_range(&db->files[i], offset, length, size, what, err)) != CKPT_OK) return st;
  uint8_t *buf = malloc(length ? (size_t)length : 1);
  if (!buf) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", db->files[i].path);
  size_t got = 0;
  st = ckpt_io_pread_all(db->io, fd, db->files[i].path, buf, (size_t)length, offset, &got, err);
  if (st == CKPT_OK && got != length)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s': %s at offset %llu: file shrank while being "
                        "read", db->files[i].path, what, (unsigned long long)offset);
  if (st != CKPT_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- references between nodes */

/* A node reference: where an encoded node is and the transitive path for its children. */
typedef struct node_ref {
  uint32_t file; /* db file index */
  uint64_t offset, length;
  char *transitive; /* transitive path of the node's own data-file table */
} node_ref;

/* Resolves entry `id` of table t (decoded in a node whose transitive path is trans): the db
 * file index and, for a node, the transitive path its children use. */
static ckpt_status resolve(ckpt_ocdbt *db, const ckpt_ocdbt_in *in, const ckpt_ocdbt_file_table *t,
                           const char *trans, uint64_t id, uint32_t *file, char **child_trans,
                           ckpt_error *err) {
  if (id >= t->n)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: data file id %llu out of range (%zu files "
                          "in the table)", in->where, (unsigned long long)id, t->n);
  size_t tl = strlen(trans), pl = t->path_len[id];
  if (tl + pl > CKPT_OCDBT_MAX_PATH)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: data file path longer than %u bytes",
                          in->where, CKPT_OCDBT_MAX_PATH);
  char *full = malloc(tl + pl + 1);
  if (!full) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  memcpy(full, trans, tl);
  memcpy(full + tl, t->path[id], pl + 1);
  ckpt_status st = file_index(db, full, file, err);
  if (st == CKPT_OK && child_trans) {
    full[tl + t->base_len[id]] = '\0';
    *child_trans = full;
    return CKPT_OK;
  }
  free(full);
  return st;
}

/* "'<path>': <kind> at offset <n>" for messages about a node. */
static void node_where(char *buf, size_t n, const ckpt_ocdbt *db, const node_ref *r,
                       const char *kind) {
  snprintf(buf, n, "'%s': %s at offset %llu", db->files[r->file].path, kind,
           (unsigned long long)r->offset);
}

/* Reads and unpacks the node r points to. */
static ckpt_status load_node(ckpt_ocdbt *db, const node_ref *r, uint32_t magic, const char *kind,
                             uint8_t **body, size_t *body_len, ckpt_error *err) {
  char what[96];
  snprintf(what, sizeof what, "the %s at offset %llu", kind, (unsigned long long)r->offset);
  if (r->length > CKPT_OCDBT_DECODED_MAX) {
    char where[600];
    node_where(where, sizeof where, db, r, kind);
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: encoded length %llu exceeds the limit of %u",
                          where, (unsigned long long)r->length, CKPT_OCDBT_DECODED_MAX);
  }
  uint8_t *raw = NULL;
  ckpt_status st = read_range(db, r->file, r->offset, r->length, what, &raw, err);
  if (st != CKPT_OK) return st;
  char where[600];
  node_where(where, sizeof where, db, r, kind);
  st = ckpt_ocdbt_open_envelope(raw, (size_t)r->length, magic, db->max_decoded, where, body,
                                body_len, err);
  free(raw);
  return st;
}

/* ---------------------------------------------------------------- B+tree */

static ckpt_status add_entry(ckpt_ocdbt *db, const char *prefix, size_t pl, const uint8_t *rel,
                             size_t rl, entry **out, ckpt_error *err) {
  if (db->n == db->cap) {
    size_t cap = db->cap ? 2 * db->cap : 64;
    entry *e = realloc(db->entries, cap * sizeof *e);
    if (!e) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    db->entries = e;
    db->cap = cap;
  }
  entry *e = &db->entries[db->n];
  memset(e, 0, sizeof *e);
  e->key = malloc(pl + rl + 1);
  if (!e->key) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  memcpy(e->key, prefix, pl);
  if (rl) memcpy(e->key + pl, rel, rl);
  e->key[pl + rl] = '\0';
  e->key_len = pl + rl;
  db->n++;
  *out = e;
  return CKPT_OK;
}

/* The prefix-compressed keys of a node: n prefix lengths (n - 1 stored), n suffix lengths,
 * [interior: n subtree common prefix lengths], then the suffixes. Builds keys[i] (pointers into
 * one buffer *store). */
static ckpt_status decode_keys(ckpt_ocdbt_in *in, size_t n, bool interior, uint8_t **store,
                               size_t **klen, uint8_t ***keys, uint64_t **scpl, ckpt_error *err) {
  uint64_t *pre = calloc(n, sizeof *pre), *suf = calloc(n, sizeof *suf);
  *klen = calloc(n, sizeof **klen);
  *keys = calloc(n, sizeof **keys);
  *scpl = interior ? calloc(n, sizeof **scpl) : NULL;
  *store = NULL;
  ckpt_status st = CKPT_OK;
  if (!pre || !suf || !*klen || !*keys || (interior && !*scpl))
    st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory for %zu entries", in->where, n);
  for (size_t i = 1; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint_max(in, "key prefix length", CKPT_OCDBT_DECODED_MAX,
                                   &pre[i], err);
  uint64_t total = 0;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    st = ckpt_ocdbt_get_varint_max(in, "key suffix length", ckpt_ocdbt_in_left(in), &suf[i], err);
    total += suf[i]; /* each ≤ the bytes left: no overflow */
  }
  for (size_t i = 0; i < n && st == CKPT_OK && interior; i++)
    st = ckpt_ocdbt_get_varint_max(in, "subtree common prefix length", UINT32_MAX, &(*scpl)[i],
                                   err);
  /* Full keys: each at most the previous one plus its suffix. */
  uint64_t bytes = 0, prev = 0;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    if (pre[i] > prev) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: entry %zu: key prefix length %llu exceeds "
                          "previous key length %llu", in->where, i, (unsigned long long)pre[i],
                          (unsigned long long)prev);
      break;
    }
    prev = pre[i] + suf[i];
    bytes += prev;
    if (bytes > CKPT_OCDBT_DECODED_MAX) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: keys of more than %u bytes in one node",
                          in->where, CKPT_OCDBT_DECODED_MAX);
      break;
    }
  }
  const uint8_t *sufs = NULL;
  if (st == CKPT_OK) st = ckpt_ocdbt_get_bytes(in, "key suffixes", total, &sufs, err);
  if (st == CKPT_OK && !(*store = malloc(bytes ? (size_t)bytes : 1)))
    st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", in->where);
  if (st == CKPT_OK) {
    uint8_t *p = *store;
    for (size_t i = 0; i < n; i++) {
      if (pre[i]) memcpy(p, (*keys)[i - 1], (size_t)pre[i]);
      if (suf[i]) memcpy(p + pre[i], sufs, (size_t)suf[i]);
      sufs += suf[i];
      (*keys)[i] = p;
      (*klen)[i] = (size_t)(pre[i] + suf[i]);
      p += (*klen)[i];
      if (interior && (*scpl)[i] > (*klen)[i]) {
        st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: entry %zu: subtree common prefix length "
                            "%llu exceeds its key length %zu", in->where, i,
                            (unsigned long long)(*scpl)[i], (*klen)[i]);
        break;
      }
    }
  }
  free(pre);
  free(suf);
  return st;
}

static ckpt_status read_btree(ckpt_ocdbt *db, const node_ref *r, unsigned height,
                              const char *prefix, size_t pl, ckpt_error *err);

static ckpt_status decode_btree(ckpt_ocdbt *db, const node_ref *r, ckpt_ocdbt_in *in,
                                unsigned expect_height, const char *prefix, size_t pl,
                                ckpt_error *err) {
  uint8_t height;
  ckpt_status st = ckpt_ocdbt_get_u8(in, "height", &height, err);
  if (st != CKPT_OK) return st;
  if (height != expect_height)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: height %u, expected %u", in->where, height,
                          expect_height);
  ckpt_ocdbt_file_table t;
  if ((st = ckpt_ocdbt_get_file_table(in, &t, err)) != CKPT_OK) return st;
  uint64_t n;
  /* Every entry costs at least two bytes. */
  st = ckpt_ocdbt_get_varint_max(in, "entry count", ckpt_ocdbt_in_left(in) / 2, &n, err);
  uint8_t *store = NULL, **keys = NULL;
  size_t *klen = NULL;
  uint64_t *scpl = NULL, *vals = NULL;
  if (st == CKPT_OK)
    st = decode_keys(in, (size_t)n, height > 0, &store, &klen, &keys, &scpl, err);
  if (st == CKPT_OK && !(vals = calloc(n ? (size_t)n * 4 : 1, sizeof *vals)))
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK && height == 0) {
    uint64_t *len = vals, *kind = vals + n, *file = vals + 2 * n, *off = vals + 3 * n;
    for (size_t i = 0; i < n && st == CKPT_OK; i++)
      st = ckpt_ocdbt_get_varint(in, "value length", &len[i], err);
    for (size_t i = 0; i < n && st == CKPT_OK; i++) {
      st = ckpt_ocdbt_get_varint_max(in, "value kind", CKPT_OCDBT_VALUE_INDIRECT, &kind[i], err);
    }
    for (size_t i = 0; i < n && st == CKPT_OK; i++)
      if (kind[i] == CKPT_OCDBT_VALUE_INDIRECT)
        st = ckpt_ocdbt_get_varint(in, "value data file id", &file[i], err);
    for (size_t i = 0; i < n && st == CKPT_OK; i++)
      if (kind[i] == CKPT_OCDBT_VALUE_INDIRECT)
        st = ckpt_ocdbt_get_varint(in, "value offset", &off[i], err);
    for (size_t i = 0; i < n && st == CKPT_OK; i++) {
      entry *e = NULL;
      const uint8_t *bytes = NULL;
      if (kind[i] == CKPT_OCDBT_VALUE_INLINE &&
          (st = ckpt_ocdbt_get_bytes(in, "inline value", len[i], &bytes, err)) != CKPT_OK)
        break;
      if ((st = add_entry(db, prefix, pl, keys[i], klen[i], &e, err)) != CKPT_OK) break;
      e->v.length = len[i];
      if (kind[i] == CKPT_OCDBT_VALUE_INLINE) {
        e->v.is_inline = true;
        e->owned = malloc(len[i] ? (size_t)len[i] : 1);
        if (!e->owned) {
          st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
          break;
        }
        if (len[i]) memcpy(e->owned, bytes, (size_t)len[i]);
        e->v.bytes = e->owned;
      } else {
        if (off[i] > UINT64_MAX - len[i]) {
          st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: key '%s': value offset %llu + length %llu "
                              "overflows", in->where, e->key, (unsigned long long)off[i],
                              (unsigned long long)len[i]);
          break;
        }
        e->v.offset = off[i];
        st = resolve(db, in, &t, r->transitive, file[i], &e->v.file, NULL, err);
      }
    }
    if (st == CKPT_OK && ckpt_ocdbt_in_left(in) != 0)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: %zu unexpected bytes after the last entry",
                          in->where, ckpt_ocdbt_in_left(in));
  } else if (st == CKPT_OK) {
    uint64_t *file = vals, *off = vals + n, *len = vals + 2 * n, *stat = vals + 3 * n;
    for (size_t i = 0; i < n && st == CKPT_OK; i++)
      st = ckpt_ocdbt_get_varint(in, "child data file id", &file[i], err);
    for (size_t i = 0; i < n && st == CKPT_OK; i++)
      st = ckpt_ocdbt_get_varint(in, "child offset", &off[i], err);
    for (size_t i = 0; i < n && st == CKPT_OK; i++)
      st = ckpt_ocdbt_get_varint(in, "child length", &len[i], err);
    /* Statistics (num_keys, num_tree_bytes, num_indirect_value_bytes): read, not trusted. */
    for (size_t k = 0; k < 3 * n && st == CKPT_OK; k++)
      st = ckpt_ocdbt_get_varint(in, "child statistics", &stat[k % n], err);
    if (st == CKPT_OK && ckpt_ocdbt_in_left(in) != 0)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: %zu unexpected bytes after the last entry",
                          in->where, ckpt_ocdbt_in_left(in));
    for (size_t i = 0; i < n && st == CKPT_OK; i++) {
      node_ref c = {0, off[i], len[i], NULL};
      st = resolve(db, in, &t, r->transitive, file[i], &c.file, &c.transitive, err);
      size_t cl = pl + (size_t)scpl[i];
      char *cp = st == CKPT_OK ? malloc(cl + 1) : NULL;
      if (st == CKPT_OK && !cp) st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      if (st == CKPT_OK) {
        memcpy(cp, prefix, pl);
        memcpy(cp + pl, keys[i], (size_t)scpl[i]);
        cp[cl] = '\0';
        st = read_btree(db, &c, height - 1u, cp, cl, err);
      }
      free(cp);
      free(c.transitive);
    }
  }
  free(vals);
  free(store);
  free(keys);
  free(klen);
  free(scpl);
  ckpt_ocdbt_file_table_free(&t);
  return st;
}

static ckpt_status read_btree(ckpt_ocdbt *db, const node_ref *r, unsigned height,
                              const char *prefix, size_t pl, ckpt_error *err) {
  uint8_t *body;
  size_t n;
  ckpt_status st = load_node(db, r, CKPT_OCDBT_BTREE_NODE_MAGIC, "B+tree node", &body, &n, err);
  if (st != CKPT_OK) return st;
  char where[600];
  node_where(where, sizeof where, db, r, "B+tree node");
  ckpt_ocdbt_in in = ckpt_ocdbt_in_make(body, n, where);
  st = decode_btree(db, r, &in, height, prefix, pl, err);
  free(body);
  return st;
}

/* ---------------------------------------------------------------- version tree */

/* The latest version found: its B+tree root. */
typedef struct version {
  bool found;
  uint64_t generation;
  uint8_t root_height;
  node_ref root;
} version;

/* Leaf entries (inline versions of a manifest, or a leaf version node): keeps the last. */
static ckpt_status decode_versions(ckpt_ocdbt *db, ckpt_ocdbt_in *in,
                                   const ckpt_ocdbt_file_table *t, const char *trans,
                                   version *out, ckpt_error *err) {
  uint64_t n;
  ckpt_status st = ckpt_ocdbt_get_varint_max(in, "version count",
                                             (uint64_t)1 << db->arity_log2, &n, err);
  if (st != CKPT_OK || n == 0) return st;
  uint64_t *v = calloc((size_t)n * 8, sizeof *v);
  uint8_t *heights = calloc((size_t)n, 1);
  if (!v || !heights) {
    free(v);
    free(heights);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  uint64_t *gen = v, *file = v + n, *off = v + 2 * n, *len = v + 3 * n, *stat = v + 4 * n;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    st = ckpt_ocdbt_get_varint(in, "generation number", &gen[i], err);
    if (st == CKPT_OK && (gen[i] == 0 || (i > 0 && gen[i] <= gen[i - 1])))
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: generation numbers must be non-zero and "
                          "increasing (version %zu: %llu)", in->where, i,
                          (unsigned long long)gen[i]);
  }
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_u8(in, "root height", &heights[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "root data file id", &file[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "root offset", &off[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "root length", &len[i], err);
  for (size_t k = 0; k < 3 * n && st == CKPT_OK; k++)
    st = ckpt_ocdbt_get_varint(in, "version statistics", &stat[k % n], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_u64le(in, "commit time", &stat[i], err);
  if (st == CKPT_OK) {
    uint64_t last = n - 1;
    uint64_t limit = (gen[last] - 1) % ((uint64_t)1 << db->arity_log2) + 1;
    if (n > limit)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: %llu versions, at most %llu allowed for "
                          "generation %llu", in->where, (unsigned long long)n,
                          (unsigned long long)limit, (unsigned long long)gen[last]);
  }
  if (st == CKPT_OK && heights[n - 1] > CKPT_OCDBT_MAX_HEIGHT)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: B+tree height %u exceeds %u", in->where,
                        heights[n - 1], CKPT_OCDBT_MAX_HEIGHT);
  if (st == CKPT_OK) {
    size_t i = (size_t)n - 1;
    out->found = true;
    out->generation = gen[i];
    out->root_height = heights[i];
    out->root.offset = off[i];
    out->root.length = len[i];
    free(out->root.transitive);
    out->root.transitive = NULL;
    /* length 0: the version has no root node (an empty database) */
    if (len[i] != 0)
      st = resolve(db, in, t, trans, file[i], &out->root.file, &out->root.transitive, err);
  }
  free(v);
  free(heights);
  return st;
}

static ckpt_status read_version_node(ckpt_ocdbt *db, const node_ref *r, unsigned height,
                                     version *out, ckpt_error *err);

/* Interior entries (version nodes of a manifest when with_heights, or an interior node's
 * children): descends into the last, which holds the latest generation. */
static ckpt_status decode_version_refs(ckpt_ocdbt *db, ckpt_ocdbt_in *in,
                                       const ckpt_ocdbt_file_table *t, const char *trans,
                                       bool with_heights, unsigned node_height, version *out,
                                       ckpt_error *err) {
  uint64_t n;
  ckpt_status st = ckpt_ocdbt_get_varint_max(in, "version node count", 64u << 8, &n, err);
  if (st != CKPT_OK || n == 0) return st;
  uint64_t *v = calloc((size_t)n * 7, sizeof *v);
  if (!v) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  uint64_t *gen = v, *file = v + n, *off = v + 2 * n, *len = v + 3 * n, *stat = v + 4 * n;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    st = ckpt_ocdbt_get_varint(in, "generation number", &gen[i], err);
    if (st == CKPT_OK && (gen[i] == 0 || (i > 0 && gen[i] <= gen[i - 1])))
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: generation numbers must be non-zero and "
                          "increasing (entry %zu: %llu)", in->where, i,
                          (unsigned long long)gen[i]);
  }
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "node data file id", &file[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "node offset", &off[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "node length", &len[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "generation count", &stat[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_u64le(in, "commit time", &stat[i], err);
  uint8_t last_height = node_height > 0 ? (uint8_t)(node_height - 1) : 0;
  for (size_t i = 0; i < n && st == CKPT_OK && with_heights; i++) {
    uint8_t h;
    st = ckpt_ocdbt_get_u8(in, "version node height", &h, err);
    if (st == CKPT_OK && (h > CKPT_OCDBT_MAX_HEIGHT || (i > 0 && h >= last_height)))
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: version node height %u invalid (entry %zu)",
                          in->where, h, i);
    last_height = h;
  }
  /* The latest generation is in the last entry; inline versions of a manifest are newer
   * still, so the caller descends only when it found none. */
  if (st == CKPT_OK && !out->found) {
    size_t i = (size_t)n - 1;
    node_ref c = {0, off[i], len[i], NULL};
    st = resolve(db, in, t, trans, file[i], &c.file, &c.transitive, err);
    if (st == CKPT_OK) st = read_version_node(db, &c, last_height, out, err);
    free(c.transitive);
  }
  free(v);
  return st;
}

static ckpt_status read_version_node(ckpt_ocdbt *db, const node_ref *r, unsigned height,
                                     version *out, ckpt_error *err) {
  uint8_t *body;
  size_t n;
  ckpt_status st =
      load_node(db, r, CKPT_OCDBT_VERSION_NODE_MAGIC, "version tree node", &body, &n, err);
  if (st != CKPT_OK) return st;
  char where[600];
  node_where(where, sizeof where, db, r, "version tree node");
  ckpt_ocdbt_in in = ckpt_ocdbt_in_make(body, n, where);
  uint8_t arity, h;
  ckpt_ocdbt_file_table t = {0};
  st = ckpt_ocdbt_get_u8(&in, "version tree arity", &arity, err);
  if (st == CKPT_OK && arity != db->arity_log2)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: arity log2 %u differs from the manifest's %u",
                        where, arity, db->arity_log2);
  if (st == CKPT_OK) st = ckpt_ocdbt_get_u8(&in, "height", &h, err);
  if (st == CKPT_OK && h != height)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: height %u, expected %u", where, h, height);
  if (st == CKPT_OK) st = ckpt_ocdbt_get_file_table(&in, &t, err);
  if (st == CKPT_OK && h == 0)
    st = decode_versions(db, &in, &t, r->transitive, out, err);
  else if (st == CKPT_OK)
    st = decode_version_refs(db, &in, &t, r->transitive, false, h, out, err);
  if (st == CKPT_OK && ckpt_ocdbt_in_left(&in) != 0)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: %zu unexpected bytes at the end", where,
                        ckpt_ocdbt_in_left(&in));
  ckpt_ocdbt_file_table_free(&t);
  free(body);
  return st;
}

/* ---------------------------------------------------------------- manifest */

typedef struct config {
  uint64_t kind;
} config;

static ckpt_status decode_config(ckpt_ocdbt *db, ckpt_ocdbt_in *in, config *c, ckpt_error *err) {
  const uint8_t *uuid;
  uint64_t inline_max, decoded_max, method;
  ckpt_status st = ckpt_ocdbt_get_bytes(in, "uuid", CKPT_OCDBT_UUID_BYTES, &uuid, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_varint_max(in, "manifest kind", CKPT_OCDBT_MANIFEST_KIND_NUMBERED,
                                   &c->kind, err);
  if (st == CKPT_OK) st = ckpt_ocdbt_get_varint(in, "max inline value bytes", &inline_max, err);
  if (st == CKPT_OK) st = ckpt_ocdbt_get_varint(in, "max decoded node bytes", &decoded_max, err);
  if (st == CKPT_OK) st = ckpt_ocdbt_get_u8(in, "version tree arity log2", &db->arity_log2, err);
  if (st == CKPT_OK && (db->arity_log2 == 0 || db->arity_log2 > 16))
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: version tree arity log2 %u (1 to 16 allowed)",
                        in->where, db->arity_log2);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_varint_max(in, "compression method", CKPT_OCDBT_CONFIG_COMPRESSION_ZSTD,
                                   &method, err);
  if (st == CKPT_OK && method == CKPT_OCDBT_CONFIG_COMPRESSION_ZSTD) {
    uint32_t level;
    st = ckpt_ocdbt_get_u32le(in, "zstd level", &level, err);
  }
  db->max_decoded = decoded_max < CKPT_OCDBT_DECODED_MAX ? decoded_max : CKPT_OCDBT_DECODED_MAX;
  (void)inline_max;
  return st;
}

/* Decodes a manifest's bytes; with kind numbered in the config, reports it in *numbered and
 * reads nothing more. */
static ckpt_status decode_manifest(ckpt_ocdbt *db, const void *data, size_t n, const char *where,
                                   bool *numbered, version *ver, ckpt_error *err) {
  uint8_t *body;
  size_t bl;
  ckpt_status st = ckpt_ocdbt_open_envelope(data, n, CKPT_OCDBT_MANIFEST_MAGIC,
                                            CKPT_OCDBT_MANIFEST_MAX, where, &body, &bl, err);
  if (st != CKPT_OK) return st;
  ckpt_ocdbt_in in = ckpt_ocdbt_in_make(body, bl, where);
  config c;
  ckpt_ocdbt_file_table t = {0};
  *numbered = false;
  st = decode_config(db, &in, &c, err);
  if (st == CKPT_OK && c.kind == CKPT_OCDBT_MANIFEST_KIND_NUMBERED) {
    *numbered = true;
  } else if (st == CKPT_OK) {
    st = ckpt_ocdbt_get_file_table(&in, &t, err);
    if (st == CKPT_OK) st = decode_versions(db, &in, &t, "", ver, err);
    if (st == CKPT_OK) st = decode_version_refs(db, &in, &t, "", true, 0, ver, err);
  }
  if (st == CKPT_OK && ckpt_ocdbt_in_left(&in) != 0)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: %zu unexpected bytes at the end", where,
                        ckpt_ocdbt_in_left(&in));
  ckpt_ocdbt_file_table_free(&t);
  free(body);
  return st;
}

/* Numbered kind: the manifest.<16 hex> with the highest number. */
static ckpt_status latest_numbered(ckpt_ocdbt *db, char **name, ckpt_error *err) {
  char **names;
  size_t count;
  ckpt_status st = ckpt_io_list_dir(db->io, db->dir, &names, &count, err);
  if (st != CKPT_OK) return st;
  const char *best = NULL;
  size_t pl = strlen(CKPT_OCDBT_NUMBERED_PREFIX);
  for (size_t i = 0; i < count; i++) {
    const char *s = names[i];
    if (strncmp(s, CKPT_OCDBT_NUMBERED_PREFIX, pl) != 0 ||
        strlen(s) != pl + CKPT_OCDBT_NUMBERED_DIGITS)
      continue;
    bool hex = true;
    for (size_t k = pl; s[k]; k++)
      hex &= (s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'f');
    if (hex && (!best || strcmp(s, best) > 0)) best = s; /* fixed width: text order */
  }
  if (!best)
    st = ckpt_error_set(err, CKPT_EINCOMPLETE, "'%s/%s' says the version tree is in numbered "
                        "manifests, but there is no %s<%d hex digits> file", db->dir,
                        CKPT_OCDBT_MANIFEST_FILE, CKPT_OCDBT_NUMBERED_PREFIX,
                        CKPT_OCDBT_NUMBERED_DIGITS);
  else if (!(*name = strdup(best)))
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_free_names(names, count);
  return st;
}

static int cmp_entry(const void *a, const void *b) {
  const entry *x = a, *y = b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  if (c) return c;
  return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

static ckpt_status db_new(ckpt_io *io, const char *dir, ckpt_ocdbt **out, ckpt_error *err) {
  ckpt_ocdbt *db = calloc(1, sizeof *db);
  if (!db) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  db->io = io;
  db->dir = strdup(dir);
  db->max_decoded = CKPT_OCDBT_DECODED_MAX;
  pthread_mutex_init(&db->mu, NULL);
  if (!db->dir) {
    ckpt_ocdbt_close(db);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  *out = db;
  return CKPT_OK;
}

/* After the manifest: the latest version's tree, sorted and checked for duplicates. */
static ckpt_status load_version(ckpt_ocdbt *db, version *ver, ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  if (ver->found) {
    db->generation = ver->generation;
    if (ver->root.length != 0)
      st = read_btree(db, &ver->root, ver->root_height, "", 0, err);
  }
  free(ver->root.transitive);
  ver->root.transitive = NULL;
  if (st != CKPT_OK) return st;
  qsort(db->entries, db->n, sizeof *db->entries, cmp_entry);
  for (size_t i = 1; i < db->n; i++)
    if (cmp_entry(&db->entries[i - 1], &db->entries[i]) == 0)
      return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': key '%s' appears twice in the B+tree",
                            db->dir, db->entries[i].key);
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_open_manifest(ckpt_io *io, const char *dir, const void *manifest,
                                     size_t n, const char *where, ckpt_ocdbt **out,
                                     ckpt_error *err) {
  *out = NULL;
  ckpt_ocdbt *db;
  ckpt_status st = db_new(io, dir, &db, err);
  if (st != CKPT_OK) return st;
  version ver = {0};
  bool numbered = false;
  st = decode_manifest(db, manifest, n, where, &numbered, &ver, err);
  if (st == CKPT_OK && numbered)
    st = ckpt_error_set(err, CKPT_EINVAL, "%s: a numbered-kind manifest holds no version tree",
                        where);
  if (st == CKPT_OK) st = load_version(db, &ver, err);
  free(ver.root.transitive);
  if (st != CKPT_OK) {
    ckpt_ocdbt_close(db);
    return st;
  }
  *out = db;
  return CKPT_OK;
}

static ckpt_status read_manifest_file(ckpt_ocdbt *db, const char *name, void **data, size_t *n,
                                      char **path, ckpt_error *err) {
  *path = ckpt_path_join(db->dir, name);
  if (!*path) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_error local = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_io_read_file(db->io, *path, CKPT_OCDBT_MANIFEST_MAX, data, n, &local);
  if (st == CKPT_ENOENT)
    return ckpt_error_set(err, CKPT_EINCOMPLETE, "OCDBT manifest '%s' is missing", *path);
  if (st != CKPT_OK && err && err->code == CKPT_OK) *err = local;
  return st;
}

ckpt_status ckpt_ocdbt_open(ckpt_io *io, const char *dir, ckpt_ocdbt **out, ckpt_error *err) {
  *out = NULL;
  ckpt_ocdbt *db;
  ckpt_status st = db_new(io, dir, &db, err);
  if (st != CKPT_OK) return st;
  void *data = NULL;
  size_t n = 0;
  char *path = NULL, *numbered_name = NULL;
  version ver = {0};
  bool numbered = false;
  st = read_manifest_file(db, CKPT_OCDBT_MANIFEST_FILE, &data, &n, &path, err);
  if (st == CKPT_OK) {
    char where[600];
    snprintf(where, sizeof where, "'%s'", path);
    st = decode_manifest(db, data, n, where, &numbered, &ver, err);
  }
  if (st == CKPT_OK && numbered) {
    free(data);
    free(path);
    data = NULL;
    path = NULL;
    st = latest_numbered(db, &numbered_name, err);
    if (st == CKPT_OK) st = read_manifest_file(db, numbered_name, &data, &n, &path, err);
    if (st == CKPT_OK) {
      char where[600];
      snprintf(where, sizeof where, "'%s'", path);
      st = decode_manifest(db, data, n, where, &numbered, &ver, err);
      if (st == CKPT_OK && numbered)
        st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: a numbered manifest must hold the version "
                            "tree (manifest kind single)", where);
    }
  }
  if (st == CKPT_OK) {
    db->manifest_path = path;
    path = NULL;
    st = load_version(db, &ver, err);
  }
  free(ver.root.transitive);
  free(numbered_name);
  free(data);
  free(path);
  if (st != CKPT_OK) {
    ckpt_ocdbt_close(db);
    return st;
  }
  *out = db;
  return CKPT_OK;
}

void ckpt_ocdbt_close(ckpt_ocdbt *db) {
  if (!db) return;
  for (size_t i = 0; i < db->n_files; i++) {
    if (db->files[i].fd >= 0) ckpt_io_close(db->io, db->files[i].fd, db->files[i].path, NULL);
    free(db->files[i].rel);
    free(db->files[i].path);
  }
  free(db->files);
  for (size_t i = 0; i < db->n; i++) {
    free(db->entries[i].key);
    free(db->entries[i].owned);
  }
  free(db->entries);
  pthread_mutex_destroy(&db->mu);
  free(db->manifest_path);
  free(db->dir);
  free(db);
}

bool ckpt_ocdbt_present(ckpt_io *io, const char *dir) {
  char *path = ckpt_path_join(dir, CKPT_OCDBT_MANIFEST_FILE);
  if (!path) return false;
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  bool ok = ckpt_io_stat(io, path, &kind, &size, NULL) == CKPT_OK && kind != CKPT_IO_KIND_MISSING;
  free(path);
  return ok;
}

/* ---------------------------------------------------------------- lookups */

const char *ckpt_ocdbt_dir(const ckpt_ocdbt *db) { return db->dir; }
uint64_t ckpt_ocdbt_generation(const ckpt_ocdbt *db) { return db->generation; }
size_t ckpt_ocdbt_count(const ckpt_ocdbt *db) { return db->n; }

const char *ckpt_ocdbt_key(const ckpt_ocdbt *db, size_t i, size_t *len) {
  if (len) *len = db->entries[i].key_len;
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
    if (cmp_entry(&db->entries[mid], &probe) < 0)
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

void ckpt_ocdbt_prefix_range(const ckpt_ocdbt *db, const char *prefix, size_t *begin,
                             size_t *end) {
  size_t len = strlen(prefix), i = lower_bound(db, prefix, len), j = i;
  while (j < db->n && db->entries[j].key_len >= len &&
         memcmp(db->entries[j].key, prefix, len) == 0)
    j++;
  *begin = i;
  *end = j;
}

size_t ckpt_ocdbt_n_files(const ckpt_ocdbt *db) { return db->n_files; }

const char *ckpt_ocdbt_file_path(const ckpt_ocdbt *db, uint32_t file) {
  return file < db->n_files ? db->files[file].path : NULL;
}

/* ---------------------------------------------------------------- values */

ckpt_status ckpt_ocdbt_value_fd(ckpt_ocdbt *db, const ckpt_ocdbt_value *v, const char *key,
                                int *fd, const char **path, ckpt_error *err) {
  if (v->is_inline || v->file >= db->n_files)
    return ckpt_error_set(err, CKPT_EINVAL, "'%s': key '%s' has no data file", db->dir, key);
  char what[300];
  snprintf(what, sizeof what, "the value of key '%.250s'", key);
  uint64_t size;
  ckpt_status st = file_fd(db, v->file, what, fd, &size, err);
  if (st == CKPT_OK) st = check_range(&db->files[v->file], v->offset, v->length, size, what, err);
  *path = db->files[v->file].path;
  return st;
}

ckpt_status ckpt_ocdbt_read(ckpt_ocdbt *db, size_t i, void *buf, ckpt_error *err) {
  const entry *e = &db->entries[i];
  if (e->v.is_inline) {
    if (e->v.length) memcpy(buf, e->v.bytes, (size_t)e->v.length);
    return CKPT_OK;
  }
  int fd;
  const char *path;
  ckpt_status st = ckpt_ocdbt_value_fd(db, &e->v, e->key, &fd, &path, err);
  if (st != CKPT_OK) return st;
  size_t got = 0;
  st = ckpt_io_pread_all(db->io, fd, path, buf, (size_t)e->v.length, e->v.offset, &got, err);
  if (st == CKPT_OK && got != e->v.length)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s': the value of key '%s' at offset %llu: file "
                        "shrank while being read", path, e->key,
                        (unsigned long long)e->v.offset);
  return st;
}

ckpt_status ckpt_ocdbt_read_key(ckpt_ocdbt *db, const char *key, size_t max, void **data,
                                size_t *n, ckpt_error *err) {
  size_t i;
  if (!ckpt_ocdbt_find(db, key, &i))
    return ckpt_error_set(err, CKPT_ENOENT, "key '%s' is not in the OCDBT database '%s'", key,
                          db->dir);
  uint64_t len = db->entries[i].v.length;
  if (len > max)
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': the value of key '%s' has %llu bytes, more "
                          "than the %zu allowed", db->dir, key, (unsigned long long)len, max);
  char *buf = malloc((size_t)len + 1);
  if (!buf) return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
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
