/* handlers/pytree_save.c — the save half of the PyTree engine.
 *
 * Blocking part (caller's thread): flatten the tree into leaves with Orbax's parameter names,
 * validate names and leaf kinds, choose chunk shapes, snapshot the replica-0 shards (one copy,
 * casting on the way when a save dtype is given), and build _METADATA in memory.
 * Deferred part (ckpt_op_defer, on the save's background thread): everything with a file in it,
 * as jobs of the op's I/O engine (io/engine.h). One function job per array creates its
 * directory and .zarray; one per chunk (after its array's) prepares the chunk's bytes (a copy
 * only for edge chunks, casts and compression), computes its CRC-32C and finds its all-zero
 * 1 MiB blocks, then submits the file's open, the writes of the non-zero runs and the durable
 * close as engine jobs, so the data goes out with the engine's write-behind flushing and the
 * per-file fsyncs overlap other files' writes; each directory is fsync'd once when the group
 * ends. Only when every chunk is durable does a second group write _strings.json, _CHECKSUMS
 * and _METADATA (durable, in parallel) and fsync the item directory, so the whole item is
 * durable when the job returns.
 *
 * Packed leaves (pack_limit, storage/packed.h) take another route in phase 1: their chunks are
 * laid out in one data file (submit_packed); one function job per 4 MiB segment prepares its
 * chunks, takes their CRCs and submits one vectored write straight from their bytes (no gather
 * copy, no holes), and the file is closed
 * (fsync'd) after the last segment; a job after the segments writes _PACKED. _METADATA's text
 * is encoded by a function job of phase 1 too; it is still written last, in phase 2. */
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/pytree_internal.h"
#include "io/engine.h"
#include "handlers/op.h"
#include "util/crc32c.h"
#include "storage/packed.h"
#include "util/path.h"
#include "io/snapshot_copy.h"
#include "storage/zarr_io.h"
#include "io/staging_pool.h"

typedef struct save_job save_job;

typedef struct snap_shard {
  int64_t off[CKPT_MAX_RANK];
  int64_t shape[CKPT_MAX_RANK];
  void *data;
  bool owned;  /* a snapshot buffer of ours (else the caller's memory, zero-copy) */
  bool pooled; /* from the staging pool (else malloc) */
} snap_shard;

typedef struct save_leaf {
  save_job *job;
  ckpt_engine_file *zfile; /* .zarray, opened by task_leaf; closed by task_close_batch */
  size_t entry;            /* index into meta.entries */
  ckpt_zarr_meta zm;       /* as stored */
  ckpt_dtype src_dtype;    /* dtype of the snapshot buffers */
  bool packed;             /* stored in the item's packed data file (storage/packed.h) */
  uint64_t stored_bytes;   /* the whole array at the stored dtype (UINT64_MAX: overflow) */
  size_t n_shards;
  snap_shard *shards;
  char *dir; /* <item>/<param> */
} save_leaf;

typedef struct save_chunk {
  save_job *job;
  void *own; /* a prepared copy of the chunk (edge, cast, compressed); freed after its close */
  uint64_t reserved;      /* memory-budget bytes the chunk holds and has not handed to a write */
  ckpt_engine_file *file; /* opened by task_chunk; closed (fsync'd) by task_close_batch */
  size_t leaf;
  size_t shard;
  uint64_t linear;
  uint32_t crc;
  uint64_t bytes;
  const unsigned char *data; /* the stored bytes, once prepared (own or the snapshot's) */
  bool prepared;
  uint64_t offset; /* packed: where the bytes go in the data file */
} save_chunk;

/* A run of consecutive packed chunks written together by one vectored write. */
typedef struct pack_segment {
  save_job *job;
  size_t lo, hi;  /* packed[lo .. hi) */
  uint64_t start; /* file offset of the first chunk */
  uint64_t len;
  uint64_t reserved; /* memory-budget bytes held and not yet handed to a write */
} pack_segment;

struct save_job {
  ckpt_io *io;
  ckpt_op *op;              /* the save's (claims what it made durable), or NULL */
  ckpt_engine *engine;      /* the op's, or NULL: run_save makes a short-lived one */
  ckpt_engine *engine_used; /* the one run_save runs on */
  ckpt_engine_group *group; /* the chunk group, while run_save runs */
  char *dir;
  ckpt_pytree_meta meta;
  size_t n_leaves, cap_leaves;
  save_leaf *leaves;
  size_t n_chunks, cap_chunks;
  save_chunk *chunks;
  cJSON *strings;      /* param → value, or NULL */
  uint64_t pack_limit; /* arrays of at most this many stored bytes are packed; 0: none */
  size_t n_packed_leaves;
  size_t n_packed; /* chunks of packed leaves, in save order: */
  size_t *packed;  /* indices into chunks */
  size_t n_segments;
  pack_segment *segments;
  ckpt_engine_file *pfile; /* the packed data file while phase 1 runs */
  /* _METADATA's text, encoded during phase 1 off the critical path (owned; NULL until then). */
  char *meta_text;
  size_t meta_len;
  bool packed_index_written; /* _PACKED was written (durably) in phase 1 */
};

static void job_free(void *arg) {
  save_job *j = arg;
  if (j == NULL)
    return;
  for (size_t i = 0; i < j->n_leaves; i++) {
    save_leaf *l = &j->leaves[i];
    for (size_t s = 0; s < l->n_shards; s++)
      if (l->shards[s].owned)
        ckpt_staging_release(l->shards[s].data, l->shards[s].pooled);
    free(l->shards);
    free(l->dir);
  }
  free(j->leaves);
  for (size_t i = 0; i < j->n_chunks; i++)
    free(j->chunks[i].own);
  free(j->chunks);
  free(j->packed);
  free(j->segments);
  free(j->meta_text);
  cJSON_Delete(j->strings);
  ckpt_pytree_meta_free(&j->meta);
  free(j->dir);
  free(j);
}

/* ---------------------------------------------------------------- flattening */

typedef struct flat_ctx {
  save_job *job;
  const ckpt_pytree_save_spec *spec;
  bool zero_copy;
  const char *what;
  ckpt_copy_list *copies; /* large snapshot copies, run together after flattening; or NULL */
  const ckpt_pytree_leaf_save **args; /* spec's leaf_args with a param, sorted (sort_leaf_args) */
  size_t n_args;
  ckpt_meta_key *stack;
  size_t depth, cap;
  size_t cap_entries;
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
  c->stack[c->depth].key = strdup(key);
  if (c->stack[c->depth].key == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
  c->stack[c->depth].key_type = type;
  c->depth++;
  return CKPT_OK;
}

static void pop_key(flat_ctx *c) {
  free(c->stack[--c->depth].key);
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
  e->keys = calloc(c->depth ? c->depth : 1, sizeof *e->keys);
  e->value_type = strdup(value_type);
  size_t plen = 1;
  for (size_t i = 0; i < c->depth; i++)
    plen += strlen(c->stack[i].key) + 1;
  e->param = malloc(plen);
  if (e->keys == NULL || e->value_type == NULL || e->param == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
  size_t pos = 0;
  for (size_t i = 0; i < c->depth; i++) {
    e->keys[i].key = strdup(c->stack[i].key);
    if (e->keys[i].key == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
    e->keys[i].key_type = c->stack[i].key_type;
    e->depth = i + 1;
    size_t l = strlen(c->stack[i].key);
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

static ckpt_status add_chunks(save_job *j, size_t leaf_index, ckpt_error *err) {
  save_leaf *l = &j->leaves[leaf_index];
  const ckpt_zarr_meta *m = &l->zm;
  int nd = m->ndim;
  int64_t grid[CKPT_MAX_RANK];
  uint64_t total = ckpt_zarr_grid(m, grid);
  if (total == 0)
    return CKPT_OK;
  for (size_t s = 0; s < l->n_shards; s++) {
    const snap_shard *sh = &l->shards[s];
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
      save_chunk *c = realloc(j->chunks, cap * sizeof *c);
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
      save_chunk *c = &j->chunks[j->n_chunks++];
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

/* Plans one array (or scalar, as a 0-d array) leaf: stored metadata, chunks, snapshot. */
static ckpt_status plan_array(flat_ctx *c, const ckpt_array *a, const char *value_type,
                              ckpt_error *err) {
  save_job *j = c->job;
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
    save_leaf *l = realloc(j->leaves, cap * sizeof *l);
    if (l == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
    j->leaves = l;
    j->cap_leaves = cap;
  }
  size_t li = j->n_leaves++;
  save_leaf *l = &j->leaves[li];
  memset(l, 0, sizeof *l);
  l->job = j;
  l->entry = entry;
  l->dir = ckpt_path_child(j->dir, e->param);
  if (l->dir == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
  ckpt_zarr_meta *m = &l->zm;
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
  local = (ckpt_error)CKPT_ERROR_INIT;
  st = ckpt_zarr_choose_chunks(a, ckpt_dtype_size(m->dtype), target, la ? la->shard_axes : NULL,
                               la ? la->n_shard_axes : 0, e->param, m->chunks, &local);
  if (st != CKPT_OK)
    return leaf_error(c, st, local.message, err);
  /* Stored bytes before compression: which leaves are packed (and written first, as small)
   * does not depend on the data. */
  uint64_t bytes = ckpt_dtype_size(m->dtype);
  bool over = false;
  for (int d = 0; d < a->ndim && !over; d++)
    over = __builtin_mul_overflow(bytes, (uint64_t)a->shape[d], &bytes);
  l->stored_bytes = over ? UINT64_MAX : bytes;
  if (j->pack_limit > 0) {
    l->packed = l->stored_bytes <= j->pack_limit;
    j->n_packed_leaves += l->packed;
  }
  e->has_write_shape = a->ndim > 0;
  e->write_ndim = a->ndim;
  /* write_shape is the local shard shape (Orbax); with several shards, the first one's. */
  for (size_t s = 0; s < a->n_shards; s++) {
    if (a->shards[s].replica_id != 0)
      continue;
    memcpy(e->write_shape, a->shards[s].shape, sizeof(int64_t) * (size_t)a->ndim);
    break;
  }

  /* Snapshot the replica-0 shards. */
  size_t n0 = 0;
  for (size_t s = 0; s < a->n_shards; s++)
    n0 += a->shards[s].replica_id == 0;
  l->shards = calloc(n0 ? n0 : 1, sizeof *l->shards);
  if (l->shards == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", c->what);
  bool copy = !c->zero_copy;
  l->src_dtype = copy ? m->dtype : a->dtype; /* a copy casts on the way */
  for (size_t s = 0; s < a->n_shards; s++) {
    const ckpt_shard *src = &a->shards[s];
    if (src->replica_id != 0)
      continue;
    snap_shard *dst = &l->shards[l->n_shards];
    memcpy(dst->off, src->offset, sizeof dst->off);
    memcpy(dst->shape, src->shape, sizeof dst->shape);
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
      save_job *j = c->job;
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
      ckpt_status st = plan_array(c, &view, CKPT_VT_NDARRAY, err);
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
      ckpt_status st = plan_array(c, &view, CKPT_VT_SCALAR, err);
      c->zero_copy = zc;
      return st;
    }
    case CKPT_NODE_ARRAY:
      return plan_array(c, ckpt_tree_array(node), CKPT_VT_NDARRAY, err);
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
static ckpt_status check_collisions(save_job *j, const char *what, const ckpt_meta_entry ***sorted,
                                    ckpt_error *err) {
  size_t n = j->meta.n;
  const ckpt_meta_entry **v = *sorted = malloc((n ? n : 1) * sizeof *v);
  if (v == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", what);
  for (size_t i = 0; i < n; i++)
    v[i] = &j->meta.entries[i];
  qsort(v, n, sizeof *v, cmp_param_ptr);
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
  const ckpt_array *a = ckpt_tree_array(node);
  if (a == NULL)
    return CKPT_OK;
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

/* The blocking half: everything but the writing. *out owned by the caller (job_free). */
static ckpt_status plan_save(ckpt_io *io, ckpt_engine *engine, bool zero_copy, uint64_t pack_limit,
                             const char *dir, const ckpt_pytree_save_spec *spec, save_job **out,
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
  save_job *j = calloc(1, sizeof *j);
  if (j == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", what);
  j->io = io;
  j->pack_limit = spec->pack_arrays_up_to_bytes ? spec->pack_arrays_up_to_bytes : pack_limit;
  j->dir = strdup(dir);
  j->meta.use_ocdbt = false;
  j->meta.use_zarr3 = false;
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
  c.job = j;
  c.spec = spec;
  c.zero_copy = zero_copy;
  c.what = what;
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
  if (st != CKPT_OK)
    goto fail;
  *out = j;
  return CKPT_OK;
fail:
  job_free(j);
  return st;
}

/* ---------------------------------------------------------------- the deferred write */

/* on_done of jobs whose buffer is a malloc'ed copy owned by nobody else (JSON texts). */
static void free_arg_on_done(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  free(arg);
}

/* on_done of a chunk file's close: every write of the file is done, its copy can go. */
static void chunk_closed(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  save_chunk *ch = arg;
  free(ch->own);
  ch->own = NULL;
}

/* on_done of a chunk's function job (also when canceled): budget not handed to a write goes
 * back. */
static void release_reserved(save_job *j, uint64_t *reserved) {
  if (*reserved > 0)
    ckpt_engine_unreserve(j->engine_used, *reserved);
  *reserved = 0;
}

static void chunk_task_done(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  save_chunk *ch = arg;
  release_reserved(ch->job, &ch->reserved);
}

/* Submits one write of a chunk file or a packed segment, handing it part of the caller's budget
 * reservation (*reserved) when that covers it (the write then releases it when done). */
static ckpt_status submit_write(save_job *j, uint64_t *reserved, ckpt_engine_file *f,
                                const void *buf, size_t n, uint64_t offset, ckpt_error *err) {
  bool hand = n > 0 && n <= *reserved;
  ckpt_engine_job_opts o = {.budget_reserved = hand};
  ckpt_status st = ckpt_engine_write(j->group, f, buf, n, offset, &o, NULL, err);
  if (st == CKPT_OK && hand)
    *reserved -= n;
  return st;
}

/* Submits a small durable file: open, one write of text (taken over: freed when written, or
 * here when nothing was submitted) and, unless keep_open is given, the close. With keep_open
 * the file is left open in *keep_open for a later close (NULL when the open failed). */
static ckpt_status submit_small_file(ckpt_engine_group *g, const char *path, char *text, size_t len,
                                     ckpt_engine_file **keep_open, ckpt_error *err) {
  ckpt_engine_file *f;
  if (keep_open != NULL)
    *keep_open = NULL;
  ckpt_status st = ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666,
                                         CKPT_ENGINE_FILE_DURABLE, &f, err);
  if (st != CKPT_OK) {
    free(text);
    return st;
  }
  ckpt_engine_job_opts o = {.on_done = free_arg_on_done, .on_done_arg = text};
  st = ckpt_engine_write(g, f, text, len, 0, &o, NULL, err);
  if (st != CKPT_OK)
    free(text); /* not submitted: still ours */
  if (keep_open != NULL) {
    *keep_open = f;
    return st;
  }
  /* Closed even after a failed write submission: an open file would fail the group too, but
   * this way its descriptor is closed by the engine and the first error stays the real one. */
  ckpt_status cst = ckpt_engine_file_close(g, f, NULL, NULL, st == CKPT_OK ? err : NULL);
  return st != CKPT_OK ? st : cst;
}

/* Function job: the array directory and its .zarray. */
static ckpt_status task_leaf(void *arg, ckpt_error *err) {
  save_leaf *l = arg;
  save_job *j = l->job;
  ckpt_status st = ckpt_zarr_make_array_dir(j->io, l->dir, err);
  if (st != CKPT_OK)
    return st;
  char *json;
  size_t len;
  st = ckpt_zarr_meta_encode(&l->zm, &json, &len, err);
  if (st != CKPT_OK)
    return st;
  char *path = ckpt_path_child(l->dir, CKPT_ZARR_METADATA_FILE);
  if (path == NULL) {
    free(json);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory writing '%s'", l->dir);
  }
  st = submit_small_file(j->group, path, json, len, &l->zfile, err);
  free(path);
  return st;
}

/* Zero blocks are left as holes: fresh optimiser state, padding and sparse tensors cost no
 * disk space or write bandwidth, and reads return zeros for them. 1 MiB blocks keep the check
 * cheap (dense data fails it on its first word) and the writes large. */
#define ZERO_BLOCK ((size_t)1 << 20)
/* Largest write job a chunk submits (a multiple of ZERO_BLOCK). */
#define WRITE_PIECE ((size_t)8 << 20)

/* Submits the writes of n bytes of data at file offset base: CRC (when crc is not NULL) and
 * zero detection in one pass over 1 MiB blocks; each run of non-zero blocks becomes one write
 * job, submitted as soon as it ends so the engine starts on it at once. With ch, the writes take
 * over the budget reservation *reserved (submit_write). If the data ends in a hole, its last
 * byte is written so that the file reaches its full size. */
static ckpt_status submit_runs(save_job *j, uint64_t *reserved, ckpt_engine_file *f,
                               const unsigned char *data, size_t n, uint64_t base, uint32_t *crc,
                               ckpt_error *err) {
  size_t run_start = 0, pos = 0;
  bool in_run = false, last_written = false;
  uint32_t c = 0;
  ckpt_status st = CKPT_OK;
  while (st == CKPT_OK && pos < n) {
    size_t len = n - pos < ZERO_BLOCK ? n - pos : ZERO_BLOCK;
    bool z = ckpt_zarr_all_zero(data + pos, len);
    if (crc != NULL)
      c = z ? ckpt_crc32c_zeros(c, len) : ckpt_crc32c(c, data + pos, len);
    if (!z && !in_run) {
      run_start = pos;
      in_run = true;
    }
    bool flush = (z && in_run) || (!z && pos + len - run_start >= WRITE_PIECE);
    last_written = !z;
    pos += len;
    if (flush) {
      /* A run ended, or a long run goes out in pieces so the disk works while the pass goes
       * on. */
      size_t end = z ? pos - len : pos;
      st = submit_write(j, reserved, f, data + run_start, end - run_start, base + run_start, err);
      in_run = false;
    }
  }
  if (st == CKPT_OK && in_run)
    st = submit_write(j, reserved, f, data + run_start, n - run_start, base + run_start, err);
  if (st == CKPT_OK && n > 0 && !last_written) {
    static const unsigned char zero_byte = 0;
    st = ckpt_engine_write(j->group, f, &zero_byte, 1, base + (uint64_t)n - 1, NULL, NULL, err);
  }
  if (crc != NULL)
    *crc = c;
  return st;
}

/* Prepares the stored bytes of one chunk (once): a pointer into the snapshot when the chunk is
 * one run of it, else a copy in ch->own (edge chunks padded, casts, zstd). *key receives the
 * chunk key (at least CKPT_ZARR_KEY_MAX bytes). */
static ckpt_status prepare_chunk(save_chunk *ch, char *key, ckpt_error *err) {
  save_job *j = ch->job;
  save_leaf *l = &j->leaves[ch->leaf];
  const ckpt_zarr_meta *m = &l->zm;
  const snap_shard *sh = &l->shards[ch->shard];
  const char *param = j->meta.entries[l->entry].param;
  int nd = m->ndim;
  int64_t grid[CKPT_MAX_RANK], index[CKPT_MAX_RANK], off[CKPT_MAX_RANK], ext[CKPT_MAX_RANK],
      rel[CKPT_MAX_RANK], zero[CKPT_MAX_RANK] = {0};
  ckpt_zarr_grid(m, grid);
  ckpt_zarr_chunk_index(m, grid, ch->linear, index);
  ckpt_zarr_chunk_key(m, index, key);
  if (ch->prepared)
    return CKPT_OK;
  ckpt_zarr_chunk_box(m, index, off, ext);
  bool edge = false;
  for (int d = 0; d < nd; d++) {
    rel[d] = off[d] - sh->off[d];
    edge |= ext[d] != m->chunks[d];
  }
  size_t es = ckpt_dtype_size(m->dtype);
  size_t raw = (size_t)ckpt_zarr_chunk_elements(m) * es;
  const unsigned char *data;
  if (!edge && l->src_dtype == m->dtype && ckpt_box_contiguous(nd, ext, sh->shape)) {
    /* The chunk is one run of the snapshot (or, zero-copy, of the caller's memory): the engine
     * writes it from there. */
    data = (const unsigned char *)sh->data + ckpt_box_offset(nd, sh->shape, rel) * es;
  } else {
    unsigned char *buf = malloc(raw > 0 ? raw : 1);
    if (buf == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "array '%s': cannot allocate %zu bytes", param, raw);
    if (edge)
      memset(buf, 0, raw); /* zarr v2 pads edge chunks to the full chunk shape */
    ckpt_box_copy(nd, ext, buf, m->dtype, m->chunks, zero, sh->data, l->src_dtype, sh->shape, rel);
    ch->own = buf;
    data = buf;
  }
  size_t n = raw;
  if (m->compressor == CKPT_COMPRESSION_ZSTD) {
    void *z = NULL;
    size_t zn = 0;
    char what[300];
    snprintf(what, sizeof what, "array '%.200s' chunk '%.40s'", param, key);
    ckpt_status st = ckpt_zarr_compress(data, raw, m->level, &z, &zn, what, err);
    if (st != CKPT_OK)
      return st;
    free(ch->own);
    ch->own = z;
    data = z;
    n = zn;
  }
  ch->data = data;
  ch->bytes = n;
  ch->prepared = true;
  return CKPT_OK;
}

/* Function job: prepares one chunk and submits its file's I/O (see the top of the file). */
static ckpt_status task_chunk(void *arg, ckpt_error *err) {
  save_chunk *ch = arg;
  save_job *j = ch->job;
  save_leaf *l = &j->leaves[ch->leaf];
  char key[CKPT_ZARR_KEY_MAX];
  ckpt_status st = prepare_chunk(ch, key, err);
  if (st != CKPT_OK)
    return st;
  const unsigned char *data = ch->data;
  size_t n = (size_t)ch->bytes;
  char *path = ckpt_path_child(l->dir, key);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_engine_file *f;
  st = ckpt_engine_file_open(j->group, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666,
                             CKPT_ENGINE_FILE_DURABLE, &f, err);
  free(path);
  if (st != CKPT_OK)
    return st;
  st = submit_runs(j, &ch->reserved, f, data, n, 0, &ch->crc, err);
  ch->file = f; /* closed by its batch's task_close_batch */
  return st;
}

/* Arrays whose chunks hold at most SMALL_ARRAY_BYTES in all (write_arrays writes them first). */
static bool leaf_is_small(const save_job *j, size_t li);

/* The files one closing job closes: arrays [leaf_lo, leaf_hi) (their .zarray) and chunks
 * [chunk_lo, chunk_hi). */
typedef struct close_batch {
  save_job *job;
  bool small; /* the pass's size class: arrays of the other class in the ranges are skipped */
  size_t leaf_lo, leaf_hi, chunk_lo, chunk_hi;
  ckpt_future *closer; /* the closing job's future */
  ckpt_future *closed; /* a job that ends once every file of the batch is closed */
} close_batch;

/* Function job, after every array and chunk job of its batch: submits the durable close of
 * every file they opened and adds each close to the batch's gate (b->closed), which the batch
 * two later waits for. Why not close each file as soon as its writes are submitted: fsyncs
 * interleaved with the creation of hundreds of files serialised the two (measured here: mkdir
 * and open(O_CREAT) took over 1 ms each). Created a batch at a time, the files are then fsync'd
 * in parallel (their data already under write-back; the engine batches the fsyncs) and the
 * directories once each at the end. Batches bound the files open at once (see batch_files). */
static ckpt_status task_close_batch(void *arg, ckpt_error *err) {
  close_batch *b = arg;
  save_job *j = b->job;
  ckpt_status st = CKPT_OK;
  for (size_t i = b->leaf_lo; i < b->leaf_hi; i++) {
    if (j->leaves[i].zfile == NULL || leaf_is_small(j, i) != b->small)
      continue;
    ckpt_future *closed = NULL;
    ckpt_status cst = ckpt_engine_file_close(j->group, j->leaves[i].zfile, NULL, &closed,
                                             st == CKPT_OK ? err : NULL);
    if (cst == CKPT_OK)
      cst = ckpt_engine_add_after(b->closed, closed, st == CKPT_OK ? err : NULL);
    if (st == CKPT_OK)
      st = cst;
  }
  for (size_t i = b->chunk_lo; i < b->chunk_hi; i++) {
    save_chunk *ch = &j->chunks[i];
    if (ch->file == NULL || leaf_is_small(j, ch->leaf) != b->small)
      continue;
    /* The close runs after every write of the file; then the copy can go. If the close cannot
     * be submitted the copy stays with the chunk (job_free frees it once the group is done). */
    ckpt_engine_job_opts o = {.on_done = chunk_closed, .on_done_arg = ch};
    ckpt_future *closed = NULL;
    ckpt_status cst =
        ckpt_engine_file_close(j->group, ch->file, &o, &closed, st == CKPT_OK ? err : NULL);
    if (cst == CKPT_OK)
      cst = ckpt_engine_add_after(b->closed, closed, st == CKPT_OK ? err : NULL);
    if (st == CKPT_OK)
      st = cst;
  }
  return st;
}

/* Files per batch: an eighth of the descriptor limit (three batches may be open at once, the
 * direct flush mode opens two descriptors per file, and the caller and the engine's rings have
 * descriptors of their own), between 4 and 512. The floor is low on purpose: with 64
 * descriptors a floor of 16 put 96 descriptors in flight in the direct mode (EMFILE). */
static size_t batch_files(void) {
  struct rlimit rl;
  size_t n = 128;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    n = (size_t)(rl.rlim_cur / 8);
  else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    n = 512;
  return n < 4 ? 4 : n > 512 ? 512 : n;
}

/* _CHECKSUMS as compact JSON; *text malloc'ed (caller frees). */
static ckpt_status checksums_text(save_job *j, char **text, size_t *len, ckpt_error *err) {
  *text = NULL;
  cJSON *sums = ckpt_checksums_new();
  bool ok = sums != NULL;
  /* A leaf's chunks are consecutive and parameter names unique (check_collisions): each
   * array's entry is appended once and kept while its chunks are added, with no lookup (a
   * lookup per chunk made this quadratic in the number of arrays). */
  cJSON *array = NULL;
  size_t array_leaf = SIZE_MAX;
  for (size_t i = 0; ok && i < j->n_chunks; i++) {
    const save_chunk *c = &j->chunks[i];
    const save_leaf *l = &j->leaves[c->leaf];
    if (l->packed)
      continue; /* its CRC is in _PACKED */
    if (c->leaf != array_leaf) {
      array = ckpt_checksums_append_array(sums, j->meta.entries[l->entry].param);
      array_leaf = c->leaf;
      if (array == NULL) {
        ok = false;
        break;
      }
    }
    int64_t grid[CKPT_MAX_RANK], index[CKPT_MAX_RANK];
    char key[CKPT_ZARR_KEY_MAX];
    ckpt_zarr_grid(&l->zm, grid);
    ckpt_zarr_chunk_index(&l->zm, grid, c->linear, index);
    ckpt_zarr_chunk_key(&l->zm, index, key);
    ok = ckpt_checksums_add_chunk(array, key, c->crc, c->bytes);
  }
  ckpt_status st;
  if (!ok)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory building _CHECKSUMS");
  else
    st = ckpt_json_dump_compact(sums, text, len, err);
  cJSON_Delete(sums);
  return st;
}

/* _PACKED as compact JSON; *text malloc'ed (caller frees). */
static ckpt_status packed_text(save_job *j, char **text, size_t *len, ckpt_error *err) {
  size_t na = j->n_packed_leaves;
  const char **params = malloc((na ? na : 1) * sizeof *params);
  const ckpt_zarr_meta **metas = malloc((na ? na : 1) * sizeof *metas);
  size_t *slot = malloc((j->n_leaves ? j->n_leaves : 1) * sizeof *slot);
  ckpt_packed_row *rows = malloc((j->n_packed ? j->n_packed : 1) * sizeof *rows);
  ckpt_status st;
  if (params == NULL || metas == NULL || slot == NULL || rows == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory building %s", CKPT_PACKED_INDEX_FILE);
  } else {
    size_t k = 0;
    for (size_t i = 0; i < j->n_leaves; i++) {
      if (!j->leaves[i].packed)
        continue;
      slot[i] = k;
      params[k] = j->meta.entries[j->leaves[i].entry].param;
      metas[k++] = &j->leaves[i].zm;
    }
    for (size_t i = 0; i < j->n_packed; i++) {
      const save_chunk *c = &j->chunks[j->packed[i]];
      rows[i] = (ckpt_packed_row){.array = slot[c->leaf],
                                  .linear = c->linear,
                                  .offset = c->offset,
                                  .nbytes = c->bytes,
                                  .crc = c->crc};
    }
    st = ckpt_packed_encode(na, params, metas, j->n_packed, rows, text, len, err);
  }
  free(params);
  free(metas);
  free(slot);
  free(rows);
  return st;
}

/* Submits dir/name with text (taken over). */
static ckpt_status submit_item_file(save_job *j, ckpt_engine_group *g, const char *name, char *text,
                                    size_t len, ckpt_error *err) {
  char *path = ckpt_path_child(j->dir, name);
  if (path == NULL) {
    free(text);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_status st = submit_small_file(g, path, text, len, NULL, err);
  free(path);
  return st;
}

/* ---------------------------------------------------------------- packed leaves */

/* Bytes per segment (one vectored write): large enough for long sequential writes, small
 * enough that a few segments keep every worker busy (40 MiB of small leaves = 10 segments). */
#define PACK_SEGMENT ((uint64_t)4 << 20)

/* on_done of a segment's function job (also when canceled): budget not handed to a write goes
 * back. */
static void segment_done(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  pack_segment *g = arg;
  release_reserved(g->job, &g->reserved);
}

/* The alignment gaps between packed chunks (each under CKPT_PACKED_ALIGN bytes) are written
 * from here. */
static const unsigned char k_pack_gap[CKPT_PACKED_ALIGN];

/* on_done of a segment's vectored write (also when canceled or failed): the kernel has the
 * bytes, so the chunks' private copies (edge, cast, zstd) can go. The snapshot's bytes stay
 * until the save's job is freed, after the group. */
static void segment_written(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  pack_segment *g = arg;
  for (size_t i = g->lo; i < g->hi; i++) {
    save_chunk *ch = &g->job->chunks[g->job->packed[i]];
    free(ch->own);
    ch->own = NULL;
    ch->data = NULL;
  }
}

/* Function job: prepares its chunks, records each chunk's CRC-32C, and submits one vectored
 * write of the segment straight from the chunks' bytes (the snapshot's, the caller's in a
 * zero-copy save, or a chunk's private copy), alignment gaps from k_pack_gap. No gather copy
 * and no fresh segment memory: docs/performance.md has the A/B figures. Unlike chunk files,
 * packed data leaves no holes for zero blocks (packed arrays are small; the check would cost a
 * pass and the writes would split). */
static ckpt_status task_pack_segment(void *arg, ckpt_error *err) {
  pack_segment *g = arg;
  save_job *j = g->job;
  size_t cap = 2 * (g->hi - g->lo);
  struct iovec *iov = malloc((cap > 0 ? cap : 1) * sizeof *iov);
  if (iov == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "'%s': out of memory for a write list",
                          CKPT_PACKED_DATA_FILE);
  size_t n = 0;
  uint64_t pos = g->start;
  for (size_t i = g->lo; i < g->hi; i++) {
    save_chunk *ch = &j->chunks[j->packed[i]];
    char key[CKPT_ZARR_KEY_MAX];
    ckpt_status st = prepare_chunk(ch, key, err);
    if (st != CKPT_OK) {
      free(iov);
      return st;
    }
    ch->crc = ckpt_crc32c(0, ch->data, (size_t)ch->bytes);
    if (ch->offset > pos)
      iov[n++] = (struct iovec){.iov_base = (void *)(uintptr_t)k_pack_gap,
                                .iov_len = (size_t)(ch->offset - pos)};
    iov[n++] =
        (struct iovec){.iov_base = (void *)(uintptr_t)ch->data, .iov_len = (size_t)ch->bytes};
    pos = ch->offset + ch->bytes;
  }
  /* The write takes over the segment's budget reservation and releases it when done. */
  bool hand = g->len > 0 && g->reserved >= g->len;
  ckpt_engine_job_opts o = {.budget_reserved = hand, .on_done = segment_written, .on_done_arg = g};
  ckpt_status st = ckpt_engine_writev(j->group, j->pfile, iov, n, g->start, &o, NULL, err);
  if (st == CKPT_OK && hand)
    g->reserved -= g->len;
  free(iov); /* copied by the engine */
  return st;
}

/* Function job (phase 1, no prerequisites): _METADATA's text, which does not depend on the data,
 * encoded while the data is written. */
static ckpt_status task_encode_metadata(void *arg, ckpt_error *err) {
  save_job *j = arg;
  return ckpt_pytree_meta_encode(&j->meta, &j->meta_text, &j->meta_len, err);
}

static ckpt_status packed_text(save_job *j, char **text, size_t *len, ckpt_error *err);
static ckpt_status submit_small_file(ckpt_engine_group *g, const char *path, char *text, size_t len,
                                     ckpt_engine_file **keep_open, ckpt_error *err);

/* Function job after every segment job (every CRC is known): encodes the _PACKED index and
 * submits its durable write, while the data file is made durable (only _METADATA, written
 * last, says the item is complete). */
static ckpt_status task_write_packed_index(void *arg, ckpt_error *err) {
  save_job *j = arg;
  char *text = NULL, *path = NULL;
  size_t len = 0;
  ckpt_status st = packed_text(j, &text, &len, err);
  if (st == CKPT_OK && (path = ckpt_path_child(j->dir, CKPT_PACKED_INDEX_FILE)) == NULL) {
    free(text);
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  if (st == CKPT_OK)
    st = submit_small_file(j->group, path, text, len, NULL, err); /* takes text */
  free(path);
  if (st == CKPT_OK)
    j->packed_index_written = true;
  return st;
}

/* Function job after every segment job: submits the data file's durable close (after every
 * write the segments submitted, as the close is a barrier for the file's earlier jobs). */
static ckpt_status task_pack_close(void *arg, ckpt_error *err) {
  save_job *j = arg;
  return ckpt_engine_file_close(j->group, j->pfile, NULL, NULL, err);
}

/* Lays out the packed chunks (compressing zstd ones first: their size decides the offsets of
 * the rest), then opens the data file and submits one job per segment and the closing job.
 * Runs on the save's background thread, before the zarr arrays' jobs, so it overlaps them. */
static ckpt_status submit_packed(save_job *j, ckpt_error *err) {
  if (j->n_packed_leaves == 0)
    return CKPT_OK;
  j->packed = malloc((j->n_chunks ? j->n_chunks : 1) * sizeof *j->packed);
  if (j->packed == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; i < j->n_chunks; i++)
    if (j->leaves[j->chunks[i].leaf].packed)
      j->packed[j->n_packed++] = i;
  if (j->n_packed == 0)
    return CKPT_OK; /* packed arrays with an empty dimension: no bytes, no data file */
  uint64_t off = 0;
  for (size_t i = 0; i < j->n_packed; i++) {
    save_chunk *ch = &j->chunks[j->packed[i]];
    const ckpt_zarr_meta *m = &j->leaves[ch->leaf].zm;
    if (m->compressor == CKPT_COMPRESSION_ZSTD) {
      char key[CKPT_ZARR_KEY_MAX];
      ckpt_status st = prepare_chunk(ch, key, err);
      if (st != CKPT_OK)
        return st;
    } else {
      ch->bytes = ckpt_zarr_chunk_elements(m) * (uint64_t)ckpt_dtype_size(m->dtype);
    }
    off = (off + CKPT_PACKED_ALIGN - 1) / CKPT_PACKED_ALIGN * CKPT_PACKED_ALIGN;
    ch->offset = off;
    off += ch->bytes;
  }
  j->segments = calloc(j->n_packed, sizeof *j->segments);
  ckpt_future **done = calloc(j->n_packed, sizeof *done);
  char *path = ckpt_path_child(j->dir, CKPT_PACKED_DATA_FILE);
  ckpt_status st = CKPT_OK;
  if (j->segments == NULL || done == NULL || path == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  /* Segments: consecutive chunks, split where the next chunk would pass PACK_SEGMENT. */
  for (size_t i = 0; st == CKPT_OK && i < j->n_packed; i++) {
    save_chunk *ch = &j->chunks[j->packed[i]];
    pack_segment *g = j->n_segments ? &j->segments[j->n_segments - 1] : NULL;
    if (g == NULL || ch->offset + ch->bytes - g->start > PACK_SEGMENT) {
      g = &j->segments[j->n_segments++];
      *g = (pack_segment){.job = j, .lo = i, .hi = i, .start = ch->offset};
    }
    g->hi = i + 1;
    g->len = ch->offset + ch->bytes - g->start;
  }
  if (st == CKPT_OK)
    st = ckpt_engine_file_open(j->group, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666,
                               CKPT_ENGINE_FILE_DURABLE, &j->pfile, err);
  size_t submitted = 0;
  for (; st == CKPT_OK && submitted < j->n_segments; submitted++) {
    /* The memory budget bounds the segments between submission and durability, as it bounds
     * chunks: this thread (never a worker) waits here while it is used up. */
    pack_segment *g = &j->segments[submitted];
    g->reserved = g->len;
    ckpt_engine_reserve(j->engine_used, g->reserved);
    ckpt_engine_job_opts o = {.label = "packed arrays", .on_done = segment_done, .on_done_arg = g};
    st = ckpt_engine_call(j->group, task_pack_segment, g, &o, &done[submitted], err);
    if (st != CKPT_OK) {
      segment_done(g, NULL, st); /* not submitted: its on_done will not run */
      break;
    }
  }
  if (st == CKPT_OK) {
    ckpt_engine_job_opts o = {.after = done, .n_after = submitted, .label = "writing _PACKED"};
    st = ckpt_engine_call(j->group, task_write_packed_index, j, &o, NULL, err);
  }
  if (j->pfile != NULL) {
    /* Also after a failed submission, so the descriptor is closed (without fsync). */
    ckpt_engine_job_opts o = {.after = done, .n_after = submitted, .label = "closing packed data"};
    ckpt_status cst =
        ckpt_engine_call(j->group, task_pack_close, j, &o, NULL, st == CKPT_OK ? err : NULL);
    if (st == CKPT_OK)
      st = cst;
  }
  free(path);
  free(done);
  return st;
}

/* Submits the closing job of the batch being built (its jobs: jobs[0 .. *n_jobs)) with its
 * gate b->closed, to which the closing job adds every close it submits. */
static ckpt_status flush_batch(save_job *j, close_batch *b, ckpt_future **jobs, size_t *n_jobs,
                               ckpt_error *err) {
  ckpt_engine_job_opts o = {
      .after = jobs, .n_after = *n_jobs, .label = "closing files", .gate = &b->closed};
  ckpt_status st = ckpt_engine_call(j->group, task_close_batch, b, &o, &b->closer, err);
  *n_jobs = 0;
  return st;
}

/* Phase 1: every array directory, .zarray and chunk file, durable (directories included).
 * Jobs go in batches of batch_files() files, in order (an array's job, then its chunks' jobs);
 * the jobs of batch k start once every file of batch k-2 is closed (its gate job, `closed`),
 * so at most three batches of files are open, while the next batch's files are created as the
 * previous one's fsync. */

/* Arrays whose chunks hold at most this many bytes in all are written first, by themselves
 * (write_arrays says why). */
#define SMALL_ARRAY_BYTES ((uint64_t)1 << 20)

static bool leaf_is_small(const save_job *j, size_t li) {
  return j->leaves[li].stored_bytes <= SMALL_ARRAY_BYTES;
}

/* The batches of one pass over the arrays (write_arrays). */
typedef struct array_pass {
  size_t per;              /* files per batch */
  ckpt_future **leaf_done; /* [n_leaves] */
  ckpt_future **jobs;      /* [per]: the batch being built */
  close_batch *batches;    /* [max_batches] */
  size_t nb, n_jobs;
} array_pass;

/* Submits the directory, .zarray and chunk jobs of every zarr array of one size class (small:
 * leaf_is_small) to j->group, in batches, each closed by its own closing job. */
static ckpt_status submit_arrays(save_job *j, ckpt_engine *e, bool small, array_pass *p,
                                 ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  close_batch *batches = p->batches;
  p->nb = 0;
  p->n_jobs = 0;
  size_t ci = 0;
  batches[0] = (close_batch){.job = j, .small = small};
  for (size_t li = 0; st == CKPT_OK && li < j->n_leaves; li++) {
    if (j->leaves[li].packed || leaf_is_small(j, li) != small) {
      while (ci < j->n_chunks && j->chunks[ci].leaf == li)
        ci++; /* packed: written by submit_packed's jobs; else by the other pass */
      continue;
    }
    ckpt_future *after[2];
    size_t n_after = 0;
    if (p->nb >= 2)
      after[n_after++] = batches[p->nb - 2].closed;
    ckpt_engine_job_opts lo = {
        .after = after, .n_after = n_after, .label = "array directory and .zarray"};
    st = ckpt_engine_call(j->group, task_leaf, &j->leaves[li], &lo, &p->leaf_done[li], err);
    if (st != CKPT_OK)
      break;
    p->jobs[p->n_jobs++] = p->leaf_done[li];
    batches[p->nb].leaf_hi = li + 1;
    while (st == CKPT_OK &&
           (p->n_jobs == p->per || (ci < j->n_chunks && j->chunks[ci].leaf == li))) {
      if (p->n_jobs == p->per) {
        st = flush_batch(j, &batches[p->nb], p->jobs, &p->n_jobs, err);
        p->nb++;
        batches[p->nb] = (close_batch){.job = j,
                                       .small = small,
                                       .leaf_lo = li + 1,
                                       .leaf_hi = li + 1,
                                       .chunk_lo = ci,
                                       .chunk_hi = ci};
        continue;
      }
      save_chunk *ch = &j->chunks[ci];
      /* The memory budget bounds the chunks between submission and durability: this thread
       * (never a worker) waits here while it is used up. */
      const ckpt_zarr_meta *m = &j->leaves[li].zm;
      ch->reserved = ckpt_zarr_chunk_elements(m) * (uint64_t)ckpt_dtype_size(m->dtype);
      ckpt_engine_reserve(e, ch->reserved);
      n_after = 0;
      after[n_after++] = p->leaf_done[li];
      if (p->nb >= 2)
        after[n_after++] = batches[p->nb - 2].closed;
      ckpt_engine_job_opts o = {.after = after,
                                .n_after = n_after,
                                .label = "chunk",
                                .on_done = chunk_task_done,
                                .on_done_arg = ch};
      st = ckpt_engine_call(j->group, task_chunk, ch, &o, &p->jobs[p->n_jobs], err);
      if (st != CKPT_OK) {
        chunk_task_done(ch, NULL, st); /* not submitted: its on_done will not run */
        break;
      }
      p->n_jobs++;
      ci++;
      batches[p->nb].chunk_hi = ci;
    }
  }
  if (st == CKPT_OK && p->n_jobs > 0)
    st = flush_batch(j, &batches[p->nb], p->jobs, &p->n_jobs, err);
  return st;
}

/* Waits for j->group (canceled first when st is an error) and frees it; the first error. */
static ckpt_status end_group(save_job *j, ckpt_status st, ckpt_error *err) {
  if (st != CKPT_OK)
    ckpt_engine_group_cancel(j->group);
  ckpt_status wst = ckpt_engine_group_wait(j->group, st == CKPT_OK ? err : NULL);
  ckpt_engine_group_free(j->group);
  j->group = NULL;
  return st == CKPT_OK ? wst : st;
}

/* Two passes. The small zarr arrays (a model's biases and norms: a few KiB each, but a
 * directory and two files to create and fsync each) go first, in a group of their own that
 * ends before any large chunk is written: every fsync flushes the device's cache, which waits
 * for all the writes the device holds, so small files fsync'd while large chunks stream each
 * waited behind large data (docs/io-engine.md, "Small arrays first"). Alone, their concurrent
 * fsyncs share a few flushes. Then the packed data file, the _METADATA encoding and the large
 * arrays, in a second group. */
static ckpt_status write_arrays(save_job *j, ckpt_engine *e, ckpt_error *err) {
  array_pass p = {.per = batch_files()};
  size_t max_batches = (j->n_leaves + j->n_chunks) / p.per + 2;
  p.leaf_done = calloc(j->n_leaves ? j->n_leaves : 1, sizeof *p.leaf_done);
  p.jobs = calloc(p.per, sizeof *p.jobs);
  p.batches = calloc(max_batches, sizeof *p.batches);
  ckpt_status st = CKPT_OK;
  if (p.leaf_done == NULL || p.jobs == NULL || p.batches == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  bool any_small = false;
  for (size_t li = 0; li < j->n_leaves && !any_small; li++)
    any_small = !j->leaves[li].packed && leaf_is_small(j, li);
  if (st == CKPT_OK && any_small) {
    st = ckpt_engine_group_new(e, j->dir, &j->group, err);
    if (st == CKPT_OK)
      st = end_group(j, submit_arrays(j, e, true, &p, err), err);
  }
  if (st == CKPT_OK)
    st = ckpt_engine_group_new(e, j->dir, &j->group, err);
  if (st == CKPT_OK) {
    /* The item directory, which holds the new array directories and the packed data file,
     * is fsync'd by phase 2, after its own files are created: fsyncing it here too bought
     * nothing. */
    st = submit_packed(j, err);
    if (st == CKPT_OK) {
      ckpt_engine_job_opts o = {.label = "encoding _METADATA"};
      st = ckpt_engine_call(j->group, task_encode_metadata, j, &o, NULL, err);
    }
    if (st == CKPT_OK)
      st = submit_arrays(j, e, false, &p, err);
    st = end_group(j, st, err);
  }
  free(p.batches);
  free(p.jobs);
  free(p.leaf_done);
  return st;
}

/* Phase 2, once every chunk is durable: _strings.json, _CHECKSUMS and _METADATA. */
static ckpt_status write_item_files(save_job *j, ckpt_engine *e, ckpt_error *err) {
  ckpt_engine_group *g;
  ckpt_status st = ckpt_engine_group_new(e, j->dir, &g, err);
  if (st != CKPT_OK)
    return st;
  char *text = NULL;
  size_t len = 0;
  if (j->strings != NULL) {
    st = ckpt_json_dump_compact(j->strings, &text, &len, err);
    if (st == CKPT_OK)
      st = submit_item_file(j, g, CKPT_STRINGS_FILE, text, len, err);
  }
  if (st == CKPT_OK && j->n_packed_leaves > 0 && !j->packed_index_written) {
    /* Written in phase 1 when there was packed data; packed arrays with an empty dimension
     * only have no data file, and their index is written here. */
    st = packed_text(j, &text, &len, err);
    if (st == CKPT_OK)
      st = submit_item_file(j, g, CKPT_PACKED_INDEX_FILE, text, len, err);
  }
  if (st == CKPT_OK)
    st = checksums_text(j, &text, &len, err);
  if (st == CKPT_OK)
    st = submit_item_file(j, g, CKPT_CHECKSUMS_FILE, text, len, err);
  if (st == CKPT_OK) {
    st = submit_item_file(j, g, CKPT_METADATA_FILE, j->meta_text, j->meta_len, err);
    j->meta_text = NULL; /* encoded in phase 1; taken over by the submission */
  }
  /* The item directory itself, even when no file above noted it. */
  if (st == CKPT_OK)
    st = ckpt_engine_group_note_dir(g, j->dir, err);
  if (st != CKPT_OK)
    ckpt_engine_group_cancel(g);
  ckpt_status wst = ckpt_engine_group_wait(g, st == CKPT_OK ? err : NULL);
  if (st == CKPT_OK)
    st = wst;
  ckpt_engine_group_free(g);
  return st;
}

static ckpt_status run_save(void *arg, ckpt_error *err) {
  save_job *j = arg;
  ckpt_engine *e = j->engine, *temp = NULL;
  ckpt_status st = CKPT_OK;
  if (e == NULL) {
    /* A handler called without a checkpointer: an engine for this save only. */
    ckpt_engine_options o;
    ckpt_engine_options_init(&o);
    o.io = j->io;
    st = ckpt_engine_new(&o, &temp, err);
    e = temp;
  }
  j->engine_used = e;
  if (st == CKPT_OK)
    st = write_arrays(j, e, err);
  if (st == CKPT_OK)
    st = write_item_files(j, e, err);
  ckpt_engine_free(temp);
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "while writing '%s': ", j->dir);
  /* Claims for the commit (op.h): each array directory (its files fsync'd by their closes, the
   * directory at phase 1's end) and the item files of phase 2. Not the item directory: the
   * checkpointer or the Composite handler adds files to it afterwards. */
  for (size_t i = 0; st == CKPT_OK && j->op != NULL && i < j->n_leaves; i++)
    if (!j->leaves[i].packed) /* a packed leaf has no directory */
      ckpt_op_note_durable(j->op, j->leaves[i].dir);
  /* Phase 2's files, and the packed index and data file (durable closes, in phase 1 or 2). */
  const char *item_files[] = {CKPT_STRINGS_FILE, CKPT_CHECKSUMS_FILE, CKPT_METADATA_FILE,
                              CKPT_PACKED_INDEX_FILE, CKPT_PACKED_DATA_FILE};
  bool written[] = {j->strings != NULL, true, true, j->n_packed_leaves > 0, j->n_packed > 0};
  for (size_t i = 0; st == CKPT_OK && j->op != NULL && i < 5; i++) {
    if (!written[i])
      continue;
    char *path = ckpt_path_child(j->dir, item_files[i]);
    if (path != NULL)
      ckpt_op_note_durable(j->op, path); /* out of memory: the commit fsyncs it */
    free(path);
  }
  return st;
}

/* ---------------------------------------------------------------- entry points */

ckpt_status ckpt_pytree_save(ckpt_op *op, const char *dir, const ckpt_pytree_save_spec *spec,
                             ckpt_error *err) {
  if (op == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "pytree save: no op");
  save_job *j;
  ckpt_status st = plan_save(ckpt_op_io(op), ckpt_op_engine(op), ckpt_op_zero_copy(op),
                             op->pack_arrays_up_to_bytes, dir, spec, &j, err);
  if (st != CKPT_OK)
    return st;
  j->engine = ckpt_op_engine(op);
  j->op = op;
  return ckpt_op_defer(op, run_save, j, job_free, err);
}

ckpt_status ckpt_pytree_save_sync(ckpt_io *io, bool zero_copy, const char *dir,
                                  const ckpt_pytree_save_spec *spec, ckpt_error *err) {
  if (io == NULL)
    io = ckpt_io_default();
  save_job *j;
  ckpt_status st = plan_save(io, NULL, zero_copy, 0, dir, spec, &j, err);
  if (st != CKPT_OK)
    return st;
  st = run_save(j, err);
  job_free(j);
  return st;
}
