/* model_state — the end-to-end proof of a realistic model state crossing processes and
 * languages (issue 4).
 *
 *   model_state save DIR [--seed S]     writes DIR (a Composite checkpoint) and prints a
 *                                       fingerprint of every leaf and the next RNG draws
 *   model_state restore DIR --shards N  in a fresh process: restores every array resharded into
 *                                       N row-blocks, verifies every element, scalar, string and
 *                                       RNG state against the state regenerated from the seed
 *                                       stored in the checkpoint, and prints the same lines
 *
 * The checkpoint is a Composite of four items, each saved by the handler Orbax would use:
 *   state   StandardSave: params (float32), opt_state.mu (bfloat16), opt_state.nu (float32),
 *           step (int64), learning_rate (float64) — Orbax's StandardSave takes no strings
 *   meta    PyTreeSave: strings and small integers describing the run
 *   rng     JaxRandomKeySave: a threefry key (uint32[2])
 *   np_rng  NumpyRandomKeySave: numpy's MT19937 RandomState, mid-stream with a cached normal
 * Lines printed by both commands are identical when the restore is right; check_zarr.py reads
 * the same directory with zarr-python and checks it against the same lines. Exit status 0 on
 * success, 1 on any failure (with a message on stderr), 2 on bad usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/ckpt.h>

#include "state_gen.h"

#define JAX_DRAWS 4
#define NP_DRAWS 4

static int fail(const char *what, const ckpt_error *err) {
  fprintf(stderr, "model_state: %s: %s: %s\n", what, ckpt_status_name(err->code), err->message);
  return 1;
}

static int usage(void) {
  fprintf(stderr, "usage: model_state save DIR [--seed S]\n"
                  "       model_state restore DIR --shards N\n");
  return 2;
}

/* ---------------------------------------------------------------- RNG states */

/* The JAX key the run "trained" with: PRNGKey(seed) = [0, seed], then one threefry block at
 * counter (step, 0), so that the saved key is not a trivial pattern. */
static void expected_jax_key(uint64_t seed, uint32_t out[2]) {
  uint32_t key[2] = {0, (uint32_t)seed};
  uint32_t ctr[2] = {(uint32_t)ms_step(seed), 0};
  ms_threefry2x32(key, ctr, out);
}

/* numpy's RandomState(seed) after the run drew step % 100 + 3 raw values and one normal (so
 * the state holds a cached Gaussian, has_gauss = 1). */
static void expected_np_rng(uint64_t seed, ckpt_numpy_rng *rng) {
  ckpt_numpy_rng_seed(rng, (uint32_t)seed);
  for (int64_t i = 0; i < ms_step(seed) % 100 + 3; i++) (void)ckpt_numpy_rng_next_u32(rng);
  (void)ckpt_numpy_rng_next_gaussian(rng);
}

/* Continues both streams (on copies) and prints their next draws: the lines the restoring
 * process must reproduce from what it read. */
static void print_rng_lines(const uint32_t key[2], const ckpt_numpy_rng *np_state) {
  printf("rng key_data %08" PRIx32 " %08" PRIx32 "\n", key[0], key[1]);
  printf("rng jax_next");
  for (uint32_t j = 0; j < JAX_DRAWS; j++) {
    uint32_t ctr[2] = {j, 1}, out[2];
    ms_threefry2x32(key, ctr, out);
    printf(" %08" PRIx32 "%08" PRIx32, out[0], out[1]);
  }
  printf("\n");
  ckpt_numpy_rng r = *np_state;
  printf("np_rng pos %" PRId64 " has_gauss %" PRId64 "\n", r.pos, r.has_gauss);
  printf("np_rng next_u32");
  for (int j = 0; j < NP_DRAWS; j++) printf(" %" PRIu32, ckpt_numpy_rng_next_u32(&r));
  printf("\n");
  /* %a prints every bit; the first normal is the cached one. */
  double g0 = ckpt_numpy_rng_next_gaussian(&r);
  double g1 = ckpt_numpy_rng_next_gaussian(&r);
  double d = ckpt_numpy_rng_next_double(&r);
  printf("np_rng next_normal %a %a next_double %a\n", g0, g1, d);
}

/* ---------------------------------------------------------------- fingerprints */

typedef struct print_ctx {
  const char *item;
  int failed;
} print_ctx;

static void join_path(const char *const *path, size_t depth, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < depth && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? "." : "", path[i]);
}

/* The global array in C order, gathered from the replica-0 shards into a malloc'ed buffer
 * (the caller frees it); NULL when memory runs out or the shards do not cover it. Shards of
 * this example are row-blocks, so each is one contiguous run of the global array. */
static void *gather(const ckpt_array *a) {
  size_t es = ckpt_dtype_size(a->dtype);
  int64_t n = ckpt_array_num_elements(a);
  int64_t row = 1;
  for (int d = 1; d < a->ndim; d++) row *= a->shape[d];
  unsigned char *buf = calloc((size_t)(n > 0 ? n : 1), es);
  if (buf == NULL) return NULL;
  int64_t covered = 0;
  for (size_t s = 0; s < a->n_shards; s++) {
    const ckpt_shard *sh = &a->shards[s];
    if (sh->replica_id != 0) continue;
    int64_t cnt = 1;
    for (int d = 0; d < a->ndim; d++) cnt *= sh->shape[d];
    int64_t first = a->ndim > 0 ? sh->offset[0] * row : 0;
    memcpy(buf + (size_t)first * es, sh->data, (size_t)cnt * es);
    covered += cnt;
  }
  if (covered != n) {
    free(buf);
    return NULL;
  }
  return buf;
}

static ckpt_status print_leaf(void *vctx, const char *const *path, size_t depth,
                              const ckpt_tree *node, ckpt_error *err) {
  print_ctx *ctx = vctx;
  char name[512];
  join_path(path, depth, name, sizeof name);
  ckpt_array *a = ckpt_tree_array(node);
  ckpt_scalar sc;
  if (a != NULL) {
    char shape[128] = "";
    size_t used = 0;
    for (int d = 0; d < a->ndim; d++)
      used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%" PRId64, d ? "x" : "",
                               a->shape[d]);
    void *data = gather(a);
    if (data == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s/%s: cannot gather the array", ctx->item, name);
    printf("leaf %s/%s %s %s fp=%016" PRIx64 "\n", ctx->item, name, ckpt_dtype_name(a->dtype),
           shape, ms_fingerprint(data, ckpt_dtype_size(a->dtype), ckpt_array_num_elements(a)));
    free(data);
  } else if (ckpt_tree_scalar(node, &sc)) {
    unsigned char bytes[16] = {0};
    ckpt_scalar_store(&sc, bytes);
    printf("leaf %s/%s %s () fp=%016" PRIx64 "\n", ctx->item, name, ckpt_dtype_name(sc.dtype),
           ms_fingerprint(bytes, ckpt_dtype_size(sc.dtype), 1));
  } else if (ckpt_tree_string(node) != NULL) {
    printf("string %s/%s %s\n", ctx->item, name, ckpt_tree_string(node));
  } else {
    return ckpt_error_set(err, CKPT_ETYPE, "%s/%s: unexpected %s leaf", ctx->item, name,
                          ckpt_node_kind_name(ckpt_tree_kind(node)));
  }
  return CKPT_OK;
}

static int print_tree(const char *item, const ckpt_tree *t) {
  print_ctx ctx = {item, 0};
  ckpt_error err = CKPT_ERROR_INIT;
  if (ckpt_tree_walk(t, print_leaf, &ctx, &err) != CKPT_OK) return fail("fingerprint", &err);
  return 0;
}

/* ---------------------------------------------------------------- save */

/* Small chunks for some leaves, so that restored row-blocks cut across several saved chunks;
 * zstd for the second moments' MLP outputs. Entries must be sorted by key. */
static int add_save_args(ckpt_StandardSave *s) {
  enum { MAX = 4 + 3 * MS_LAYERS };
  static char keys[MAX][96];
  int64_t bytes[MAX];
  const char *compress[MAX];
  size_t n = 0;
  snprintf(keys[n], sizeof keys[n], "params.embed.embedding");
  bytes[n] = 16 * 1024, compress[n++] = NULL; /* 8 chunks of 64 rows */
  snprintf(keys[n], sizeof keys[n], "opt_state.mu.embed.embedding");
  bytes[n] = 5 * 1024, compress[n++] = NULL; /* bfloat16: chunks of 40 rows, 13 of them */
  snprintf(keys[n], sizeof keys[n], "params.final_ln.scale");
  bytes[n] = 64, compress[n++] = NULL; /* 1-d: 4 chunks of 16 */
  for (int l = 0; l < MS_LAYERS; l++) {
    snprintf(keys[n], sizeof keys[n], "params.layer_%d.mlp.wi", l);
    bytes[n] = 4 * 1024, compress[n++] = NULL;
    snprintf(keys[n], sizeof keys[n], "opt_state.nu.layer_%d.mlp.wo", l);
    bytes[n] = 12 * 1024, compress[n++] = "zstd";
    snprintf(keys[n], sizeof keys[n], "opt_state.mu.layer_%d.attn.query", l);
    bytes[n] = 1024, compress[n++] = NULL;
  }
  s->save_args = calloc(n, sizeof *s->save_args);
  if (s->save_args == NULL) return -1;
  s->has_save_args = true;
  /* Sorted insertion into the args' own array (the args own keys and values). */
  for (size_t i = 0; i < n; i++) {
    size_t at = s->n_save_args;
    while (at > 0 && strcmp(s->save_args[at - 1].key, keys[i]) > 0) {
      s->save_args[at] = s->save_args[at - 1];
      at--;
    }
    ckpt_StandardSave_save_args_entry *e = &s->save_args[at];
    memset(e, 0, sizeof *e);
    ckpt_SaveArgs_init(&e->value);
    e->key = strdup(keys[i]);
    e->value.has_chunk_byte_size = true;
    e->value.chunk_byte_size = bytes[i];
    if (compress[i] != NULL) e->value.compression = strdup(compress[i]);
    s->n_save_args++;
    if (e->key == NULL || (compress[i] != NULL && e->value.compression == NULL)) return -1;
  }
  return 0;
}

static int cmd_save(const char *dir, uint64_t seed) {
  if (!ms_threefry_selftest()) {
    fprintf(stderr, "model_state: threefry2x32 fails its known-answer vectors\n");
    return 1;
  }
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *state = ms_build_state(seed);
  ckpt_tree *meta = ms_build_meta(seed);
  ckpt_jax_key *key = calloc(1, sizeof *key);
  ckpt_numpy_rng *np_rng = malloc(sizeof *np_rng);
  int64_t two = 2;
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  ckpt_PyTreeSave *m = ckpt_PyTreeSave_new();
  ckpt_JaxRandomKeySave *k = ckpt_JaxRandomKeySave_new();
  ckpt_NumpyRandomKeySave *r = ckpt_NumpyRandomKeySave_new();
  ckpt_Composite *c = ckpt_composite_new();
  if (key != NULL) ckpt_array_new(CKPT_DTYPE_UINT32, 1, &two, &key->data, &err);
  /* Each args owns its item from here on, and the composite owns the args (also when adding
   * fails), so deleting c frees everything on every path. */
  if (s != NULL) s->item = state;
  else ckpt_tree_free(state);
  if (m != NULL) m->item = meta;
  else ckpt_tree_free(meta);
  if (k != NULL) k->item = key;
  else ckpt_jax_key_free(key);
  if (r != NULL) r->item = np_rng;
  else free(np_rng);
  if (c == NULL) {
    if (s != NULL) ckpt_args_delete(&s->base);
    if (m != NULL) ckpt_args_delete(&m->base);
    if (k != NULL) ckpt_args_delete(&k->base);
    if (r != NULL) ckpt_args_delete(&r->base);
    fprintf(stderr, "model_state: out of memory\n");
    return 1;
  }
  ckpt_composite_add(c, "state", s ? &s->base : NULL, &err);
  ckpt_composite_add(c, "meta", m ? &m->base : NULL, &err);
  ckpt_composite_add(c, "rng", k ? &k->base : NULL, &err);
  ckpt_composite_add(c, "np_rng", r ? &r->base : NULL, &err);
  if (err.code != CKPT_OK || state == NULL || meta == NULL || key == NULL || np_rng == NULL ||
      add_save_args(s) != 0) {
    ckpt_args_delete(&c->base);
    fprintf(stderr, "model_state: out of memory\n");
    return 1;
  }
  expected_jax_key(seed, ckpt_array_data(key->data));
  key->typed = false; /* jax.random.PRNGKey's raw uint32[2] */
  expected_np_rng(seed, np_rng);

  /* What the restoring process must reproduce. */
  if (print_tree("state", state) || print_tree("meta", meta)) {
    ckpt_args_delete(&c->base);
    return 1;
  }
  print_rng_lines(ckpt_array_data(key->data), np_rng);

  char custom[128];
  snprintf(custom, sizeof custom, "{\"example\": \"model_state\", \"seed\": %" PRIu64 "}", seed);
  cJSON *custom_json = cJSON_Parse(custom);
  ckpt_checkpointer *ckptr = NULL;
  if (err.code == CKPT_OK) ckpt_checkpointer_new(NULL, NULL, &ckptr, &err);
  if (err.code == CKPT_OK) ckpt_checkpointer_save(ckptr, dir, &c->base, false, custom_json, &err);
  ckpt_args_delete(&c->base);
  cJSON_Delete(custom_json);
  ckpt_checkpointer_close(ckptr, &err);
  if (err.code != CKPT_OK) return fail(dir, &err);
  printf("saved %s (seed %" PRIu64 ")\n", dir, seed);
  return 0;
}

/* ---------------------------------------------------------------- restore */

/* Row-block b of n over rows: [rows*b/n, rows*(b+1)/n) — balanced, so that blocks cut across
 * the saved chunks. */
static int64_t block_start(int64_t rows, int64_t b, int64_t n) { return rows * b / n; }

/* Replaces every array leaf below node by an array of the same dtype and global shape, held
 * as n row-blocks with no data (the restore allocates them). Empty blocks are left out. */
static ckpt_status reshard(ckpt_tree *node, int64_t n, ckpt_error *err) {
  for (size_t i = 0; i < ckpt_tree_count(node); i++) {
    ckpt_tree *child = ckpt_tree_child(node, i);
    ckpt_array *a = ckpt_tree_array(child);
    if (a == NULL) {
      if (reshard(child, n, err) != CKPT_OK) return err->code;
      continue;
    }
    ckpt_array *t = NULL;
    if (ckpt_array_new_sharded(a->dtype, a->ndim, a->shape, &t, err) != CKPT_OK) return err->code;
    int64_t rows = a->ndim > 0 ? a->shape[0] : 1;
    for (int64_t b = 0; b < n; b++) {
      int64_t off[CKPT_MAX_RANK] = {0}, shape[CKPT_MAX_RANK];
      memcpy(shape, a->shape, sizeof shape);
      off[0] = block_start(rows, b, n);
      shape[0] = block_start(rows, b + 1, n) - off[0];
      if (shape[0] == 0) continue;
      if (ckpt_array_add_shard(t, off, shape, NULL, 0, err) != CKPT_OK) {
        ckpt_array_free(t);
        return err->code;
      }
    }
    if (ckpt_tree_set_child(node, i, ckpt_tree_new_array(t), err) != CKPT_OK) return err->code;
  }
  return CKPT_OK;
}

typedef struct verify_ctx {
  uint64_t seed;
  int64_t n_blocks;
  const ckpt_tree *expected;
  int64_t arrays, elements, shards;
} verify_ctx;

/* Checks one restored leaf against the regenerated state: arrays shard by shard (each shard
 * must be one of the requested row-blocks), scalars by value. */
static ckpt_status verify_leaf(void *vctx, const char *const *path, size_t depth,
                               const ckpt_tree *node, ckpt_error *err) {
  verify_ctx *v = vctx;
  char name[512];
  join_path(path, depth, name, sizeof name);
  const ckpt_tree *want = ckpt_tree_get(v->expected, name);
  if (want == NULL)
    return ckpt_error_set(err, CKPT_EMISMATCH, "state/%s: not in the expected state", name);
  ckpt_array *a = ckpt_tree_array(node), *w = ckpt_tree_array(want);
  if (a == NULL || w == NULL) {
    if (!ckpt_tree_equal(node, want))
      return ckpt_error_set(err, CKPT_EMISMATCH, "state/%s: restored value differs", name);
    return CKPT_OK;
  }
  if (a->dtype != w->dtype || a->ndim != w->ndim ||
      memcmp(a->shape, w->shape, sizeof a->shape[0] * (size_t)a->ndim) != 0)
    return ckpt_error_set(err, CKPT_EMISMATCH, "state/%s: dtype or shape differs", name);
  int64_t rows = a->shape[0], row = ckpt_array_num_elements(a) / (rows ? rows : 1);
  size_t es = ckpt_dtype_size(a->dtype);
  int64_t expect_shards = v->n_blocks < rows ? v->n_blocks : rows;
  if ((int64_t)a->n_shards != expect_shards)
    return ckpt_error_set(err, CKPT_EMISMATCH, "state/%s: %zu shards restored, expected %" PRId64,
                          name, a->n_shards, expect_shards);
  unsigned char *exp = malloc((size_t)row * es * (size_t)rows + 1);
  if (exp == NULL) return ckpt_error_set(err, CKPT_ENOMEM, "state/%s: out of memory", name);
  ms_fill(v->seed, name, a->dtype, 0, ckpt_array_num_elements(a), exp);
  for (size_t s = 0; s < a->n_shards; s++) {
    const ckpt_shard *sh = &a->shards[s];
    int64_t b = sh->offset[0] * v->n_blocks / rows; /* the block this offset starts */
    while (b < v->n_blocks && block_start(rows, b, v->n_blocks) < sh->offset[0]) b++;
    if (block_start(rows, b, v->n_blocks) != sh->offset[0] ||
        block_start(rows, b + 1, v->n_blocks) - sh->offset[0] != sh->shape[0]) {
      free(exp);
      return ckpt_error_set(err, CKPT_EMISMATCH,
                            "state/%s: shard at row %" PRId64 " is not a requested row-block",
                            name, sh->offset[0]);
    }
    const unsigned char *got = sh->data;
    const unsigned char *ref = exp + (size_t)(sh->offset[0] * row) * es;
    for (int64_t i = 0; i < sh->shape[0] * row; i++) {
      if (memcmp(got + (size_t)i * es, ref + (size_t)i * es, es) != 0) {
        free(exp);
        return ckpt_error_set(err, CKPT_EMISMATCH,
                              "state/%s: element %" PRId64 " (row %" PRId64 ") differs from "
                              "the regenerated value",
                              name, sh->offset[0] * row + i, sh->offset[0] + i / row);
      }
    }
    v->elements += sh->shape[0] * row;
  }
  free(exp);
  v->arrays++;
  v->shards += (int64_t)a->n_shards;
  return CKPT_OK;
}

static int cmd_restore(const char *dir, int64_t n_blocks) {
  if (!ms_threefry_selftest()) {
    fprintf(stderr, "model_state: threefry2x32 fails its known-answer vectors\n");
    return 1;
  }
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *ckptr = NULL;
  if (ckpt_checkpointer_new(NULL, NULL, &ckptr, &err) != CKPT_OK) return fail("checkpointer", &err);

  /* 1. The meta item alone (a Composite restore of one item reads only that directory): it
   *    holds the seed, from which everything else is regenerated. */
  ckpt_Composite *want_meta = ckpt_composite_new();
  ckpt_value meta_v = {0};
  if (want_meta == NULL) {
    ckpt_checkpointer_close(ckptr, &err);
    fprintf(stderr, "model_state: out of memory\n");
    return 1;
  }
  ckpt_composite_add(want_meta, "meta", &ckpt_PyTreeRestore_new()->base, &err);
  if (err.code == CKPT_OK) ckpt_checkpointer_restore(ckptr, dir, &want_meta->base, &meta_v, &err);
  ckpt_args_delete(&want_meta->base);
  if (err.code != CKPT_OK) {
    ckpt_checkpointer_close(ckptr, &err);
    return fail(dir, &err);
  }
  ckpt_value *mv = ckpt_value_item_get(&meta_v, "meta");
  ckpt_scalar seed_sc;
  bool have_seed = mv != NULL && mv->kind == CKPT_VALUE_TREE &&
                   ckpt_tree_scalar(ckpt_tree_get(mv->u.tree, "seed"), &seed_sc) &&
                   ckpt_dtype_class_of(seed_sc.dtype) == CKPT_DTYPE_CLASS_SIGNED;
  ckpt_value_free(&meta_v);
  if (!have_seed) {
    ckpt_checkpointer_close(ckptr, &err);
    fprintf(stderr, "model_state: %s: the meta item has no integer 'seed'\n", dir);
    return 1;
  }
  uint64_t seed = (uint64_t)seed_sc.v.i;

  /* 2. Everything, the state into N row-blocks per array. The args own the target; on every
   *    path below, expected and the restored value are freed at `out`. */
  int rc = 1;
  ckpt_value v = {0};
  ckpt_tree *want_meta_tree = NULL;
  ckpt_tree *expected = ms_build_state(seed);
  ckpt_Composite *want = ckpt_composite_new();
  ckpt_StandardRestore *sr = ckpt_StandardRestore_new();
  if (expected == NULL || want == NULL || sr == NULL) {
    if (want != NULL) ckpt_args_delete(&want->base);
    if (sr != NULL) ckpt_args_delete(&sr->base);
    ckpt_checkpointer_close(ckptr, &err);
    fprintf(stderr, "model_state: out of memory\n");
    goto out;
  }
  sr->item = ckpt_tree_clone(expected); /* owned by the args */
  if (sr->item == NULL)
    ckpt_error_set(&err, CKPT_ENOMEM, "out of memory cloning the target");
  else
    reshard(sr->item, n_blocks, &err);
  ckpt_composite_add(want, "state", &sr->base, &err);
  ckpt_composite_add(want, "meta", &ckpt_PyTreeRestore_new()->base, &err);
  ckpt_composite_add(want, "rng", &ckpt_JaxRandomKeyRestore_new()->base, &err);
  ckpt_composite_add(want, "np_rng", &ckpt_NumpyRandomKeyRestore_new()->base, &err);
  if (err.code == CKPT_OK) ckpt_checkpointer_restore(ckptr, dir, &want->base, &v, &err);
  ckpt_args_delete(&want->base);
  ckpt_checkpointer_close(ckptr, &err);
  if (err.code != CKPT_OK) {
    fail(dir, &err);
    goto out;
  }

  ckpt_value *st = ckpt_value_item_get(&v, "state");
  ckpt_value *me = ckpt_value_item_get(&v, "meta");
  ckpt_value *jk = ckpt_value_item_get(&v, "rng");
  ckpt_value *np = ckpt_value_item_get(&v, "np_rng");
  want_meta_tree = ms_build_meta(seed);
  if (st == NULL || st->kind != CKPT_VALUE_TREE || me == NULL || me->kind != CKPT_VALUE_TREE ||
      jk == NULL || jk->kind != CKPT_VALUE_JAX_KEY || np == NULL ||
      np->kind != CKPT_VALUE_NUMPY_RNG || want_meta_tree == NULL) {
    fprintf(stderr, "model_state: %s: restored items are not what was saved\n", dir);
    goto out;
  }
  verify_ctx vc = {seed, n_blocks, expected, 0, 0, 0};
  if (ckpt_tree_walk(st->u.tree, verify_leaf, &vc, &err) != CKPT_OK) {
    fail(dir, &err);
    goto out;
  }
  if (ckpt_tree_num_leaves(st->u.tree) != ckpt_tree_num_leaves(expected)) {
    fprintf(stderr, "model_state: state has %zu leaves, expected %zu\n",
            ckpt_tree_num_leaves(st->u.tree), ckpt_tree_num_leaves(expected));
    goto out;
  }
  if (!ckpt_tree_equal(me->u.tree, want_meta_tree)) {
    fprintf(stderr, "model_state: the meta item (strings) differs from what was saved\n");
    goto out;
  }
  uint32_t key[2];
  expected_jax_key(seed, key);
  const ckpt_array *kd = jk->u.jax_key->data;
  if (kd == NULL || kd->dtype != CKPT_DTYPE_UINT32 || ckpt_array_num_elements(kd) != 2 ||
      ckpt_array_data(kd) == NULL || memcmp(ckpt_array_data(kd), key, sizeof key) != 0) {
    fprintf(stderr, "model_state: the JAX key differs from what was saved\n");
    goto out;
  }
  ckpt_numpy_rng np_want;
  expected_np_rng(seed, &np_want);
  if (!ckpt_numpy_rng_equal(np->u.numpy_rng, &np_want)) {
    fprintf(stderr, "model_state: the numpy RandomState differs from what was saved\n");
    goto out;
  }
  /* The same lines as the saving process, computed from the restored values only. */
  if (print_tree("state", st->u.tree) || print_tree("meta", me->u.tree)) goto out;
  print_rng_lines(ckpt_array_data(kd), np->u.numpy_rng);
  printf("verified %" PRId64 " arrays, %" PRId64 " elements in %" PRId64
         " row-blocks (%" PRId64 " per array), scalars, strings and both RNG streams "
         "(seed %" PRIu64 ")\n",
         vc.arrays, vc.elements, vc.shards, n_blocks, seed);
  rc = 0;
out:
  ckpt_tree_free(want_meta_tree);
  ckpt_tree_free(expected);
  ckpt_value_free(&v);
  return rc;
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) return usage();
  const char *cmd = argv[1], *dir = argv[2];
  int64_t seed = 42, shards = 1;
  bool have_shards = false;
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      if (parse_int(argv[++i], 0, UINT32_MAX, &seed) != 0) return usage();
    } else if (strcmp(argv[i], "--shards") == 0 && i + 1 < argc) {
      if (parse_int(argv[++i], 1, 4096, &shards) != 0) return usage();
      have_shards = true;
    } else {
      return usage();
    }
  }
  if (strcmp(cmd, "save") == 0 && !have_shards) return cmd_save(dir, (uint64_t)seed);
  if (strcmp(cmd, "restore") == 0) return cmd_restore(dir, shards);
  return usage();
}
