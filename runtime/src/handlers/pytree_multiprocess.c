/* handlers/pytree_multiprocess.c — the shard-layout exchange and the checksum merge of a
 * multi-process PyTree save (pytree_multiprocess.h, docs/multiprocess.md). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/op.h"
#include "handlers/pytree.h"
#include "handlers/pytree_multiprocess.h"
#include "handlers/pytree_multiprocess_ocdbt.h"
#include "storage/zarr_write.h"

/* ---------------------------------------------------------------- multi-process layout
 *
 * In a multi-process save (docs/multiprocess.md) each process holds some shards of each array.
 * Chunks must be chosen from the global sharding, identically on every process, so the
 * processes first exchange every array leaf's replica-0 shard boxes (an all-gather of int64
 * words); each then plans the whole array from that layout and lists only its own chunks. */

/* A growable list of int64 words (the wire format of the exchanges). */
typedef struct words {
  int64_t *v;
  size_t n, cap;
  bool oom;
} words;

static void push_word(words *w, int64_t x) {
  if (w->oom)
    return;
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    int64_t *v = realloc(w->v, cap * sizeof *v);
    if (v == NULL) {
      w->oom = true;
      return;
    }
    w->v = v;
    w->cap = cap;
  }
  w->v[w->n++] = x;
}

void ckpt_pt_layout_free(ckpt_pt_layout *g) {
  for (size_t i = 0; i < g->n_leaves; i++)
    free(g->leaves[i].boxes);
  free(g->leaves);
  g->leaves = NULL;
  g->n_leaves = 0;
}

/* This process's array leaves, in flatten's order: per leaf ndim, shape, the number of
 * replica-0 shards, then each one's offset and shape. */
static void collect_boxes(const ckpt_tree *node, words *w, int64_t *count) {
  ckpt_node_kind kind = ckpt_tree_kind(node);
  if (kind == CKPT_NODE_DICT || kind == CKPT_NODE_LIST || kind == CKPT_NODE_TUPLE) {
    size_t n = ckpt_tree_count(node);
    for (size_t i = 0; i < n; i++)
      collect_boxes(ckpt_tree_child(node, i), w, count);
    return;
  }
  if (kind != CKPT_NODE_ARRAY)
    return;
  const ckpt_array *a = ckpt_tree_array(node);
  int nd = a->ndim >= 0 && a->ndim <= CKPT_MAX_RANK ? a->ndim : 0;
  push_word(w, nd);
  for (int d = 0; d < nd; d++)
    push_word(w, a->shape[d]);
  int64_t n0 = 0;
  for (size_t s = 0; s < a->n_shards; s++)
    n0 += a->shards[s].replica_id == 0;
  push_word(w, n0);
  for (size_t s = 0; s < a->n_shards; s++) {
    if (a->shards[s].replica_id != 0)
      continue;
    for (int d = 0; d < nd; d++)
      push_word(w, a->shards[s].offset[d]);
    for (int d = 0; d < nd; d++)
      push_word(w, a->shards[s].shape[d]);
  }
  (*count)++;
}

/* Reads word *at of a process's buffer (n words), bounds-checked. */
static bool next_word(const int64_t *v, size_t n, size_t *at, int64_t *out) {
  if (*at >= n)
    return false;
  *out = v[(*at)++];
  return true;
}

/* Parses every process's layout (pass 0: check and count; pass 1: fill). */
static ckpt_status parse_layouts(const unsigned char *all, const size_t *sizes, int size,
                                 const char *what, ckpt_pt_layout *g, ckpt_error *err) {
  int64_t n_leaves = -1;
  for (int pass = 0; pass < 2; pass++) {
    size_t off = 0;
    for (int r = 0; r < size; r++) {
      const int64_t *v = (const int64_t *)(const void *)(all + off);
      size_t n = sizes[r] / sizeof(int64_t), at = 0;
      off += sizes[r];
      int64_t status, count;
      if (sizes[r] % sizeof(int64_t) != 0 || !next_word(v, n, &at, &status) ||
          !next_word(v, n, &at, &count) || count < 0)
        return ckpt_error_set(err, CKPT_ECORRUPT, "%s: process %d sent a malformed shard layout",
                              what, r);
      if (status != CKPT_OK)
        return ckpt_error_set(err, CKPT_ENOMEM,
                              "%s: process %d could not describe its shards (out of memory)", what,
                              r);
      if (n_leaves < 0) {
        n_leaves = count;
        if (pass == 0) {
          g->leaves = calloc(count ? (size_t)count : 1, sizeof *g->leaves);
          if (g->leaves == NULL)
            return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", what);
          g->n_leaves = (size_t)count;
        }
      } else if (count != n_leaves) {
        return ckpt_error_set(err, CKPT_EMISMATCH,
                              "%s: process %d saves a tree of %lld arrays, process 0 one of %lld "
                              "(every process must save the same tree structure)",
                              what, r, (long long)count, (long long)n_leaves);
      }
      for (int64_t i = 0; i < count; i++) {
        ckpt_pt_layout_leaf *l = &g->leaves[i];
        int64_t nd, n0, x;
        if (!next_word(v, n, &at, &nd) || nd < 0 || nd > CKPT_MAX_RANK)
          return ckpt_error_set(err, CKPT_ECORRUPT, "%s: process %d sent a malformed shard layout",
                                what, r);
        int64_t shape[CKPT_MAX_RANK];
        for (int d = 0; d < nd; d++)
          if (!next_word(v, n, &at, &shape[d]))
            return ckpt_error_set(err, CKPT_ECORRUPT,
                                  "%s: process %d sent a malformed shard layout", what, r);
        if (pass == 0 && r == 0) {
          l->ndim = (int)nd;
          memcpy(l->shape, shape, sizeof(int64_t) * (size_t)nd);
        }
        if (nd != l->ndim || memcmp(shape, l->shape, sizeof(int64_t) * (size_t)nd) != 0)
          return ckpt_error_set(err, CKPT_EMISMATCH,
                                "%s: array %lld (in tree order) has another rank or shape on "
                                "process %d than on process 0",
                                what, (long long)i, r);
        if (!next_word(v, n, &at, &n0) || n0 < 0 ||
            (nd > 0 && (uint64_t)n0 > (n - at) / (2 * (uint64_t)nd)))
          return ckpt_error_set(err, CKPT_ECORRUPT, "%s: process %d sent a malformed shard layout",
                                what, r);
        for (int64_t k = 0; k < n0; k++) {
          ckpt_shard *b = pass == 1 ? &l->boxes[l->n++] : NULL;
          for (int d = 0; d < 2 * nd; d++) {
            if (!next_word(v, n, &at, &x))
              return ckpt_error_set(err, CKPT_ECORRUPT,
                                    "%s: process %d sent a malformed shard layout", what, r);
            if (b != NULL && d < nd)
              b->offset[d] = x;
            else if (b != NULL)
              b->shape[d - nd] = x;
          }
        }
        if (pass == 0)
          l->n += (size_t)n0;
      }
    }
    if (pass == 0) {
      for (size_t i = 0; i < g->n_leaves; i++) {
        ckpt_pt_layout_leaf *l = &g->leaves[i];
        l->boxes = calloc(l->n ? l->n : 1, sizeof *l->boxes);
        if (l->boxes == NULL)
          return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", what);
        l->n = 0; /* counted again as pass 1 fills them */
      }
      n_leaves = -1;
    }
  }
  return CKPT_OK;
}

/* The all-gather of every process's array layouts. Every process takes part, even one that
 * could not describe its own (it sends its failure). */
ckpt_status ckpt_pt_exchange_layouts(ckpt_process_group *pg, const ckpt_tree *tree,
                                    const char *what, ckpt_pt_layout *g, ckpt_error *err) {
  words w = {0};
  push_word(&w, CKPT_OK);
  push_word(&w, 0);
  int64_t count = 0;
  collect_boxes(tree, &w, &count);
  int64_t failed[2] = {CKPT_ENOMEM, 0};
  const void *mine = w.v;
  size_t n = w.n * sizeof(int64_t);
  if (w.oom) {
    mine = failed;
    n = sizeof failed;
  } else {
    w.v[1] = count;
  }
  void *all = NULL;
  size_t *sizes = NULL;
  ckpt_status st = ckpt_process_group_allgatherv(pg, mine, n, &all, &sizes, err);
  free(w.v);
  if (st == CKPT_OK)
    st = parse_layouts(all, sizes, ckpt_process_group_size(pg), what, g, err);
  free(all);
  free(sizes);
  if (st != CKPT_OK)
    ckpt_pt_layout_free(g);
  return st;
}

/* ---------------------------------------------------------------- multi-process merge
 *
 * Once every process has written its chunks (and the checkpointer agreed on it), each process
 * sends the primary the CRC-32C and size of its chunk files and of its array_metadatas file;
 * the primary merges them in process order and writes the item files (_CHECKSUMS covering
 * every process's chunks, _METADATA, _strings.json). Wire format, int64 words: status, the
 * array_metadatas file's CRC and size, the number of chunks, then per chunk leaf, linear
 * index, CRC, size. */

#define SUM_HEADER 4
#define SUM_WORDS 4

static ckpt_status merge_error(const char *dir, int r, ckpt_error *err) {
  return ckpt_error_set(err, CKPT_ECORRUPT, "while merging '%s': process %d sent malformed chunk "
                        "checksums", dir, r);
}

/* The primary's part: every process's sums into plan->merged (by leaf, each leaf's in process
 * order: the order a single process holding every shard would list them) and plan->extra. */
static ckpt_status merge_sums(ckpt_write_plan *j, const unsigned char *all, const size_t *sizes,
                              int size, ckpt_error *err) {
  size_t total = 0, off = 0;
  for (int r = 0; r < size; r++) {
    const int64_t *v = (const int64_t *)(const void *)(all + off);
    size_t n = sizes[r] / sizeof(int64_t);
    off += sizes[r];
    if (sizes[r] % sizeof(int64_t) != 0 || n < SUM_HEADER)
      return merge_error(j->dir, r, err);
    if (v[0] != CKPT_OK)
      return ckpt_error_set(err, CKPT_ENOMEM,
                            "while merging '%s': process %d could not list its chunk checksums "
                            "(out of memory)", j->dir, r);
    if (v[3] < 0 || (uint64_t)v[3] != (n - SUM_HEADER) / SUM_WORDS ||
        (n - SUM_HEADER) % SUM_WORDS != 0)
      return merge_error(j->dir, r, err);
    total += (size_t)v[3];
  }
  j->merged = malloc((total ? total : 1) * sizeof *j->merged);
  j->extra = calloc((size_t)size, sizeof *j->extra);
  size_t *per_leaf = calloc(j->n_leaves + 1, sizeof *per_leaf);
  ckpt_status st = CKPT_OK;
  if (j->merged == NULL || j->extra == NULL || per_leaf == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "while merging '%s': out of memory", j->dir);
  /* Counting sort by leaf, stable: first count, then place. */
  for (int pass = 0; st == CKPT_OK && pass < 2; pass++) {
    off = 0;
    for (int r = 0; st == CKPT_OK && r < size; r++) {
      const int64_t *v = (const int64_t *)(const void *)(all + off);
      off += sizes[r];
      for (int64_t k = 0; st == CKPT_OK && k < v[3]; k++) {
        const int64_t *w = v + SUM_HEADER + k * SUM_WORDS;
        if (w[0] < 0 || (uint64_t)w[0] >= j->n_leaves || w[1] < 0 || w[2] < 0 ||
            w[2] > (int64_t)UINT32_MAX || w[3] < 0) {
          st = merge_error(j->dir, r, err);
          break;
        }
        if (pass == 0) {
          per_leaf[w[0] + 1]++;
          continue;
        }
        ckpt_write_sum *m = &j->merged[per_leaf[w[0]]++];
        m->leaf = (uint64_t)w[0];
        m->linear = (uint64_t)w[1];
        m->crc = (uint32_t)w[2];
        m->bytes = (uint64_t)w[3];
      }
      if (pass == 1 && st == CKPT_OK) {
        j->extra[r].rel = ckpt_array_metadatas_rel(r);
        j->extra[r].crc = (uint32_t)v[1];
        j->extra[r].bytes = (uint64_t)v[2];
        j->n_extra = (size_t)r + 1;
        if (j->extra[r].rel == NULL)
          st = ckpt_error_set(err, CKPT_ENOMEM, "while merging '%s': out of memory", j->dir);
      }
    }
    if (pass == 0) /* per_leaf[l] := where leaf l's sums start */
      for (size_t l = 0; l < j->n_leaves; l++)
        per_leaf[l + 1] += per_leaf[l];
  }
  if (st == CKPT_OK) {
    j->n_merged = total;
    /* Every chunk of every array, exactly once in all (the shards tile each array and each
     * chunk lies in one shard): a count that differs means a process planned otherwise. */
    size_t at = 0;
    for (size_t l = 0; st == CKPT_OK && l < j->n_leaves; l++) {
      int64_t grid[CKPT_MAX_RANK];
      uint64_t want = ckpt_zarr_grid(j->leaves[l].zm, grid), got = 0;
      while (at < total && j->merged[at].leaf == l) {
        if (j->merged[at].linear >= want)
          st = ckpt_error_set(err, CKPT_ECORRUPT,
                              "while merging '%s': a chunk of '%s' lies outside its grid", j->dir,
                              j->meta.entries[j->leaves[l].entry].param);
        at++;
        got++;
      }
      if (st == CKPT_OK && got != want)
        st = ckpt_error_set(err, CKPT_EMISMATCH,
                            "while merging '%s': the processes wrote %llu chunks of '%s', whose "
                            "grid has %llu",
                            j->dir, (unsigned long long)got,
                            j->meta.entries[j->leaves[l].entry].param, (unsigned long long)want);
    }
  }
  free(per_leaf);
  return st;
}

/* Agreed job (ckpt_op_defer_agreed) of a multi-process save: the gather, then on the primary
 * the merge and the item files. */
ckpt_status ckpt_pt_finish_item(void *arg, ckpt_error *err) {
  ckpt_write_plan *j = arg;
  ckpt_op *op = j->note_durable_ctx;
  words w = {0};
  push_word(&w, CKPT_OK);
  push_word(&w, j->process_file.crc);
  push_word(&w, (int64_t)j->process_file.bytes);
  push_word(&w, (int64_t)j->n_chunks);
  for (size_t i = 0; i < j->n_chunks; i++) {
    push_word(&w, (int64_t)j->chunks[i].leaf);
    push_word(&w, (int64_t)j->chunks[i].linear);
    push_word(&w, j->chunks[i].crc);
    push_word(&w, (int64_t)j->chunks[i].bytes);
  }
  int64_t failed[SUM_HEADER] = {CKPT_ENOMEM, 0, 0, 0};
  const void *mine = w.oom ? (const void *)failed : (const void *)w.v;
  size_t n = w.oom ? sizeof failed : w.n * sizeof(int64_t);
  void *all = NULL;
  size_t *sizes = NULL;
  ckpt_process_group *pg = ckpt_op_group(op);
  ckpt_status st = ckpt_process_group_gatherv(pg, ckpt_op_primary(op), mine, n, &all, &sizes, err);
  bool gathered = st == CKPT_OK; /* every process then joins the OCDBT gather too */
  free(w.v);
  if (st == CKPT_OK && w.oom && !j->primary) /* the primary reports it, naming this process */
    st = ckpt_error_set(err, CKPT_ENOMEM, "while merging '%s': out of memory", j->dir);
  if (st == CKPT_OK && j->primary)
    st = merge_sums(j, all, sizes, ckpt_process_group_size(pg), err);
  /* An earlier item failed: take part, write nothing (the save is failing). */
  bool write = st == CKPT_OK && !ckpt_op_agreed_failed(op);
  if (gathered && j->ocdbt) {
    /* The root database, before the item files whose _CHECKSUMS lists its files. */
    ckpt_error scratch = CKPT_ERROR_INIT;
    ckpt_status ost = ckpt_pt_ocdbt_merge(j, write, st == CKPT_OK ? err : &scratch);
    if (st == CKPT_OK)
      st = ost;
  }
  if (st == CKPT_OK && j->primary && write)
    st = ckpt_zarr_write_item_files(j, err);
  free(all);
  free(sizes);
  return st;
}

/* ---------------------------------------------------------------- values every process holds
 *
 * A record's bytes, protos and random-key states, a plain array in it, a random key saved on
 * its own: every process holds them whole and alike. The engine refuses two replica-0 copies
 * of one box (it cannot tell which process should write it), so the handlers that save such
 * values leave them to the primary, as the engine does for scalars and strings. */
void ckpt_array_whole_to_primary(const ckpt_op *op, ckpt_array *a) {
  if (a == NULL || !ckpt_op_multiprocess(op) || ckpt_op_is_primary(op))
    return;
  if (a->n_shards != 1 || a->shards[0].replica_id != 0)
    return;
  for (int d = 0; d < a->ndim; d++)
    if (a->shards[0].offset[d] != 0 || a->shards[0].shape[d] != a->shape[d])
      return;
  a->shards[0].replica_id = 1 + ckpt_process_group_rank(ckpt_op_group(op));
}

void ckpt_pytree_whole_arrays_to_primary(const ckpt_op *op, ckpt_tree *node) {
  if (node == NULL || !ckpt_op_multiprocess(op) || ckpt_op_is_primary(op))
    return;
  switch (ckpt_tree_kind(node)) {
    case CKPT_NODE_ARRAY:
      ckpt_array_whole_to_primary(op, ckpt_tree_array(node));
      break;
    case CKPT_NODE_DICT:
    case CKPT_NODE_LIST:
    case CKPT_NODE_TUPLE:
      for (size_t i = 0; i < ckpt_tree_count(node); i++)
        ckpt_pytree_whole_arrays_to_primary(op, ckpt_tree_child(node, i));
      break;
    default:
      break;
  }
}
