/* storage/zarr_write.c — the zarr writer: a save's write plan (zarr_write.h) written on the
 * I/O engine (io/engine.h). The counterpart of zarr_read.c; with plan->ocdbt the arrays are
 * written by the OCDBT writer (storage/ocdbt/ocdbt_write.c) instead, and phase 2 is the same.
 *
 * It runs in a save's deferred part (ckpt_op_defer, on the save's background thread), as jobs of
 * the op's engine. One function job per array creates its directory and .zarray; one per chunk
 * (after its array's) prepares the chunk's bytes (a copy only for edge chunks, casts and
 * compression), computes its CRC-32C and finds its all-zero 1 MiB blocks, then submits the
 * file's open, the writes of the non-zero runs and the durable close as engine jobs, so the
 * data goes out with the engine's write-behind flushing and the per-file fsyncs overlap other
 * files' writes; each directory is fsync'd once when the group ends. Only when every chunk is
 * durable does a second group write _strings.json, _CHECKSUMS and _METADATA (durable, in
 * parallel) and fsync the item directory, so the whole item is durable when the write returns.
 * _METADATA's text is encoded by a function job of phase 1; it is still written last, in
 * phase 2, because only its presence says the item is complete. */
#include <fcntl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/staging_pool.h"
#include "storage/checksums_text.h"
#include "storage/ocdbt/ocdbt_write.h"
#include "storage/zarr_io.h"
#include "storage/zarr_write_internal.h"
#include "util/crc32c.h"
#include "util/path.h"

/* on_done of a chunk file's close: every write of the file is done, its copy can go. */
static void chunk_closed(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  ckpt_write_chunk *ch = arg;
  free(ch->own);
  ch->own = NULL;
}

void ckpt_write_release_reserved(ckpt_write_plan *j, uint64_t *reserved) {
  if (*reserved > 0)
    ckpt_engine_unreserve(j->engine_used, *reserved);
  *reserved = 0;
}

/* on_done of a chunk's function job (also when canceled): budget not handed to a write goes
 * back. */
static void chunk_task_done(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  ckpt_write_chunk *ch = arg;
  ckpt_write_release_reserved(ch->job, &ch->reserved);
}

/* Submits one write of a chunk file, handing it part of the caller's budget
 * reservation (*reserved) when that covers it (the write then releases it when done). */
static ckpt_status submit_write(ckpt_write_plan *j, uint64_t *reserved, ckpt_engine_file *f,
                                const void *buf, size_t n, uint64_t offset, ckpt_error *err) {
  bool hand = n > 0 && n <= *reserved;
  ckpt_engine_job_opts o = {.budget_reserved = hand};
  ckpt_status st = ckpt_engine_write(j->group, f, buf, n, offset, &o, NULL, err);
  if (st == CKPT_OK && hand)
    *reserved -= n;
  return st;
}

/* Function job: the array directory and its .zarray. */
static ckpt_status task_leaf(void *arg, ckpt_error *err) {
  ckpt_write_leaf *l = arg;
  ckpt_write_plan *j = l->job;
  ckpt_status st = ckpt_zarr_make_array_dir(j->io, l->dir, err);
  if (st != CKPT_OK || (j->multiprocess && !j->primary))
    return st; /* another process's .zarray or zarr.json: the primary writes it */
  char *json;
  size_t len;
  st = l->zm->zarr3 ? ckpt_zarr3_meta_encode(l->zm, &json, &len, err)
                    : ckpt_zarr_meta_encode(l->zm, &json, &len, err);
  if (st != CKPT_OK)
    return st;
  /* its CRC now, from the text in hand: _CHECKSUMS covers it without reading it back */
  l->zcrc = ckpt_crc32c(0, json, len);
  l->zbytes = len;
  char *path = ckpt_path_join(l->dir, ckpt_zarr_meta_file(l->zm));
  if (path == NULL) {
    free(json);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory writing '%s'", l->dir);
  }
  st = ckpt_engine_write_file(j->group, path, json, len, &l->zfile, err);
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
static ckpt_status submit_runs(ckpt_write_plan *j, uint64_t *reserved, ckpt_engine_file *f,
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
ckpt_status ckpt_write_prepare_chunk(ckpt_write_chunk *ch, char *key, ckpt_error *err) {
  ckpt_write_plan *j = ch->job;
  ckpt_write_leaf *l = &j->leaves[ch->leaf];
  const ckpt_zarr_meta *m = l->zm;
  const ckpt_write_piece *sh = &l->shards[ch->shard];
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
  if (m->zarr3) {
    /* zarr v3: the chunk through the array's codec chain (Orbax's: one shard, zstd) */
    void *z = NULL;
    size_t zn = 0;
    ckpt_status st = ckpt_zarr3_encode_chunk(m, data, &z, &zn, param, key, err);
    if (st != CKPT_OK)
      return st;
    free(ch->own);
    ch->own = z;
    data = z;
    n = zn;
  } else if (m->compressor == CKPT_COMPRESSION_ZSTD) {
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
  ckpt_write_chunk *ch = arg;
  ckpt_write_plan *j = ch->job;
  ckpt_write_leaf *l = &j->leaves[ch->leaf];
  char key[CKPT_ZARR_KEY_MAX];
  ckpt_status st = ckpt_write_prepare_chunk(ch, key, err);
  if (st != CKPT_OK)
    return st;
  const unsigned char *data = ch->data;
  size_t n = (size_t)ch->bytes;
  char *path = ckpt_path_join(l->dir, key);
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

/* Arrays whose chunks hold at most this many bytes in all are written first, by themselves
 * (write_arrays says why). */
#define SMALL_ARRAY_BYTES ((uint64_t)1 << 20)

static bool leaf_is_small(const ckpt_write_plan *j, size_t li) {
  return j->leaves[li].stored_bytes <= SMALL_ARRAY_BYTES;
}

/* The files one closing job closes: arrays [leaf_lo, leaf_hi) (their .zarray) and chunks
 * [chunk_lo, chunk_hi). */
typedef struct close_batch {
  ckpt_write_plan *job;
  bool small; /* the pass's size class: arrays of the other class in the ranges are skipped */
  size_t leaf_lo, leaf_hi, chunk_lo, chunk_hi;
  ckpt_future *closer; /* the closing job's future */
  ckpt_future *closed; /* a job that ends once every file of the batch is closed */
} close_batch;

/* Function job, after every array and chunk job of its batch: submits the durable close of
 * every file they opened and adds each close to the batch's gate (b->closed), which the batch
 * two later waits for. Why not close each file as soon as its writes are submitted: fsyncs
 * interleaved with the creation of hundreds of files serialised the two (docs/performance.md,
 * "Figures behind design choices"). Created a batch at a time, the files are then fsync'd
 * in parallel (their data already under write-back; the engine batches the fsyncs) and the
 * directories once each at the end. Batches bound the files open at once (see batch_files). */
static ckpt_status task_close_batch(void *arg, ckpt_error *err) {
  close_batch *b = arg;
  ckpt_write_plan *j = b->job;
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
    ckpt_write_chunk *ch = &j->chunks[i];
    if (ch->file == NULL || leaf_is_small(j, ch->leaf) != b->small)
      continue;
    /* The close runs after every write of the file; then the copy can go. If the close cannot
     * be submitted the copy stays with the chunk (ckpt_write_plan_free frees it once the group
     * is done). */
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

/* OCDBT's node and manifest files (plan->ocdbt_files) added to a _CHECKSUMS text. */
static ckpt_status checksums_add_ocdbt_files(ckpt_write_plan *j, ckpt_sums_text *sums,
                                             ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; st == CKPT_OK && i < j->n_ocdbt_files; i++)
    st = ckpt_sums_text_add_file(sums, j->ocdbt_files[i].rel, j->ocdbt_files[i].crc,
                                 j->ocdbt_files[i].bytes, err);
  return st;
}

/* Submits dir/name with text (taken over). */
static ckpt_status submit_item_file(ckpt_write_plan *j, ckpt_engine_group *g, const char *name,
                                    char *text, size_t len, ckpt_error *err) {
  char *path = ckpt_path_join(j->dir, name);
  if (path == NULL) {
    free(text);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_status st = ckpt_engine_write_file(g, path, text, len, NULL, err);
  free(path);
  return st;
}

/* Function job (phase 1, no prerequisites): _METADATA's text, which does not depend on the data,
 * encoded while the data is written. */
static ckpt_status task_encode_metadata(void *arg, ckpt_error *err) {
  ckpt_write_plan *j = arg;
  ckpt_status st = ckpt_pytree_meta_encode(&j->meta, &j->meta_text, &j->meta_len, err);
  if (st == CKPT_OK)
    j->meta_crc = ckpt_crc32c(0, j->meta_text, j->meta_len);
  return st;
}

/* Submits the closing job of the batch being built (its jobs: jobs[0 .. *n_jobs)) with its
 * gate b->closed, to which the closing job adds every close it submits. */
static ckpt_status flush_batch(ckpt_write_plan *j, close_batch *b, ckpt_future **jobs,
                               size_t *n_jobs, ckpt_error *err) {
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
static ckpt_status submit_arrays(ckpt_write_plan *j, ckpt_engine *e, bool small, array_pass *p,
                                 ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  close_batch *batches = p->batches;
  p->nb = 0;
  p->n_jobs = 0;
  size_t ci = 0;
  batches[0] = (close_batch){.job = j, .small = small};
  for (size_t li = 0; st == CKPT_OK && li < j->n_leaves; li++) {
    if (leaf_is_small(j, li) != small) {
      while (ci < j->n_chunks && j->chunks[ci].leaf == li)
        ci++; /* written by the other pass */
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
      ckpt_write_chunk *ch = &j->chunks[ci];
      /* The memory budget bounds the chunks between submission and durability: this thread
       * (never a worker) waits here while it is used up. */
      const ckpt_zarr_meta *m = j->leaves[li].zm;
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

ckpt_status ckpt_write_end_group(ckpt_write_plan *j, ckpt_status st, ckpt_error *err) {
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
 * fsyncs share a few flushes. Then the _METADATA encoding and the large arrays, in a second
 * group. */
static ckpt_status write_arrays(ckpt_write_plan *j, ckpt_engine *e, ckpt_error *err) {
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
    any_small = leaf_is_small(j, li);
  if (st == CKPT_OK && any_small) {
    st = ckpt_engine_group_new(e, j->dir, &j->group, err);
    if (st == CKPT_OK)
      st = ckpt_write_end_group(j, submit_arrays(j, e, true, &p, err), err);
  }
  if (st == CKPT_OK)
    st = ckpt_engine_group_new(e, j->dir, &j->group, err);
  if (st == CKPT_OK) {
    /* The item directory, which holds the new array directories, is fsync'd by phase 2,
     * after its own files are created: fsyncing it here too bought nothing. */
    ckpt_engine_job_opts o = {.label = "encoding _METADATA"};
    st = ckpt_engine_call(j->group, task_encode_metadata, j, &o, NULL, err);
    if (st == CKPT_OK)
      st = submit_arrays(j, e, false, &p, err);
    st = ckpt_write_end_group(j, st, err);
  }
  free(p.batches);
  free(p.jobs);
  free(p.leaf_done);
  return st;
}

/* Submits phase 2's files to g: _strings.json, _CHECKSUMS and, with_metadata, _METADATA
 * (whose text phase 1 encoded); notes the item directory for the group's end. */
static ckpt_status item_files_begin(ckpt_write_plan *j, ckpt_engine_group *g, bool ocdbt_files,
                                    ckpt_sums_text **sums, ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  ckpt_file_sum strings = {false, 0, 0};
  if (j->strings != NULL) {
    char *text = NULL;
    size_t len = 0;
    st = ckpt_json_dump_compact(j->strings, &text, &len, err);
    if (st == CKPT_OK)
      ckpt_file_sum_of(&strings, text, len);
    if (st == CKPT_OK)
      st = submit_item_file(j, g, CKPT_STRINGS_FILE, text, len, err);
  }
  if (st == CKPT_OK)
    st = ckpt_sums_text_begin(j, &strings, sums, err);
  if (st == CKPT_OK && ocdbt_files) {
    st = checksums_add_ocdbt_files(j, *sums, err);
    if (st != CKPT_OK) {
      ckpt_sums_text_free(*sums);
      *sums = NULL;
    }
  }
  return st;
}

/* The rest of phase 2's files: sums (freed here) as _CHECKSUMS and, with_metadata,
 * _METADATA; notes the item directory for the group's end. */
static ckpt_status item_files_end(ckpt_write_plan *j, ckpt_engine_group *g, ckpt_sums_text *sums,
                                  bool with_metadata, ckpt_error *err) {
  char *text = NULL;
  size_t len = 0;
  ckpt_status st = ckpt_sums_text_finish(sums, &text, &len, err);
  if (st == CKPT_OK && j->note_file != NULL) {
    char *path = ckpt_path_join(j->dir, CKPT_CHECKSUMS_FILE);
    if (path == NULL) { /* an unlisted file would read as corrupt: fail the save instead */
      free(text);
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s/%s'", j->dir,
                          CKPT_CHECKSUMS_FILE);
    } else {
      j->note_file(j->note_durable_ctx, path, text, len);
    }
    free(path);
  }
  if (st == CKPT_OK)
    st = submit_item_file(j, g, CKPT_CHECKSUMS_FILE, text, len, err);
  if (st == CKPT_OK && with_metadata) {
    st = submit_item_file(j, g, CKPT_METADATA_FILE, j->meta_text, j->meta_len, err);
    j->meta_text = NULL; /* encoded in phase 1; taken over by the submission */
  }
  /* The item directory itself, even when no file above noted it. */
  if (st == CKPT_OK)
    st = ckpt_engine_group_note_dir(g, j->dir, err);
  return st;
}

static ckpt_status submit_item_files(ckpt_write_plan *j, ckpt_engine_group *g, bool with_metadata,
                                     ckpt_error *err) {
  ckpt_sums_text *sums = NULL;
  ckpt_status st = item_files_begin(j, g, true, &sums, err);
  return st == CKPT_OK ? item_files_end(j, g, sums, with_metadata, err) : st;
}

/* Phase 2, once every chunk is durable: _strings.json, _CHECKSUMS and _METADATA. */
static ckpt_status write_item_files(ckpt_write_plan *j, ckpt_engine *e, ckpt_error *err) {
  ckpt_engine_group *g;
  ckpt_status st = ckpt_engine_group_new(e, j->dir, &g, err);
  if (st != CKPT_OK)
    return st;
  st = submit_item_files(j, g, true, err);
  if (st != CKPT_OK)
    ckpt_engine_group_cancel(g);
  ckpt_status wst = ckpt_engine_group_wait(g, st == CKPT_OK ? err : NULL);
  if (st == CKPT_OK)
    st = wst;
  ckpt_engine_group_free(g);
  return st;
}

/* Multi-process: this process's array_metadatas/process_<i> (Orbax's per-process record of
 * each array's write and chunk shapes), durable, its CRC and size kept for _CHECKSUMS. */
static ckpt_status write_process_file(ckpt_write_plan *j, ckpt_error *err) {
  char *text = NULL;
  size_t len = 0;
  ckpt_status st = ckpt_array_metadatas_encode(j, &text, &len, err);
  char *rel = st == CKPT_OK ? ckpt_array_metadatas_rel(j->process) : NULL;
  char *path = rel != NULL ? ckpt_path_join(j->dir, rel) : NULL;
  char *parent = path != NULL ? ckpt_path_parent(path) : NULL;
  if (st == CKPT_OK && parent == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory writing '%s'", j->dir);
  /* Every process may create the directory: whoever comes second finds it there. */
  if (st == CKPT_OK)
    st = ckpt_io_mkdirs(j->io, parent, err);
  if (st == CKPT_OK)
    st = ckpt_io_write_file(j->io, path, text, len, true, err);
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(j->io, parent, err);
  if (st == CKPT_OK)
    ckpt_file_sum_of(&j->process_file, text, len);
  free(text);
  free(rel);
  free(path);
  free(parent);
  return st;
}

/* Claims for the commit (ckpt_op_note_durable), once the write succeeded: each array
 * directory (its files fsync'd by their closes, the directory at phase 1's end). Not the item
 * directory: the checkpointer or the Composite handler adds files to it afterwards. */
static void note_array_dirs(ckpt_write_plan *j) {
  for (size_t i = 0; j->note_durable != NULL && !j->ocdbt && i < j->n_leaves; i++)
    j->note_durable(j->note_durable_ctx, j->leaves[i].dir); /* OCDBT: no array directories */
}

/* Phase 2's files, and OCDBT's entries of the item directory (ocdbt/ocdbt_write.h; with
 * several processes the primary's merge notes them, ckpt_ocdbt_write_root). */
static void note_item_files(ckpt_write_plan *j) {
  bool db = j->ocdbt && j->n_leaves > 0 && !j->multiprocess;
  const char *item_files[] = {CKPT_STRINGS_FILE,
                              CKPT_CHECKSUMS_FILE,
                              CKPT_METADATA_FILE,
                              ckpt_ocdbt_durable_entries[0],
                              ckpt_ocdbt_durable_entries[1],
                              ckpt_ocdbt_durable_entries[2]};
  bool written[] = {j->strings != NULL, true, true, db, db, db};
  for (size_t i = 0; j->note_durable != NULL && i < 6; i++) {
    if (!written[i])
      continue;
    char *path = ckpt_path_join(j->dir, item_files[i]);
    if (path != NULL)
      j->note_durable(j->note_durable_ctx, path); /* out of memory: the commit fsyncs it */
    free(path);
  }
}

/* OCDBT's first job in its save's group (ckpt_ocdbt_write_jobs): _METADATA encoded and
 * submitted as a durable file while the values are prepared and written. */
static ckpt_status task_ocdbt_metadata(void *arg, ckpt_error *err) {
  ckpt_write_plan *j = arg;
  ckpt_status st = task_encode_metadata(j, err);
  if (st == CKPT_OK) {
    st = submit_item_file(j, j->group, CKPT_METADATA_FILE, j->meta_text, j->meta_len, err);
    j->meta_text = NULL; /* taken over by the submission */
  }
  return st;
}

/* OCDBT's job once every value's CRC is known, while the databases are encoded:
 * _strings.json submitted, _CHECKSUMS built but for the databases' files (plan->ocdbt_sums). */
static ckpt_status task_ocdbt_checksums(void *arg, ckpt_error *err) {
  ckpt_write_plan *j = arg;
  return item_files_begin(j, j->group, false, &j->ocdbt_sums, err);
}

/* OCDBT's last job (the databases encoded): their files added to _CHECKSUMS, which is
 * submitted in the same group as the data, so it becomes durable alongside it rather than in
 * a phase of its own. */
static ckpt_status task_ocdbt_item_files(void *arg, ckpt_error *err) {
  ckpt_write_plan *j = arg;
  ckpt_sums_text *sums = j->ocdbt_sums;
  j->ocdbt_sums = NULL;
  ckpt_status st = checksums_add_ocdbt_files(j, sums, err);
  if (st != CKPT_OK) {
    ckpt_sums_text_free(sums);
    return st;
  }
  return item_files_end(j, j->group, sums, false, err);
}

/* Sets j->engine_used: the checkpointer's engine, or, for a handler called without a
 * checkpointer, an engine over j->io for this save only, left in *temp for the caller to free
 * (NULL otherwise). */
static ckpt_status use_engine(ckpt_write_plan *j, ckpt_engine **temp, ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  ckpt_engine *e = j->engine;
  *temp = NULL;
  if (e == NULL) {
    ckpt_engine_options o;
    ckpt_engine_options_init(&o);
    o.io = j->io;
    st = ckpt_engine_new(&o, temp, err);
    e = *temp;
  }
  j->engine_used = e;
  return st;
}

ckpt_status ckpt_zarr_write(ckpt_write_plan *j, ckpt_error *err) {
  ckpt_engine *temp = NULL;
  ckpt_status st = CKPT_OK;
  st = use_engine(j, &temp, err);
  ckpt_engine *e = j->engine_used;
  if (st == CKPT_OK && j->ocdbt) {
    /* The arrays go to the OCDBT databases, and the item files with them, in one group. With
     * several processes, this process's database only: _METADATA is encoded now (as for zarr
     * directories) and the primary writes the item files after the merge. */
    const ckpt_ocdbt_write_jobs jobs = {.first = task_ocdbt_metadata,
                                        .values_known = task_ocdbt_checksums,
                                        .last = task_ocdbt_item_files};
    const ckpt_ocdbt_write_jobs multi_jobs = {.first = task_encode_metadata};
    st = ckpt_ocdbt_write(j, j->multiprocess ? &multi_jobs : &jobs, err);
  } else if (st == CKPT_OK) {
    st = write_arrays(j, e, err);
  }
  if (st == CKPT_OK && j->multiprocess)
    st = write_process_file(j, err);
  else if (st == CKPT_OK && !j->ocdbt)
    st = write_item_files(j, e, err);
  ckpt_engine_free(temp);
  j->engine_used = NULL;
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "while writing '%s': ", j->dir);
  if (st == CKPT_OK)
    note_array_dirs(j);
  if (st == CKPT_OK && !j->multiprocess)
    note_item_files(j);
  return st;
}

ckpt_status ckpt_zarr_write_item_files(ckpt_write_plan *j, ckpt_error *err) {
  ckpt_engine *temp = NULL;
  ckpt_status st = use_engine(j, &temp, err);
  ckpt_engine *e = j->engine_used;
  /* _METADATA's text was encoded in phase 1 on every process; only the primary writes it. */
  if (st == CKPT_OK)
    st = write_item_files(j, e, err);
  ckpt_engine_free(temp);
  j->engine_used = NULL;
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "while writing '%s': ", j->dir);
  if (st == CKPT_OK)
    note_item_files(j);
  return st;
}

/* ---------------------------------------------------------------- the plan's end */

const ckpt_zarr_meta *ckpt_write_plan_meta(ckpt_write_plan *j, const ckpt_zarr_meta *m) {
  /* The last one only: equal neighbours are the common case (a model's layers, the small
   * state's 10,000 arrays), and a search of every distinct one would cost more than it saves. */
  if (j->n_metas > 0 && memcmp(j->metas[j->n_metas - 1], m, sizeof *m) == 0)
    return j->metas[j->n_metas - 1];
  if (j->n_metas == j->cap_metas) {
    size_t cap = j->cap_metas ? 2 * j->cap_metas : 16;
    ckpt_zarr_meta **v = realloc(j->metas, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    j->metas = v;
    j->cap_metas = cap;
  }
  ckpt_zarr_meta *copy = malloc(sizeof *copy);
  if (copy == NULL)
    return NULL;
  memcpy(copy, m, sizeof *copy);
  j->metas[j->n_metas++] = copy;
  return copy;
}

void ckpt_write_plan_free(ckpt_write_plan *j) {
  if (j == NULL)
    return;
  for (size_t i = 0; i < j->n_leaves; i++) {
    ckpt_write_leaf *l = &j->leaves[i];
    for (size_t s = 0; s < l->n_shards; s++)
      if (l->shards[s].owned)
        ckpt_staging_release(l->shards[s].data, l->shards[s].pooled);
    if (l->shards_own)
      free(l->shards);
    free(l->dir);
    free(l->ztext);
  }
  free(j->leaves);
  for (size_t i = 0; i < j->n_chunks; i++)
    free(j->chunks[i].own);
  free(j->chunks);
  free(j->pieces);
  for (size_t i = 0; i < j->n_metas; i++)
    free(j->metas[i]);
  free(j->metas);
  for (size_t i = 0; i < j->n_ocdbt_files; i++)
    free(j->ocdbt_files[i].rel);
  free(j->ocdbt_files);
  free(j->meta_text);
  free(j->merged);
  for (size_t i = 0; i < j->n_extra; i++)
    free(j->extra[i].rel);
  free(j->extra);
  cJSON_Delete(j->strings);
  ckpt_sums_text_free(j->ocdbt_sums);
  ckpt_ocdbt_process_db_free(j->ocdbt_db);
  ckpt_pytree_meta_free(&j->meta);
  free(j->dir);
  free(j);
}
