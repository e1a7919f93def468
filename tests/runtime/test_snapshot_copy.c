/* test_snapshot_copy.c — the snapshot's copies cut into pieces and shared with engine jobs
 * (io/snapshot_copy.h): whatever the split, every byte lands where one
 * ckpt_dtype_convert per item would put it, casts included, with and without an engine; and
 * an async save large enough to take the parallel path restores bit for bit. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "io/engine.h"
#include "io/snapshot_copy.h"
#include "test_pytree_util.h"

typedef struct item_spec {
  ckpt_dtype from, to;
  size_t n;
} item_spec;

/* Sizes around the piece size (4 MiB) and far below it, odd counts, and two casts. */
static const item_spec k_items[] = {
    {CKPT_DTYPE_FLOAT32, CKPT_DTYPE_FLOAT32, (CKPT_COPY_PIECE / 4) * 3 + 17},
    {CKPT_DTYPE_FLOAT32, CKPT_DTYPE_BFLOAT16, (CKPT_COPY_PIECE / 2) + 5},
    {CKPT_DTYPE_UINT8, CKPT_DTYPE_UINT8, 1},
    {CKPT_DTYPE_FLOAT64, CKPT_DTYPE_FLOAT32, CKPT_COPY_PIECE / 4},
    {CKPT_DTYPE_INT16, CKPT_DTYPE_INT16, 0},
    {CKPT_DTYPE_FLOAT32, CKPT_DTYPE_FLOAT32, (size_t)9 << 20}, /* 36 MiB: over the threshold */
};
#define N_ITEMS (sizeof k_items / sizeof k_items[0])

static void fill(void *p, size_t bytes, uint32_t seed) {
  unsigned char *b = p;
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < bytes; i++) {
    x = x * 1664525u + 1013904223u;
    b[i] = (unsigned char)(x >> 24);
  }
  /* Keep floats finite-ish for the casts: clear the top exponent bit of every 4th byte. */
  for (size_t i = 3; i < bytes; i += 4)
    b[i] &= 0x3f;
}

static void run_case(ckpt_engine *engine) {
  void *src[N_ITEMS], *dst[N_ITEMS], *want[N_ITEMS];
  ckpt_copy_list l = {NULL, 0, 0, 0};
  for (size_t i = 0; i < N_ITEMS; i++) {
    size_t sb = k_items[i].n * ckpt_dtype_size(k_items[i].from) + 1;
    size_t db = k_items[i].n * ckpt_dtype_size(k_items[i].to) + 1;
    src[i] = malloc(sb);
    dst[i] = malloc(db);
    want[i] = malloc(db);
    cr_assert(src[i] && dst[i] && want[i]);
    fill(src[i], sb, (uint32_t)i + 1);
    memset(dst[i], 0xee, db);
    memset(want[i], 0xee, db);
    ckpt_dtype_convert(k_items[i].to, want[i], k_items[i].from, src[i], k_items[i].n);
    cr_assert_eq(ckpt_copy_list_add(&l, dst[i], k_items[i].to, src[i], k_items[i].from,
                                    k_items[i].n),
                 0);
  }
  cr_assert_geq(l.bytes, CKPT_COPY_PARALLEL_MIN, "the list must be large enough to split");
  ckpt_copy_list_run(&l, engine);
  cr_assert_eq(l.n, 0, "run empties the list");
  for (size_t i = 0; i < N_ITEMS; i++) {
    size_t db = k_items[i].n * ckpt_dtype_size(k_items[i].to) + 1;
    cr_assert(memcmp(dst[i], want[i], db) == 0, "item %zu differs (or a byte past it was written)",
              i);
    free(src[i]);
    free(dst[i]);
    free(want[i]);
  }
  ckpt_copy_list_free(&l);
}

Test(snapshot_copy, pieces_on_the_engine_land_where_one_convert_would_put_them) {
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.threads = 3;
  o.backend = CKPT_ENGINE_BACKEND_PWRITE;
  ckpt_engine *e = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_engine_new(&o, &e, &err), CKPT_OK, "%s", err.message);
  for (int rep = 0; rep < 3; rep++)
    run_case(e);
  ckpt_engine_free(e);
}

Test(snapshot_copy, without_an_engine_the_caller_copies_everything) {
  run_case(NULL);
}

/* A 40 MiB async save takes the parallel path (the checkpointer's engine) and restores exact. */
Test(snapshot_copy, large_async_save_restores_bit_for_bit, .timeout = 120) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t big[2] = {2560, 4096 - 3};
  int64_t small[1] = {1000};
  ckpt_tree_dict_set(t, "big", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, big, 5)), &err);
  ckpt_tree_dict_set(t, "small", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, small, 6)),
                     &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 3), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = true;
  ckpt_checkpointer *c;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err), CKPT_OK,
               "%s", err.message);
  ckpt_StandardSave *a = ckpt_StandardSave_new();
  a->item = ckpt_tree_clone(t);
  char *path = pt_fmt("%s/ck", dir);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&a->base); /* the snapshot must not need the tree any more */
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  ckpt_StandardRestore *r = ckpt_StandardRestore_new();
  r->item = ckpt_tree_clone(t);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert(ckpt_tree_equal(v.u.tree, t), "restored tree differs");
  ckpt_value_free(&v);
  ckpt_args_delete(&r->base);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_tree_free(t);
  free(path);
  pt_rmtree(dir);
}
