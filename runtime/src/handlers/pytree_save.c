/* handlers/pytree_save.c — the save half of the PyTree engine: arguments and tree → write plan.
 *
 * Blocking part (caller's thread): flatten the tree into leaves with Orbax's parameter names,
 * validate names and leaf kinds, look up each leaf's save_args, choose chunk shapes and list
 * the chunks, refuse parameter-name collisions, snapshot the replica-0 shards (one copy,
 * casting on the way when a save dtype is given; none in a zero-copy save), and build
 * _METADATA's entries in memory. The result is a write plan (storage/zarr_write.h).
 * Deferred part (ckpt_op_defer, on the save's background thread): the plan goes to the zarr
 * writer (storage/zarr_write.c), which owns every file name and write; this file only decides
 * whether the arrays go to OCDBT (the use_ocdbt option) and relays the writer's durability
 * claims to the op. A multi-process save (docs/multiprocess.md) plans from every process's shard
 * layout and merges the processes' checksums: pytree_multiprocess.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/op.h"
#include "handlers/pytree_internal.h"
#include "handlers/pytree_multiprocess.h"
#include "io/engine.h"
#include "io/snapshot_copy.h"
#include "io/staging_pool.h"
#include "storage/zarr_write.h"
#include "util/arena.h"
#include "util/path.h"
#include "util/sort.h"

/* ---------------------------------------------------------------- flattening */

typedef struct flat_ctx {
  ckpt_write_plan *job;
  const ckpt_pytree_save_spec *spec;
  bool zero_copy;
  const char *what;
  ckpt_copy_list *copies; /* large snapshot copies, run together after flattening; or NULL */
  const ckpt_pytree_leaf_save **args; /* spec's leaf_args with a param, sorted (sort_leaf_args) */
  size_t n_args;
  ckpt_meta_key *stack;
  size_t depth, cap;
  size_t cap_entries;
  /* Multi-process: every process's layout of each array leaf (NULL alone), the next array
   * leaf's index in it, and whether this process writes the leaves every process holds whole
   * (scalars, bytes: the primary). */
  const ckpt_pt_layout *global;
  size_t next_global;
  bool writes_replicated;
  /* Each leaf's stored metadata is filled here before ckpt_write_plan_meta shares or copies
   * it. Zeroed once with the context: a leaf clears only the fields before the zarr v3 spec,
   * which is either never written (a v2 plan) or wholly rewritten (ckpt_zarr3_set_orbax), so
   * equal metadata compares equal byte for byte, without clearing 1.8 KB per leaf. */
  ckpt_zarr_meta scratch;
} flat_ctx;

static ckpt_status push_key(flat_ctx *c, const char *key, int type, ckpt_error *err) {
  if (c->depth == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    ckpt_meta_key *s = realloc(c->stack, cap * sizeof *s);
    if (s == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
    c->stack = s;
    c->cap = cap;
  }
  /* Borrowed, not copied: the key lives in flatten's frame (the tree or its index buffer)
   * until the matching pop_key, and add_entry copies what it keeps. */
  c->stack[c->depth].key = (char *)(uintptr_t)key;
  c->stack[c->depth].key_type = type;
  c->depth++;
  return CKPT_OK;
}

static void pop_key(flat_ctx *c) {
  c->depth--;
}

/* n bytes for an entry's keys and strings from the metadata's arena (ckpt_pytree_meta.arena,
 * created on first use), aligned for any object; NULL when out of memory. One 64 KiB arena
 * block holds a few hundred entries: one allocation where there were four or more per entry. */
static void *meta_alloc(ckpt_pytree_meta *m, size_t n) {
  if (m->arena == NULL) {
    m->arena = calloc(1, sizeof *m->arena);
    if (m->arena == NULL)
      return NULL;
  }
  return ckpt_arena_alloc(m->arena, n);
}

/* Appends a metadata entry for the current key stack. */
static ckpt_status add_entry(flat_ctx *c, const char *value_type, bool skip, size_t *index,
                             ckpt_error *err) {
  ckpt_pytree_meta *m = &c->job->meta;
  if (m->n == c->cap_entries) {
    size_t cap = c->cap_entries ? c->cap_entries * 2 : 16;
    ckpt_meta_entry *e = realloc(m->entries, cap * sizeof *e);
    if (e == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
    m->entries = e;
    c->cap_entries = cap;
  }
  ckpt_meta_entry *e = &m->entries[m->n];
  memset(e, 0, sizeof *e);
  m->n++;
  /* One piece of the metadata's arena: the keys, then the key strings, param and value type. */
  size_t n_keys = c->depth ? c->depth : 1, keys_bytes = 0;
  for (size_t i = 0; i < c->depth; i++)
    keys_bytes += strlen(c->stack[i].key) + 1;
  size_t plen = keys_bytes ? keys_bytes : 1; /* joined by '.': as long as the keys with NULs */
  size_t vlen = strlen(value_type) + 1;
  unsigned char *p = meta_alloc(m, n_keys * sizeof *e->keys + keys_bytes + plen + vlen);
  if (p == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
  e->keys = (ckpt_meta_key *)(void *)p;
  memset(e->keys, 0, n_keys * sizeof *e->keys);
  char *text = (char *)(p + n_keys * sizeof *e->keys);
  e->param = text + keys_bytes;
  e->value_type = e->param + plen;
  memcpy(e->value_type, value_type, vlen);
  size_t pos = 0;
  for (size_t i = 0; i < c->depth; i++) {
    size_t l = strlen(c->stack[i].key);
    memcpy(text, c->stack[i].key, l + 1);
    e->keys[i].key = text;
    text += l + 1;
    e->keys[i].key_type = c->stack[i].key_type;
    e->depth = i + 1;
    if (i)
      e->param[pos++] = '.';
    memcpy(e->param + pos, c->stack[i].key, l);
    pos += l;
  }
  e->param[pos] = '\0';
  e->skip_deserialize = skip;
  *index = m->n - 1;
  return CKPT_OK;
}

static ckpt_status leaf_error(flat_ctx *c, ckpt_status code, const char *msg, ckpt_error *err) {
  char *repr = ckpt_pt_repr(c->stack, c->depth);
  ckpt_status st = ckpt_error_set(err, code, "%s: leaf %s: %s", c->what, repr, msg);
  ckpt_pt_free_repr(repr);
  return st;
}

/* Orders leaf options by param, then by position in spec->leaf_args (the first of two options
 * for one param wins, as it did when they were searched in order). */
static int cmp_leaf_args(const void *a, const void *b) {
  const ckpt_pytree_leaf_save *x = *(const ckpt_pytree_leaf_save *const *)a;
  const ckpt_pytree_leaf_save *y = *(const ckpt_pytree_leaf_save *const *)b;
  int c = strcmp(x->param, y->param);
  return c != 0 ? c : (x > y) - (x < y);
}

/* The leaf options that name a param, sorted (cmp_leaf_args), so that each leaf finds its own
 * by binary search: a linear search per leaf was quadratic with thousands of save_args.
 * *out malloc'ed (caller frees); false when out of memory. */
static bool sort_leaf_args(const ckpt_pytree_save_spec *spec, const ckpt_pytree_leaf_save ***out,
                           size_t *n) {
  *out = malloc((spec->n_leaf_args ? spec->n_leaf_args : 1) * sizeof **out);
  *n = 0;
  if (*out == NULL)
    return false;
  for (size_t i = 0; i < spec->n_leaf_args; i++)
    if (spec->leaf_args[i].param != NULL)
      (*out)[(*n)++] = &spec->leaf_args[i];
  qsort(*out, *n, sizeof **out, cmp_leaf_args);
  return true;
}

static const ckpt_pytree_leaf_save *find_leaf_args(const flat_ctx *c, const char *param) {
  size_t lo = 0, hi = c->n_args; /* the first option whose param is >= param */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(c->args[mid]->param, param) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < c->n_args && strcmp(c->args[lo]->param, param) == 0 ? c->args[lo] : NULL;
}

static ckpt_status add_chunks(ckpt_write_plan *j, size_t leaf_index, ckpt_error *err) {
  ckpt_write_leaf *l = &j->leaves[leaf_index];
  const ckpt_zarr_meta *m = l->zm;
  int nd = m->ndim;
  int64_t grid[CKPT_MAX_RANK];
  uint64_t total = ckpt_zarr_grid(m, grid);
  if (total == 0)
    return CKPT_OK;
  for (size_t s = 0; s < l->n_shards; s++) {
    const ckpt_write_piece *sh = &l->shards[s];
    int64_t lo[CKPT_MAX_RANK], cnt[CKPT_MAX_RANK];
    uint64_t count = 1;
    for (int d = 0; d < nd; d++) {
      lo[d] = sh->off[d] / m->chunks[d];
      int64_t hi = (sh->off[d] + sh->shape[d] + m->chunks[d] - 1) / m->chunks[d];
      cnt[d] = hi - lo[d];
      count *= (uint64_t)(cnt[d] > 0 ? cnt[d] : 0);
    }
    if (count == 0)
      continue;
    if (j->n_chunks + count > j->cap_chunks) {
      size_t cap = j->cap_chunks ? j->cap_chunks : 64;
      while (cap < j->n_chunks + count)
        cap *= 2;
      ckpt_write_chunk *c = realloc(j->chunks, cap * sizeof *c);
      if (c == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory planning chunks");
      j->chunks = c;
      j->cap_chunks = cap;
    }
    int64_t idx[CKPT_MAX_RANK] = {0};
    for (uint64_t k = 0; k < count; k++) {
      uint64_t lin = 0;
      for (int d = 0; d < nd; d++)
        lin = lin * (uint64_t)grid[d] + (uint64_t)(lo[d] + idx[d]);
      ckpt_write_chunk *c = &j->chunks[j->n_chunks++];
      c->job = j;
      c->own = NULL;
      c->leaf = leaf_index;
      c->shard = s;
      c->linear = lin;
      c->crc = 0;
      c->bytes = 0;
      c->data = NULL;
      c->prepared = false;
      c->offset = 0;
      c->file = NULL;
      c->reserved = 0;
      for (int d = nd - 1; d >= 0; d--) {
        if (++idx[d] < cnt[d])
          break;
        idx[d] = 0;
      }
    }
  }
  return CKPT_OK;
}

/* The array as every process sees it in a multi-process save: the global shard boxes (no data),
 * for choosing chunks and checking the shards tile it. *view's shards are borrowed from g. */
static void global_view(const ckpt_array *a, const ckpt_pt_layout_leaf *g, ckpt_array *view) {
  memset(view, 0, sizeof *view);
  view->dtype = a->dtype;
  view->ndim = a->ndim;
  memcpy(view->shape, a->shape, sizeof view->shape);
  view->n_shards = g->n;
  view->shards = g->boxes;
}

/* Plans one array (or scalar, as a 0-d array) leaf: stored metadata, chunks, snapshot.
 * replicated: a leaf every process holds whole (a scalar or bytes): in a multi-process save only
 * the primary writes it. */
static ckpt_status plan_array(flat_ctx *c, const ckpt_array *a, const char *value_type,
                              bool replicated, ckpt_error *err) {
  ckpt_write_plan *j = c->job;
  size_t entry;
  ckpt_status st = add_entry(c, value_type, false, &entry, err);
  if (st != CKPT_OK)
    return st;
  ckpt_meta_entry *e = &j->meta.entries[entry];
  ckpt_error local = CKPT_ERROR_INIT;
  if (ckpt_path_check_name(e->param, "parameter name", &local) != CKPT_OK) {
    char *repr = ckpt_pt_repr(e->keys, e->depth);
    st = ckpt_error_set(err, CKPT_EUNSAFE, "%s: leaf %s: %s", c->what, repr, local.message);
    ckpt_pt_free_repr(repr);
    return st;
  }
  if (!ckpt_dtype_valid(a->dtype))
    return leaf_error(c, CKPT_EINVAL, "invalid dtype", err);
  const ckpt_pytree_leaf_save *la = find_leaf_args(c, e->param);
  if (j->n_leaves == j->cap_leaves) {
    size_t cap = j->cap_leaves ? j->cap_leaves * 2 : 16;
    ckpt_write_leaf *l = realloc(j->leaves, cap * sizeof *l);
    if (l == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
    j->leaves = l;
    j->cap_leaves = cap;
  }
  size_t li = j->n_leaves++;
  ckpt_write_leaf *l = &j->leaves[li];
  memset(l, 0, sizeof *l);
  l->job = j;
  l->entry = entry;
  /* OCDBT has no array directories: no path to make. */
  l->dir = j->ocdbt ? NULL : ckpt_path_join(j->dir, e->param);
  if (!j->ocdbt && l->dir == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
  /* Filled in the context's scratch (flat_ctx says why), then shared or copied. */
  ckpt_zarr_meta *m = &c->scratch;
  memset(m, 0, offsetof(ckpt_zarr_meta, v3));
  m->dtype = (la && la->has_dtype) ? la->dtype : a->dtype;
  if (!ckpt_dtype_valid(m->dtype))
    return leaf_error(c, CKPT_EINVAL, "invalid save dtype", err);
  m->ndim = a->ndim;
  memcpy(m->shape, a->shape, sizeof m->shape);
  m->separator = '.';
  m->fill_is_null = true;
  ckpt_compression comp = la ? la->compression : CKPT_COMPRESSION_DEFAULT;
  m->compressor = comp == CKPT_COMPRESSION_ZSTD ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE;
  m->level = (la && la->compression_level != 0) ? la->compression_level : 1;
  uint64_t target =
      c->spec->default_chunk_bytes ? c->spec->default_chunk_bytes : CKPT_PYTREE_DEFAULT_CHUNK_BYTES;
  if (la && la->chunk_byte_size > 0)
    target = (uint64_t)la->chunk_byte_size;
  if (la && la->chunk_byte_size < 0)
    return leaf_error(c, CKPT_EINVAL, "negative chunk_byte_size", err);
  /* Multi-process: chunks from the global layout, the same on every process. */
  const ckpt_array *layout = a;
  ckpt_array view;
  if (c->global != NULL && !replicated) {
    if (c->next_global >= c->global->n_leaves || c->global->leaves[c->next_global].ndim != a->ndim)
      return leaf_error(c, CKPT_EMISMATCH, "the processes' trees differ here", err);
    global_view(a, &c->global->leaves[c->next_global++], &view);
    layout = &view;
  }
  local = (ckpt_error)CKPT_ERROR_INIT;
  st =
      ckpt_zarr_choose_chunks(layout, ckpt_dtype_size(m->dtype), target, la ? la->shard_axes : NULL,
                              la ? la->n_shard_axes : 0, e->param, m->chunks, &local);
  if (st != CKPT_OK)
    return leaf_error(c, st, local.message, err);
  if (j->meta.use_zarr3) {
    /* zarr v3 with Orbax's chain: one shard per chunk, zstd unless compression is off. In a
     * directory the keys are "c.0.1" rather than Orbax's "c/0/1": one file per chunk, like v2,
     * so the writer needs no nested directories (zarr.json records the encoding); in OCDBT,
     * where keys are only names, Orbax's "c/0/1". */
    /* zstd level 3 unless compression_level says otherwise, as Orbax's zarr.json has it */
    int level = (la && la->compression_level != 0) ? la->compression_level : 3;
    ckpt_zarr3_set_orbax(m, comp == CKPT_COMPRESSION_NONE ? -1 : level, j->ocdbt ? '/' : '.');
  }
  if ((l->zm = ckpt_write_plan_meta(j, m)) == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
  /* Stored bytes before compression: which leaves are written first, as small,
   * does not depend on the data. */
  uint64_t bytes = ckpt_dtype_size(m->dtype);
  bool over = false;
  for (int d = 0; d < a->ndim && !over; d++)
    over = __builtin_mul_overflow(bytes, (uint64_t)a->shape[d], &bytes);
  l->stored_bytes = over ? UINT64_MAX : bytes;
  e->has_write_shape = a->ndim > 0;
  e->write_ndim = a->ndim;
  /* write_shape is the local shard shape (Orbax); with several shards, the first one's (in a
   * multi-process save, the first of the global layout: the same in every process's plan). */
  for (size_t s = 0; s < layout->n_shards; s++) {
    if (layout->shards[s].replica_id != 0)
      continue;
    memcpy(e->write_shape, layout->shards[s].shape, sizeof(int64_t) * (size_t)a->ndim);
    break;
  }
  if (replicated && !c->writes_replicated)
    return CKPT_OK; /* another process writes it: no pieces, no chunks */

  /* Snapshot the replica-0 shards. */
  size_t n0 = 0;
  for (size_t s = 0; s < a->n_shards; s++)
    n0 += a->shards[s].replica_id == 0;
  if (n0 > 0 && j->cap_pieces - j->n_pieces >= n0) {
    l->shards = j->pieces + j->n_pieces;
    j->n_pieces += n0;
    memset(l->shards, 0, n0 * sizeof *l->shards);
  } else {
    l->shards = calloc(n0 ? n0 : 1, sizeof *l->shards);
    if (l->shards == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
    l->shards_own = true;
  }
  bool copy = !c->zero_copy;
  l->src_dtype = copy ? m->dtype : a->dtype; /* a copy casts on the way */
  for (size_t s = 0; s < a->n_shards; s++) {
    const ckpt_shard *src = &a->shards[s];
    if (src->replica_id != 0)
      continue;
    ckpt_write_piece *dst = &l->shards[l->n_shards];
    size_t box = (size_t)(a->ndim > 0 ? a->ndim : 1) * sizeof(int64_t);
    if ((dst->off = meta_alloc(&j->meta, 2 * box)) == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
    dst->shape = dst->off + (a->ndim > 0 ? a->ndim : 1);
    memcpy(dst->off, src->offset, sizeof(int64_t) * (size_t)a->ndim);
    memcpy(dst->shape, src->shape, sizeof(int64_t) * (size_t)a->ndim);
    uint64_t n = 1;
    for (int d = 0; d < a->ndim; d++)
      n *= (uint64_t)src->shape[d];
    if (n > 0 && src->data == NULL)
      return leaf_error(c, CKPT_EINVAL, "a shard has no data", err);
    if (!copy) {
      dst->data = src->data;
      dst->owned = false;
    } else {
      size_t bytes = (size_t)n * ckpt_dtype_size(m->dtype);
      dst->data = ckpt_staging_acquire(bytes, &dst->pooled);
      if (dst->data == NULL)
        return leaf_error(c, CKPT_ENOMEM, "cannot allocate the snapshot buffer", err);
      dst->owned = true;
      /* Large copies run together (and in parallel) once the whole tree is planned; small
       * ones now (a scalar's source lives on flatten's stack). */
      if (n > 0 &&
          (c->copies == NULL || bytes < CKPT_STAGING_MIN_POOLED ||
           ckpt_copy_list_add(c->copies, dst->data, m->dtype, src->data, a->dtype, (size_t)n) != 0))
        ckpt_dtype_convert(m->dtype, dst->data, a->dtype, src->data, (size_t)n);
    }
    l->n_shards++;
  }
  return add_chunks(j, li, err);
}

static ckpt_status flatten(flat_ctx *c, const ckpt_tree *node, ckpt_error *err) {
  ckpt_node_kind kind = ckpt_tree_kind(node);
  size_t n = ckpt_tree_count(node);
  size_t entry;
  switch (kind) {
    case CKPT_NODE_DICT:
    case CKPT_NODE_LIST:
    case CKPT_NODE_TUPLE:
      if (n == 0) {
        const char *vt = kind == CKPT_NODE_DICT   ? CKPT_VT_DICT
                         : kind == CKPT_NODE_LIST ? CKPT_VT_LIST
                                                  : CKPT_VT_TUPLE;
        return add_entry(c, vt, true, &entry, err);
      }
      for (size_t i = 0; i < n; i++) {
        char idx[CKPT_PT_INDEX_KEY_SIZE];
        int type;
        const char *key = ckpt_pt_child_key(node, i, idx, &type);
        ckpt_status st = push_key(c, key, type, err);
        if (st != CKPT_OK)
          return st;
        st = flatten(c, ckpt_tree_child(node, i), err);
        pop_key(c);
        if (st != CKPT_OK)
          return st;
      }
      return CKPT_OK;
    case CKPT_NODE_NONE:
      return add_entry(c, CKPT_VT_NONE, true, &entry, err);
    case CKPT_NODE_PLACEHOLDER:
      if (c->spec->standard)
        return leaf_error(c, CKPT_ETYPE, "placeholders cannot be saved with StandardSave", err);
      return add_entry(c, CKPT_VT_PLACEHOLDER, false, &entry, err);
    case CKPT_NODE_STRING: {
      if (c->spec->standard)
        return leaf_error(c, CKPT_ETYPE,
                          "strings are not supported by StandardSave; use PyTreeSave", err);
      ckpt_status st = add_entry(c, CKPT_VT_STRING, false, &entry, err);
      if (st != CKPT_OK)
        return st;
      ckpt_write_plan *j = c->job;
      if (j->strings == NULL && (j->strings = cJSON_CreateObject()) == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
      const char *param = j->meta.entries[entry].param;
      if (cJSON_GetObjectItemCaseSensitive(j->strings, param) != NULL)
        return leaf_error(c, CKPT_EINVAL, "another leaf has the same parameter name", err);
      if (cJSON_AddStringToObject(j->strings, param, ckpt_tree_string(node)) == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
      return CKPT_OK;
    }
    case CKPT_NODE_BYTES: {
      if (c->spec->standard)
        return leaf_error(c, CKPT_ETYPE, "bytes are not supported by StandardSave", err);
      /* Stored as a 1-d uint8 array, which is how NumPy would hold them. */
      const void *data;
      size_t len;
      ckpt_tree_bytes(node, &data, &len);
      ckpt_array view;
      ckpt_shard shard;
      memset(&view, 0, sizeof view);
      memset(&shard, 0, sizeof shard);
      view.dtype = CKPT_DTYPE_UINT8;
      view.ndim = 1;
      view.shape[0] = (int64_t)len;
      view.n_shards = 1;
      view.shards = &shard;
      shard.shape[0] = (int64_t)len;
      shard.data = (void *)data;
      bool zc = c->zero_copy;
      c->zero_copy = false; /* the node's bytes are not the caller's promise to keep */
      ckpt_status st = plan_array(c, &view, CKPT_VT_NDARRAY, true, err);
      c->zero_copy = zc;
      return st;
    }
    case CKPT_NODE_SCALAR: {
      ckpt_scalar s;
      ckpt_tree_scalar(node, &s);
      if (!ckpt_dtype_valid(s.dtype))
        return leaf_error(c, CKPT_EINVAL, "invalid scalar dtype", err);
      unsigned char buf[16];
      ckpt_scalar_store(&s, buf);
      ckpt_array view;
      ckpt_shard shard;
      memset(&view, 0, sizeof view);
      memset(&shard, 0, sizeof shard);
      view.dtype = s.dtype;
      view.ndim = 0;
      view.n_shards = 1;
      view.shards = &shard;
      shard.data = buf;
      bool zc = c->zero_copy;
      c->zero_copy = false; /* buf lives on this stack frame */
      ckpt_status st = plan_array(c, &view, CKPT_VT_SCALAR, true, err);
      c->zero_copy = zc;
      return st;
    }
    case CKPT_NODE_ARRAY:
      return plan_array(c, ckpt_tree_array(node), CKPT_VT_NDARRAY, false, err);
  }
  return leaf_error(c, CKPT_EINVAL, "unknown node kind", err);
}

static int cmp_param_ptr(const void *a, const void *b) {
  const ckpt_meta_entry *x = *(const ckpt_meta_entry *const *)a;
  const ckpt_meta_entry *y = *(const ckpt_meta_entry *const *)b;
  return strcmp(x->param, y->param);
}

/* Keys containing '.' can make two leaves share a parameter name (Orbax lets them collide
 * silently; we refuse, naming both). */
/* *sorted: the entries sorted by param (malloc'ed, caller frees; also on error). */
static ckpt_status check_collisions(ckpt_write_plan *j, const char *what,
                                    const ckpt_meta_entry ***sorted, ckpt_error *err) {
  size_t n = j->meta.n;
  const ckpt_meta_entry **v = *sorted = malloc((n ? n : 1) * sizeof *v);
  if (v == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", what);
  for (size_t i = 0; i < n; i++)
    v[i] = &j->meta.entries[i];
  ckpt_sort(v, n, sizeof *v, cmp_param_ptr); /* a dict's leaves usually come in order: no sort */
  ckpt_status st = CKPT_OK;
  for (size_t i = 1; i < n; i++) {
    if (strcmp(v[i - 1]->param, v[i]->param) != 0)
      continue;
    char *a = ckpt_pt_repr(v[i - 1]->keys, v[i - 1]->depth);
    char *b = ckpt_pt_repr(v[i]->keys, v[i]->depth);
    st = ckpt_error_set(err, CKPT_EINVAL,
                        "%s: leaves %s and %s both have the parameter name '%s' (keys "
                        "containing '.' collide)",
                        what, a, b, v[i]->param);
    ckpt_pt_free_repr(a);
    ckpt_pt_free_repr(b);
    break;
  }
  return st;
}

/* Whether param is the name of an entry of sorted (check_collisions' order). */
static bool has_param(const ckpt_meta_entry *const *sorted, size_t n, const char *param) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = strcmp(sorted[mid]->param, param);
    if (cmp == 0)
      return true;
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

/* What the staging pool is sized for: snapshot buffers (copying saves). Packed segments need
 * none: they are written straight from the chunks' bytes. */
typedef struct staging_need {
  bool snapshot; /* a copying save */
  uint64_t total;
  size_t n_nodes; /* leaves and empty nodes (metadata entries) */
  size_t n_arrays;
  size_t n_pieces; /* replica-0 shards of the arrays, one per scalar or bytes leaf */
} staging_need;

static ckpt_status add_bytes(void *ctx, const char *const *path, size_t depth,
                             const ckpt_tree *node, ckpt_error *err) {
  (void)path;
  (void)depth;
  (void)err;
  staging_need *need = ctx;
  need->n_nodes++;
  ckpt_node_kind kind = ckpt_tree_kind(node);
  need->n_arrays += kind == CKPT_NODE_ARRAY || kind == CKPT_NODE_SCALAR || kind == CKPT_NODE_BYTES;
  need->n_pieces += kind == CKPT_NODE_SCALAR || kind == CKPT_NODE_BYTES;
  const ckpt_array *a = ckpt_tree_array(node);
  if (a == NULL)
    return CKPT_OK;
  for (size_t s = 0; s < a->n_shards; s++)
    need->n_pieces += a->shards[s].replica_id == 0;
  uint64_t *total = &need->total;
  if (!need->snapshot)
    return CKPT_OK;
  for (size_t s = 0; s < a->n_shards; s++) {
    if (a->shards[s].replica_id != 0)
      continue;
    uint64_t n = ckpt_dtype_size(a->dtype);
    for (int d = 0; d < a->ndim; d++)
      n *= (uint64_t)a->shards[s].shape[d];
    /* As the pool hands it out: whole 4 KiB pages, so that every pooled buffer fits and none
     * falls back to fresh (page-faulting) memory; small ones are not pooled at all. */
    if (n >= CKPT_STAGING_MIN_POOLED)
      *total += (n + 4095) / 4096 * 4096;
  }
  return CKPT_OK;
}

/* The blocking half: everything but the writing. *out owned by the caller
 * (ckpt_write_plan_free). */
static ckpt_status plan_save(ckpt_io *io, ckpt_engine *engine, const ckpt_op *op, bool zero_copy,
                             bool use_ocdbt, bool use_zarr3, const char *dir,
                             const ckpt_pytree_save_spec *spec, ckpt_write_plan **out,
                             ckpt_error *err) {
  *out = NULL;
  const char *what = spec && spec->what ? spec->what : "PyTree save";
  if (spec == NULL || spec->tree == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "%s into '%s': no item to save", what,
                          dir ? dir : "(null)");
  if (dir == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: no directory", what);
  ckpt_node_kind rk = ckpt_tree_kind(spec->tree);
  if (rk != CKPT_NODE_DICT && rk != CKPT_NODE_LIST && rk != CKPT_NODE_TUPLE)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "%s: the item must be a dict, list or tuple, not a bare %s (use "
                          "ArraySave for a single array)",
                          what, ckpt_node_kind_name(rk));
  /* Multi-process: every process's shard layout first (a collective every process joins
   * before anything else can fail on one process only). */
  ckpt_pt_layout global = {0, NULL};
  bool multi = ckpt_op_multiprocess(op);
  if (multi) {
    /* In directories (zarr v2 or v3) each process writes the chunk files of its replica-0
     * shards and the primary the array metadata (.zarray or zarr.json, task_leaf); with OCDBT
     * each process writes its ocdbt.process_<i> and the primary merges them
     * (pytree_multiprocess_ocdbt.c). */
    ckpt_status xs = ckpt_pt_exchange_layouts(ckpt_op_group(op), spec->tree, what, &global, err);
    if (xs != CKPT_OK)
      return xs;
  }
  ckpt_write_plan *j = calloc(1, sizeof *j);
  if (j == NULL) {
    ckpt_pt_layout_free(&global);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", what);
  }
  j->io = io;
  j->multiprocess = multi;
  j->process = ckpt_process_group_rank(ckpt_op_group(op));
  j->primary = ckpt_op_is_primary(op);
  j->dir = strdup(dir);
  /* Orbax's use_ocdbt: the writer stores the arrays as OCDBT and _METADATA says so. */
  j->ocdbt = use_ocdbt || spec->use_ocdbt;
  j->ocdbt_data_file_bytes = spec->ocdbt_data_file_bytes;
  j->ocdbt_node_bytes = spec->ocdbt_node_bytes;
  j->meta.use_ocdbt = j->ocdbt;
  j->meta.use_zarr3 = use_zarr3 || spec->use_zarr3;
  j->meta.store_array_data_equal_to_fill_value = true;
  ckpt_status st = CKPT_OK;
  if (j->dir == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", what);
    goto fail;
  }
  if (spec->custom_metadata != NULL) {
    j->meta.custom_metadata = cJSON_Duplicate(spec->custom_metadata, true);
    if (j->meta.custom_metadata == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory copying custom_metadata", what);
      goto fail;
    }
  }
  /* Size the staging pool for this snapshot before taking buffers from it (a copying save
   * only: a zero-copy save writes from the caller's memory, packed arrays included, with
   * vectored writes), and the plan's arrays for the tree: grown by doubling, the arrays of
   * thousands of leaves cost more in copies and page faults than the rest of the plan. */
  staging_need need = {.snapshot = !zero_copy};
  ckpt_error ignore = CKPT_ERROR_INIT;
  ckpt_tree_walk(spec->tree, add_bytes, &need, &ignore);
  if (need.snapshot && need.total > 0)
    ckpt_staging_prepare(need.total);
  flat_ctx c;
  memset(&c, 0, sizeof c);
  if (need.n_nodes > 0) {
    j->meta.entries = malloc(need.n_nodes * sizeof *j->meta.entries);
    c.cap_entries = j->meta.entries ? need.n_nodes : 0;
  }
  if (need.n_arrays > 0) {
    /* Scalars and bytes are stored as arrays too. One chunk per array is a lower bound. */
    j->leaves = malloc(need.n_arrays * sizeof *j->leaves);
    j->cap_leaves = j->leaves ? need.n_arrays : 0;
    j->chunks = malloc(need.n_arrays * sizeof *j->chunks);
    j->cap_chunks = j->chunks ? need.n_arrays : 0;
  }
  if (need.n_pieces > 0) {
    j->pieces = malloc(need.n_pieces * sizeof *j->pieces);
    j->cap_pieces = j->pieces ? need.n_pieces : 0;
  }
  c.job = j;
  c.spec = spec;
  c.zero_copy = zero_copy;
  c.what = what;
  c.global = multi ? &global : NULL;
  c.writes_replicated = ckpt_op_writes_shared(op);
  ckpt_copy_list copies = {NULL, 0, 0, 0};
  c.copies = zero_copy ? NULL : &copies;
  if (!sort_leaf_args(spec, &c.args, &c.n_args))
    st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", what);
  if (st == CKPT_OK)
    st = flatten(&c, spec->tree, err);
  free(c.args);
  /* The snapshot proper: on the caller's thread and, for a large one, on the engine too. */
  if (st == CKPT_OK)
    ckpt_copy_list_run(&copies, engine);
  ckpt_copy_list_free(&copies);
  while (c.depth > 0)
    pop_key(&c);
  free(c.stack);
  if (st != CKPT_OK)
    goto fail;
  const ckpt_meta_entry **sorted = NULL;
  st = check_collisions(j, what, &sorted, err);
  /* Every per-leaf option must name a leaf: a typo would otherwise be ignored silently. */
  for (size_t i = 0; st == CKPT_OK && i < spec->n_leaf_args; i++) {
    const char *p = spec->leaf_args[i].param;
    if (p == NULL || !has_param(sorted, j->meta.n, p))
      st = ckpt_error_set(err, CKPT_EINVAL,
                          "%s: save_args names parameter '%s', which is not a leaf of the item",
                          what, p ? p : "(null)");
  }
  free(sorted);
  if (st == CKPT_OK && multi && c.next_global != global.n_leaves)
    st = ckpt_error_set(err, CKPT_EMISMATCH, "%s: the processes' trees differ", what);
  if (st != CKPT_OK)
    goto fail;
  ckpt_pt_layout_free(&global);
  /* An item without arrays has no database (nothing to store in it); its _METADATA then says
   * use_ocdbt false, so no reader looks for one (docs/format.md, "OCDBT"). */
  j->meta.use_ocdbt = j->ocdbt && j->n_leaves > 0;
  *out = j;
  return CKPT_OK;
fail:
  ckpt_pt_layout_free(&global);
  ckpt_write_plan_free(j);
  return st;
}

/* ---------------------------------------------------------------- entry points */

/* The op's durability claims (handlers/op.h), which storage/ cannot name. */
static void note_file(void *op, const char *path, const void *data, size_t n) {
  ckpt_op_note_file(op, path, data, n);
}

static void note_durable(void *op, const char *path) {
  ckpt_op_note_durable(op, path);
}

/* ckpt_op_defer's signatures for the plan's write and release. */
static ckpt_status run_plan(void *plan, ckpt_error *err) {
  return ckpt_zarr_write(plan, err);
}

static void free_plan(void *plan) {
  ckpt_write_plan_free(plan);
}

ckpt_status ckpt_pytree_save(ckpt_op *op, const char *dir, const ckpt_pytree_save_spec *spec,
                             ckpt_error *err) {
  if (op == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "pytree save: no op");
  ckpt_write_plan *j;
  ckpt_status st = plan_save(ckpt_op_io(op), ckpt_op_engine(op), op, ckpt_op_zero_copy(op),
                             op->use_ocdbt, op->use_zarr3, dir, spec, &j, err);
  if (st != CKPT_OK)
    return st;
  j->engine = ckpt_op_engine(op);
  j->note_durable = note_durable;
  j->note_file = note_file;
  j->note_durable_ctx = op;
  if (!j->multiprocess)
    return ckpt_op_defer(op, run_plan, j, free_plan, err);
  /* Multi-process: the chunks now (deferred), the merge once every process wrote its own
   * (agreed). The agreed job owns the plan, so it is queued first: a failure to queue the
   * write then leaves nothing pointing at a freed plan. */
  st = ckpt_op_defer_agreed(op, ckpt_pt_finish_item, j, free_plan, err);
  if (st == CKPT_OK)
    st = ckpt_op_defer(op, run_plan, j, NULL, err);
  return st;
}

ckpt_status ckpt_pytree_save_sync(ckpt_io *io, bool zero_copy, const char *dir,
                                  const ckpt_pytree_save_spec *spec, ckpt_error *err) {
  if (io == NULL)
    io = ckpt_io_default();
  ckpt_write_plan *j;
  ckpt_status st = plan_save(io, NULL, NULL, zero_copy, false, false, dir, spec, &j, err);
  if (st != CKPT_OK)
    return st;
  st = ckpt_zarr_write(j, err);
  ckpt_write_plan_free(j);
  return st;
}
