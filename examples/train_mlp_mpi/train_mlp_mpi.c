/* train_mlp_mpi — train_mlp on several MPI ranks, checkpointed by every rank together.
 *
 *   mpirun -np 4 train_mlp_mpi --dir DIR [--steps N] [--save-every N] [--keep K]
 *                              [--kill-rank R --kill-at S] [--log FILE] [--dump FILE]
 *
 * Every tensor of the model and of Adam's two moments is split by rows between the ranks
 * (model.h): rank r holds one block of rows of each, as one shard of a sharded ckpt_array. The
 * training state is a generated record (train_state.ckpt), saved by a CheckpointManager on
 * every rank with the process group (docs/multiprocess.md): each rank writes its own rows'
 * chunks, the primary (rank 0) the scalars, the run name, the hyper-parameters and the random
 * generator, which every rank holds alike. Saves are asynchronous: training goes on while the
 * background thread writes and commits.
 *
 * At start the manager's latest step, if any, is restored with a target sharded for the
 * current number of ranks, whatever number saved it; training then continues to --steps. The
 * math does not depend on the number of ranks (model.h), so a run killed on 4 ranks and
 * resumed on 3 ends with the same bits as an uninterrupted run.
 *
 *   --kill-rank R --kill-at S  rank R sends itself SIGKILL right after step S (and its save,
 *                              if S is a save step, whose commit is then usually in flight);
 *                              mpirun then ends the whole job, as a scheduler would
 *   --log FILE                 the primary appends "step N loss X" (X in hex, exact) per step
 *   --dump FILE                the primary writes the final state (step, rng, every tensor
 *                              gathered whole, in float32) for comparing runs bit for bit
 * SIGTERM (ckpt_preemption_watch) makes every rank save the current step and stop. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include <ckpt/ckpt.h>
#include <ckpt/mpi.h>

#include "model.h"
#include "train_state.ckpt.h"

static int rank_, size_;

static int die(const char *what, const ckpt_error *err) {
  fprintf(stderr, "train_mlp_mpi rank %d/%d: %s%s%s\n", rank_, size_, what, err ? ": " : "",
          err ? err->message : "");
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

typedef struct options {
  const char *dir, *log, *dump;
  int64_t steps, save_every, keep, kill_at;
  int kill_rank;
} options;

static void parse(int argc, char **argv, options *o) {
  *o = (options){NULL, NULL, NULL, 200, 25, 3, -1, -1};
  for (int i = 1; i < argc; i += 2) { /* --option value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char what[160];
    snprintf(what, sizeof what, "%s %s", a, v == NULL ? "needs a value" : "is not an option");
    if (v == NULL)
      die(what, NULL);
    else if (strcmp(a, "--dir") == 0)
      o->dir = v;
    else if (strcmp(a, "--log") == 0)
      o->log = v;
    else if (strcmp(a, "--dump") == 0)
      o->dump = v;
    else if (strcmp(a, "--steps") == 0)
      o->steps = atoll(v);
    else if (strcmp(a, "--save-every") == 0)
      o->save_every = atoll(v);
    else if (strcmp(a, "--keep") == 0)
      o->keep = atoll(v);
    else if (strcmp(a, "--kill-at") == 0)
      o->kill_at = atoll(v);
    else if (strcmp(a, "--kill-rank") == 0)
      o->kill_rank = atoi(v);
    else
      die(what, NULL); /* the options are listed at the top of this file */
  }
  if (o->dir == NULL)
    die("--dir DIR is required", NULL);
}

/* The state's twelve arrays: parameters, first and second moments, tensor by tensor. */
static ckpt_array **param(mlpmpi_TrainState *s, int t) {
  ckpt_array **p[MODEL_TENSORS] = {&s->w1, &s->b1, &s->w2, &s->b2};
  return p[t];
}
static ckpt_array **moment1(mlpmpi_TrainState *s, int t) {
  ckpt_array **p[MODEL_TENSORS] = {&s->m_w1, &s->m_b1, &s->m_w2, &s->m_b2};
  return p[t];
}
static ckpt_array **moment2(mlpmpi_TrainState *s, int t) {
  ckpt_array **p[MODEL_TENSORS] = {&s->v_w1, &s->v_b1, &s->v_w2, &s->v_b2};
  return p[t];
}

/* A zeroed array of tensor t's global shape holding this rank's rows as its one shard. */
static ckpt_array *rows_array(const model_dims *d, int t) {
  ckpt_error err = CKPT_ERROR_INIT;
  int first, count;
  model_block(model_rows(d, t), size_, rank_, &first, &count);
  int ndim = t == 0 || t == 2 ? 2 : 1; /* the weights are matrices, the biases vectors */
  int64_t shape[2] = {model_rows(d, t), model_row_len(d, t)};
  int64_t off[2] = {first, 0}, box[2] = {count, model_row_len(d, t)};
  ckpt_array *a = NULL;
  if (ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, ndim, shape, &a, &err) != CKPT_OK ||
      ckpt_array_add_shard(a, off, box, NULL, 0, &err) != CKPT_OK)
    die("allocating a tensor", &err);
  return a;
}

/* Every array of s, freshly allocated with this rank's rows (the previous ones freed). */
static void alloc_rows(mlpmpi_TrainState *s, const model_dims *d) {
  for (int t = 0; t < MODEL_TENSORS; t++) {
    ckpt_array **all[3] = {param(s, t), moment1(s, t), moment2(s, t)};
    for (int k = 0; k < 3; k++) {
      ckpt_array_free(*all[k]);
      *all[k] = rows_array(d, t);
    }
  }
}

static model_dims dims_of(const mlpmpi_Hparams *h) {
  return (model_dims){h->input_dim, h->hidden, h->num_classes};
}

/* A fresh run: the weights drawn whole from the seeded generator on every rank (the same
 * draws everywhere, so the generator stays in step), each rank keeping its rows. */
static void init_state(mlpmpi_TrainState *s) {
  const model_dims d = dims_of(&s->hparams);
  alloc_rows(s, &d);
  s->rng = malloc(sizeof *s->rng);
  s->run_name = strdup("train_mlp_mpi");
  if (s->rng == NULL || s->run_name == NULL)
    die("out of memory", NULL);
  ckpt_numpy_rng_seed(s->rng, s->hparams.init_seed);
  for (int t = 0; t < MODEL_TENSORS; t += 2) { /* w1 and w2; the biases start at zero */
    ckpt_shard *sh = &(*param(s, t))->shards[0];
    int rows = model_rows(&d, t), len = model_row_len(&d, t);
    float scale = 1.0f / (float)rows;
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < len; c++) {
        float w = (float)ckpt_numpy_rng_next_gaussian(s->rng) * scale;
        if (r >= sh->offset[0] && r < sh->offset[0] + sh->shape[0])
          ((float *)sh->data)[(r - sh->offset[0]) * len + c] = w;
      }
  }
}

/* Restores the latest step into *s with this run's sharding; false when there is none. */
static bool restore_latest(ckpt_manager *m, mlpmpi_TrainState *s, ckpt_value *owner) {
  int64_t step;
  if (!ckpt_manager_latest_step(m, &step))
    return false;
  ckpt_error err = CKPT_ERROR_INIT;
  /* The target: our rows of every array (the hyper-parameters fix the shapes; the defaults
   * until read otherwise, which a restore with strict shapes would refuse). */
  mlpmpi_TrainState target;
  mlpmpi_TrainState_init(&target);
  const model_dims d = dims_of(&target.hparams);
  alloc_rows(&target, &d);
  mlpmpi_TrainStateRestore *args = mlpmpi_TrainStateRestore_new();
  if (args == NULL)
    die("out of memory", NULL);
  args->target = &target;
  ckpt_status st = ckpt_manager_restore(m, step, &args->base, owner, &err);
  ckpt_args_delete(&args->base);
  mlpmpi_TrainState_free(&target);
  if (st != CKPT_OK)
    die("restoring the latest step", &err);
  if (owner->kind != CKPT_VALUE_RECORD || owner->u.record.desc != &mlpmpi_TrainState_desc)
    die("the latest step does not hold a TrainState", NULL);
  *s = *(mlpmpi_TrainState *)owner->u.record.data; /* the arrays now belong to *s */
  memset(owner->u.record.data, 0, sizeof *s);
  if (s->step != step || s->rng == NULL)
    die("the restored step is inconsistent", NULL);
  return true;
}

/* Tensor t gathered whole on every rank from each rank's rows (an exact copy). */
static void gather(const model_dims *d, int t, const ckpt_array *a, float *whole) {
  int len = model_row_len(d, t), *counts = malloc((size_t)size_ * 2 * sizeof *counts);
  if (counts == NULL)
    die("out of memory", NULL);
  for (int r = 0; r < size_; r++) {
    int first, count;
    model_block(model_rows(d, t), size_, r, &first, &count);
    counts[r] = count * len;
    counts[size_ + r] = first * len;
  }
  MPI_Allgatherv(a->shards[0].data, counts[rank_], MPI_FLOAT, whole, counts, counts + size_,
                 MPI_FLOAT, MPI_COMM_WORLD);
  free(counts);
}

static void local_view(mlpmpi_TrainState *s, const model_dims *d, model_local *l) {
  for (int t = 0; t < MODEL_TENSORS; t++) {
    model_block(model_rows(d, t), size_, rank_, &l->first[t], &l->count[t]);
    l->p[t] = (*param(s, t))->shards[0].data;
    l->m[t] = (*moment1(s, t))->shards[0].data;
    l->v[t] = (*moment2(s, t))->shards[0].data;
  }
}

/* The primary writes the final state whole: step, generator, then the twelve tensors. */
static void dump(mlpmpi_TrainState *s, const model_dims *d, const char *path) {
  FILE *f = rank_ == 0 ? fopen(path, "wb") : NULL;
  if (rank_ == 0 && f == NULL)
    die("cannot create the dump file", NULL);
  if (f != NULL) {
    fwrite(&s->step, sizeof s->step, 1, f);
    fwrite(s->rng->key, sizeof s->rng->key, 1, f);
    fwrite(&s->rng->pos, sizeof s->rng->pos, 1, f);
  }
  for (int t = 0; t < MODEL_TENSORS; t++) {
    size_t n = (size_t)model_rows(d, t) * (size_t)model_row_len(d, t);
    float *whole = malloc(n * sizeof *whole);
    if (whole == NULL)
      die("out of memory", NULL);
    ckpt_array *all[3] = {*param(s, t), *moment1(s, t), *moment2(s, t)};
    for (int k = 0; k < 3; k++) {
      gather(d, t, all[k], whole);
      if (f != NULL)
        fwrite(whole, sizeof *whole, n, f);
    }
    free(whole);
  }
  if (f != NULL && fclose(f) != 0)
    die("cannot write the dump file", NULL);
}

/* Offers step s->step to the manager (force: save it whatever the interval); true if saved. */
static bool save(ckpt_manager *m, const mlpmpi_TrainState *s, bool force) {
  ckpt_error err = CKPT_ERROR_INIT;
  mlpmpi_TrainStateSave *args = mlpmpi_TrainStateSave_new();
  if (args == NULL)
    die("out of memory", NULL);
  args->item = s; /* borrowed: the save snapshots our rows before it returns */
  bool saved = false;
  ckpt_status st = ckpt_manager_save(m, s->step, &args->base, NULL, force, &saved, &err);
  ckpt_args_delete(&args->base);
  if (st != CKPT_OK)
    die("saving", &err);
  return saved;
}

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  options o;
  parse(argc, argv, &o);
  ckpt_error err = CKPT_ERROR_INIT;
  if (mlpmpi_register(&err) != CKPT_OK)
    return die("registering the schema", &err);

  /* The checkpointing side: one process group, one manager on every rank. */
  ckpt_process_group *pg = NULL;
  if (ckpt_process_group_mpi(MPI_COMM_WORLD, &pg, &err) != CKPT_OK)
    return die("the process group", &err);
  ckpt_manager_options mo = CKPT_MANAGER_OPTIONS_INIT; /* async, as Orbax's */
  mo.save_interval_steps = o.save_every;
  mo.max_to_keep = o.keep;
  mo.cleanup_tmp_directories = true; /* what a killed save left behind */
  mo.process_group = pg;             /* primary: rank 0 */
  ckpt_manager *m = NULL;
  if (ckpt_manager_new(o.dir, &mo, &m, &err) != CKPT_OK)
    return die("opening the manager", &err);
  if (ckpt_preemption_watch(SIGTERM, &err) != CKPT_OK)
    return die("watching SIGTERM", &err);

  mlpmpi_TrainState s;
  mlpmpi_TrainState_init(&s);
  ckpt_value owner = {0};
  if (restore_latest(m, &s, &owner)) {
    if (rank_ == 0)
      printf("resumed from step %" PRId64 " on %d ranks (saved by any number)\n", s.step, size_);
  } else {
    init_state(&s);
    if (rank_ == 0)
      printf("fresh run on %d ranks\n", size_);
  }
  const model_dims d = dims_of(&s.hparams);
  for (int t = 0; t < MODEL_TENSORS; t++)
    if (model_rows(&d, t) < size_)
      return die("more ranks than rows in a tensor", NULL);

  /* The data (regenerated from its seed, never saved) and the whole-model buffers. */
  const mlpmpi_Hparams *hp = &s.hparams;
  float *x = NULL;
  int32_t *y = NULL;
  if (model_data_make(hp->data_seed, hp->train_size, d.in, d.out, &x, &y, &err) != CKPT_OK)
    return die("making the data", &err);
  model_full full;
  int32_t *idx = malloc((size_t)hp->batch_size * sizeof *idx);
  for (int t = 0; t < MODEL_TENSORS; t++)
    if ((full.t[t] = malloc((size_t)model_rows(&d, t) * (size_t)model_row_len(&d, t) *
                            sizeof(float))) == NULL)
      return die("out of memory", NULL);
  FILE *log = rank_ == 0 && o.log != NULL ? fopen(o.log, "a") : NULL;
  const model_adam opt = {hp->learning_rate, hp->beta1, hp->beta2, hp->eps};
  model_local local;
  local_view(&s, &d, &local);

  while (s.step < o.steps) {
    bool preempted = false;
    if (ckpt_manager_reached_preemption(m, s.step, &preempted, &err) != CKPT_OK)
      return die("asking about preemption", &err);
    if (preempted) { /* SIGTERM on some rank: every rank saves this step and stops */
      int64_t latest = -1;
      if (!ckpt_manager_latest_step(m, &latest) || latest != s.step)
        save(m, &s, true);
      break;
    }
    for (int t = 0; t < MODEL_TENSORS; t++)
      gather(&d, t, *param(&s, t), full.t[t]);
    for (int b = 0; b < hp->batch_size; b++) /* the same draws on every rank */
      idx[b] = (int32_t)(ckpt_numpy_rng_next_u32(s.rng) % (uint32_t)hp->train_size);
    float loss = model_train_step(&d, &full, x, y, idx, hp->batch_size, &opt, s.step + 1, &local);
    s.step++;
    if (log != NULL)
      fprintf(log, "step %" PRId64 " loss %a\n", s.step, (double)loss);

    /* Every rank saves its rows; the manager decides (on the primary) whether this step is
     * one to keep. The save returns after the snapshot; the commit runs in the background. */
    bool saved = save(m, &s, s.step == o.steps);
    if (rank_ == 0 && saved)
      printf("step %" PRId64 ": loss %.6f, checkpoint queued\n", s.step, (double)loss);
    if (rank_ == o.kill_rank && s.step == o.kill_at) {
      printf("rank %d: SIGKILL after step %" PRId64 "\n", rank_, s.step);
      fflush(stdout);
      raise(SIGKILL);
    }
  }
  if (log != NULL)
    fclose(log);
  if (ckpt_manager_close(m, &err) != CKPT_OK) /* waits for the last commit */
    return die("closing the manager", &err);
  if (o.dump != NULL)
    dump(&s, &d, o.dump);
  if (rank_ == 0)
    printf("finished at step %" PRId64 " on %d ranks\n", s.step, size_);

  for (int t = 0; t < MODEL_TENSORS; t++)
    free(full.t[t]);
  free(idx);
  free(x);
  free(y);
  mlpmpi_TrainState_free(&s);
  ckpt_value_free(&owner);
  ckpt_process_group_free(pg);
  MPI_Finalize();
  return 0;
}
