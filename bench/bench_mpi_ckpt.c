/* bench/bench_mpi_ckpt.c — ckpt's side of the MPI section of `make bench`: the benchmark state
 * split across the ranks of an MPI job (bench_split.h: rank r holds block r of every array's
 * rows) and saved as one checkpoint through a checkpointer whose process_group is the job
 * (docs/multiprocess.md). Run under `mpirun -np N` by bench/run.py; records are labelled
 * "mpi_ckpt_<N>" and printed by rank 0 only.
 *
 * Ops (in the order given on the command line):
 *   save     durable save of every rank's rows (a synchronous checkpointer: handlers, every
 *            rank's chunk writes and fsyncs, the merge, the primary's commit), timed on rank 0
 *            from a barrier right before the call to a barrier right after it returned on
 *            every rank: the job's wall time
 *   restore  every rank restores its own rows (the split it saved, so every chunk it reads is
 *            one it wrote: "aligned") into already-faulted buffers, hot; verified
 *   reshard  the N-rank checkpoint restored into the split of N-1 ranks (4 → 3: block r of 3
 *            cuts across the 4-rank chunks, so ranks read parts of two ranks' chunks): ranks
 *            0..N-2 restore, the last waits; "restore_reshard", verified. Give it after restore
 *   async    the rank's bytes copied into a faulted flat buffer ("memcpy" of the rank), then an
 *            async save with snapshot_bytes_hint = the rank's bytes (pool ready first), all
 *            ranks at once; each rank's blocking time and memcpy are gathered on rank 0, which
 *            reports the rank with the highest blocking/memcpy ratio as "async_blocking" and
 *            "memcpy" (so the paired figure is the worst rank's), and the slowest rank's time
 *            until wait_until_finished returned as "async_total"
 * Every timed section starts right after bench_prewarm of the rank's share.
 *
 * Usage: mpirun -np N bench_mpi_ckpt MANIFEST DIR OP...   (DIR on a file system every rank
 * sees; checkpoints are left for the caller). Output: JSON lines (bench_common.h). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_split.h"
#include "ckpt/ckpt.h"
#include "ckpt/mpi.h"

typedef struct mrun {
  bench_state st;
  const char *dir;
  int rank, size;
  char label[32];       /* "mpi_ckpt_<N>" */
  bench_slice *mine;    /* this rank's rows of every array */
  size_t mine_bytes;
  size_t warm;          /* bytes each rank pre-warms */
  ckpt_process_group *pg;
  char *saved;          /* the checkpoint "save" wrote, or NULL */
} mrun;

static char *path_join(const char *a, const char *b) {
  size_t len = strlen(a) + strlen(b) + 2;
  char *p = malloc(len);
  if (p == NULL)
    bench_die(false, "out of memory");
  snprintf(p, len, "%s/%s", a, b);
  return p;
}

/* True on every rank when ok is true on every rank (every op ends with it, so one rank's
 * failure never leaves the others waiting in the next op's barrier). */
static bool all_ok(bool ok) {
  int mine = ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

static void note_error(const mrun *m, const char *op, const ckpt_error *err) {
  char text[CKPT_ERROR_MESSAGE_MAX + 64];
  snprintf(text, sizeof text, "%s failed on rank %d: %s: %s", op, m->rank,
           ckpt_status_name(err->code), err->message);
  if (m->rank == 0)
    bench_emit_note(m->label, m->st.name, op, text);
  fprintf(stderr, "bench mpi_ckpt %s: %s\n", m->st.name, text);
}

static void emit_time(const mrun *m, const char *op, double seconds, size_t bytes) {
  if (m->rank == 0)
    bench_emit_time(m->label, m->st.name, op, seconds, bytes);
}

/* Pre-warms, then starts the clock when every rank is there. */
static double start_timed(const mrun *m) {
  bench_prewarm(m->warm);
  MPI_Barrier(MPI_COMM_WORLD);
  return bench_now();
}

static double end_timed(double t0) {
  MPI_Barrier(MPI_COMM_WORLD);
  return bench_now() - t0;
}

/* Puts leaf at the dotted path name below root, creating the dicts on the way. */
static ckpt_status tree_put(ckpt_tree *root, const char *name, ckpt_tree *leaf, ckpt_error *err) {
  char *copy = strdup(name);
  if (copy == NULL) {
    ckpt_tree_free(leaf);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_tree *node = root;
  char *part = copy;
  for (char *dot; (dot = strchr(part, '.')) != NULL; part = dot + 1) {
    *dot = '\0';
    ckpt_tree *child = ckpt_tree_dict_get(node, part);
    if (child == NULL) {
      child = ckpt_tree_new_dict();
      if (child == NULL || ckpt_tree_dict_set(node, part, child, err) != CKPT_OK) {
        free(copy);
        ckpt_tree_free(leaf);
        return child == NULL ? ckpt_error_set(err, CKPT_ENOMEM, "out of memory") : err->code;
      }
    }
    node = child;
  }
  ckpt_status s = ckpt_tree_dict_set(node, part, leaf, err);
  free(copy);
  return s;
}

/* A tree of the state's arrays, each with one shard: slice k's rows over bufs[k] (borrowed). */
static ckpt_tree *sharded_tree(const bench_state *st, const bench_slice *s, float **bufs,
                               ckpt_error *err) {
  ckpt_tree *root = ckpt_tree_new_dict();
  if (root == NULL) {
    ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    return NULL;
  }
  for (size_t k = 0; k < st->n_arrays; k++) {
    const bench_array *a = &st->arrays[k];
    int64_t off[BENCH_MAX_RANK] = {0}, shape[BENCH_MAX_RANK];
    memcpy(shape, a->shape, sizeof shape);
    off[0] = s[k].lo;
    shape[0] = s[k].rows;
    ckpt_array *arr = NULL;
    ckpt_status st_ = ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, a->ndim, a->shape, &arr, err);
    if (st_ == CKPT_OK && ckpt_array_add_shard(arr, off, shape, bufs[k], 0, err) != CKPT_OK) {
      ckpt_array_free(arr);
      st_ = err->code;
    }
    if (st_ == CKPT_OK) /* the tree owns the array from here (tree_put frees it on failure) */
      st_ = tree_put(root, a->name, ckpt_tree_new_array(arr), err);
    if (st_ != CKPT_OK) {
      ckpt_tree_free(root);
      return NULL;
    }
  }
  return root;
}

static ckpt_status checkpointer(const mrun *m, bool async, ckpt_checkpointer **c, ckpt_error *err) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.process_group = m->pg;
  o.async = async;
  if (async)
    o.snapshot_bytes_hint = m->mine_bytes;
  return ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, c, err);
}

/* Saves every rank's rows to path; *blocking gets this rank's time in the save call. */
static ckpt_status save_to(const mrun *m, ckpt_checkpointer *c, const char *path,
                           double *blocking, ckpt_error *err) {
  float **bufs = malloc(m->st.n_arrays * sizeof *bufs);
  if (bufs == NULL)
    bench_die(false, "out of memory");
  for (size_t k = 0; k < m->st.n_arrays; k++)
    bufs[k] = m->mine[k].data;
  ckpt_StandardSave args;
  ckpt_status s = ckpt_StandardSave_init(&args);
  if (s != CKPT_OK) {
    free(bufs);
    return ckpt_error_set(err, s, "StandardSave init");
  }
  args.item = sharded_tree(&m->st, m->mine, bufs, err);
  free(bufs);
  if (args.item == NULL) {
    ckpt_StandardSave_free(&args);
    return err->code;
  }
  double t0 = bench_now();
  s = ckpt_checkpointer_save(c, path, &args.base, false, NULL, err);
  *blocking = bench_now() - t0;
  ckpt_StandardSave_free(&args);
  return s;
}

static bool op_save(mrun *m) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = NULL;
  char *path = path_join(m->dir, "ckpt_mpi");
  ckpt_status s = checkpointer(m, false, &c, &err);
  /* Every rank reaches the save's collectives, or none does. */
  if (!all_ok(s == CKPT_OK)) {
    if (s != CKPT_OK)
      note_error(m, "save", &err);
    free(path);
    return false;
  }
  double blocking = 0, t0 = start_timed(m);
  s = save_to(m, c, path, &blocking, &err);
  double seconds = end_timed(t0);
  ckpt_error close_err = CKPT_ERROR_INIT;
  if (ckpt_checkpointer_close(c, &close_err) != CKPT_OK && s == CKPT_OK) {
    err = close_err;
    s = err.code;
  }
  if (!all_ok(s == CKPT_OK)) {
    if (s != CKPT_OK)
      note_error(m, "save", &err);
    free(path);
    return false;
  }
  emit_time(m, "save", seconds, m->st.total_bytes);
  m->saved = path;
  return true;
}

/* Restores m->saved into block r of `parts` of every array (ranks r >= parts only wait), and
 * verifies. */
static bool restore_split(mrun *m, const char *op, int parts) {
  bool mine = m->rank < parts, ok = true;
  ckpt_error err = CKPT_ERROR_INIT;
  size_t bytes = 0;
  bench_slice *s = bench_slices_new(&m->st, parts, mine ? m->rank : 0, &bytes);
  float **bufs = calloc(m->st.n_arrays, sizeof *bufs);
  if (bufs == NULL)
    bench_die(false, "out of memory");
  ckpt_checkpointer *c = NULL;
  ckpt_StandardRestore args;
  bool ready = false;
  if (mine) {
    for (size_t k = 0; k < m->st.n_arrays; k++)
      bufs[k] = bench_alloc_faulted(s[k].nbytes ? s[k].nbytes : 4);
    /* Restore holds no collective (docs/multiprocess.md): a checkpointer without the group. */
    ready = ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, NULL, &c, &err) == CKPT_OK &&
            ckpt_StandardRestore_init(&args) == CKPT_OK;
    if (ready && (args.item = sharded_tree(&m->st, s, bufs, &err)) == NULL) {
      ckpt_StandardRestore_free(&args);
      ready = false;
    }
    ok = ready;
  }
  ckpt_value v = {0};
  double t0 = start_timed(m);
  if (ready)
    ok = ckpt_checkpointer_restore(c, m->saved, &args.base, &v, &err) == CKPT_OK;
  double seconds = end_timed(t0);
  if (!ok && err.code != CKPT_OK)
    note_error(m, op, &err);
  if (ready && ok) {
    for (size_t k = 0; k < m->st.n_arrays; k++) {
      const bench_array *a = &m->st.arrays[k];
      ckpt_array *arr = ckpt_tree_array(ckpt_tree_get(v.u.tree, a->name));
      if (arr == NULL || arr->n_shards != 1 || arr->shards[0].offset[0] != s[k].lo ||
          arr->shards[0].shape[0] != s[k].rows)
        bench_die(false, "%s rank %d: %s restored without the rows asked for", op, m->rank,
                  a->name);
      bench_slice_verify(a, &s[k], arr->shards[0].data, op);
    }
  }
  if (ready) {
    ckpt_value_free(&v);
    ckpt_StandardRestore_free(&args);
  }
  if (c != NULL)
    ckpt_checkpointer_close(c, NULL);
  for (size_t k = 0; k < m->st.n_arrays; k++)
    free(bufs[k]);
  free(bufs);
  bench_slices_free(&m->st, s);
  if (!all_ok(ok))
    return false;
  emit_time(m, op, seconds, m->st.total_bytes);
  return true;
}

static bool op_async(mrun *m) {
  /* The memcpy floor of this rank: its rows into one flat buffer, faulted by a first copy. */
  char *flat = bench_alloc_faulted(m->mine_bytes);
  double copy = 0;
  for (int pass = 0; pass < 2; pass++) {
    double t0 = start_timed(m);
    size_t off = 0;
    for (size_t k = 0; k < m->st.n_arrays; k++) {
      memcpy(flat + off, m->mine[k].data, m->mine[k].nbytes);
      off += m->mine[k].nbytes;
    }
    copy = bench_now() - t0;
  }
  free(flat);
  /* The synchronous save's checkpoint is retired first (bench_ckpt.c's drop_checkpoints says
   * why: the async save's page cache from warm memory). */
  MPI_Barrier(MPI_COMM_WORLD);
  if (m->rank == 0 && m->saved != NULL)
    bench_retire_tree(m->saved);
  sync();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = NULL;
  ckpt_status s = checkpointer(m, true, &c, &err);
  if (!all_ok(s == CKPT_OK)) {
    if (s != CKPT_OK)
      note_error(m, "async", &err);
    return false;
  }
  double t0 = bench_now();
  struct timespec pause = {0, 5 * 1000 * 1000};
  while (!ckpt_checkpointer_snapshot_pool_ready(c) && bench_now() - t0 < 60)
    nanosleep(&pause, NULL);
  char *path = path_join(m->dir, "ckpt_mpi_async");
  double blocking = 0;
  t0 = start_timed(m);
  s = save_to(m, c, path, &blocking, &err);
  if (s == CKPT_OK)
    s = ckpt_checkpointer_wait_until_finished(c, &err);
  double total = end_timed(t0);
  ckpt_error close_err = CKPT_ERROR_INIT;
  if (ckpt_checkpointer_close(c, &close_err) != CKPT_OK && s == CKPT_OK) {
    err = close_err;
    s = err.code;
  }
  free(path);
  bool ok = all_ok(s == CKPT_OK);
  if (s != CKPT_OK)
    note_error(m, "async", &err);
  double mine[2] = {blocking, copy};
  double *all = m->rank == 0 ? malloc((size_t)m->size * sizeof mine) : NULL;
  if (m->rank == 0 && all == NULL)
    bench_die(false, "out of memory");
  MPI_Gather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (ok && m->rank == 0) {
    int worst = 0;
    for (int r = 1; r < m->size; r++)
      if (all[2 * r] * all[2 * worst + 1] > all[2 * worst] * all[2 * r + 1])
        worst = r;
    size_t share = m->st.total_bytes / (size_t)m->size;
    bench_emit_time(m->label, m->st.name, "async_blocking", all[2 * worst], share);
    bench_emit_time(m->label, m->st.name, "memcpy", all[2 * worst + 1], share);
    bench_emit_time(m->label, m->st.name, "async_total", total, m->st.total_bytes);
    bench_emit_value(m->label, m->st.name, "async_worst_rank", worst);
  }
  free(all);
  return ok;
}

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  mrun m = {.dir = argc > 2 ? argv[2] : NULL};
  MPI_Comm_rank(MPI_COMM_WORLD, &m.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &m.size);
  if (argc < 4) {
    if (m.rank == 0)
      fprintf(stderr, "usage: mpirun -np N %s MANIFEST DIR OP...  (ops: save restore reshard async)\n",
              argv[0]);
    MPI_Finalize();
    return 2;
  }
  snprintf(m.label, sizeof m.label, "mpi_ckpt_%d", m.size);
  bench_state_load(argv[1], &m.st);
  m.mine = bench_slices_new(&m.st, m.size, m.rank, &m.mine_bytes);
  bench_slices_generate(&m.st, m.mine);
  m.warm = bench_prewarm_bytes(m.mine_bytes);
  ckpt_error err = CKPT_ERROR_INIT;
  if (!all_ok(ckpt_process_group_mpi(MPI_COMM_WORLD, &m.pg, &err) == CKPT_OK))
    bench_die(false, "rank %d: no process group: %s", m.rank, err.message);
  int status = 0;
  for (int i = 3; i < argc; i++) {
    const char *op = argv[i];
    bool ok = true;
    if (strcmp(op, "save") == 0) {
      ok = op_save(&m);
    } else if (strcmp(op, "restore") == 0 || strcmp(op, "reshard") == 0) {
      bool reshard = strcmp(op, "reshard") == 0;
      if (m.saved == NULL) {
        if (m.rank == 0)
          bench_emit_note(m.label, m.st.name, op, "needs a successful save first");
      } else if (reshard && m.size < 2) {
        if (m.rank == 0)
          bench_emit_note(m.label, m.st.name, op, "needs at least 2 ranks");
      } else {
        ok = restore_split(&m, reshard ? "restore_reshard" : "restore", reshard ? m.size - 1 : m.size);
      }
    } else if (strcmp(op, "async") == 0) {
      ok = op_async(&m);
    } else {
      if (m.rank == 0)
        fprintf(stderr, "bench mpi_ckpt: unknown op %s\n", op);
      status = 2;
    }
    if (!ok)
      status = 1;
  }
  ckpt_process_group_free(m.pg);
  free(m.saved);
  bench_slices_free(&m.st, m.mine);
  bench_state_free(&m.st);
  MPI_Finalize();
  return status;
}
