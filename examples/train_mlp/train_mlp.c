/* train_mlp — a training loop that survives being killed.
 *
 * Trains a small MLP (32 → 64 → 64 → 10) with Adam on a synthetic classification dataset, in
 * plain deterministic float32 C. Every --save-every steps it evaluates the validation loss and
 * starts an asynchronous checkpoint of the whole training state (train_state.ckpt) through a
 * CheckpointManager; training goes on while the checkpoint is written. With --resume it
 * continues from the latest committed step, and because the state holds everything the
 * computation depends on (parameters, Adam moments, the random generator, the data loader's
 * position), the resumed run prints exactly the losses the uninterrupted run prints.
 *
 * Output: one line per logged step on stdout (and appended to --log FILE), for diffing:
 *   step N loss L                  L: the batch loss, 9 significant digits (exact for float32)
 *   step N val_loss V val_acc A    at every checkpointed step
 *   final step N fingerprint 0xF   FNV-1a 64 of the whole final state
 * Progress and checkpoint events go to stderr, prefixed "train_mlp: ".
 *
 * Exit status: 0 done, 1 failure (message on stderr), 2 bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpointing.h"
#include "mlp_math.h"
#include "trainer_state.h"

static const char usage_text[] =
    "usage: train_mlp --dir DIR [options]\n"
    "  --dir DIR            checkpoint directory (a CheckpointManager's; created if missing)\n"
    "  --steps N            train until step N (default 300)\n"
    "  --save-every N       evaluate and checkpoint every N steps (default 25)\n"
    "  --keep K             keep the K best steps by val_loss, plus the latest (default 3)\n"
    "  --resume             continue from the latest step in DIR (fresh start if there is none)\n"
    "  --sleep-ms M         sleep M ms after each step (lets a kill land mid-run)\n"
    "  --log FILE           also append the logged lines to FILE\n"
    "  --log-every N        log the loss every N steps (default 1)\n"
    "  --stall-save-at S    testing: the save of step S never finishes its I/O (a hung disk);\n"
    "                       the process waits to be killed, with that save in flight\n";

typedef struct options {
  const char *dir;
  int64_t steps, save_every, keep, sleep_ms, log_every, stall_save_at;
  bool resume;
  const char *log;
} options;

/* Prints "train_mlp: <what> <arg>" and the usage; returns the usage exit status. */
static int usage_error(const char *what, const char *arg) {
  fprintf(stderr, "train_mlp: %s%s%s\n%s", what, arg != NULL ? " " : "", arg != NULL ? arg : "",
          usage_text);
  return 2;
}

/* Parses a non-negative integer option value; false when it is not one. */
static bool parse_count(const char *s, int64_t *out) {
  if (s == NULL || *s == '\0')
    return false;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0)
    return false;
  *out = v;
  return true;
}

static int parse_options(int argc, char **argv, options *o) {
  *o = (options){NULL, 300, 25, 3, 0, 1, -1, false, NULL};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    int64_t *count = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage_text, stdout);
      exit(0);
    } else if (strcmp(a, "--resume") == 0) {
      o->resume = true;
      continue;
    } else if (strcmp(a, "--dir") == 0 || strcmp(a, "--log") == 0) {
      if (val == NULL || *val == '\0')
        return usage_error("a path must follow", a);
      if (strcmp(a, "--dir") == 0)
        o->dir = val;
      else
        o->log = val;
      i++;
      continue;
    } else if (strcmp(a, "--steps") == 0)
      count = &o->steps;
    else if (strcmp(a, "--save-every") == 0)
      count = &o->save_every;
    else if (strcmp(a, "--keep") == 0)
      count = &o->keep;
    else if (strcmp(a, "--sleep-ms") == 0)
      count = &o->sleep_ms;
    else if (strcmp(a, "--log-every") == 0)
      count = &o->log_every;
    else if (strcmp(a, "--stall-save-at") == 0)
      count = &o->stall_save_at;
    else
      return usage_error("unknown option", a);
    if (!parse_count(val, count))
      return usage_error("a non-negative integer must follow", a);
    i++;
  }
  if (o->dir == NULL)
    return usage_error("--dir is required", NULL);
  if (o->save_every < 1)
    return usage_error("--save-every must be at least 1", NULL);
  if (o->keep < 1)
    return usage_error("--keep must be at least 1", NULL);
  if (o->log_every < 1)
    return usage_error("--log-every must be at least 1", NULL);
  return 0;
}

/* ================================================================ output */

static FILE *log_file;

/* One logged line: stdout and the log file, flushed at once so that a SIGKILL loses nothing
 * that was printed. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fflush(stdout);
  if (log_file != NULL) {
    va_start(ap, fmt);
    vfprintf(log_file, fmt, ap);
    va_end(ap);
    fflush(log_file);
  }
}

static int fail(const char *what, const ckpt_error *err) {
  fprintf(stderr, "train_mlp: %s: %s (%s)\n", what, err->message, ckpt_status_name(err->code));
  return 1;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ================================================================ training */

typedef struct trainer {
  options opt;
  trainer_ckpt ck;
  mlp_TrainState *state;
  ckpt_value restored;  /* owns state when it was restored */
  mlp_TrainState fresh; /* owns state when the run started at step 0 */
  mlp_data train, val;
  mlp_work work;
  int32_t *batch_idx;
} trainer;

/* The state to start from: the latest checkpoint with --resume, else step 0. */
static int load_state(trainer *t) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t latest;
  if (trainer_ckpt_latest(&t->ck, &latest) && !t->opt.resume) {
    fprintf(stderr,
            "train_mlp: %s already holds checkpoints (latest step %" PRId64
            "); pass --resume "
            "to continue that run, or use another --dir\n",
            t->opt.dir, latest);
    return 1;
  }
  bool found = false;
  if (t->opt.resume &&
      trainer_ckpt_restore_latest(&t->ck, &t->restored, &t->state, &found, &err) != CKPT_OK)
    return fail("cannot resume", &err);
  if (found) {
    fprintf(stderr,
            "train_mlp: resumed from step %" PRId64 " (epoch %" PRId64 ", batch %" PRId64
            ") in %s\n",
            t->state->step, t->state->loader.epoch,
            t->state->loader.index / t->state->hparams.batch_size, t->opt.dir);
    if (log_file != NULL)
      fprintf(log_file, "# resumed from step %" PRId64 "\n", t->state->step);
    return 0;
  }
  if (t->opt.resume)
    fprintf(stderr, "train_mlp: no checkpoint in %s: starting at step 0\n", t->opt.dir);
  mlp_Hparams hp;
  if (mlp_Hparams_init(&hp) != CKPT_OK || mlp_TrainState_init(&t->fresh) != CKPT_OK) {
    ckpt_error_set(&err, CKPT_ENOMEM, "out of memory");
    return fail("cannot start", &err);
  }
  if (trainer_state_fresh(&t->fresh, &hp, &err) != CKPT_OK)
    return fail("cannot start", &err);
  t->state = &t->fresh;
  if (log_file != NULL)
    fprintf(log_file, "# started at step 0\n");
  return 0;
}

static int evaluate_and_save(trainer *t, float train_loss) {
  mlp_tensors p, m, v;
  trainer_state_views(t->state, &p, &m, &v);
  float acc;
  float val = mlp_evaluate(&p, &t->val, &t->work, &acc);
  emit("step %" PRId64 " val_loss %.9g val_acc %.4f\n", t->state->step, (double)val, (double)acc);
  ckpt_error err = CKPT_ERROR_INIT;
  if (trainer_ckpt_save(&t->ck, t->state, val, train_loss, &err) != CKPT_OK)
    return fail("checkpoint failed", &err);
  fprintf(stderr, "train_mlp: save started: step %" PRId64 " (%s)\n", t->state->step,
          ckpt_manager_is_async(t->ck.m) ? "async" : "sync");
  return 0;
}

static int train(trainer *t) {
  const mlp_Hparams *hp = &t->state->hparams;
  mlp_shape shape = trainer_shape(hp);
  mlp_adam adam = trainer_adam(hp);
  ckpt_error err = CKPT_ERROR_INIT;
  if (mlp_data_make(hp->data_seed, hp->input_dim, hp->num_classes, hp->train_size, hp->val_size,
                    &t->train, &t->val, &err) != CKPT_OK ||
      mlp_work_new(&shape, hp->batch_size, &t->work, &err) != CKPT_OK)
    return fail("cannot set up training", &err);
  t->batch_idx = malloc((size_t)hp->batch_size * sizeof *t->batch_idx);
  if (t->batch_idx == NULL) {
    ckpt_error_set(&err, CKPT_ENOMEM, "out of memory");
    return fail("cannot set up training", &err);
  }
  mlp_tensors p, m, v;
  trainer_state_views(t->state, &p, &m, &v);
  while (t->state->step < t->opt.steps) {
    trainer_next_batch(t->state, t->batch_idx);
    float loss = mlp_forward_backward(&p, &t->train, t->batch_idx, &t->work);
    t->state->step++;
    mlp_adam_update(&shape, &adam, t->state->step, &p, &m, &v, &t->work.grad);
    if (!isfinite(loss)) {
      fprintf(stderr, "train_mlp: loss is %g at step %" PRId64 "; stopping\n", (double)loss,
              t->state->step);
      return 1;
    }
    if (t->state->step % t->opt.log_every == 0)
      emit("step %" PRId64 " loss %.9g\n", t->state->step, (double)loss);
    /* The last step is always checkpointed, so the final weights are on disk. */
    bool save = trainer_ckpt_should_save(&t->ck, t->state->step) || t->state->step == t->opt.steps;
    if (save && evaluate_and_save(t, loss) != 0)
      return 1;
    if (t->opt.sleep_ms > 0)
      sleep_ms(t->opt.sleep_ms);
  }
  return 0;
}

static int finish(trainer *t) {
  ckpt_error err = CKPT_ERROR_INIT;
  if (trainer_ckpt_finish(&t->ck, &err) != CKPT_OK)
    return fail("checkpoint failed", &err);
  int64_t best, latest;
  if (trainer_ckpt_best(&t->ck, &best) && trainer_ckpt_latest(&t->ck, &latest))
    fprintf(stderr,
            "train_mlp: done: latest step %" PRId64 ", best step %" PRId64 " by validation loss\n",
            latest, best);
  emit("final step %" PRId64 " fingerprint 0x%016" PRIx64 "\n", t->state->step,
       trainer_state_fingerprint(t->state));
  return 0;
}

static void trainer_release(trainer *t) {
  free(t->batch_idx);
  mlp_work_free(&t->work);
  mlp_data_free(&t->train);
  mlp_data_free(&t->val);
  ckpt_value_free(&t->restored);
  mlp_TrainState_free(&t->fresh);
}

int main(int argc, char **argv) {
  trainer t;
  memset(&t, 0, sizeof t);
  int rc = parse_options(argc, argv, &t.opt);
  if (rc != 0)
    return rc;
  ckpt_error err = CKPT_ERROR_INIT;
  if (mlp_register(&err) != CKPT_OK)
    return fail("cannot register the schema", &err);
  if (t.opt.log != NULL) {
    log_file = fopen(t.opt.log, "a");
    if (log_file == NULL) {
      fprintf(stderr, "train_mlp: cannot open --log %s: %s\n", t.opt.log, strerror(errno));
      return 1;
    }
  }
  trainer_ckpt_options co = {t.opt.dir, t.opt.save_every, t.opt.keep, t.opt.stall_save_at};
  if (trainer_ckpt_open(&t.ck, &co, &err) != CKPT_OK) {
    rc = fail("cannot open the checkpoint directory", &err);
  } else {
    rc = load_state(&t);
    if (rc == 0)
      rc = train(&t);
    if (rc == 0)
      rc = finish(&t);
    ckpt_error_clear(&err);
    /* Close also after a failure: it waits for the save in flight, so nothing is left half
     * written by this process (a kill is what leaves a tmp directory, not an error). */
    if (trainer_ckpt_close(&t.ck, &err) != CKPT_OK && rc == 0)
      rc = fail("closing", &err);
  }
  trainer_release(&t);
  if (log_file != NULL)
    fclose(log_file);
  return rc;
}
