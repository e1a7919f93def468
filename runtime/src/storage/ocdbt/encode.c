/* storage/ocdbt/encode.c — B+tree nodes and manifests of OCDBT as bytes (see encode.h).
 *
 * Written from TensorStore's format description (kvstore/ocdbt/index.rst) and checked against
 * the databases Orbax wrote (their manifests and nodes decode field by field the same way). */
#include "storage/ocdbt/encode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zstd.h>

#include "util/crc32c.h"

/* TensorStore's bound on keys. */
#define MAX_KEY_LENGTH 65535u
#define MAX_PATH_LENGTH CKPT_OCDBT_MAX_PATH

/* ---------------------------------------------------------------- bytes */

void ckpt_ocdbt_buf_free(ckpt_ocdbt_buf *b) {
  free(b->p);
  *b = (ckpt_ocdbt_buf){0};
}

static bool reserve(ckpt_ocdbt_buf *b, size_t more) {
  if (b->failed)
    return false;
  if (more <= b->cap - b->n)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->n < more) {
    if (cap > SIZE_MAX / 2) {
      b->failed = true;
      return false;
    }
    cap *= 2;
  }
  unsigned char *p = realloc(b->p, cap);
  if (p == NULL) {
    b->failed = true;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

void ckpt_ocdbt_put(ckpt_ocdbt_buf *b, const void *data, size_t n) {
  if (n == 0 || !reserve(b, n))
    return;
  memcpy(b->p + b->n, data, n);
  b->n += n;
}

static void put_u8(ckpt_ocdbt_buf *b, uint8_t v) {
  ckpt_ocdbt_put(b, &v, 1);
}

void ckpt_ocdbt_put_varint(ckpt_ocdbt_buf *b, uint64_t v) {
  unsigned char tmp[10];
  size_t n = 0;
  do {
    unsigned char byte = v & 0x7f;
    v >>= 7;
    tmp[n++] = byte | (v ? 0x80 : 0);
  } while (v);
  ckpt_ocdbt_put(b, tmp, n);
}

static void put_le(ckpt_ocdbt_buf *b, uint64_t v, size_t n) {
  unsigned char tmp[8];
  for (size_t i = 0; i < n; i++)
    tmp[i] = (unsigned char)(v >> (8 * i));
  ckpt_ocdbt_put(b, tmp, n);
}

static size_t common_prefix(const char *a, size_t an, const char *b, size_t bn) {
  size_t n = an < bn ? an : bn, i = 0;
  while (i < n && a[i] == b[i])
    i++;
  return i;
}

int ckpt_ocdbt_key_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c != 0)
    return c;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/* ---------------------------------------------------------------- data-file tables */

int ckpt_ocdbt_file_id_cmp(const ckpt_ocdbt_file_id *a, const ckpt_ocdbt_file_id *b) {
  int c = strcmp(a->base_path, b->base_path);
  return c != 0 ? c : strcmp(a->relative_path, b->relative_path);
}

/* Prefix compression over path = base_path + relative_path; the common prefix may reach into
 * the relative paths only when the base paths are equal (the format's rule, which lets a reader
 * split each path back into its two parts). */
void ckpt_ocdbt_put_file_table(ckpt_ocdbt_buf *b, const ckpt_ocdbt_file_id *files, size_t n) {
  ckpt_ocdbt_put_varint(b, n);
  if (n == 0)
    return;
  size_t *prefix = calloc(n, sizeof *prefix);
  if (prefix == NULL) {
    b->failed = true;
    return;
  }
  for (size_t i = 1; i < n; i++) {
    const ckpt_ocdbt_file_id *p = &files[i - 1], *c = &files[i];
    size_t pb = strlen(p->base_path), cb = strlen(c->base_path);
    size_t k = common_prefix(p->base_path, pb, c->base_path, cb);
    if (pb == cb && k == cb)
      k += common_prefix(p->relative_path, strlen(p->relative_path), c->relative_path,
                         strlen(c->relative_path));
    prefix[i] = k;
    ckpt_ocdbt_put_varint(b, k);
  }
  for (size_t i = 0; i < n; i++)
    ckpt_ocdbt_put_varint(b,
                          strlen(files[i].base_path) + strlen(files[i].relative_path) - prefix[i]);
  for (size_t i = 0; i < n; i++)
    ckpt_ocdbt_put_varint(b, strlen(files[i].base_path));
  for (size_t i = 0; i < n; i++) {
    size_t bl = strlen(files[i].base_path);
    size_t skip_base = prefix[i] < bl ? prefix[i] : bl;
    ckpt_ocdbt_put(b, files[i].base_path + skip_base, bl - skip_base);
    const char *rel = files[i].relative_path;
    ckpt_ocdbt_put(b, rel + (prefix[i] - skip_base), strlen(rel) - (prefix[i] - skip_base));
  }
  free(prefix);
}

/* ---------------------------------------------------------------- framing */

/* Appends a framed, zstd-compressed node or manifest with this body to *out; *len receives its
 * encoded length. */
static ckpt_status frame(ckpt_ocdbt_buf *out, uint32_t magic, const ckpt_ocdbt_buf *body, int level,
                         uint64_t *len, ckpt_error *err) {
  if (body->failed || out->failed)
    return ckpt_error_set(err, CKPT_ENOMEM, "OCDBT: out of memory encoding a node");
  size_t start = out->n;
  unsigned char m[4] = {(unsigned char)(magic >> 24), (unsigned char)(magic >> 16),
                        (unsigned char)(magic >> 8), (unsigned char)magic};
  ckpt_ocdbt_put(out, m, 4);
  put_le(out, 0, 8); /* the length, patched below */
  ckpt_ocdbt_put_varint(out, CKPT_OCDBT_FORMAT_VERSION);
  ckpt_ocdbt_put_varint(out, CKPT_OCDBT_COMPRESSION_ZSTD);
  size_t bound = ZSTD_compressBound(body->n);
  if (!reserve(out, bound + 4))
    return ckpt_error_set(err, CKPT_ENOMEM, "OCDBT: out of memory encoding a node");
  size_t z =
      ZSTD_compress(out->p + out->n, bound, body->p != NULL ? body->p : (void *)"", body->n, level);
  if (ZSTD_isError(z))
    return ckpt_error_set(err, CKPT_EIO, "OCDBT: zstd compression of a node failed: %s",
                          ZSTD_getErrorName(z));
  out->n += z;
  uint64_t total = out->n - start + 4;
  for (size_t i = 0; i < 8; i++)
    out->p[start + 4 + i] = (unsigned char)(total >> (8 * i));
  put_le(out, ckpt_crc32c(0, out->p + start, out->n - start), 4);
  if (out->failed)
    return ckpt_error_set(err, CKPT_ENOMEM, "OCDBT: out of memory encoding a node");
  *len = total;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- B+tree */

/* A node built: the keys of its subtree are kvs[first .. last], and where its bytes went. */
typedef struct built {
  size_t first, last;
  uint64_t offset, length;
  uint64_t num_keys, num_tree_bytes, num_indirect_value_bytes;
} built;

static size_t subtree_prefix(const ckpt_ocdbt_kv *kvs, const built *b) {
  return common_prefix(kvs[b->first].key, kvs[b->first].key_len, kvs[b->last].key,
                       kvs[b->last].key_len);
}

/* The key columns shared by leaves and interior nodes: prefix lengths (n-1), suffix lengths,
 * for interior nodes the subtree prefix lengths (scpl, may be NULL), then the suffixes. Keys
 * key(i) are relative to the node's prefix of p bytes. */
typedef struct key_src {
  const ckpt_ocdbt_kv *kvs;
  const size_t *index; /* the entries' kv indices */
} key_src;

static void put_keys(ckpt_ocdbt_buf *b, const key_src *s, size_t n, size_t p, const size_t *scpl) {
  for (size_t i = 1; i < n; i++) {
    const ckpt_ocdbt_kv *a = &s->kvs[s->index[i - 1]], *c = &s->kvs[s->index[i]];
    ckpt_ocdbt_put_varint(b, common_prefix(a->key + p, a->key_len - p, c->key + p, c->key_len - p));
  }
  for (size_t i = 0; i < n; i++) {
    const ckpt_ocdbt_kv *c = &s->kvs[s->index[i]];
    size_t k = 0;
    if (i > 0) {
      const ckpt_ocdbt_kv *a = &s->kvs[s->index[i - 1]];
      k = common_prefix(a->key + p, a->key_len - p, c->key + p, c->key_len - p);
    }
    ckpt_ocdbt_put_varint(b, c->key_len - p - k);
  }
  if (scpl != NULL)
    for (size_t i = 0; i < n; i++)
      ckpt_ocdbt_put_varint(b, scpl[i]);
  for (size_t i = 0; i < n; i++) {
    const ckpt_ocdbt_kv *c = &s->kvs[s->index[i]];
    size_t k = 0;
    if (i > 0) {
      const ckpt_ocdbt_kv *a = &s->kvs[s->index[i - 1]];
      k = common_prefix(a->key + p, a->key_len - p, c->key + p, c->key_len - p);
    }
    ckpt_ocdbt_put(b, c->key + p + k, c->key_len - p - k);
  }
}

typedef struct tree_ctx {
  const ckpt_ocdbt_kv *kvs;
  const ckpt_ocdbt_tree_opts *o;
  ckpt_ocdbt_buf *nodes;
  size_t *index; /* scratch: [n] */
  size_t *local; /* scratch: [n_files] global file → local id + 1 (0: not in the node) */
  size_t *order; /* scratch: [n_files] the node's files */
  ckpt_ocdbt_buf body;
} tree_ctx;

/* Sorts a node's file indices by their paths: an insertion sort, as a node names a few files
 * (qsort has no context argument, and a global would race between saves). */
static void sort_files(size_t *order, size_t n, const ckpt_ocdbt_file_id *files) {
  for (size_t i = 1; i < n; i++) {
    size_t v = order[i], k = i;
    while (k > 0 && ckpt_ocdbt_file_id_cmp(&files[order[k - 1]], &files[v]) > 0) {
      order[k] = order[k - 1];
      k--;
    }
    order[k] = v;
  }
}

/* Encodes the leaf of kvs[first .. last]; root: its keys are whole (no implicit prefix). */
static ckpt_status encode_leaf(tree_ctx *t, built *out, bool root, ckpt_error *err) {
  const ckpt_ocdbt_kv *kvs = t->kvs;
  size_t n = out->last - out->first + 1;
  size_t p = root ? 0 : subtree_prefix(kvs, out);
  ckpt_ocdbt_buf *b = &t->body;
  b->n = 0;
  put_u8(b, 0);
  /* The node's data-file table: the files its indirect values are in, sorted. */
  size_t nf = 0;
  out->num_indirect_value_bytes = 0;
  for (size_t i = out->first; i <= out->last; i++) {
    t->index[i - out->first] = i;
    if (kvs[i].indirect) {
      out->num_indirect_value_bytes += kvs[i].length;
      if (t->local[kvs[i].file] == 0) {
        t->local[kvs[i].file] = 1;
        t->order[nf++] = kvs[i].file;
      }
    }
  }
  ckpt_ocdbt_file_id *table = malloc((nf ? nf : 1) * sizeof *table);
  if (table == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "OCDBT: out of memory encoding a leaf");
  sort_files(t->order, nf, t->o->files);
  for (size_t i = 0; i < nf; i++) {
    table[i] = t->o->files[t->order[i]];
    t->local[t->order[i]] = i + 1;
  }
  ckpt_ocdbt_put_file_table(b, table, nf);
  free(table);
  ckpt_ocdbt_put_varint(b, n);
  key_src s = {kvs, t->index};
  put_keys(b, &s, n, p, NULL);
  for (size_t i = out->first; i <= out->last; i++)
    ckpt_ocdbt_put_varint(b, kvs[i].length);
  for (size_t i = out->first; i <= out->last; i++)
    put_u8(b, kvs[i].indirect ? CKPT_OCDBT_VALUE_INDIRECT : CKPT_OCDBT_VALUE_INLINE);
  for (size_t i = out->first; i <= out->last; i++)
    if (kvs[i].indirect)
      ckpt_ocdbt_put_varint(b, t->local[kvs[i].file] - 1);
  for (size_t i = out->first; i <= out->last; i++)
    if (kvs[i].indirect)
      ckpt_ocdbt_put_varint(b, kvs[i].offset);
  for (size_t i = out->first; i <= out->last; i++)
    if (!kvs[i].indirect)
      ckpt_ocdbt_put(b, kvs[i].value, (size_t)kvs[i].length);
  for (size_t i = 0; i < nf; i++)
    t->local[t->order[i]] = 0;
  out->offset = t->nodes->n;
  out->num_keys = n;
  ckpt_status st =
      frame(t->nodes, CKPT_OCDBT_BTREE_NODE_MAGIC, b, t->o->zstd_level, &out->length, err);
  out->num_tree_bytes = out->length;
  return st;
}

/* Encodes the interior node over children[0 .. n) at this height. */
static ckpt_status encode_interior(tree_ctx *t, const built *children, size_t n, uint8_t height,
                                   built *out, bool root, ckpt_error *err) {
  const ckpt_ocdbt_kv *kvs = t->kvs;
  out->first = children[0].first;
  out->last = children[n - 1].last;
  size_t p = root ? 0 : subtree_prefix(kvs, out);
  size_t *scpl = malloc(n * sizeof *scpl);
  if (scpl == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "OCDBT: out of memory encoding a node");
  for (size_t i = 0; i < n; i++) {
    t->index[i] = children[i].first;
    scpl[i] = subtree_prefix(kvs, &children[i]) - p;
  }
  ckpt_ocdbt_buf *b = &t->body;
  b->n = 0;
  put_u8(b, height);
  ckpt_ocdbt_file_id self = {"", t->o->node_file};
  ckpt_ocdbt_put_file_table(b, &self, 1);
  ckpt_ocdbt_put_varint(b, n);
  key_src s = {kvs, t->index};
  put_keys(b, &s, n, p, scpl);
  free(scpl);
  *out = (built){.first = out->first, .last = out->last};
  for (size_t i = 0; i < n; i++)
    ckpt_ocdbt_put_varint(b, 0);
  for (size_t i = 0; i < n; i++)
    ckpt_ocdbt_put_varint(b, children[i].offset);
  for (size_t i = 0; i < n; i++)
    ckpt_ocdbt_put_varint(b, children[i].length);
  for (size_t i = 0; i < n; i++) {
    ckpt_ocdbt_put_varint(b, children[i].num_keys);
    out->num_keys += children[i].num_keys;
  }
  for (size_t i = 0; i < n; i++) {
    ckpt_ocdbt_put_varint(b, children[i].num_tree_bytes);
    out->num_tree_bytes += children[i].num_tree_bytes;
  }
  for (size_t i = 0; i < n; i++) {
    ckpt_ocdbt_put_varint(b, children[i].num_indirect_value_bytes);
    out->num_indirect_value_bytes += children[i].num_indirect_value_bytes;
  }
  out->offset = t->nodes->n;
  ckpt_status st =
      frame(t->nodes, CKPT_OCDBT_BTREE_NODE_MAGIC, b, t->o->zstd_level, &out->length, err);
  out->num_tree_bytes += out->length;
  return st;
}

/* Decoded bytes an entry adds to a node, roughly (varints at their widest): what splits nodes. */
static size_t leaf_entry_bytes(const ckpt_ocdbt_kv *kv) {
  return kv->key_len + 24 + (kv->indirect ? 0 : (size_t)kv->length);
}

static ckpt_status check_kvs(const ckpt_ocdbt_kv *kvs, size_t n, const ckpt_ocdbt_tree_opts *o,
                             ckpt_error *err) {
  for (size_t i = 0; i < n; i++) {
    const ckpt_ocdbt_kv *kv = &kvs[i];
    if (kv->key_len > MAX_KEY_LENGTH)
      return ckpt_error_set(err, CKPT_EINVAL, "OCDBT: key '%.100s...' is longer than %u bytes",
                            kv->key, MAX_KEY_LENGTH);
    if (i > 0 && ckpt_ocdbt_key_cmp(kvs[i - 1].key, kvs[i - 1].key_len, kv->key, kv->key_len) >= 0)
      return ckpt_error_set(err, CKPT_EINVAL, "OCDBT: key '%.*s' is out of order or repeated",
                            (int)(kv->key_len > 200 ? 200 : kv->key_len), kv->key);
    if (kv->indirect && kv->file >= o->n_files)
      return ckpt_error_set(err, CKPT_EINVAL, "OCDBT: key '%.*s' names data file %zu of %zu",
                            (int)(kv->key_len > 200 ? 200 : kv->key_len), kv->key, kv->file,
                            o->n_files);
    if (!kv->indirect && kv->length > CKPT_OCDBT_ORBAX_MAX_INLINE_VALUE_BYTES)
      return ckpt_error_set(
          err, CKPT_EINVAL, "OCDBT: key '%.*s': an inline value of %llu bytes (at most %u)",
          (int)(kv->key_len > 200 ? 200 : kv->key_len), kv->key, (unsigned long long)kv->length,
          CKPT_OCDBT_ORBAX_MAX_INLINE_VALUE_BYTES);
  }
  for (size_t i = 0; i < o->n_files; i++)
    if (strlen(o->files[i].base_path) + strlen(o->files[i].relative_path) > MAX_PATH_LENGTH)
      return ckpt_error_set(err, CKPT_EINVAL, "OCDBT: data file path '%.100s' is too long",
                            o->files[i].relative_path);
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_build_tree(const ckpt_ocdbt_kv *kvs, size_t n, const ckpt_ocdbt_tree_opts *o,
                                  ckpt_ocdbt_buf *nodes, ckpt_ocdbt_root *root, ckpt_error *err) {
  if (n == 0)
    return ckpt_error_set(err, CKPT_EINVAL, "OCDBT: a B+tree needs at least one key");
  ckpt_status st = check_kvs(kvs, n, o, err);
  if (st != CKPT_OK)
    return st;
  size_t target = o->target_node_bytes ? o->target_node_bytes : CKPT_OCDBT_TARGET_NODE_BYTES;
  tree_ctx t = {.kvs = kvs, .o = o, .nodes = nodes};
  t.index = malloc(n * sizeof *t.index);
  t.local = calloc(o->n_files ? o->n_files : 1, sizeof *t.local);
  t.order = malloc((o->n_files ? o->n_files : 1) * sizeof *t.order);
  built *level = malloc(n * sizeof *level); /* at most one node per key */
  built *up = malloc(n * sizeof *up);
  if (t.index == NULL || t.local == NULL || t.order == NULL || level == NULL || up == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "OCDBT: out of memory building a B+tree of %zu keys", n);
    goto done;
  }
  /* Leaves: consecutive keys up to the target size (at least one key each). */
  size_t nl = 0;
  for (size_t i = 0; i < n;) {
    size_t bytes = 0, j = i;
    while (j < n && (j == i || (bytes + leaf_entry_bytes(&kvs[j]) <= target &&
                                j - i < CKPT_OCDBT_MAX_NODE_ARITY)))
      bytes += leaf_entry_bytes(&kvs[j++]);
    level[nl++] = (built){.first = i, .last = j - 1};
    i = j;
  }
  size_t n_nodes = 0;
  for (size_t i = 0; st == CKPT_OK && i < nl; i++, n_nodes++)
    st = encode_leaf(&t, &level[i], nl == 1, err);
  uint8_t height = 0;
  while (st == CKPT_OK && nl > 1) {
    height++;
    size_t nu = 0;
    for (size_t i = 0; st == CKPT_OK && i < nl;) {
      size_t bytes = 0, j = i;
      while (j < nl) {
        size_t e = kvs[level[j].first].key_len + 48;
        if (j > i && (bytes + e > target || j - i >= CKPT_OCDBT_MAX_NODE_ARITY))
          break;
        bytes += e;
        j++;
      }
      /* A level that would end in one node of a single child is merged into its neighbour
       * by the next pass anyway; the node is encoded once all groups are known (root-ness). */
      up[nu++] = (built){.first = i, .last = j - 1}; /* child indices, for now */
      i = j;
    }
    for (size_t g = 0; st == CKPT_OK && g < nu; g++, n_nodes++) {
      size_t lo = up[g].first, cnt = up[g].last - up[g].first + 1;
      st = encode_interior(&t, &level[lo], cnt, height, &up[g], nu == 1, err);
    }
    built *tmp = level;
    level = up;
    up = tmp;
    nl = nu;
  }
  if (st == CKPT_OK)
    *root = (ckpt_ocdbt_root){.height = height,
                              .offset = level[0].offset,
                              .length = level[0].length,
                              .num_keys = level[0].num_keys,
                              .num_tree_bytes = level[0].num_tree_bytes,
                              .num_indirect_value_bytes = level[0].num_indirect_value_bytes,
                              .n_nodes = n_nodes};
done:
  free(t.index);
  free(t.local);
  free(t.order);
  free(level);
  free(up);
  ckpt_ocdbt_buf_free(&t.body);
  return st;
}

/* ---------------------------------------------------------------- manifest */

ckpt_status ckpt_ocdbt_random(unsigned char out[16], ckpt_error *err) {
  size_t got = 0;
  while (got < 16) {
    ssize_t r = getrandom(out + got, 16 - got, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return ckpt_error_set(err, CKPT_EIO, "OCDBT: getrandom: %s", strerror(errno));
    }
    got += (size_t)r;
  }
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_data_file_name(char out[35], ckpt_error *err) {
  unsigned char r[16];
  ckpt_status st = ckpt_ocdbt_random(r, err);
  if (st != CKPT_OK)
    return st;
  static const char hex[] = "0123456789abcdef";
  out[0] = 'd';
  out[1] = '/';
  for (size_t i = 0; i < 16; i++) {
    out[2 + 2 * i] = hex[r[i] >> 4];
    out[3 + 2 * i] = hex[r[i] & 15];
  }
  out[34] = '\0';
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_config_init(ckpt_ocdbt_config *c, ckpt_error *err) {
  *c = (ckpt_ocdbt_config){.max_inline_value_bytes = CKPT_OCDBT_ORBAX_MAX_INLINE_VALUE_BYTES,
                           .max_decoded_node_bytes = CKPT_OCDBT_ORBAX_MAX_DECODED_NODE_BYTES,
                           .zstd_level = 0};
  return ckpt_ocdbt_random(c->uuid, err);
}

ckpt_status ckpt_ocdbt_encode_manifest(const ckpt_ocdbt_config *c, const char *node_file,
                                       const ckpt_ocdbt_root *root, uint64_t commit_time_ns,
                                       ckpt_ocdbt_buf *out, ckpt_error *err) {
  ckpt_ocdbt_buf b = {0};
  ckpt_ocdbt_put(&b, c->uuid, 16);
  ckpt_ocdbt_put_varint(&b, CKPT_OCDBT_MANIFEST_KIND_SINGLE); /* the versions are in this file */
  ckpt_ocdbt_put_varint(&b, c->max_inline_value_bytes);
  ckpt_ocdbt_put_varint(&b, c->max_decoded_node_bytes);
  put_u8(&b, CKPT_OCDBT_DEFAULT_VERSION_TREE_ARITY_LOG2);
  ckpt_ocdbt_put_varint(&b, CKPT_OCDBT_CONFIG_COMPRESSION_ZSTD);
  put_le(&b, (uint32_t)c->zstd_level, 4);
  ckpt_ocdbt_file_id f = {"", node_file};
  ckpt_ocdbt_put_file_table(&b, &f, 1);
  /* inline versions: one, generation 1 */
  ckpt_ocdbt_put_varint(&b, 1);
  ckpt_ocdbt_put_varint(&b, 1);
  put_u8(&b, root->height);
  ckpt_ocdbt_put_varint(&b, 0);
  ckpt_ocdbt_put_varint(&b, root->offset);
  ckpt_ocdbt_put_varint(&b, root->length);
  ckpt_ocdbt_put_varint(&b, root->num_keys);
  ckpt_ocdbt_put_varint(&b, root->num_tree_bytes);
  ckpt_ocdbt_put_varint(&b, root->num_indirect_value_bytes);
  put_le(&b, commit_time_ns, 8);
  ckpt_ocdbt_put_varint(&b, 0); /* no version tree nodes */
  uint64_t len;
  ckpt_status st = frame(out, CKPT_OCDBT_MANIFEST_MAGIC, &b, c->zstd_level, &len, err);
  ckpt_ocdbt_buf_free(&b);
  return st;
}
