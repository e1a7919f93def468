/* tests/mpi/ranks/mpi_scenario.c — one program, many scenarios of multi-process checkpoints,
 * started by tests/mpi/test_mpi.c under mpirun (or alone, for the single-process references).
 *
 *   mpi_scenario save    DIR [async]        every rank saves its shards of the test tree
 *   mpi_scenario restore DIR SAVED_N        every rank restores its (other) shards and checks
 *   mpi_scenario ref     DIR N              one process saves every shard of N ranks
 *   mpi_scenario compare MULTI REF          the two layouts hold the same bytes (one process)
 *   mpi_scenario fault   DIR RANK           RANK's chunk write fails: every rank gets the error
 *   mpi_scenario kill    ROOT [RANK]        step 1 saved, then RANK (default 1) killed while
 *                                           saving step 2
 *   mpi_scenario differ  DIR                the last rank's tree has one more array: every
 *                                           rank refuses (CKPT_EMISMATCH)
 *   mpi_scenario async   ROOT               async saves while the ranks run their own
 *                                           MPI_Allreduce loop; the same outcome everywhere
 *   mpi_scenario thread-level X             MPI at MPI_THREAD_SERIALIZED: the group refuses
 *   mpi_scenario mismatch DIR               the last rank saves elsewhere, then in another
 *                                           array layout: every rank refuses
 *   mpi_scenario item-fail DIR              a Composite whose first item fails on the last rank
 *                                           only: no rank waits, every rank gets the error
 *   mpi_scenario composite DIR              a Composite of the tree and a JSON item: the
 *                                           primary writes the JSON once; every rank
 *                                           restores both as saved
 *   mpi_scenario manager ROOT               a CheckpointManager on every rank: retention by
 *                                           the primary (max_to_keep, best metric), the same
 *                                           step lists everywhere, SIGTERM on the last rank →
 *                                           every rank saves the same step and stops
 *   mpi_scenario restore-alone DIR         one process (no MPI) restores and checks
 *   mpi_scenario compare-ocdbt MULTI REF MIN N  the two root OCDBT databases hold the same
 *                                           keys with the same values, the same _METADATA;
 *                                           MULTI (saved by N ranks) refers to value files of
 *                                           at least MIN process databases
 * MPI_SCENARIO_PRIMARY=<rank> in the environment makes that rank the primary.
 * MPI_SCENARIO_FORMAT=ocdbt (or zarr3: OCDBT with zarr v3 values) saves with use_ocdbt (and
 * use_zarr3), the tree then has a fourth array "big" (below) whose chunks are over OCDBT's
 * inline limit, and a fault hits the first file a rank opens in its database.
 * MPI_SCENARIO_FORMAT=zarr3-dir saves zarr v3 in directories (use_zarr3 alone), with "big" too.
 *
 * Each rank prints "rank R/N: ok ..." or "rank R/N: FAIL ..." and exits 1 on a failure, so the
 * driver reports which rank failed and why. The test tree (global arrays):
 *   w  float32 [8, 6]   w[r][c] = 100 r + c   rows split over the ranks
 *   m  int32   [4, 6]   m[r][c] = 10 c + r    columns split over the ranks
 *   b  int64   [5]      b[i] = 1000 + i       every rank holds it whole (replica id = rank)
 *   step int64 scalar   42
 *   big  float32 [64, 40] big_at(r, c) (noisy)  rows split over the ranks (with a format)
 * A restore splits w by columns and m by rows instead, over however many ranks restore. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include <mpi.h>

#include "ckpt/ckpt.h"
#include "ckpt/mpi.h"
#include "storage/ocdbt/ocdbt.h"
#include "text/json.h"

#include "rank_common.h"

static int failures = 0;
/* MPI_SCENARIO_FORMAT: 0 zarr v2 directories, 1 OCDBT, 2 OCDBT with zarr v3 values, 3 zarr v3
 * directories. */
static int format_ = 0;
static bool in_ocdbt(void) {
  return format_ == 1 || format_ == 2;
}

static void fail(const char *fmt, const char *a, const char *b) {
  printf("rank %d/%d: FAIL ", rank_, size_);
  printf(fmt, a ? a : "", b ? b : "");
  printf("\n");
  fflush(stdout);
  failures++;
}

static float w_at(int64_t r, int64_t c) {
  return (float)(100 * r + c);
}
static int32_t m_at(int64_t r, int64_t c) {
  return (int32_t)(10 * c + r);
}
static float big_at(int64_t r, int64_t c) {
  /* noisy mantissas: zstd (zarr3) keeps each rank's chunk over OCDBT's inline limit */
  return (float)(((uint64_t)r * 2654435761u + (uint64_t)c * 40503u) % 1000003u) / 7.0f;
}
#define BIG_ROWS 64
#define BIG_COLS 40

/* Adds rank `who` of `parts`'s rows of "big" (the OCDBT formats' fourth array). */
static int add_big_shard(ckpt_array *big, int who, int parts) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t lo, n;
  block(BIG_ROWS, parts, who, &lo, &n);
  int64_t off[2] = {lo, 0}, shape[2] = {n, BIG_COLS};
  if (ckpt_array_add_shard(big, off, shape, NULL, 0, &err) != CKPT_OK)
    return fail("big shard: %s%s", err.message, NULL), 1;
  float *d = big->shards[big->n_shards - 1].data;
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < BIG_COLS; c++)
      d[r * BIG_COLS + c] = big_at(lo + r, c);
  return 0;
}

/* Adds rank `who` of `parts`'s save shards to the arrays (the save layout). */
static int add_save_shards(ckpt_array *w, ckpt_array *m, ckpt_array *b, int who, int parts) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t lo, n;
  block(8, parts, who, &lo, &n);
  int64_t off[2] = {lo, 0}, shape[2] = {n, 6};
  float *wd = malloc((size_t)(n * 6) * sizeof *wd + 1);
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < 6; c++)
      wd[r * 6 + c] = w_at(lo + r, c);
  if (ckpt_array_add_shard(w, off, shape, NULL, 0, &err) != CKPT_OK)
    return fail("w shard: %s%s", err.message, NULL), 1;
  memcpy(w->shards[w->n_shards - 1].data, wd, (size_t)(n * 6) * sizeof *wd);
  free(wd);
  block(6, parts, who, &lo, &n);
  int64_t moff[2] = {0, lo}, mshape[2] = {4, n};
  if (ckpt_array_add_shard(m, moff, mshape, NULL, 0, &err) != CKPT_OK)
    return fail("m shard: %s%s", err.message, NULL), 1;
  int32_t *md = m->shards[m->n_shards - 1].data;
  for (int64_t r = 0; r < 4; r++)
    for (int64_t c = 0; c < n; c++)
      md[r * n + c] = m_at(r, lo + c);
  int64_t boff[1] = {0}, bshape[1] = {5};
  if (ckpt_array_add_shard(b, boff, bshape, NULL, who, &err) != CKPT_OK)
    return fail("b shard: %s%s", err.message, NULL), 1;
  int64_t *bd = b->shards[b->n_shards - 1].data;
  for (int i = 0; i < 5; i++)
    bd[i] = 1000 + i;
  return 0;
}

/* The save tree of ranks [first, first + count) of `parts` (all of them for a reference). */
static ckpt_tree *save_tree(int first, int count, int parts) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t ws[2] = {8, 6}, ms[2] = {4, 6}, bs[1] = {5};
  ckpt_array *w, *m, *b;
  ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, ws, &w, &err);
  ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, ms, &m, &err);
  ckpt_array_new_sharded(CKPT_DTYPE_INT64, 1, bs, &b, &err);
  for (int who = first; who < first + count; who++)
    if (add_save_shards(w, m, b, who, parts) != 0)
      return NULL;
  ckpt_tree *t = ckpt_tree_new_dict();
  if (format_ != 0) {
    int64_t bigs[2] = {BIG_ROWS, BIG_COLS};
    ckpt_array *big;
    ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, bigs, &big, &err);
    for (int who = first; who < first + count; who++)
      if (add_big_shard(big, who, parts) != 0)
        return NULL;
    ckpt_tree_dict_set(t, "big", ckpt_tree_new_array(big), &err);
  }
  ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(w), &err);
  ckpt_tree_dict_set(t, "m", ckpt_tree_new_array(m), &err);
  ckpt_tree_dict_set(t, "b", ckpt_tree_new_array(b), &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 42), &err);
  if (err.code != CKPT_OK) {
    fail("building the tree: %s%s", err.message, NULL);
    return NULL;
  }
  return t;
}

/* ---------------------------------------------------------------- fault injection */

static atomic_int fault_mode = 0; /* 0 none, 1 EIO once, 2 SIGKILL */

/* Where a fault hits: the array w's directory, or with OCDBT (no array directories) the
 * process's own database. */
static const char *fault_where(void) {
  return in_ocdbt() ? "/ocdbt.process_" : "/w/";
}
static atomic_int fault_fired = 0;

static int fault_hook(void *arg, ckpt_io_op op, const char *path) {
  (void)arg;
  int mode = atomic_load(&fault_mode);
  if (mode == 0 || op != CKPT_IO_OPEN || strstr(path, fault_where()) == NULL)
    return 0;
  if (mode == 2)
    raise(SIGKILL);
  if (atomic_exchange(&fault_fired, 1) == 0)
    return EIO;
  return 0;
}

/* ---------------------------------------------------------------- save / restore */

static ckpt_process_group *pg;
static ckpt_io *io;

static ckpt_checkpointer *new_checkpointer(bool async, bool with_group) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = async;
  o.io = io;
  o.io_threads = 2;
  o.process_group = with_group ? pg : NULL;
  o.use_ocdbt = in_ocdbt();
  o.use_zarr3 = format_ == 2 || format_ == 3;
  /* MPI_SCENARIO_PRIMARY (mpirun -x) moves the primary off rank 0. */
  const char *primary = getenv("MPI_SCENARIO_PRIMARY");
  o.primary = with_group && primary != NULL ? atoi(primary) : 0;
  ckpt_checkpointer *c = NULL;
  if (ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err) != CKPT_OK)
    fail("checkpointer: %s%s", err.message, NULL);
  return c;
}

/* Saves this rank's shards at path; the status (and err) of the save. */
static ckpt_status save_at(ckpt_checkpointer *c, const char *path, ckpt_error *err) {
  ckpt_tree *t = save_tree(rank_, 1, size_);
  if (t == NULL)
    return CKPT_EINVAL;
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  s->item = t;
  ckpt_status st = ckpt_checkpointer_save(c, path, &s->base, false, NULL, err);
  ckpt_args_delete(&s->base);
  return st;
}

static int check_restored(const ckpt_tree *t, const char *path) {
  const ckpt_array *w = ckpt_tree_array(ckpt_tree_dict_get(t, "w"));
  const ckpt_array *m = ckpt_tree_array(ckpt_tree_dict_get(t, "m"));
  const ckpt_array *b = ckpt_tree_array(ckpt_tree_dict_get(t, "b"));
  ckpt_tree *step = ckpt_tree_dict_get(t, "step");
  if (w == NULL || m == NULL || b == NULL || step == NULL)
    return fail("restore of %s: a leaf is missing%s", path, NULL), 1;
  for (size_t s = 0; s < w->n_shards; s++) {
    const ckpt_shard *sh = &w->shards[s];
    const float *d = sh->data;
    for (int64_t r = 0; r < sh->shape[0]; r++)
      for (int64_t c = 0; c < sh->shape[1]; c++)
        if (d[r * sh->shape[1] + c] != w_at(sh->offset[0] + r, sh->offset[1] + c))
          return fail("restore of %s: w holds a wrong value%s", path, NULL), 1;
  }
  for (size_t s = 0; s < m->n_shards; s++) {
    const ckpt_shard *sh = &m->shards[s];
    const int32_t *d = sh->data;
    for (int64_t r = 0; r < sh->shape[0]; r++)
      for (int64_t c = 0; c < sh->shape[1]; c++)
        if (d[r * sh->shape[1] + c] != m_at(sh->offset[0] + r, sh->offset[1] + c))
          return fail("restore of %s: m holds a wrong value%s", path, NULL), 1;
  }
  const ckpt_array *big = ckpt_tree_array(ckpt_tree_dict_get(t, "big"));
  if (format_ != 0 && big == NULL)
    return fail("restore of %s: big is missing%s", path, NULL), 1;
  for (size_t s = 0; big != NULL && s < big->n_shards; s++) {
    const ckpt_shard *sh = &big->shards[s];
    const float *d = sh->data;
    for (int64_t r = 0; r < sh->shape[0]; r++)
      for (int64_t c = 0; c < sh->shape[1]; c++)
        if (d[r * sh->shape[1] + c] != big_at(sh->offset[0] + r, sh->offset[1] + c))
          return fail("restore of %s: big holds a wrong value%s", path, NULL), 1;
  }
  const int64_t *bd = ckpt_array_data(b);
  for (int i = 0; bd != NULL && i < 5; i++)
    if (bd[i] != 1000 + i)
      return fail("restore of %s: b holds a wrong value%s", path, NULL), 1;
  ckpt_scalar sv;
  if (bd == NULL || !ckpt_tree_scalar(step, &sv) || sv.v.i != 42)
    return fail("restore of %s: b or step is wrong%s", path, NULL), 1;
  return 0;
}

/* Restores path into this rank's restore shards (w by columns, m by rows) and checks them. */
static int restore_and_check(const char *path) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t ws[2] = {8, 6}, ms[2] = {4, 6}, bs[1] = {5};
  ckpt_array *w, *m, *b;
  ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, ws, &w, &err);
  ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, ms, &m, &err);
  ckpt_array_new(CKPT_DTYPE_INT64, 1, bs, &b, &err);
  int64_t lo, n;
  block(6, size_, rank_, &lo, &n);
  int64_t woff[2] = {0, lo}, wshape[2] = {8, n};
  ckpt_array_add_shard(w, woff, wshape, NULL, 0, &err);
  block(4, size_, rank_, &lo, &n);
  int64_t moff[2] = {lo, 0}, mshape[2] = {n, 6};
  ckpt_array_add_shard(m, moff, mshape, NULL, 0, &err);
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(w), &err);
  ckpt_tree_dict_set(target, "m", ckpt_tree_new_array(m), &err);
  ckpt_tree_dict_set(target, "b", ckpt_tree_new_array(b), &err);
  ckpt_tree_dict_set(target, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 0), &err);
  if (format_ != 0) { /* big by columns */
    int64_t bigs[2] = {BIG_ROWS, BIG_COLS};
    ckpt_array *big;
    ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, bigs, &big, &err);
    block(BIG_COLS, size_, rank_, &lo, &n);
    int64_t boff[2] = {0, lo}, bshape[2] = {BIG_ROWS, n};
    ckpt_array_add_shard(big, boff, bshape, NULL, 0, &err);
    ckpt_tree_dict_set(target, "big", ckpt_tree_new_array(big), &err);
  }
  ckpt_StandardRestore *r = ckpt_StandardRestore_new();
  r->item = target;
  r->strict = true;
  ckpt_checkpointer *c = new_checkpointer(false, true);
  ckpt_value v;
  ckpt_status st = c ? ckpt_checkpointer_restore(c, path, &r->base, &v, &err) : CKPT_EINVAL;
  ckpt_args_delete(&r->base);
  int bad = 0;
  if (st != CKPT_OK) {
    fail("restore of %s: %s", path, err.message);
    bad = 1;
  } else {
    bad = check_restored(v.u.tree, path);
    ckpt_value_free(&v);
  }
  ckpt_checkpointer_close(c, &err);
  return bad;
}

/* ---------------------------------------------------------------- layout comparison */

/* _CHECKSUMS without the per-process files (a single-process save has none). */
static int same_checksums(const char *a, const char *b) {
  cJSON *ja = NULL, *jb = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  if (ckpt_json_read_file(NULL, a, 1 << 24, &ja, &err) != CKPT_OK ||
      ckpt_json_read_file(NULL, b, 1 << 24, &jb, &err) != CKPT_OK) {
    fail("reading _CHECKSUMS: %s%s", err.message, NULL);
    return 0;
  }
  cJSON *files = cJSON_GetObjectItemCaseSensitive(ja, "files");
  for (cJSON *f = files ? files->child : NULL; f != NULL;) {
    cJSON *next = f->next;
    if (strncmp(f->string, "array_metadatas/", 16) == 0)
      cJSON_Delete(cJSON_DetachItemViaPointer(files, f));
    f = next;
  }
  int same = cJSON_Compare(ja, jb, true);
  cJSON_Delete(ja);
  cJSON_Delete(jb);
  return same;
}

static int read_all(const char *path, char **data, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return -1;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  *data = malloc((size_t)len + 1);
  *n = fread(*data, 1, (size_t)len, f);
  fclose(f);
  return 0;
}

/* Every file of `multi` but the timestamps and per-process files is in `ref` with the same
 * bytes, and the other way round. */
static int compare_tree(const char *multi, const char *ref, int *n_files) {
  DIR *d = opendir(multi);
  if (d == NULL)
    return fail("cannot open %s%s", multi, NULL), 1;
  int bad = 0;
  size_t n_multi = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
      continue;
    if (strcmp(name, "array_metadatas") == 0 || strcmp(name, "_CHECKPOINT_METADATA") == 0 ||
        strcmp(name, "_CHECKPOINT_CHECKSUMS") == 0 || strcmp(name, "commit_success.txt") == 0)
      continue; /* per-process, timestamps, or the checkpoint's own path */
    n_multi++;
    char pa[4096], pb[4096];
    snprintf(pa, sizeof pa, "%s/%s", multi, name);
    snprintf(pb, sizeof pb, "%s/%s", ref, name);
    struct stat sa, sb;
    if (stat(pa, &sa) != 0 || stat(pb, &sb) != 0) {
      fail("%s is missing from the single-process save %s", pa, ref);
      bad = 1;
      continue;
    }
    if (S_ISDIR(sa.st_mode)) {
      bad |= compare_tree(pa, pb, n_files);
      continue;
    }
    if (strcmp(name, "_CHECKSUMS") == 0) {
      if (!same_checksums(pa, pb)) {
        fail("%s differs from %s", pa, pb);
        bad = 1;
      }
      (*n_files)++;
      continue;
    }
    char *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    read_all(pa, &da, &na);
    read_all(pb, &db, &nb);
    if (da == NULL || db == NULL || na != nb || memcmp(da, db, na) != 0) {
      fail("%s differs from %s", pa, pb);
      bad = 1;
    }
    free(da);
    free(db);
    (*n_files)++;
  }
  closedir(d);
  /* Nothing in the reference that the multi-process save lacks. */
  d = opendir(ref);
  size_t n_ref = 0;
  while (d != NULL && (e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "array_metadatas") == 0 ||
        strcmp(name, "_CHECKPOINT_METADATA") == 0 || strcmp(name, "_CHECKPOINT_CHECKSUMS") == 0 ||
        strcmp(name, "commit_success.txt") == 0)
      continue;
    n_ref++;
  }
  if (d != NULL)
    closedir(d);
  if (n_ref != n_multi) {
    fail("%s and %s hold different numbers of files", multi, ref);
    bad = 1;
  }
  return bad;
}

/* ---------------------------------------------------------------- OCDBT comparison */

/* The root databases of `multi` (saved by size_max processes) and `ref` (one process) hold the
 * same keys with the same values; their _METADATA are the same bytes; and multi's root refers
 * to value files in at least `parts` process databases (with OCDBT's zarr v2 values every rank
 * wrote its rows of big as one value over the inline limit; zarr v3's smaller compressed chunks
 * may all be inline). */
static int compare_ocdbt(const char *multi, const char *ref, int parts, int size_max) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_ocdbt *a = NULL, *b = NULL;
  if (ckpt_ocdbt_open(io, multi, &a, &err) != CKPT_OK || ckpt_ocdbt_open(io, ref, &b, &err) != CKPT_OK) {
    fail("opening the root databases: %s%s", err.message, NULL);
    ckpt_ocdbt_close(a);
    return 1;
  }
  size_t n = ckpt_ocdbt_count(a);
  if (n != ckpt_ocdbt_count(b) || n < 8)
    fail("the root databases of %s and %s hold different numbers of keys", multi, ref);
  for (size_t i = 0; failures == 0 && i < n; i++) {
    size_t la, lb;
    const char *ka = ckpt_ocdbt_key(a, i, &la), *kb = ckpt_ocdbt_key(b, i, &lb);
    const ckpt_ocdbt_value *va = ckpt_ocdbt_value_at(a, i), *vb = ckpt_ocdbt_value_at(b, i);
    if (la != lb || memcmp(ka, kb, la) != 0 || va->length != vb->length) {
      fail("key %s differs from the single-process key %s", ka, kb);
      break;
    }
    char *da = malloc(va->length + 1), *db = malloc(vb->length + 1);
    if (ckpt_ocdbt_read(a, i, da, &err) != CKPT_OK || ckpt_ocdbt_read(b, i, db, &err) != CKPT_OK)
      fail("reading a value: %s%s", err.message, NULL);
    else if (memcmp(da, db, va->length) != 0)
      fail("the value of %s differs from the single-process save's%s", ka, NULL);
    free(da);
    free(db);
  }
  bool seen[64] = {false};
  int n_processes = 0;
  for (size_t f = 0; f < ckpt_ocdbt_n_files(a); f++) {
    const char *p = strstr(ckpt_ocdbt_file_path(a, (uint32_t)f), "/ocdbt.process_");
    int k = p != NULL ? atoi(p + strlen("/ocdbt.process_")) : -1;
    if (k >= 0 && k < 64 && !seen[k]) {
      seen[k] = true;
      n_processes++;
    }
  }
  if (n_processes < parts || n_processes > size_max)
    fail("the root database of %s refers to value files of %s process databases", multi,
         n_processes < parts ? "too few" : "too many");
  ckpt_ocdbt_close(a);
  ckpt_ocdbt_close(b);
  char pa[4200], pb[4200], *ta = NULL, *tb = NULL;
  size_t na = 0, nb = 0;
  snprintf(pa, sizeof pa, "%s/_METADATA", multi);
  snprintf(pb, sizeof pb, "%s/_METADATA", ref);
  read_all(pa, &ta, &na);
  read_all(pb, &tb, &nb);
  if (ta == NULL || tb == NULL || na != nb || memcmp(ta, tb, na) != 0)
    fail("%s differs from %s", pa, pb);
  free(ta);
  free(tb);
  if (failures == 0)
    printf("compared %zu keys, values in %d process databases\n", n, n_processes);
  return failures;
}

/* ---------------------------------------------------------------- scenarios */

static int all_ok(int mine) {
  int worst = 0;
  MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

static bool exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* After a save every rank saw fail or refuse: once all ranks are past it (the primary has
 * removed the tmp directory by then), neither dir nor its tmp directory may exist. fmt names
 * the two paths (dir, then tmp) in the failure message. */
static void check_nothing_left(const char *dir, const char *fmt) {
  MPI_Barrier(MPI_COMM_WORLD);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.orbax-checkpoint-tmp", dir);
  if (exists(dir) || exists(tmp))
    fail(fmt, dir, tmp);
}

/* A checkpointer with no default handler over this rank's I/O and group, for Composite saves;
 * NULL (a failure reported) if it cannot be made. */
static ckpt_checkpointer *composite_checkpointer(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.io = io;
  o.process_group = pg;
  ckpt_checkpointer *c = NULL;
  if (ckpt_checkpointer_new(NULL, &o, &c, &err) != CKPT_OK)
    fail("composite checkpointer: %s%s", err.message, NULL);
  return c;
}

static int scenario_save(const char *dir, bool async) {
  ckpt_checkpointer *c = new_checkpointer(async, true);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = c ? save_at(c, dir, &err) : CKPT_EINVAL;
  if (st == CKPT_OK)
    st = ckpt_checkpointer_wait_until_finished(c, &err);
  if (st != CKPT_OK)
    fail("save of %s: %s", dir, err.message);
  ckpt_checkpointer_close(c, &err);
  MPI_Barrier(MPI_COMM_WORLD);
  if (st == CKPT_OK && !ckpt_is_finalized(NULL, dir, CKPT_ATOMICITY_RENAME))
    fail("%s is not a finalized checkpoint after the save%s", dir, NULL);
  if (failures == 0)
    ok("save");
  return failures;
}

static int scenario_fault(const char *dir, int bad_rank) {
  ckpt_checkpointer *c = new_checkpointer(false, true);
  if (rank_ == bad_rank)
    atomic_store(&fault_mode, 1);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = c ? save_at(c, dir, &err) : CKPT_EINVAL;
  atomic_store(&fault_mode, 0);
  char want[64];
  snprintf(want, sizeof want, "process %d of %d", bad_rank, size_);
  if (st == CKPT_OK)
    fail("the save of %s succeeded despite the fault on rank %s", dir, want);
  else if (strstr(err.message, want) == NULL || strstr(err.message, fault_where()) == NULL)
    fail("the error does not name the failing process and file: %s%s", err.message, NULL);
  ckpt_checkpointer_close(c, &err);
  check_nothing_left(dir, "something is left of the failed save: %s or %s");
  if (failures == 0) {
    printf("rank %d/%d: error: %s\n", rank_, size_, err.message);
    ok("fault");
  }
  return failures;
}

static int scenario_kill(const char *root, int victim) {
  char one[4096], two[4096];
  snprintf(one, sizeof one, "%s/1", root);
  snprintf(two, sizeof two, "%s/2", root);
  ckpt_checkpointer *c = new_checkpointer(false, true);
  ckpt_error err = CKPT_ERROR_INIT;
  if (save_at(c, one, &err) != CKPT_OK) {
    fail("save of %s: %s", one, err.message);
    return failures;
  }
  ok("step 1 saved");
  if (rank_ == victim)
    atomic_store(&fault_mode, 2); /* killed at its first chunk of w */
  ckpt_status st = save_at(c, two, &err);
  /* Not reached by the victim; the others are ended by mpirun when it dies. */
  fail("the save of step 2 returned (%s)%s", ckpt_status_name(st), NULL);
  return failures;
}

/* Async saves while every rank runs its own MPI_Allreduce loop on MPI_COMM_WORLD. */
static int scenario_async(const char *root) {
  ckpt_checkpointer *c = new_checkpointer(true, true);
  ckpt_error err = CKPT_ERROR_INIT;
  for (int step = 0; step < 3 && failures == 0; step++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%d", root, step);
    if (step == 2 && rank_ == size_ - 1)
      atomic_store(&fault_mode, 1); /* the last save fails on the last rank */
    ckpt_status st = save_at(c, path, &err);
    if (st != CKPT_OK) {
      fail("async save of %s returned %s", path, err.message);
      break;
    }
    /* The application's own collectives while ckpt's run on the background thread. */
    long sum = 0;
    for (int i = 0; i < 200; i++) {
      long x = rank_ + i, y = 0;
      MPI_Allreduce(&x, &y, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
      sum += y;
    }
    long want = 0;
    for (int i = 0; i < 200; i++)
      want += (long)size_ * i + (long)size_ * (size_ - 1) / 2;
    if (sum != want)
      fail("the application's all-reduce went wrong%s%s", NULL, NULL);
    st = ckpt_checkpointer_wait_until_finished(c, &err);
    atomic_store(&fault_mode, 0);
    /* The same outcome on every rank. */
    int code = (int)st, lo = 0, hi = 0;
    MPI_Allreduce(&code, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&code, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi)
      fail("the ranks disagree on the outcome of %s%s", path, NULL);
    if (step < 2 && st != CKPT_OK)
      fail("async save of %s: %s", path, err.message);
    if (step == 2 && (st == CKPT_OK || strstr(err.message, "process") == NULL))
      fail("the failing async save of %s reported: %s", path, st == CKPT_OK ? "ok" : err.message);
  }
  ckpt_checkpointer_close(c, &err);
  MPI_Barrier(MPI_COMM_WORLD);
  char path[4096];
  snprintf(path, sizeof path, "%s/1", root);
  if (failures == 0 && restore_and_check(path) == 0)
    ok("async");
  return failures;
}

/* The last rank saves a tree with one more array than the others: the layout exchange finds
 * it, and every rank's save fails with CKPT_EMISMATCH, committing nothing. */
static int scenario_differ(const char *dir) {
  ckpt_checkpointer *c = new_checkpointer(false, true);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = save_tree(rank_, 1, size_);
  if (t != NULL && rank_ == size_ - 1) {
    int64_t shape[1] = {3};
    ckpt_array *extra;
    ckpt_array_new(CKPT_DTYPE_INT32, 1, shape, &extra, &err);
    ckpt_tree_dict_set(t, "extra", ckpt_tree_new_array(extra), &err);
  }
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  s->item = t;
  ckpt_status st = c ? ckpt_checkpointer_save(c, dir, &s->base, false, NULL, &err) : CKPT_EINVAL;
  ckpt_args_delete(&s->base);
  if (st != CKPT_EMISMATCH || strstr(err.message, "process") == NULL)
    fail("a save of differing trees returned %s: %s", ckpt_status_name(st), err.message);
  ckpt_checkpointer_close(c, &err);
  check_nothing_left(dir, "the refused save left %s or %s");
  if (failures == 0)
    ok("differ");
  return failures;
}

/* The last rank names another path: every rank's save fails (CKPT_EINVAL) before anything is
 * created. */
static int scenario_mismatch(const char *dir) {
  char other[4096];
  snprintf(other, sizeof other, "%s-other", dir);
  ckpt_checkpointer *c = new_checkpointer(false, true);
  ckpt_error err = CKPT_ERROR_INIT;
  const char *mine = rank_ == size_ - 1 ? other : dir;
  ckpt_status st = c ? save_at(c, mine, &err) : CKPT_EINVAL;
  if (st != CKPT_EINVAL || strstr(err.message, "another path") == NULL)
    fail("a save to different paths returned %s: %s", ckpt_status_name(st), err.message);
  ckpt_checkpointer_close(c, &err);
  check_nothing_left(dir, "the refused save created %s or %s");
  if (exists(other))
    fail("the refused save created %s%s", other, NULL);
  /* The last rank's checkpointer stores the arrays in OCDBT, the others' in zarr directories
   * (the OCDBT merge's extra collective would leave them waiting): refused everywhere. */
  int format = format_;
  if (rank_ == size_ - 1)
    format_ = format_ != 0 ? 0 : 1;
  c = new_checkpointer(false, true);
  format_ = format;
  err = (ckpt_error)CKPT_ERROR_INIT;
  st = c ? save_at(c, dir, &err) : CKPT_EINVAL;
  if (st != CKPT_EINVAL || strstr(err.message, "another array layout") == NULL)
    fail("a save in different array layouts returned %s: %s", ckpt_status_name(st), err.message);
  ckpt_checkpointer_close(c, &err);
  check_nothing_left(dir, "the refused save created %s or %s");
  if (failures == 0)
    ok("mismatch");
  return failures;
}

/* Composite items "a" and "b" (both sharded trees); item "a" fails on the last rank only (a
 * shard without data), after its layout exchange: that rank must still join item "b"'s, and
 * every rank's save fails with its error. */
static int scenario_item_fail(const char *dir) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = composite_checkpointer();
  if (c == NULL)
    return 1;
  ckpt_tree *a = save_tree(rank_, 1, size_);
  ckpt_array *w = (ckpt_array *)ckpt_tree_array(ckpt_tree_dict_get(a, "w"));
  void *kept = NULL;
  if (rank_ == size_ - 1) { /* hidden for the save, given back to be freed */
    kept = w->shards[0].data;
    w->shards[0].data = NULL;
  }
  ckpt_Composite *comp = ckpt_composite_new();
  ckpt_StandardSave *sa = ckpt_StandardSave_new();
  sa->item = a;
  ckpt_StandardSave *sb = ckpt_StandardSave_new();
  sb->item = save_tree(rank_, 1, size_);
  ckpt_composite_add(comp, "a", &sa->base, &err);
  ckpt_composite_add(comp, "b", &sb->base, &err);
  ckpt_status st = ckpt_checkpointer_save(c, dir, &comp->base, false, NULL, &err);
  if (kept != NULL)
    w->shards[0].data = kept;
  ckpt_args_delete(&comp->base);
  char want[64];
  snprintf(want, sizeof want, "process %d of %d", size_ - 1, size_);
  if (st != CKPT_EINVAL || strstr(err.message, want) == NULL ||
      strstr(err.message, "no data") == NULL)
    fail("the failing item returned %s: %s", ckpt_status_name(st), err.message);
  ckpt_checkpointer_close(c, &err);
  check_nothing_left(dir, "the failed save left %s or %s");
  if (failures == 0)
    ok("item-fail");
  return failures;
}

/* A Composite checkpointer: item "state" (the tree) and item "meta" (JSON, written by the
 * primary alone); restored as saved on every rank. */
static int scenario_composite(const char *dir) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = composite_checkpointer();
  if (c == NULL)
    return 1;
  ckpt_Composite *comp = ckpt_composite_new();
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  s->item = save_tree(rank_, 1, size_);
  ckpt_JsonSave *j = ckpt_JsonSave_new();
  j->item = cJSON_CreateObject();
  cJSON_AddStringToObject(j->item, "run", "mpi");
  cJSON_AddNumberToObject(j->item, "ranks", size_);
  ckpt_composite_add(comp, "state", &s->base, &err);
  ckpt_composite_add(comp, "meta", &j->base, &err);
  if (err.code == CKPT_OK)
    ckpt_checkpointer_save(c, dir, &comp->base, false, NULL, &err);
  ckpt_args_delete(&comp->base);
  if (err.code != CKPT_OK) {
    fail("composite save: %s%s", err.message, NULL);
    ckpt_checkpointer_close(c, &err);
    return 1;
  }
  ckpt_value v;
  if (ckpt_checkpointer_restore(c, dir, NULL, &v, &err) != CKPT_OK) {
    fail("composite restore: %s%s", err.message, NULL);
  } else {
    ckpt_value *state = ckpt_value_item_get(&v, "state");
    ckpt_value *meta = ckpt_value_item_get(&v, "meta");
    if (state == NULL || state->kind != CKPT_VALUE_TREE || meta == NULL ||
        meta->kind != CKPT_VALUE_JSON)
      fail("composite restore: an item is missing%s%s", NULL, NULL);
    else if (check_restored(state->u.tree, dir) == 0) {
      const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(meta->u.json, "ranks");
      if (!cJSON_IsNumber(ranks) || ranks->valuedouble != size_)
        fail("the JSON item came back wrong%s%s", NULL, NULL);
    }
    ckpt_value_free(&v);
  }
  ckpt_checkpointer_close(c, &err);
  if (failures == 0)
    ok("composite");
  return failures;
}

/* Every rank's step list equals rank 0's. */
static void same_steps(ckpt_manager *m, const char *what) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t *steps = NULL;
  size_t n = 0;
  if (ckpt_manager_all_steps(m, &steps, &n, &err) != CKPT_OK) {
    fail("%s: all_steps: %s", what, err.message);
    return;
  }
  int64_t mine[8] = {(int64_t)n, 0, 0, 0, 0, 0, 0, 0}, root[8];
  for (size_t i = 0; i < n && i < 7; i++)
    mine[i + 1] = steps[i];
  memcpy(root, mine, sizeof root);
  MPI_Bcast(root, 8, MPI_INT64_T, 0, MPI_COMM_WORLD);
  if (memcmp(root, mine, sizeof root) != 0)
    fail("%s: this rank's step list differs from rank 0's%s", what, NULL);
  free(steps);
}

static ckpt_manager *new_manager(const char *dir, int64_t keep, const char *best) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = keep;
  o.best_metric = best;
  o.best_mode = CKPT_BEST_MODE_MIN;
  o.io = io;
  o.process_group = pg;
  const char *primary = getenv("MPI_SCENARIO_PRIMARY");
  o.primary = primary != NULL ? atoi(primary) : 0;
  ckpt_manager *m = NULL;
  if (ckpt_manager_new(dir, &o, &m, &err) != CKPT_OK)
    fail("manager of %s: %s", dir, err.message);
  return m;
}

static ckpt_status manager_save(ckpt_manager *m, int64_t step, bool force, const cJSON *metrics,
                                ckpt_error *err) {
  ckpt_tree *t = save_tree(rank_, 1, size_);
  if (t == NULL)
    return CKPT_EINVAL;
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  s->item = t;
  bool saved = false;
  ckpt_status st = ckpt_manager_save(m, step, &s->base, metrics, force, &saved, err);
  ckpt_args_delete(&s->base);
  return st;
}

static int scenario_manager(const char *root) {
  char dir[4096];
  ckpt_error err = CKPT_ERROR_INIT;
  /* max_to_keep 2 over steps 0..4: the primary deletes 0, 1, 2. */
  snprintf(dir, sizeof dir, "%s/latest", root);
  ckpt_manager *m = new_manager(dir, 2, NULL);
  for (int64_t step = 0; m != NULL && step < 5 && failures == 0; step++)
    if (manager_save(m, step, false, NULL, &err) != CKPT_OK)
      fail("manager save: %s%s", err.message, NULL);
  if (m != NULL && ckpt_manager_wait_until_finished(m, &err) != CKPT_OK)
    fail("manager wait: %s%s", err.message, NULL);
  int64_t latest = -1;
  if (m != NULL && (!ckpt_manager_latest_step(m, &latest) || latest != 4))
    fail("latest step is not 4%s%s", NULL, NULL);
  if (m != NULL)
    same_steps(m, "max_to_keep");
  MPI_Barrier(MPI_COMM_WORLD);
  for (int step = 0; step < 5; step++) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%d", dir, step);
    if (exists(p) != (step >= 3))
      fail("step directory %s %s", p, step >= 3 ? "is missing" : "was not deleted");
  }
  ckpt_manager_close(m, &err);

  /* Best metric (min loss), max_to_keep 2: losses 3, 1, 4, 0, 5 keep steps 1 and 3. */
  snprintf(dir, sizeof dir, "%s/best", root);
  m = new_manager(dir, 2, "loss");
  const double loss[5] = {3, 1, 4, 0, 5};
  for (int64_t step = 0; m != NULL && step < 5 && failures == 0; step++) {
    cJSON *metrics = cJSON_CreateObject();
    cJSON_AddNumberToObject(metrics, "loss", loss[step]);
    if (manager_save(m, step, false, metrics, &err) != CKPT_OK)
      fail("manager save (best): %s%s", err.message, NULL);
    cJSON_Delete(metrics);
  }
  if (m != NULL && ckpt_manager_wait_until_finished(m, &err) != CKPT_OK)
    fail("manager wait (best): %s%s", err.message, NULL);
  int64_t best = -1;
  if (m != NULL && (!ckpt_manager_best_step(m, &best) || best != 3))
    fail("best step is not 3%s%s", NULL, NULL);
  if (m != NULL)
    same_steps(m, "best metric");
  ckpt_manager_close(m, &err);

  /* Preemption: SIGTERM reaches the last rank only, at step 6; every rank sees it there,
   * saves step 6 and stops. */
  snprintf(dir, sizeof dir, "%s/preempt", root);
  m = new_manager(dir, 0, NULL);
  if (ckpt_preemption_watch(SIGTERM, &err) != CKPT_OK)
    fail("watch: %s%s", err.message, NULL);
  int64_t stopped = -1;
  for (int64_t step = 0; m != NULL && step < 10 && failures == 0; step++) {
    if (step == 6 && rank_ == size_ - 1)
      raise(SIGTERM);
    bool reached = false;
    if (ckpt_manager_reached_preemption(m, step, &reached, &err) != CKPT_OK) {
      fail("reached_preemption: %s%s", err.message, NULL);
      break;
    }
    if (reached) {
      if (manager_save(m, step, true, NULL, &err) != CKPT_OK ||
          ckpt_manager_wait_until_finished(m, &err) != CKPT_OK)
        fail("preemption save: %s%s", err.message, NULL);
      stopped = step;
      break;
    }
    if (step % 4 == 0 && manager_save(m, step, false, NULL, &err) != CKPT_OK)
      fail("manager save (preempt): %s%s", err.message, NULL);
  }
  if (stopped != 6)
    fail("the ranks did not stop together at step 6%s%s", NULL, NULL);
  if (m != NULL && (!ckpt_manager_latest_step(m, &latest) || latest != 6))
    fail("the preemption step 6 is not the latest%s%s", NULL, NULL);
  if (m != NULL)
    same_steps(m, "preemption");
  ckpt_manager_close(m, &err);
  MPI_Barrier(MPI_COMM_WORLD);
  snprintf(dir, sizeof dir, "%s/preempt/6/default", root);
  if (failures == 0 && restore_and_check(dir) == 0)
    ok("manager");
  return failures;
}

/* One process: every rank's shards of an N-rank save, saved alone (the reference layout). */
static int scenario_ref(const char *dir, int parts) {
  ckpt_tree *t = save_tree(0, parts, parts);
  if (t == NULL)
    return 1;
  ckpt_checkpointer *c = new_checkpointer(false, false);
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  s->item = t;
  ckpt_error err = CKPT_ERROR_INIT;
  if (ckpt_checkpointer_save(c, dir, &s->base, false, NULL, &err) != CKPT_OK)
    fail("reference save of %s: %s", dir, err.message);
  ckpt_args_delete(&s->base);
  ckpt_checkpointer_close(c, &err);
  if (failures == 0)
    ok("reference");
  return failures;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: see the top of tests/mpi/ranks/mpi_scenario.c\n");
    return 2;
  }
  const char *mode = argv[1];
  const char *format = getenv("MPI_SCENARIO_FORMAT");
  format_ = format == NULL                    ? 0
            : strcmp(format, "ocdbt") == 0     ? 1
            : strcmp(format, "zarr3") == 0     ? 2
            : strcmp(format, "zarr3-dir") == 0 ? 3
                                               : 0;
  bool alone = strcmp(mode, "compare") == 0 || strcmp(mode, "ref") == 0 ||
               strcmp(mode, "restore-alone") == 0 || strcmp(mode, "compare-ocdbt") == 0;
  ckpt_error err = CKPT_ERROR_INIT;
  if (ckpt_io_new(&io, &err) != CKPT_OK)
    return 1;
  ckpt_io_set_fault(io, fault_hook, NULL);
  if (alone) {
    int rc = strcmp(mode, "ref") == 0 ? scenario_ref(argv[2], argc > 3 ? atoi(argv[3]) : 1)
                                      : 0;
    if (strcmp(mode, "restore-alone") == 0 && restore_and_check(argv[2]) == 0)
      ok("restore alone");
    if (strcmp(mode, "compare-ocdbt") == 0 && argc > 5 &&
        compare_ocdbt(argv[2], argv[3], atoi(argv[4]), atoi(argv[5])) == 0)
      ok("OCDBT keys and values identical");
    if (strcmp(mode, "compare-ocdbt") == 0 && argc <= 5)
      fail("compare-ocdbt needs MULTI REF MIN_PROCESSES PROCESSES%s%s", NULL, NULL);
    if (strcmp(mode, "restore-alone") == 0 || strcmp(mode, "compare-ocdbt") == 0)
      rc = failures;
    if (strcmp(mode, "compare") == 0) {
      int n = 0;
      rc = argc > 3 ? compare_tree(argv[2], argv[3], &n) : 1;
      if (rc == 0 && n < 6)
        fail("only %s files compared%s", n < 6 ? "few" : "", NULL);
      if (failures == 0)
        ok("layouts identical");
      rc = failures;
    }
    ckpt_io_free(io);
    return rc ? 1 : 0;
  }
  int provided = 0;
  bool low = strcmp(mode, "thread-level") == 0;
  MPI_Init_thread(&argc, &argv, low ? MPI_THREAD_SERIALIZED : MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  if (low) {
    ckpt_status st = ckpt_process_group_mpi(MPI_COMM_WORLD, &pg, &err);
    if (st != CKPT_EUNSUPPORTED || strstr(err.message, "MPI_THREAD_MULTIPLE") == NULL ||
        pg != NULL)
      fail("a group at MPI_THREAD_SERIALIZED: %s (%s)", ckpt_status_name(st), err.message);
    else
      ok(err.message);
  } else if (ckpt_process_group_mpi(MPI_COMM_WORLD, &pg, &err) != CKPT_OK) {
    fail("process group: %s%s", err.message, NULL);
  } else if (strcmp(mode, "save") == 0) {
    scenario_save(argv[2], argc > 3 && strcmp(argv[3], "async") == 0);
  } else if (strcmp(mode, "restore") == 0) {
    if (restore_and_check(argv[2]) == 0)
      ok("restore");
  } else if (strcmp(mode, "fault") == 0) {
    scenario_fault(argv[2], argc > 3 ? atoi(argv[3]) : 1);
  } else if (strcmp(mode, "kill") == 0) {
    scenario_kill(argv[2], argc > 3 ? atoi(argv[3]) : 1);
  } else if (strcmp(mode, "async") == 0) {
    scenario_async(argv[2]);
  } else if (strcmp(mode, "differ") == 0) {
    scenario_differ(argv[2]);
  } else if (strcmp(mode, "mismatch") == 0) {
    scenario_mismatch(argv[2]);
  } else if (strcmp(mode, "item-fail") == 0) {
    scenario_item_fail(argv[2]);
  } else if (strcmp(mode, "composite") == 0) {
    scenario_composite(argv[2]);
  } else if (strcmp(mode, "manager") == 0) {
    scenario_manager(argv[2]);
  } else {
    fail("unknown scenario %s%s", mode, NULL);
  }
  int worst = all_ok(failures > 0);
  ckpt_process_group_free(pg);
  ckpt_io_free(io);
  io = NULL;
#ifdef CKPT_TEST_ASAN
  __lsan_do_leak_check();
#endif
  MPI_Finalize();
  ckpt_io_free(io);
  return failures > 0 || worst ? 1 : 0;
}
