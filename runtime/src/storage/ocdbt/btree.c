/* storage/ocdbt/btree.c — reading an OCDBT B+tree (interior and leaf nodes, prefix-compressed keys,
 * subtree prefixes, inline and out-of-line values) into the database's key table. */
#include "storage/ocdbt/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tasks.h"

static uint64_t seen_hash(uint64_t file, uint64_t offset) {
  uint64_t h = (file + 1) * 0x9e3779b97f4a7c15ull ^ offset * 0xc2b2ae3d27d4eb4full;
  return h ^ (h >> 29);
}

/* Adds (file, offset) to the set; false when it was there already. Slots hold file + 1 (0:
 * empty). */
static ckpt_status mark_seen(ckpt_ocdbt *db, const node_ref *r, bool *fresh, ckpt_error *err) {
  if (2 * (db->n_seen + 1) > db->cap_seen) {
    size_t cap = db->cap_seen ? 2 * db->cap_seen : 64;
    uint64_t(*t)[2] = calloc(cap, sizeof *t);
    if (!t)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    for (size_t i = 0; i < db->cap_seen; i++) {
      if (!db->seen[i][0])
        continue;
      size_t j = (size_t)seen_hash(db->seen[i][0] - 1, db->seen[i][1]) & (cap - 1);
      while (t[j][0])
        j = (j + 1) & (cap - 1);
      t[j][0] = db->seen[i][0];
      t[j][1] = db->seen[i][1];
    }
    free(db->seen);
    db->seen = t;
    db->cap_seen = cap;
  }
  size_t j = (size_t)seen_hash(r->file, r->offset) & (db->cap_seen - 1);
  while (db->seen[j][0]) {
    if (db->seen[j][0] == (uint64_t)r->file + 1 && db->seen[j][1] == r->offset) {
      *fresh = false;
      return CKPT_OK;
    }
    j = (j + 1) & (db->cap_seen - 1);
  }
  db->seen[j][0] = (uint64_t)r->file + 1;
  db->seen[j][1] = r->offset;
  db->n_seen++;
  *fresh = true;
  return CKPT_OK;
}

static ckpt_status add_entry(ckpt_ocdbt *db, const char *prefix, size_t pl, const uint8_t *rel,
                             size_t rl, entry **out, ckpt_error *err) {
  if (db->n == db->cap) {
    size_t cap = db->cap ? 2 * db->cap : 64;
    entry *e = realloc(db->entries, cap * sizeof *e);
    if (!e)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    db->entries = e;
    db->cap = cap;
  }
  entry *e = &db->entries[db->n];
  memset(e, 0, sizeof *e);
  e->key = ckpt_arena_alloc(&db->arena, pl + rl + 1);
  if (!e->key)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  memcpy(e->key, prefix, pl);
  if (rl)
    memcpy(e->key + pl, rel, rl);
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
    st = ckpt_ocdbt_get_varint_max(in, "key prefix length", CKPT_OCDBT_DECODED_MAX, &pre[i], err);
  uint64_t total = 0;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    st = ckpt_ocdbt_get_varint_max(in, "key suffix length", ckpt_ocdbt_in_left(in), &suf[i], err);
    total += suf[i]; /* each ≤ the bytes left: no overflow */
  }
  for (size_t i = 0; i < n && st == CKPT_OK && interior; i++)
    st =
        ckpt_ocdbt_get_varint_max(in, "subtree common prefix length", UINT32_MAX, &(*scpl)[i], err);
  /* Full keys: each at most the previous one plus its suffix. */
  uint64_t bytes = 0, prev = 0;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    if (pre[i] > prev) {
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: entry %zu: key prefix length %llu exceeds "
                          "previous key length %llu",
                          in->where, i, (unsigned long long)pre[i], (unsigned long long)prev);
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
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_bytes(in, "key suffixes", total, &sufs, err);
  if (st == CKPT_OK && !(*store = malloc(bytes ? (size_t)bytes : 1)))
    st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", in->where);
  if (st == CKPT_OK) {
    uint8_t *p = *store;
    for (size_t i = 0; i < n; i++) {
      if (pre[i])
        memcpy(p, (*keys)[i - 1], (size_t)pre[i]);
      if (suf[i])
        memcpy(p + pre[i], sufs, (size_t)suf[i]);
      sufs += suf[i];
      (*keys)[i] = p;
      (*klen)[i] = (size_t)(pre[i] + suf[i]);
      p += (*klen)[i];
      if (interior && (*scpl)[i] > (*klen)[i]) {
        st = ckpt_error_set(err, CKPT_ECORRUPT,
                            "%s: entry %zu: subtree common prefix length "
                            "%llu exceeds its key length %zu",
                            in->where, i, (unsigned long long)(*scpl)[i], (*klen)[i]);
        break;
      }
    }
  }
  free(pre);
  free(suf);
  return st;
}

/* A node to read: its reference (owning its transitive path), the key prefix the path from the
 * root implies, and, once loaded, its decoded body. */
typedef struct pending {
  node_ref ref;
  char *prefix;
  size_t pl;
  uint8_t *body;
  size_t n;
} pending;

/* The nodes of one level of the tree, in key order. */
typedef struct level {
  pending *v;
  size_t n, cap;
} level;

static void level_clear(level *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].ref.transitive);
    free(l->v[i].prefix);
    free(l->v[i].body);
  }
  l->n = 0;
}

static void level_free(level *l) {
  level_clear(l);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Appends a node; takes ref's transitive path, copies the prefix (pl bytes of prefix, then sl
 * of suffix). */
static ckpt_status level_push(level *l, node_ref ref, const char *prefix, size_t pl,
                              const uint8_t *suffix, size_t sl, ckpt_error *err) {
  char *p = malloc(pl + sl + 1);
  if (p == NULL || (l->n == l->cap && l->cap > SIZE_MAX / 2 / sizeof *l->v)) {
    free(p);
    free(ref.transitive);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 8;
    pending *v = realloc(l->v, cap * sizeof *v);
    if (v == NULL) {
      free(p);
      free(ref.transitive);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    }
    l->v = v;
    l->cap = cap;
  }
  if (pl)
    memcpy(p, prefix, pl);
  if (sl)
    memcpy(p + pl, suffix, sl);
  p[pl + sl] = '\0';
  l->v[l->n++] = (pending){ref, p, pl + sl, NULL, 0};
  return CKPT_OK;
}

/* Decodes one loaded node: a leaf's entries go to the key table, an interior node's children
 * to next (the level below). */
static ckpt_status decode_btree(ckpt_ocdbt *db, const node_ref *r, ckpt_ocdbt_in *in,
                                unsigned expect_height, const char *prefix, size_t pl,
                                level *next, ckpt_error *err) {
  uint8_t height;
  ckpt_status st = ckpt_ocdbt_get_u8(in, "height", &height, err);
  if (st != CKPT_OK)
    return st;
  if (height != expect_height)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: height %u, expected %u", in->where, height,
                          expect_height);
  ckpt_ocdbt_file_table t;
  if ((st = ckpt_ocdbt_get_file_table(in, &t, err)) != CKPT_OK)
    return st;
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
      if ((st = add_entry(db, prefix, pl, keys[i], klen[i], &e, err)) != CKPT_OK)
        break;
      e->v.length = len[i];
      if (kind[i] == CKPT_OCDBT_VALUE_INLINE) {
        e->v.is_inline = true;
        e->owned = ckpt_arena_alloc(&db->arena, len[i] ? (size_t)len[i] : 1);
        if (!e->owned) {
          st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
          break;
        }
        if (len[i])
          memcpy(e->owned, bytes, (size_t)len[i]);
        e->v.bytes = e->owned;
      } else {
        if (off[i] > UINT64_MAX - len[i]) {
          st = ckpt_error_set(err, CKPT_ECORRUPT,
                              "%s: key '%s': value offset %llu + length %llu "
                              "overflows",
                              in->where, e->key, (unsigned long long)off[i],
                              (unsigned long long)len[i]);
          break;
        }
        e->v.offset = off[i];
        st = ocdbt_resolve(db, in, &t, r->transitive, file[i], &e->v.file, NULL, err);
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
      st = ocdbt_resolve(db, in, &t, r->transitive, file[i], &c.file, &c.transitive, err);
      if (st == CKPT_OK)
        st = level_push(next, c, prefix, pl, keys[i], (size_t)scpl[i], err);
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

/* At most this many nodes of a level are in memory at once (loaded in parallel, then decoded in
 * order): the parallelism of a wide level without holding all of it. */
#define LOAD_BATCH 64

typedef struct load_ctx {
  ckpt_ocdbt *db;
  pending *v;
} load_ctx;

static ckpt_status load_task(void *ctx, size_t i, ckpt_scratch *scratch, ckpt_error *err) {
  (void)scratch;
  load_ctx *c = ctx;
  pending *p = &c->v[i];
  return ocdbt_load_node(c->db, &p->ref, CKPT_OCDBT_BTREE_NODE_MAGIC, "B+tree node", &p->body,
                         &p->n, err);
}

/* Loads and decodes the nodes of cur (height h) in batches, children into next. */
static ckpt_status read_level(ckpt_ocdbt *db, level *cur, unsigned h, level *next,
                              ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  for (size_t b = 0; b < cur->n && st == CKPT_OK; b += LOAD_BATCH) {
    size_t e = cur->n - b < LOAD_BATCH ? cur->n : b + LOAD_BATCH;
    for (size_t i = b; i < e && st == CKPT_OK; i++) {
      bool fresh;
      st = mark_seen(db, &cur->v[i].ref, &fresh, err);
      if (st == CKPT_OK && !fresh) {
        char where[600];
        ocdbt_node_where(where, sizeof where, db, &cur->v[i].ref, "B+tree node");
        st = ckpt_error_set(err, CKPT_ECORRUPT, "%s is referenced twice in the B+tree", where);
      }
    }
    if (st != CKPT_OK)
      break;
    /* The data files are only read here (no new ones are added until the decode below), so
     * the loads may run on several threads; one node is not worth starting them. */
    load_ctx lc = {db, cur->v + b};
    if (e - b == 1)
      st = load_task(&lc, 0, NULL, err);
    else
      st = ckpt_parallel_for(e - b, 0, load_task, &lc, err);
    for (size_t i = b; i < e && st == CKPT_OK; i++) {
      pending *p = &cur->v[i];
      char where[600];
      ocdbt_node_where(where, sizeof where, db, &p->ref, "B+tree node");
      ckpt_ocdbt_in in = ckpt_ocdbt_in_make(p->body, p->n, where);
      st = decode_btree(db, &p->ref, &in, h, p->prefix, p->pl, next, err);
    }
    for (size_t i = b; i < e; i++) {
      free(cur->v[i].body);
      cur->v[i].body = NULL;
    }
  }
  return st;
}

ckpt_status ocdbt_read_btree(ckpt_ocdbt *db, const node_ref *r, unsigned height, const char *prefix,
                             size_t pl, ckpt_error *err) {
  /* Level by level from the root: the nodes of a level are independent, so they are read in
   * parallel; the heights checked on the way bound the depth. */
  level cur = {0}, next = {0};
  node_ref root = *r;
  root.transitive = r->transitive ? strdup(r->transitive) : NULL;
  if (r->transitive && !root.transitive)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = level_push(&cur, root, prefix, pl, NULL, 0, err);
  for (unsigned h = height; st == CKPT_OK && cur.n > 0; h--) {
    st = read_level(db, &cur, h, &next, err);
    level_clear(&cur);
    level tmp = cur;
    cur = next;
    next = tmp;
    if (h == 0)
      break; /* leaves have no children */
  }
  level_free(&cur);
  level_free(&next);
  return st;
}
