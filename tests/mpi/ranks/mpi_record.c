/* tests/mpi/ranks/mpi_record.c — generated record handlers and random keys in multi-process
 * saves, started by tests/mpi/test_mpi.c under mpirun.
 *
 *   mpi_record save    DIR     every rank saves a Composite: "state", a record (record_state.ckpt)
 *                              with its arrays sharded across the ranks; "jax" and "np", the two
 *                              random-key handlers on their own
 *   mpi_record restore DIR     every rank restores with a different sharding and checks
 * MPI_SCENARIO_PRIMARY=<rank> in the environment makes that rank the primary.
 *
 * What the processes hold alike — scalars, the string, bytes, the optional, the nested records
 * in the list, a plain (unsharded) array, both random states — is written by the primary
 * alone: to show it, the other ranks save different values there (same structure), and the
 * restore must find the primary's everywhere. The sharded arrays:
 *   w            float32 [6, 4]   w[r][c] = 10 r + c     rows split over the saving ranks
 *   moments["a"] int64   [3, 6]   a[r][c] = 100 r + c    columns split over the saving ranks
 * A restore splits w by columns and moments["a"] by rows over the restoring ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

/* Under AddressSanitizer (make check) the leak check runs before MPI_Finalize, as in
 * mpi_scenario.c (which says why). */
#if defined(__SANITIZE_ADDRESS__)
#define CKPT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CKPT_TEST_ASAN 1
#endif
#endif
#ifdef CKPT_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#include "ckpt/ckpt.h"
#include "ckpt/mpi.h"
#include "record_state.ckpt.h"

static int rank_ = 0, size_ = 1, primary_ = 0, failures = 0;

static void fail(const char *what, const char *detail) {
  printf("rank %d/%d: FAIL %s%s%s\n", rank_, size_, what, detail ? ": " : "", detail ? detail : "");
  fflush(stdout);
  failures++;
}

static void ok(const char *what) {
  printf("rank %d/%d: ok %s\n", rank_, size_, what);
  fflush(stdout);
}

/* [lo, lo + n) of `total` split into `parts` near-equal blocks, block `i`. */
static void block(int64_t total, int parts, int i, int64_t *lo, int64_t *n) {
  int64_t base = total / parts, extra = total % parts;
  *lo = i * base + (i < extra ? i : extra);
  *n = base + (i < extra ? 1 : 0);
}

/* A 2-d array of global shape rows x cols holding this rank's block along `axis`. */
static ckpt_array *split(ckpt_dtype dt, int64_t rows, int64_t cols, int axis) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {rows, cols}, lo, n;
  block(shape[axis], size_, rank_, &lo, &n);
  int64_t off[2] = {0, 0}, box[2] = {rows, cols};
  off[axis] = lo;
  box[axis] = n;
  ckpt_array *a = NULL;
  if (ckpt_array_new_sharded(dt, 2, shape, &a, &err) != CKPT_OK ||
      ckpt_array_add_shard(a, off, box, NULL, 0, &err) != CKPT_OK)
    fail("array", err.message);
  return a;
}

/* The value at global (r, c) of w and of moments["a"]. */
static double w_at(int64_t r, int64_t c) {
  return (double)(10 * r + c);
}
static int64_t a_at(int64_t r, int64_t c) {
  return 100 * r + c;
}

/* Fills every element of a's one shard with at(global r, c). */
static void fill(ckpt_array *a, bool is_float) {
  const ckpt_shard *s = &a->shards[0];
  for (int64_t r = 0; r < s->shape[0]; r++)
    for (int64_t c = 0; c < s->shape[1]; c++) {
      int64_t i = r * s->shape[1] + c, gr = s->offset[0] + r, gc = s->offset[1] + c;
      if (is_float)
        ((float *)s->data)[i] = (float)w_at(gr, gc);
      else
        ((int64_t *)s->data)[i] = a_at(gr, gc);
    }
}

/* Compares a's one shard with the expected values; false (and a FAIL line) on a difference. */
static bool check(const ckpt_array *a, bool is_float, const char *what) {
  if (a == NULL || a->n_shards != 1) {
    fail(what, "not one shard");
    return false;
  }
  const ckpt_shard *s = &a->shards[0];
  for (int64_t r = 0; r < s->shape[0]; r++)
    for (int64_t c = 0; c < s->shape[1]; c++) {
      int64_t i = r * s->shape[1] + c, gr = s->offset[0] + r, gc = s->offset[1] + c;
      bool same = is_float ? ((const float *)s->data)[i] == (float)w_at(gr, gc)
                           : ((const int64_t *)s->data)[i] == a_at(gr, gc);
      if (!same) {
        fail(what, "an element differs");
        return false;
      }
    }
  return true;
}

static ckpt_array *plain_array(int32_t mul) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[1] = {5};
  ckpt_array *a = NULL;
  if (ckpt_array_new(CKPT_DTYPE_INT32, 1, shape, &a, &err) != CKPT_OK)
    fail("plain", err.message);
  for (int i = 0; i < 5; i++)
    ((int32_t *)ckpt_array_data(a))[i] = mul * i;
  return a;
}

static ckpt_jax_key *jax_key(uint32_t a, uint32_t b) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[1] = {2};
  ckpt_jax_key *k = calloc(1, sizeof *k);
  if (k == NULL || ckpt_array_new(CKPT_DTYPE_UINT32, 1, shape, &k->data, &err) != CKPT_OK) {
    fail("jax key", err.message);
    return k;
  }
  ((uint32_t *)ckpt_array_data(k->data))[0] = a;
  ((uint32_t *)ckpt_array_data(k->data))[1] = b;
  k->typed = true;
  k->impl = strdup("threefry2x32");
  return k;
}

static ckpt_numpy_rng *numpy_rng(uint32_t seed) {
  ckpt_numpy_rng *r = malloc(sizeof *r);
  if (r == NULL)
    return NULL;
  ckpt_numpy_rng_seed(r, seed);
  for (int i = 0; i < 10; i++)
    ckpt_numpy_rng_next_u32(r);
  return r;
}

/* The state this rank saves: the primary's values are the ones to find after the restore. */
static void make_state(mpirec_State *s, bool primary) {
  /* (bytes of another length would be another shape: every process refuses that) */
  static uint8_t primary_blob[4] = {1, 2, 3, 4}, other_blob[4] = {9, 9, 9, 9};
  mpirec_State_init(s);
  s->step = primary ? 42 : 1000 + rank_;
  s->name = strdup(primary ? "primary" : "other");
  s->blob.data = malloc(4);
  memcpy(s->blob.data, primary ? primary_blob : other_blob, 4);
  s->blob.len = 4;
  s->has_best = true;
  s->best = primary ? 0.5 : -1.0;
  s->w = split(CKPT_DTYPE_FLOAT32, 6, 4, 0);
  fill(s->w, true);
  s->plain = plain_array(primary ? 7 : -1);
  s->n_moments = 1;
  s->moments = calloc(1, sizeof *s->moments);
  s->moments[0].key = strdup("a");
  s->moments[0].value = split(CKPT_DTYPE_INT64, 3, 6, 1);
  fill(s->moments[0].value, false);
  s->n_inners = 2;
  s->inners = calloc(2, sizeof *s->inners);
  for (int i = 0; i < 2; i++) {
    s->inners[i].level = primary ? i + 1 : -5;
    s->inners[i].label = strdup(primary ? (i == 0 ? "one" : "two") : "x");
  }
  s->np_rng = numpy_rng(primary ? 1234 : 999);
  s->key = primary ? jax_key(0xdead, 0xbeef) : jax_key(1, (uint32_t)rank_);
}

static ckpt_checkpointer *composite_checkpointer(ckpt_process_group *pg) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.process_group = pg;
  o.primary = primary_;
  o.async = true; /* the commit on the background thread, as a manager would run it */
  ckpt_checkpointer *c = NULL;
  if (ckpt_checkpointer_new(NULL, &o, &c, &err) != CKPT_OK)
    fail("checkpointer", err.message);
  return c;
}

static void scenario_save(ckpt_process_group *pg, const char *dir) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = composite_checkpointer(pg);
  if (c == NULL)
    return;
  bool primary = rank_ == primary_;
  mpirec_State state;
  make_state(&state, primary);
  ckpt_Composite *comp = ckpt_composite_new();
  mpirec_StateSave *ss = mpirec_StateSave_new();
  ckpt_JaxRandomKeySave *js = ckpt_JaxRandomKeySave_new();
  ckpt_NumpyRandomKeySave *ns = ckpt_NumpyRandomKeySave_new();
  ss->item = &state;
  js->item = primary ? jax_key(7, 8) : jax_key(70, 80); /* owned by the args */
  ns->item = numpy_rng(primary ? 77 : 88);
  ckpt_composite_add(comp, "state", &ss->base, &err);
  ckpt_composite_add(comp, "jax", &js->base, &err);
  ckpt_composite_add(comp, "np", &ns->base, &err);
  if (err.code == CKPT_OK)
    ckpt_checkpointer_save(c, dir, &comp->base, false, NULL, &err);
  ckpt_args_delete(&comp->base);
  mpirec_State_free(&state); /* the save snapshotted it */
  if (err.code == CKPT_OK)
    ckpt_checkpointer_wait_until_finished(c, &err);
  if (err.code != CKPT_OK)
    fail("save", err.message);
  else
    ok("saved");
  ckpt_checkpointer_close(c, &err);
}

static void check_state(const mpirec_State *s) {
  mpirec_State want;
  make_state(&want, true);
  if (s->step != 42 || s->name == NULL || strcmp(s->name, "primary") != 0)
    fail("the step or the name is not the primary's", s->name);
  if (s->blob.len != 4 || memcmp(s->blob.data, want.blob.data, 4) != 0)
    fail("bytes", "not the primary's");
  if (!s->has_best || s->best != 0.5)
    fail("optional", "not the primary's");
  if (!ckpt_array_equal(s->plain, want.plain))
    fail("plain array", "not the primary's");
  if (s->n_inners != 2 || s->inners[1].level != 2 || strcmp(s->inners[1].label, "two") != 0)
    fail("list of records", "not the primary's");
  if (!ckpt_numpy_rng_equal(s->np_rng, want.np_rng))
    fail("numpy_random_key", "not the primary's");
  if (!ckpt_jax_key_equal(s->key, want.key))
    fail("jax_random_key", "not the primary's");
  check(s->w, true, "w");
  if (s->n_moments != 1 || strcmp(s->moments[0].key, "a") != 0)
    fail("map", "keys differ");
  else
    check(s->moments[0].value, false, "moments[a]");
  mpirec_State_free(&want);
}

static void scenario_restore(ckpt_process_group *pg, const char *dir) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = composite_checkpointer(pg);
  if (c == NULL)
    return;
  /* The target: w by columns, moments["a"] by rows over the ranks restoring now. */
  mpirec_State target;
  make_state(&target, true);
  ckpt_array_free(target.w);
  target.w = split(CKPT_DTYPE_FLOAT32, 6, 4, 1);
  ckpt_array_free(target.moments[0].value);
  target.moments[0].value = split(CKPT_DTYPE_INT64, 3, 6, 0);
  ckpt_Composite *comp = ckpt_composite_new();
  mpirec_StateRestore *sr = mpirec_StateRestore_new();
  sr->target = &target;
  ckpt_composite_add(comp, "state", &sr->base, &err);
  ckpt_composite_add(comp, "jax", &ckpt_JaxRandomKeyRestore_new()->base, &err);
  ckpt_composite_add(comp, "np", &ckpt_NumpyRandomKeyRestore_new()->base, &err);
  ckpt_value v = {0};
  if (err.code == CKPT_OK)
    ckpt_checkpointer_restore(c, dir, &comp->base, &v, &err);
  ckpt_args_delete(&comp->base);
  mpirec_State_free(&target);
  if (err.code != CKPT_OK) {
    fail("restore", err.message);
  } else {
    ckpt_value *st = ckpt_value_item_get(&v, "state");
    ckpt_value *jx = ckpt_value_item_get(&v, "jax");
    ckpt_value *np = ckpt_value_item_get(&v, "np");
    if (st == NULL || st->kind != CKPT_VALUE_RECORD || jx == NULL ||
        jx->kind != CKPT_VALUE_JAX_KEY || np == NULL || np->kind != CKPT_VALUE_NUMPY_RNG) {
      fail("restore", "an item is missing or of another kind");
    } else {
      check_state(st->u.record.data);
      ckpt_jax_key *jk = jax_key(7, 8);
      ckpt_numpy_rng *nr = numpy_rng(77);
      /* (Orbax's layout of a key saved alone keeps its data and `typed`, not its impl) */
      if (jx->u.jax_key->typed != jk->typed || !ckpt_array_equal(jx->u.jax_key->data, jk->data))
        fail("JaxRandomKeySave item", "not the primary's key");
      if (!ckpt_numpy_rng_equal(np->u.numpy_rng, nr))
        fail("NumpyRandomKeySave item", "not the primary's state");
      ckpt_jax_key_free(jk);
      ckpt_numpy_rng_free(nr);
    }
    ckpt_value_free(&v);
  }
  ckpt_checkpointer_close(c, &err);
  if (failures == 0)
    ok("restored the primary's values and every shard");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: see the top of tests/mpi/ranks/mpi_record.c\n");
    return 2;
  }
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  const char *primary = getenv("MPI_SCENARIO_PRIMARY");
  primary_ = primary != NULL ? atoi(primary) : 0;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_process_group *pg = NULL;
  if (mpirec_register(&err) != CKPT_OK)
    fail("register", err.message);
  else if (ckpt_process_group_mpi(MPI_COMM_WORLD, &pg, &err) != CKPT_OK)
    fail("process group", err.message);
  else if (strcmp(argv[1], "save") == 0)
    scenario_save(pg, argv[2]);
  else if (strcmp(argv[1], "restore") == 0)
    scenario_restore(pg, argv[2]);
  else
    fail("unknown scenario", argv[1]);
  int mine = failures > 0, any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  ckpt_process_group_free(pg);
#ifdef CKPT_TEST_ASAN
  __lsan_do_leak_check();
#endif
  MPI_Finalize();
  return any ? 1 : 0;
}
