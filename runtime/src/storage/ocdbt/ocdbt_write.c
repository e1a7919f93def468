/* storage/ocdbt/ocdbt_write.c — a write plan's arrays as OCDBT databases (ocdbt_write.h).
 *
 * Two groups on the save's engine. The first prepares the values and writes the large ones:
 * one function job per run of chunks (about 4 MiB before compression) prepares each chunk
 * (cut, cast, zstd: ckpt_write_prepare_chunk), takes its CRC-32C, claims consecutive ranges of
 * the current data file for the chunks over the inline limit (a new file when the target size
 * would be passed) and submits one vectored write per file run straight from the chunks' bytes;
 * one job encodes the .zarray texts. Offsets are claimed under a mutex as the jobs finish, so
 * compressed sizes need not be known in advance and no chunk waits for another. Once every
 * chunk is prepared and claimed, two jobs run while the data is still being written: the
 * durable close of the data files, and the databases' job, which sorts the key table, encodes
 * the process database's B+tree and manifest and the root database's (ckpt_ocdbt_merge_encode)
 * and submits those four files durably. The caller's jobs (ckpt_ocdbt_write_jobs: the item's
 * _METADATA and _CHECKSUMS) run in the same group, so the whole save is one group and one wait,
 * its directories fsync'd once at its end: one round of fsyncs instead of three sequential
 * groups (values; databases; item files). Inline values stay in memory (the snapshot's bytes
 * or the chunk's small copy) until their leaf is encoded. */
#include "storage/ocdbt/ocdbt_write.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "storage/zarr_io.h"
#include "storage/zarr_write_internal.h"
#include "util/crc32c.h"
#include "util/path.h"

const char *const ckpt_ocdbt_durable_entries[3] = {CKPT_OCDBT_DATA_DIR, CKPT_OCDBT_MANIFEST_FILE,
                                                   CKPT_OCDBT_PROCESS_DIR_PREFIX "0"};

/* Raw bytes per segment job: enough for long writes, small enough to keep every worker busy. */
#define SEGMENT_BYTES ((uint64_t)4 << 20)

typedef struct data_file {
  char name[CKPT_OCDBT_DATA_NAME_HEX + 3]; /* "d/<32 hex>" */
  ckpt_engine_file *f;
  uint64_t size; /* bytes claimed so far */
} data_file;

typedef struct segment {
  struct ocdbt_w *w;
  size_t lo, hi;     /* chunks [lo, hi) */
  uint64_t reserved; /* memory-budget bytes held and not handed to a write */
} segment;

typedef struct ocdbt_w {
  ckpt_write_plan *j;
  char *pdir; /* <item>/ocdbt.process_<j->process> (0 alone) */
  uint64_t target;
  pthread_mutex_t mu; /* guards files, n_files (claims and new files from the jobs) */
  data_file *files;
  size_t n_files, cap_files;
  size_t n_segments;
  segment *segments;
} ocdbt_w;

/* ---------------------------------------------------------------- values */

/* In a multi-process save only the primary stores the .zarray keys (it writes every other piece
 * of metadata too); the other processes store their chunks alone. */
static bool stores_zarrays(const ckpt_write_plan *j) {
  return !j->multiprocess || j->primary;
}

bool ckpt_ocdbt_plan_has_keys(const ckpt_write_plan *j) {
  return j->n_chunks > 0 || (stores_zarrays(j) && j->n_leaves > 0);
}

static bool is_inline(uint64_t n) {
  return n <= CKPT_OCDBT_ORBAX_MAX_INLINE_VALUE_BYTES;
}

/* Claims n bytes for a value (mu held): the offset in the current data file, or in a new one
 * when the current one would pass the target (a value never spans files). */
static ckpt_status claim(ocdbt_w *w, uint64_t n, uint32_t *file, uint64_t *offset,
                         ckpt_error *err) {
  data_file *cur = w->n_files ? &w->files[w->n_files - 1] : NULL;
  if (cur == NULL || (cur->size > 0 && cur->size + n > w->target)) {
    if (w->n_files == w->cap_files) {
      size_t cap = w->cap_files ? 2 * w->cap_files : 4;
      data_file *nf = realloc(w->files, cap * sizeof *nf);
      if (nf == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for an OCDBT data file");
      w->files = nf;
      w->cap_files = cap;
    }
    cur = &w->files[w->n_files];
    *cur = (data_file){.size = 0};
    ckpt_status st = ckpt_ocdbt_data_file_name(cur->name, err);
    char *path = st == CKPT_OK ? ckpt_path_join(w->pdir, cur->name) : NULL;
    if (st == CKPT_OK && path == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    if (st == CKPT_OK)
      st = ckpt_engine_file_open(w->j->group, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666,
                                 CKPT_ENGINE_FILE_DURABLE, &cur->f, err);
    free(path);
    if (st != CKPT_OK)
      return st;
    w->n_files++;
  }
  *file = (uint32_t)(w->n_files - 1);
  *offset = cur->size;
  cur->size += n;
  return CKPT_OK;
}

/* The chunks [lo, hi) of a write run (the indirect ones among them are its bytes). */
typedef struct run {
  ckpt_write_plan *j;
  size_t lo, hi;
} run;

/* on_done of a run's write (also when canceled or failed): the kernel has the bytes, so the
 * chunks' private copies (edge, cast, zstd) can go; the snapshot's stay until the plan is
 * freed. Inline chunks are not in a run: their bytes are needed until the tree is encoded. */
static void run_written(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  run *r = arg;
  for (size_t i = r->lo; i < r->hi; i++) {
    ckpt_write_chunk *ch = &r->j->chunks[i];
    if (!ch->indirect)
      continue;
    free(ch->own);
    ch->own = NULL;
    ch->data = NULL;
  }
  free(r);
}

/* One vectored write of iov[0 .. n) at offset of file f (the pointer read under mu), for the
 * chunks [lo, hi). */
static ckpt_status submit_run(ocdbt_w *w, ckpt_engine_file *f, struct iovec *iov, size_t n,
                              uint64_t offset, uint64_t len, size_t lo, size_t hi,
                              uint64_t *reserved, ckpt_error *err) {
  if (n == 0)
    return CKPT_OK;
  run *r = malloc(sizeof *r);
  if (r == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for a write");
  *r = (run){w->j, lo, hi};
  /* The write takes over part of the segment's budget reservation when it covers the run, and
   * releases it once the bytes are written: the budget bounds what waits to be written too. */
  bool hand = len > 0 && len <= *reserved;
  ckpt_engine_job_opts o = {.budget_reserved = hand, .on_done = run_written, .on_done_arg = r};
  ckpt_status st = ckpt_engine_writev(w->j->group, f, iov, n, offset, &o, NULL, err);
  if (st != CKPT_OK)
    free(r); /* not submitted: on_done will not run; the copies go with the plan */
  else if (hand)
    *reserved -= len;
  return st;
}

/* on_done of a segment job (also when canceled): the budget goes back. */
static void segment_done(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  segment *g = arg;
  ckpt_write_release_reserved(g->w->j, &g->reserved);
}

/* Function job: prepares the segment's chunks, claims file ranges for the large ones and
 * submits their writes. */
static ckpt_status task_segment(void *arg, ckpt_error *err) {
  segment *g = arg;
  ocdbt_w *w = g->w;
  ckpt_write_plan *j = w->j;
  for (size_t i = g->lo; i < g->hi; i++) {
    ckpt_write_chunk *ch = &j->chunks[i];
    char key[CKPT_ZARR_KEY_MAX];
    ckpt_status st = ckpt_write_prepare_chunk(ch, key, err);
    if (st != CKPT_OK)
      return st;
    ch->crc = ckpt_crc32c(0, ch->data, (size_t)ch->bytes);
    ch->indirect = !is_inline(ch->bytes);
  }
  size_t cap = g->hi - g->lo;
  struct iovec *iov = malloc((cap ? cap : 1) * sizeof *iov);
  if (iov == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for a write list");
  ckpt_status st = CKPT_OK;
  pthread_mutex_lock(&w->mu);
  for (size_t i = g->lo; st == CKPT_OK && i < g->hi; i++)
    if (j->chunks[i].indirect)
      st = claim(w, j->chunks[i].bytes, &j->chunks[i].data_file, &j->chunks[i].offset, err);
  pthread_mutex_unlock(&w->mu);
  /* Runs of consecutive ranges of one file go out as one write each. */
  size_t n = 0, run_lo = g->lo;
  uint32_t run_file = 0;
  uint64_t run_start = 0, run_end = 0;
  for (size_t i = g->lo; st == CKPT_OK && i <= g->hi; i++) {
    const ckpt_write_chunk *ch = i < g->hi ? &j->chunks[i] : NULL;
    if (ch != NULL && !ch->indirect)
      continue;
    if (n > 0 && (ch == NULL || ch->data_file != run_file || ch->offset != run_end)) {
      pthread_mutex_lock(&w->mu);
      ckpt_engine_file *f = w->files[run_file].f;
      pthread_mutex_unlock(&w->mu);
      st = submit_run(w, f, iov, n, run_start, run_end - run_start, run_lo, i, &g->reserved, err);
      n = 0;
    }
    if (ch == NULL || st != CKPT_OK)
      break;
    if (n == 0) {
      run_lo = i;
      run_file = ch->data_file;
      run_start = ch->offset;
      run_end = ch->offset;
    }
    iov[n++] =
        (struct iovec){.iov_base = (void *)(uintptr_t)ch->data, .iov_len = (size_t)ch->bytes};
    run_end += ch->bytes;
  }
  free(iov); /* copied by the engine */
  return st;
}

/* Function job: every leaf's .zarray text (kept for its inline value and _CHECKSUMS); the rare
 * one over the inline limit goes to a data file like a chunk. A leaf with the same metadata as
 * the one before it (a model's layers, the small state's 10,000 arrays) copies that text and
 * CRC instead of encoding JSON again: encoding was most of this job's time. */
static ckpt_status task_zarrays(void *arg, ckpt_error *err) {
  ocdbt_w *w = arg;
  ckpt_write_plan *j = w->j;
  for (size_t i = 0; i < j->n_leaves; i++) {
    ckpt_write_leaf *l = &j->leaves[i];
    const ckpt_write_leaf *prev = i > 0 ? &j->leaves[i - 1] : NULL;
    size_t len;
    /* The plan shares one stored metadata between neighbours whose metadata is equal
     * (ckpt_write_plan_meta), so equal pointers mean equal texts. */
    if (prev != NULL && prev->ztext != NULL && prev->zm == l->zm) {
      len = (size_t)prev->zbytes;
      if ((l->ztext = malloc(len ? len : 1)) == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for a .zarray text");
      memcpy(l->ztext, prev->ztext, len);
      l->zcrc = prev->zcrc;
    } else {
      ckpt_status st = l->zm->zarr3 ? ckpt_zarr3_meta_encode(l->zm, &l->ztext, &len, err)
                                   : ckpt_zarr_meta_encode(l->zm, &l->ztext, &len, err);
      if (st != CKPT_OK)
        return st;
      l->zcrc = ckpt_crc32c(0, l->ztext, len);
    }
    l->zbytes = len;
    if (is_inline(len))
      continue;
    pthread_mutex_lock(&w->mu);
    ckpt_status st = claim(w, len, &l->zfile_index, &l->zoffset, err);
    ckpt_engine_file *f = st == CKPT_OK ? w->files[l->zfile_index].f : NULL;
    pthread_mutex_unlock(&w->mu);
    if (st == CKPT_OK)
      st = ckpt_engine_write(j->group, f, l->ztext, len, l->zoffset, NULL, NULL, err);
    if (st != CKPT_OK)
      return st;
  }
  return CKPT_OK;
}

/* Function job after every other job of the first group: the durable close of each data file
 * (after its writes). */
static ckpt_status task_close_files(void *arg, ckpt_error *err) {
  ocdbt_w *w = arg;
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < w->n_files; i++) {
    ckpt_status cst =
        ckpt_engine_file_close(w->j->group, w->files[i].f, NULL, NULL, st == CKPT_OK ? err : NULL);
    if (st == CKPT_OK)
      st = cst;
  }
  return st;
}

static ckpt_status task_databases(void *arg, ckpt_error *err);

/* The save's one group: the caller's first job, values prepared and the large ones written,
 * data files closed durably, the databases encoded and written, the caller's last job; waited
 * for here. */
static ckpt_status write_all(ocdbt_w *w, const ckpt_ocdbt_write_jobs *jobs, ckpt_error *err) {
  ckpt_write_plan *j = w->j;
  ckpt_engine *e = j->engine_used;
  w->segments = calloc(j->n_chunks ? j->n_chunks : 1, sizeof *w->segments);
  ckpt_future **done = calloc(j->n_chunks + 1, sizeof *done);
  ckpt_future *first = NULL, *databases = NULL;
  ckpt_status st = CKPT_OK;
  if (w->segments == NULL || done == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK)
    st = ckpt_engine_group_new(e, j->dir, &j->group, err);
  if (st == CKPT_OK && jobs != NULL && jobs->first != NULL) {
    ckpt_engine_job_opts o = {.label = "the caller's first job"};
    st = ckpt_engine_call(j->group, jobs->first, j, &o, &first, err);
  }
  size_t n_done = 0;
  bool values = ckpt_ocdbt_plan_has_keys(j); /* no keys: no database (docs/format.md, "OCDBT") */
  if (st == CKPT_OK && values && stores_zarrays(j)) {
    ckpt_engine_job_opts o = {.label = "encoding .zarray values"};
    st = ckpt_engine_call(j->group, task_zarrays, w, &o, &done[n_done], err);
    n_done += st == CKPT_OK;
  }
  for (size_t i = 0; st == CKPT_OK && i < j->n_chunks;) {
    segment *g = &w->segments[w->n_segments++];
    *g = (segment){.w = w, .lo = i};
    uint64_t raw = 0;
    while (i < j->n_chunks && (i == g->lo || raw < SEGMENT_BYTES)) {
      const ckpt_zarr_meta *m = j->leaves[j->chunks[i].leaf].zm;
      raw += ckpt_zarr_chunk_elements(m) * (uint64_t)ckpt_dtype_size(m->dtype);
      i++;
    }
    g->hi = i;
    /* The memory budget bounds the segments between preparation and durability: this thread
     * (never a worker) waits here while it is used up. */
    g->reserved = raw;
    ckpt_engine_reserve(e, g->reserved);
    ckpt_engine_job_opts o = {.label = "OCDBT values", .on_done = segment_done, .on_done_arg = g};
    st = ckpt_engine_call(j->group, task_segment, g, &o, &done[n_done], err);
    if (st != CKPT_OK) {
      segment_done(g, NULL, st); /* not submitted: its on_done will not run */
      break;
    }
    n_done++;
  }
  if (values) {
    /* Also after a failed submission, so descriptors are closed (without fsync). */
    ckpt_engine_job_opts o = {.after = done, .n_after = n_done, .label = "closing OCDBT data"};
    if (j->group != NULL) {
      ckpt_status cst =
          ckpt_engine_call(j->group, task_close_files, w, &o, NULL, st == CKPT_OK ? err : NULL);
      if (st == CKPT_OK)
        st = cst;
    }
  }
  /* The databases need every chunk's file and offset: after the segment jobs (which claim
   * them), not after their writes. */
  if (st == CKPT_OK && values) {
    ckpt_engine_job_opts o = {.after = done, .n_after = n_done, .label = "OCDBT databases"};
    st = ckpt_engine_call(j->group, task_databases, w, &o, &databases, err);
  }
  ckpt_future *known = NULL;
  if (st == CKPT_OK && jobs != NULL && jobs->values_known != NULL) {
    /* The segment jobs fill the CRCs and sizes, the .zarray job the texts' (done[]). */
    ckpt_future **pre = malloc((n_done + 1) * sizeof *pre);
    if (pre == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    } else {
      memcpy(pre, done, n_done * sizeof *pre);
      size_t n_pre = n_done;
      if (first != NULL)
        pre[n_pre++] = first;
      ckpt_engine_job_opts o = {
          .after = pre, .n_after = n_pre, .label = "the caller's job on the values"};
      st = ckpt_engine_call(j->group, jobs->values_known, j, &o, &known, err);
      free(pre);
    }
  }
  if (st == CKPT_OK && jobs != NULL && jobs->last != NULL) {
    ckpt_future *pre[3];
    size_t n_pre = 0;
    if (first != NULL)
      pre[n_pre++] = first;
    if (known != NULL)
      pre[n_pre++] = known;
    if (databases != NULL)
      pre[n_pre++] = databases;
    ckpt_engine_job_opts o = {.after = pre, .n_after = n_pre, .label = "the caller's last job"};
    st = ckpt_engine_call(j->group, jobs->last, j, &o, NULL, err);
  }
  free(done);
  if (j->group != NULL)
    st = ckpt_write_end_group(j, st, err);
  return st;
}

/* ---------------------------------------------------------------- keys */

typedef struct key_table {
  ckpt_ocdbt_kv *kvs;
  char **keys; /* owned key strings, one per kv */
  size_t n;
} key_table;

static void key_table_free(key_table *t) {
  for (size_t i = 0; i < t->n; i++)
    free(t->keys[i]);
  free(t->keys);
  free(t->kvs);
}

static int cmp_kv(const void *a, const void *b) {
  const ckpt_ocdbt_kv *x = a, *y = b;
  return ckpt_ocdbt_key_cmp(x->key, x->key_len, y->key, y->key_len);
}

static char *make_key(const char *param, const char *rest) {
  size_t a = strlen(param), b = strlen(rest);
  char *k = malloc(a + b + 2);
  if (k != NULL) {
    memcpy(k, param, a);
    k[a] = '/';
    memcpy(k + a + 1, rest, b + 1);
  }
  return k;
}

/* The process database's keys, sorted: each leaf's .zarray and each chunk. */
static ckpt_status build_keys(ckpt_write_plan *j, key_table *t, ckpt_error *err) {
  size_t n = j->n_leaves + j->n_chunks;
  t->kvs = calloc(n ? n : 1, sizeof *t->kvs);
  t->keys = calloc(n ? n : 1, sizeof *t->keys);
  if (t->kvs == NULL || t->keys == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for %zu OCDBT keys", n);
  for (size_t i = 0; stores_zarrays(j) && i < j->n_leaves; i++) {
    const ckpt_write_leaf *l = &j->leaves[i];
    /* ".zarray", or "zarr.json" for zarr v3 */
    char *k = make_key(j->meta.entries[l->entry].param, ckpt_zarr_meta_file(l->zm));
    if (k == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for OCDBT keys");
    t->keys[t->n] = k;
    bool ind = !is_inline(l->zbytes);
    t->kvs[t->n++] = (ckpt_ocdbt_kv){.key = k,
                                     .key_len = strlen(k),
                                     .length = l->zbytes,
                                     .value = ind ? NULL : l->ztext,
                                     .indirect = ind,
                                     .file = l->zfile_index,
                                     .offset = l->zoffset};
  }
  for (size_t i = 0; i < j->n_chunks; i++) {
    const ckpt_write_chunk *c = &j->chunks[i];
    const ckpt_write_leaf *l = &j->leaves[c->leaf];
    int64_t grid[CKPT_MAX_RANK], index[CKPT_MAX_RANK];
    char ck[CKPT_ZARR_KEY_MAX];
    ckpt_zarr_grid(l->zm, grid);
    ckpt_zarr_chunk_index(l->zm, grid, c->linear, index);
    ckpt_zarr_chunk_key(l->zm, index, ck);
    char *k = make_key(j->meta.entries[l->entry].param, ck);
    if (k == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for OCDBT keys");
    t->keys[t->n] = k;
    t->kvs[t->n++] = (ckpt_ocdbt_kv){.key = k,
                                     .key_len = strlen(k),
                                     .length = c->bytes,
                                     .value = c->indirect ? NULL : c->data,
                                     .indirect = c->indirect,
                                     .file = c->data_file,
                                     .offset = c->offset};
  }
  qsort(t->kvs, t->n, sizeof *t->kvs, cmp_kv);
  for (size_t i = 1; i < t->n; i++)
    if (cmp_kv(&t->kvs[i - 1], &t->kvs[i]) == 0) /* params are unique; a chunk key is not */
      return ckpt_error_set(err, CKPT_EINVAL, "'%s': two values for OCDBT key '%s'", j->dir,
                            t->kvs[i].key);
  return CKPT_OK;
}

/* ---------------------------------------------------------------- the merge */

ckpt_status ckpt_ocdbt_merge_encode(const ckpt_ocdbt_process_table *tables, size_t n_tables,
                                    const ckpt_ocdbt_config *config, const char *node_file,
                                    size_t target_node_bytes, uint64_t commit_time_ns,
                                    ckpt_ocdbt_buf *nodes, ckpt_ocdbt_buf *manifest,
                                    ckpt_error *err) {
  size_t n = 0, nf = 0;
  for (size_t t = 0; t < n_tables; t++) {
    n += tables[t].n;
    nf += tables[t].n_files;
  }
  ckpt_ocdbt_kv *kvs = malloc((n ? n : 1) * sizeof *kvs);
  ckpt_ocdbt_file_id *files = malloc((nf ? nf : 1) * sizeof *files);
  char **bases = calloc(n_tables ? n_tables : 1, sizeof *bases);
  ckpt_status st = CKPT_OK;
  if (kvs == NULL || files == NULL || bases == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory merging %zu OCDBT keys", n);
  /* Every process's files, under its base path; its keys with their file indices shifted. */
  size_t k = 0, f = 0;
  for (size_t t = 0; st == CKPT_OK && t < n_tables; t++) {
    char base[64];
    snprintf(base, sizeof base, "%s%u/", CKPT_OCDBT_PROCESS_DIR_PREFIX, tables[t].process);
    if ((bases[t] = strdup(base)) == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      break;
    }
    size_t first = f;
    for (size_t i = 0; i < tables[t].n_files; i++)
      files[f++] = (ckpt_ocdbt_file_id){bases[t], tables[t].files[i]};
    for (size_t i = 0; i < tables[t].n; i++) {
      kvs[k] = tables[t].kvs[i];
      if (kvs[k].indirect)
        kvs[k].file += first;
      k++;
    }
  }
  if (st == CKPT_OK && n_tables > 1)
    qsort(kvs, n, sizeof *kvs, cmp_kv); /* stable enough: equal keys are resolved below */
  size_t m = 0;
  for (size_t i = 0; st == CKPT_OK && i < n; i++) {
    if (m > 0 && cmp_kv(&kvs[m - 1], &kvs[i]) == 0) {
      const ckpt_ocdbt_kv *a = &kvs[m - 1], *b = &kvs[i];
      if (!a->indirect && !b->indirect && a->length == b->length &&
          memcmp(a->value, b->value, (size_t)a->length) == 0)
        continue; /* the same small value written by two processes */
      st = ckpt_error_set(err, CKPT_EINVAL,
                          "OCDBT merge: key '%.*s' was written by two processes with different "
                          "values",
                          (int)(b->key_len > 200 ? 200 : b->key_len), b->key);
      break;
    }
    kvs[m++] = kvs[i];
  }
  ckpt_ocdbt_root root;
  if (st == CKPT_OK) {
    ckpt_ocdbt_tree_opts o = {.files = files,
                              .n_files = nf,
                              .node_file = node_file,
                              .target_node_bytes = target_node_bytes,
                              .zstd_level = config->zstd_level};
    st = ckpt_ocdbt_build_tree(kvs, m, &o, nodes, &root, err);
  }
  if (st == CKPT_OK)
    st = ckpt_ocdbt_encode_manifest(config, node_file, &root, commit_time_ns, manifest, err);
  for (size_t t = 0; bases != NULL && t < n_tables; t++)
    free(bases[t]);
  free(bases);
  free(files);
  free(kvs);
  return st;
}

/* ---------------------------------------------------------------- the databases */

/* Records a small file written (relative to the item) with its CRC and size for _CHECKSUMS. */
static ckpt_status add_file_sum(ckpt_write_plan *j, const char *rel, const ckpt_ocdbt_buf *b,
                                ckpt_error *err) {
  ckpt_write_file_sum *nf = realloc(j->ocdbt_files, (j->n_ocdbt_files + 1) * sizeof *nf);
  if (nf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  j->ocdbt_files = nf;
  char *r = strdup(rel);
  if (r == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  nf[j->n_ocdbt_files++] = (ckpt_write_file_sum){r, ckpt_crc32c(0, b->p, b->n), b->n};
  return CKPT_OK;
}

/* Submits dir/rel with b's bytes (taken over: b is emptied) as a durable file. */
static ckpt_status submit_buf(ckpt_engine_group *g, const char *dir, const char *rel,
                              ckpt_ocdbt_buf *b, ckpt_error *err) {
  char *path = ckpt_path_join(dir, rel);
  char *text = (char *)b->p;
  size_t len = b->n;
  *b = (ckpt_ocdbt_buf){0};
  if (path == NULL) {
    free(text);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  if (text == NULL && (text = malloc(1)) == NULL) {
    free(path);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_status st = ckpt_engine_write_file(g, path, text, len, NULL, err);
  free(path);
  return st;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The process database's nodes and manifest, the root database's, submitted to the save's
 * group as durable files. */
static ckpt_status write_databases(ocdbt_w *w, const key_table *t, ckpt_error *err) {
  ckpt_write_plan *j = w->j;
  ckpt_ocdbt_config pc, rc;
  ckpt_ocdbt_buf pnodes = {0}, pman = {0}, rnodes = {0}, rman = {0};
  char pnode_name[CKPT_OCDBT_DATA_NAME_HEX + 3], rnode_name[CKPT_OCDBT_DATA_NAME_HEX + 3];
  const char **names = malloc((w->n_files + 1) * sizeof *names);
  ckpt_ocdbt_file_id *ids = malloc((w->n_files + 1) * sizeof *ids);
  ckpt_status st = CKPT_OK;
  if (names == NULL || ids == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; st == CKPT_OK && i < w->n_files; i++) {
    names[i] = w->files[i].name;
    ids[i] = (ckpt_ocdbt_file_id){"", w->files[i].name};
  }
  if (st == CKPT_OK)
    st = ckpt_ocdbt_config_init(&pc, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_config_init(&rc, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_data_file_name(pnode_name, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_data_file_name(rnode_name, err);
  uint64_t when = now_ns();
  ckpt_ocdbt_root root;
  if (st == CKPT_OK) {
    ckpt_ocdbt_tree_opts o = {.files = ids,
                              .n_files = w->n_files,
                              .node_file = pnode_name,
                              .target_node_bytes = j->ocdbt_node_bytes};
    st = ckpt_ocdbt_build_tree(t->kvs, t->n, &o, &pnodes, &root, err);
  }
  if (st == CKPT_OK)
    st = ckpt_ocdbt_encode_manifest(&pc, pnode_name, &root, when, &pman, err);
  /* Several processes: the primary writes the root once every database is durable
   * (ckpt_ocdbt_write_root). */
  bool with_root = !j->multiprocess;
  if (st == CKPT_OK && with_root) {
    ckpt_ocdbt_process_table pt = {
        .process = 0, .n_files = w->n_files, .files = names, .n = t->n, .kvs = t->kvs};
    st = ckpt_ocdbt_merge_encode(&pt, 1, &rc, rnode_name, j->ocdbt_node_bytes, when, &rnodes, &rman,
                                 err);
  }
  char prel[CKPT_PATH_NAME_MAX], pman_rel[CKPT_PATH_NAME_MAX];
  snprintf(prel, sizeof prel, "%s%d/%s", CKPT_OCDBT_PROCESS_DIR_PREFIX, j->process, pnode_name);
  snprintf(pman_rel, sizeof pman_rel, "%s%d/%s", CKPT_OCDBT_PROCESS_DIR_PREFIX, j->process,
           CKPT_OCDBT_MANIFEST_FILE);
  if (st == CKPT_OK)
    st = add_file_sum(j, prel, &pnodes, err);
  if (st == CKPT_OK)
    st = add_file_sum(j, pman_rel, &pman, err);
  if (st == CKPT_OK && with_root)
    st = add_file_sum(j, rnode_name, &rnodes, err);
  if (st == CKPT_OK && with_root)
    st = add_file_sum(j, CKPT_OCDBT_MANIFEST_FILE, &rman, err);
  /* All four in parallel: no order among them is needed, as the commit makes the whole
   * checkpoint appear at once, after every file of the group is durable. */
  if (st == CKPT_OK)
    st = submit_buf(j->group, j->dir, prel, &pnodes, err);
  if (st == CKPT_OK && with_root)
    st = submit_buf(j->group, j->dir, rnode_name, &rnodes, err);
  if (st == CKPT_OK)
    st = submit_buf(j->group, j->dir, pman_rel, &pman, err);
  if (st == CKPT_OK && with_root)
    st = submit_buf(j->group, j->dir, CKPT_OCDBT_MANIFEST_FILE, &rman, err);
  ckpt_ocdbt_buf_free(&pnodes);
  ckpt_ocdbt_buf_free(&pman);
  ckpt_ocdbt_buf_free(&rnodes);
  ckpt_ocdbt_buf_free(&rman);
  free(names);
  free(ids);
  return st;
}

void ckpt_ocdbt_process_db_free(ckpt_ocdbt_process_db *db) {
  if (db == NULL)
    return;
  key_table t = {db->kvs, db->keys, db->n};
  key_table_free(&t);
  free(db->files);
  free(db);
}

/* Multi-process: the key table and the value files' names handed to the plan for the merge
 * (ckpt_ocdbt_process_db); t is emptied. */
static ckpt_status keep_for_merge(ocdbt_w *w, key_table *t, ckpt_error *err) {
  ckpt_ocdbt_process_db *db = calloc(1, sizeof *db);
  if (db != NULL)
    db->files = malloc((w->n_files ? w->n_files : 1) * sizeof *db->files);
  if (db == NULL || db->files == NULL) {
    free(db);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory keeping the OCDBT keys for the merge");
  }
  for (size_t i = 0; i < w->n_files; i++)
    memcpy(db->files[i], w->files[i].name, sizeof db->files[i]);
  db->n_files = w->n_files;
  db->kvs = t->kvs;
  db->keys = t->keys;
  db->n = t->n;
  *t = (key_table){0};
  w->j->ocdbt_db = db;
  return CKPT_OK;
}

/* Function job once every chunk is prepared and claimed: the key table and both databases
 * (several processes: this process's, its table kept for the primary's merge). */
static ckpt_status task_databases(void *arg, ckpt_error *err) {
  ocdbt_w *w = arg;
  key_table t = {0};
  ckpt_status st = build_keys(w->j, &t, err);
  if (st == CKPT_OK)
    st = write_databases(w, &t, err);
  if (st == CKPT_OK && w->j->multiprocess)
    st = keep_for_merge(w, &t, err);
  key_table_free(&t);
  return st;
}

static ckpt_status make_dir(ckpt_io *io, const char *parent, const char *name, char **out,
                            ckpt_error *err) {
  char *path = ckpt_path_join(parent, name);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = ckpt_zarr_make_array_dir(io, path, err);
  if (st != CKPT_OK || out == NULL)
    free(path);
  else
    *out = path;
  return st;
}

ckpt_status ckpt_ocdbt_write(ckpt_write_plan *j, const ckpt_ocdbt_write_jobs *jobs,
                             ckpt_error *err) {
  ocdbt_w w = {.j = j,
               .target = j->ocdbt_data_file_bytes ? j->ocdbt_data_file_bytes
                                                  : CKPT_OCDBT_TARGET_DATA_FILE_SIZE};
  pthread_mutex_init(&w.mu, NULL);
  ckpt_status st = CKPT_OK;
  bool keys = ckpt_ocdbt_plan_has_keys(j); /* no keys: no database (docs/format.md, "OCDBT") */
  char pname[CKPT_PATH_NAME_MAX];
  snprintf(pname, sizeof pname, "%s%d", CKPT_OCDBT_PROCESS_DIR_PREFIX, j->process);
  if (keys)
    st = make_dir(j->io, j->dir, pname, &w.pdir, err);
  if (st == CKPT_OK && keys)
    st = make_dir(j->io, w.pdir, CKPT_OCDBT_DATA_DIR, NULL, err);
  /* The root database's directory: the primary's, at the merge, with several processes. */
  if (st == CKPT_OK && keys && !j->multiprocess)
    st = make_dir(j->io, j->dir, CKPT_OCDBT_DATA_DIR, NULL, err);
  if (st == CKPT_OK)
    st = write_all(&w, jobs, err);
  free(w.files);
  free(w.segments);
  free(w.pdir);
  pthread_mutex_destroy(&w.mu);
  return st;
}

/* ---------------------------------------------------------------- the builder */

/* One key put, in the order given (sorted at finish). */
typedef struct built_kv {
  char *key;
  unsigned char *value; /* inline: a copy */
  uint64_t length;
  bool indirect;
  uint32_t file;
  uint64_t offset;
} built_kv;

struct ckpt_ocdbt_builder {
  ckpt_io *io;
  char *dir, *pdir; /* the item and <item>/ocdbt.process_0 */
  uint64_t target;
  built_kv *kvs;
  size_t n, cap;
  data_file *files; /* the value files: only name and size are used; fd below */
  size_t n_files, cap_files;
  int fd;     /* the current value file, or -1 */
  char *path; /* its path */
  ckpt_write_file_sum *sums;
  size_t n_sums;
};

static ckpt_status close_current(ckpt_ocdbt_builder *b, ckpt_error *err) {
  if (b->fd < 0)
    return CKPT_OK;
  ckpt_status st = ckpt_io_fsync(b->io, b->fd, b->path, err);
  ckpt_status cst = ckpt_io_close(b->io, b->fd, b->path, st == CKPT_OK ? err : NULL);
  b->fd = -1;
  free(b->path);
  b->path = NULL;
  return st != CKPT_OK ? st : cst;
}

ckpt_status ckpt_ocdbt_builder_new(ckpt_io *io, const char *item_dir, uint64_t target_file_bytes,
                                   ckpt_ocdbt_builder **out, ckpt_error *err) {
  *out = NULL;
  ckpt_ocdbt_builder *b = calloc(1, sizeof *b);
  if (b == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  b->io = io != NULL ? io : ckpt_io_default();
  b->fd = -1;
  b->target = target_file_bytes ? target_file_bytes : CKPT_OCDBT_TARGET_DATA_FILE_SIZE;
  b->dir = strdup(item_dir);
  ckpt_status st = b->dir ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK)
    st = make_dir(b->io, item_dir, CKPT_OCDBT_PROCESS_DIR_PREFIX "0", &b->pdir, err);
  if (st == CKPT_OK)
    st = make_dir(b->io, b->pdir, CKPT_OCDBT_DATA_DIR, NULL, err);
  if (st == CKPT_OK)
    st = make_dir(b->io, item_dir, CKPT_OCDBT_DATA_DIR, NULL, err);
  if (st != CKPT_OK) {
    ckpt_ocdbt_builder_free(b);
    return st;
  }
  *out = b;
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_builder_put(ckpt_ocdbt_builder *b, const char *key, const void *value,
                                   size_t n, ckpt_error *err) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 64;
    built_kv *nk = realloc(b->kvs, cap * sizeof *nk);
    if (nk == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for OCDBT key '%s'", key);
    b->kvs = nk;
    b->cap = cap;
  }
  built_kv kv = {.key = strdup(key), .length = n, .indirect = !is_inline(n)};
  if (kv.key == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = CKPT_OK;
  if (!kv.indirect) {
    kv.value = malloc(n ? n : 1);
    if (kv.value == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    else
      memcpy(kv.value, value, n);
  } else {
    data_file *cur = b->n_files ? &b->files[b->n_files - 1] : NULL;
    if (cur == NULL || (cur->size > 0 && cur->size + n > b->target)) {
      st = close_current(b, err);
      if (st == CKPT_OK && b->n_files == b->cap_files) {
        size_t cap = b->cap_files ? 2 * b->cap_files : 4;
        data_file *nf = realloc(b->files, cap * sizeof *nf);
        if (nf == NULL)
          st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
        else
          b->files = nf, b->cap_files = cap;
      }
      if (st == CKPT_OK) {
        cur = &b->files[b->n_files];
        *cur = (data_file){.size = 0};
        st = ckpt_ocdbt_data_file_name(cur->name, err);
      }
      if (st == CKPT_OK && (b->path = ckpt_path_join(b->pdir, cur->name)) == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      if (st == CKPT_OK)
        st = ckpt_io_open(b->io, b->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666, &b->fd,
                          err);
      if (st == CKPT_OK)
        b->n_files++;
    }
    if (st == CKPT_OK)
      st = ckpt_io_pwrite_all(b->io, b->fd, b->path, value, n, cur->size, err);
    if (st == CKPT_OK) {
      kv.file = (uint32_t)(b->n_files - 1);
      kv.offset = cur->size;
      cur->size += n;
    }
  }
  if (st != CKPT_OK) {
    free(kv.key);
    free(kv.value);
    return st;
  }
  b->kvs[b->n++] = kv;
  return CKPT_OK;
}

static int cmp_built(const void *a, const void *b) {
  return strcmp(((const built_kv *)a)->key, ((const built_kv *)b)->key);
}

/* Writes dir/rel with b's bytes durably and records its sum. */
static ckpt_status write_small(ckpt_ocdbt_builder *bl, const char *rel, const ckpt_ocdbt_buf *buf,
                               ckpt_error *err) {
  char *path = ckpt_path_join(bl->dir, rel);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st =
      ckpt_io_write_file(bl->io, path, buf->p ? (const void *)buf->p : "", buf->n, true, err);
  free(path);
  if (st != CKPT_OK)
    return st;
  ckpt_write_file_sum *ns = realloc(bl->sums, (bl->n_sums + 1) * sizeof *ns);
  char *r = strdup(rel);
  if (ns == NULL || r == NULL) {
    free(r);
    if (ns != NULL)
      bl->sums = ns;
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  bl->sums = ns;
  ns[bl->n_sums++] = (ckpt_write_file_sum){r, ckpt_crc32c(0, buf->p, buf->n), buf->n};
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_builder_finish(ckpt_ocdbt_builder *b, ckpt_error *err) {
  ckpt_status st = close_current(b, err);
  if (st == CKPT_OK && b->n == 0)
    return ckpt_error_set(err, CKPT_EINVAL, "'%s': an OCDBT database needs at least one key",
                          b->dir);
  qsort(b->kvs, b->n, sizeof *b->kvs, cmp_built);
  ckpt_ocdbt_kv *kvs = calloc(b->n ? b->n : 1, sizeof *kvs);
  const char **names = malloc((b->n_files + 1) * sizeof *names);
  ckpt_ocdbt_file_id *ids = malloc((b->n_files + 1) * sizeof *ids);
  if (st == CKPT_OK && (kvs == NULL || names == NULL || ids == NULL))
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; st == CKPT_OK && i < b->n; i++) {
    if (i > 0 && strcmp(b->kvs[i - 1].key, b->kvs[i].key) == 0)
      st =
          ckpt_error_set(err, CKPT_EINVAL, "'%s': OCDBT key '%s' put twice", b->dir, b->kvs[i].key);
    kvs[i] = (ckpt_ocdbt_kv){.key = b->kvs[i].key,
                             .key_len = strlen(b->kvs[i].key),
                             .length = b->kvs[i].length,
                             .value = b->kvs[i].value,
                             .indirect = b->kvs[i].indirect,
                             .file = b->kvs[i].file,
                             .offset = b->kvs[i].offset};
  }
  for (size_t i = 0; st == CKPT_OK && i < b->n_files; i++) {
    names[i] = b->files[i].name;
    ids[i] = (ckpt_ocdbt_file_id){"", b->files[i].name};
  }
  ckpt_ocdbt_config pc, rc;
  char pnode[CKPT_OCDBT_DATA_NAME_HEX + 3], rnode[CKPT_OCDBT_DATA_NAME_HEX + 3];
  ckpt_ocdbt_buf pnodes = {0}, pman = {0}, rnodes = {0}, rman = {0};
  ckpt_ocdbt_root root;
  if (st == CKPT_OK)
    st = ckpt_ocdbt_config_init(&pc, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_config_init(&rc, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_data_file_name(pnode, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_data_file_name(rnode, err);
  uint64_t when = now_ns();
  if (st == CKPT_OK) {
    ckpt_ocdbt_tree_opts o = {.files = ids,
                              .n_files = b->n_files,
                              .node_file = pnode,
                              .target_node_bytes = 0 /* the encoder's */};
    st = ckpt_ocdbt_build_tree(kvs, b->n, &o, &pnodes, &root, err);
  }
  if (st == CKPT_OK)
    st = ckpt_ocdbt_encode_manifest(&pc, pnode, &root, when, &pman, err);
  if (st == CKPT_OK) {
    ckpt_ocdbt_process_table pt = {
        .process = 0, .n_files = b->n_files, .files = names, .n = b->n, .kvs = kvs};
    st = ckpt_ocdbt_merge_encode(&pt, 1, &rc, rnode, 0, when, &rnodes, &rman, err);
  }
  char prel[CKPT_PATH_NAME_MAX], pman_rel[CKPT_PATH_NAME_MAX];
  snprintf(prel, sizeof prel, "%s0/%s", CKPT_OCDBT_PROCESS_DIR_PREFIX, pnode);
  snprintf(pman_rel, sizeof pman_rel, "%s0/%s", CKPT_OCDBT_PROCESS_DIR_PREFIX,
           CKPT_OCDBT_MANIFEST_FILE);
  /* Nodes before the manifests naming them; each directory fsync'd after its last entry. */
  if (st == CKPT_OK)
    st = write_small(b, prel, &pnodes, err);
  if (st == CKPT_OK)
    st = write_small(b, rnode, &rnodes, err);
  if (st == CKPT_OK)
    st = write_small(b, pman_rel, &pman, err);
  if (st == CKPT_OK)
    st = write_small(b, CKPT_OCDBT_MANIFEST_FILE, &rman, err);
  char *pd = st == CKPT_OK ? ckpt_path_join(b->pdir, CKPT_OCDBT_DATA_DIR) : NULL;
  char *rd = st == CKPT_OK ? ckpt_path_join(b->dir, CKPT_OCDBT_DATA_DIR) : NULL;
  if (st == CKPT_OK && (pd == NULL || rd == NULL))
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(b->io, pd, err);
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(b->io, b->pdir, err);
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(b->io, rd, err);
  free(pd);
  free(rd);
  ckpt_ocdbt_buf_free(&pnodes);
  ckpt_ocdbt_buf_free(&pman);
  ckpt_ocdbt_buf_free(&rnodes);
  ckpt_ocdbt_buf_free(&rman);
  free(kvs);
  free(names);
  free(ids);
  return st;
}

size_t ckpt_ocdbt_builder_files(const ckpt_ocdbt_builder *b, const ckpt_write_file_sum **sums) {
  *sums = b->sums;
  return b->n_sums;
}

void ckpt_ocdbt_builder_free(ckpt_ocdbt_builder *b) {
  if (b == NULL)
    return;
  if (b->fd >= 0)
    ckpt_io_close(b->io, b->fd, b->path, NULL);
  for (size_t i = 0; i < b->n; i++) {
    free(b->kvs[i].key);
    free(b->kvs[i].value);
  }
  for (size_t i = 0; i < b->n_sums; i++)
    free(b->sums[i].rel);
  free(b->sums);
  free(b->kvs);
  free(b->files);
  free(b->path);
  free(b->pdir);
  free(b->dir);
  free(b);
}
