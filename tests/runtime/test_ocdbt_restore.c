/* test_ocdbt_restore.c — restoring PyTree items whose arrays are in OCDBT (zarr v2 values):
 * items ckpt writes, converted here into OCDBT databases (ocdbt_build.h: some chunks inline,
 * some in a data file, zstd and raw), restored whole, resharded and partially, verified and
 * described; damage (a missing chunk key, a missing manifest, a truncated data file) is an
 * error naming what is missing. Then Orbax's own OCDBT checkpoints through the PyTree layer and
 * the Checkpointer API (../shared/orbax-fixtures, skipped when absent). */
#include <dirent.h>

#include "test_pytree_util.h"

#include "ocdbt_build.h"
#include "storage/ocdbt/ocdbt.h"

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Moves the array directory <dir>/<param> into an OCDBT database in dir, as Orbax lays it out
 * (keys <param>/.zarray and <param>/<chunk key>; every other chunk inline), and marks
 * _METADATA use_ocdbt. _CHECKSUMS keeps its chunk entries (they check OCDBT values too) and
 * forgets its file entries (_METADATA was edited). */
static void to_ocdbt(const char *dir, const char *param, bool zstd_nodes) {
  char *adir = pt_fmt("%s/%s", dir, param);
  DIR *d = opendir(adir);
  cr_assert_not_null(d);
  char *names[256];
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' || strcmp(e->d_name, ".zarray") == 0)
      names[n++] = strdup(e->d_name);
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  ob_kv kv[256];
  char *keys[256], *vals[256];
  for (size_t i = 0; i < n; i++) {
    char *path = pt_fmt("%s/%s", adir, names[i]);
    size_t len;
    vals[i] = pt_read(path, &len);
    keys[i] = pt_fmt("%s/%s", param, names[i]);
    kv[i] = (ob_kv){keys[i], vals[i], len, i % 2 ? 0u : UINT32_MAX, 0};
    cr_assert_eq(unlink(path), 0);
    free(path);
  }
  cr_assert_eq(rmdir(adir), 0);
  ob_simple_db(dir, n, kv, zstd_nodes);
  for (size_t i = 0; i < n; i++) {
    free(names[i]);
    free(keys[i]);
    free(vals[i]);
  }
  char *mp = pt_fmt("%s/_METADATA", dir);
  char *text = pt_read(mp, NULL);
  char *at = strstr(text, "\"use_ocdbt\": false");
  cr_assert_not_null(at, "%s", text);
  memcpy(at, "\"use_ocdbt\": true ", strlen("\"use_ocdbt\": true "));
  pt_write(mp, text, strlen(text));
  free(text);
  free(mp);
  char *sums = pt_fmt("%s/_CHECKSUMS", dir);
  if (pt_exists(sums))
    pt_forget_file_sums(dir);
  free(sums);
  free(adir);
}

Test(ocdbt_restore, whole_and_resharded) {
  for (int comp = 0; comp < 2; comp++) {
    char *dir = pt_tmpdir();
    ckpt_array_free(
        pt_save_grid(dir, 10, 7, 3, comp ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE, false));
    to_ocdbt(dir, "w", comp);
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_tree *out = NULL;
    cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, NULL, &out, &err), CKPT_OK, "%s", err.message);
    const ckpt_array *w = ckpt_tree_array(ckpt_tree_get(out, "w"));
    cr_assert_not_null(w);
    cr_assert(w->shape[0] == 10 && w->shape[1] == 7);
    pt_check_grid(w);
    ckpt_tree_free(out);
    /* 4-row shards across 3-row chunks, one of them in caller memory */
    int64_t shape[2] = {10, 7};
    ckpt_array *tgt = NULL;
    cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &tgt, &err), CKPT_OK);
    int32_t mem[4 * 7];
    for (int64_t r = 0; r < 10; r += 4) {
      int64_t off[2] = {r, 0}, sh[2] = {r + 4 > 10 ? 10 - r : 4, 7};
      cr_assert_eq(ckpt_array_add_shard(tgt, off, sh, r == 4 ? mem : NULL, 0, &err), CKPT_OK);
    }
    ckpt_tree *target = ckpt_tree_new_dict();
    ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(tgt), &err);
    ckpt_pytree_restore_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.target = target;
    cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &out, &err), CKPT_OK, "%s", err.message);
    w = ckpt_tree_array(ckpt_tree_get(out, "w"));
    cr_assert_eq(w->n_shards, 3);
    cr_assert_eq(w->shards[1].data, mem);
    pt_check_grid(w);
    cr_assert_eq(mem[0], 4000);
    ckpt_tree_free(out);
    ckpt_tree_free(target);
    /* verify and metadata read the same database */
    uint64_t chunks = 0;
    cr_assert_eq(ckpt_pytree_verify(NULL, dir, &chunks, &err), CKPT_OK, "%s", err.message);
    cr_assert_eq(chunks, 4);
    cJSON *meta = NULL;
    cr_assert_eq(ckpt_pytree_metadata_io(NULL, dir, &meta, &err), CKPT_OK, "%s", err.message);
    const cJSON *wm = cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "tree"), "w");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(wm, "dtype")), "int32");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(meta, "use_ocdbt")));
    cJSON_Delete(meta);
    pt_rmtree(dir);
  }
}

/* _CHECKSUMS still guards OCDBT values: a value of the right size with other bytes is caught. */
Test(ocdbt_restore, checksums_cover_ocdbt_values) {
  char *dir = pt_tmpdir();
  ckpt_array_free(pt_save_grid(dir, 4, 2, 2, CKPT_COMPRESSION_NONE, false));
  to_ocdbt(dir, "w", false);
  /* keys .zarray (inline), 0.0 (in the data file, at offset 0), 1.0 (inline): flip the first
   * byte of the data file, inside chunk 0.0 */
  char *dp = pt_fmt("%s/d/data", dir);
  pt_flip(dp, 0);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *out = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, NULL, &out, &err), CKPT_ECORRUPT, "%s",
               err.message);
  cr_assert(strstr(err.message, "array 'w'") && strstr(err.message, "crc32c"), "%s", err.message);
  free(dp);
  pt_rmtree(dir);
}

Test(ocdbt_restore, missing_pieces_are_named) {
  char *dir = pt_tmpdir();
  ckpt_array_free(pt_save_grid(dir, 6, 2, 2, CKPT_COMPRESSION_ZSTD, false));
  /* an OCDBT item whose chunk key "w/1.0" is gone (Orbax stores every chunk) */
  char *adir = pt_fmt("%s/w/1.0", dir);
  cr_assert_eq(unlink(adir), 0);
  char *sums = pt_fmt("%s/_CHECKSUMS", dir);
  cr_assert_eq(unlink(sums), 0);
  to_ocdbt(dir, "w", true);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *out = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, NULL, &out, &err), CKPT_EINCOMPLETE, "%s",
               err.message);
  cr_assert(strstr(err.message, "chunk '1.0' is missing") && strstr(err.message, "'w/1.0'"), "%s",
            err.message);
  /* no manifest: the item cannot be read, and says so */
  char *mp = pt_fmt("%s/manifest.ocdbt", dir);
  cr_assert_eq(unlink(mp), 0);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, NULL, &out, &err), CKPT_EINCOMPLETE);
  cr_assert(strstr(err.message, mp) && strstr(err.message, "missing"), "%s", err.message);
  err = (ckpt_error)CKPT_ERROR_INIT;
  uint64_t chunks;
  cr_assert_eq(ckpt_pytree_verify(NULL, dir, &chunks, &err), CKPT_EINCOMPLETE);
  cr_assert(strstr(err.message, mp), "%s", err.message);
  free(mp);
  free(sums);
  free(adir);
  pt_rmtree(dir);
}

Test(ocdbt_restore, truncated_data_file) {
  char *dir = pt_tmpdir();
  ckpt_array_free(pt_save_grid(dir, 6, 5, 2, CKPT_COMPRESSION_NONE, false));
  char *sums = pt_fmt("%s/_CHECKSUMS", dir);
  cr_assert_eq(unlink(sums), 0);
  to_ocdbt(dir, "w", false);
  /* cut the data file after the first indirect value: the node at its end is gone too, so the
   * database no longer opens; the error names the data file */
  char *dp = pt_fmt("%s/d/data", dir);
  cr_assert_eq(truncate(dp, 20), 0);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *out = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, NULL, &out, &err), CKPT_ECORRUPT, "%s",
               err.message);
  cr_assert(strstr(err.message, dp) && strstr(err.message, "past the end"), "%s", err.message);
  free(dp);
  free(sums);
  pt_rmtree(dir);
}

/* ---------------------------------------------------------------- Orbax's checkpoints */

#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"
#define NEED_FIXTURES()                                                             \
  do {                                                                              \
    if (!pt_exists(ORBAX_FIXTURES "/v0_standard"))                                  \
      cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES); \
  } while (0)

static void expect_int32(const ckpt_tree *t, const char *path, size_t n, const int32_t *want) {
  const ckpt_array *a = ckpt_tree_array(ckpt_tree_get(t, path));
  cr_assert_not_null(a, "no array at %s", path);
  cr_assert_eq(a->dtype, CKPT_DTYPE_INT32);
  cr_assert(a->ndim == 1 && a->shape[0] == (int64_t)n, "%s", path);
  cr_assert_eq(a->n_shards, 1);
  cr_assert_arr_eq(a->shards[0].data, want, n * sizeof *want, "%s", path);
}

static const int32_t WANT_A[8] = {0, 1, 2, 3, 4, 5, 6, 7}, WANT_BC[3] = {1, 2, 3};

Test(ocdbt_restore, orbax_items_through_the_pytree_layer) {
  NEED_FIXTURES();
  const char *items[] = {ORBAX_FIXTURES "/v0_standard", ORBAX_FIXTURES "/v0_composite/state"};
  for (int i = 0; i < 2; i++) {
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_tree *out = NULL;
    cr_assert_eq(ckpt_pytree_restore_io(NULL, items[i], NULL, &out, &err), CKPT_OK, "%s",
                 err.message);
    expect_int32(out, "a", 8, WANT_A);
    expect_int32(out, "b.c", 3, WANT_BC);
    ckpt_tree_free(out);
    /* partial and resharded: only a, in two shards cutting its one chunk */
    int64_t shape[1] = {8}, o0[1] = {0}, s0[1] = {3}, o1[1] = {3}, s1[1] = {5};
    ckpt_array *tgt = NULL;
    cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 1, shape, &tgt, &err), CKPT_OK);
    cr_assert_eq(ckpt_array_add_shard(tgt, o0, s0, NULL, 0, &err), CKPT_OK);
    cr_assert_eq(ckpt_array_add_shard(tgt, o1, s1, NULL, 0, &err), CKPT_OK);
    ckpt_tree *target = ckpt_tree_new_dict();
    ckpt_tree_dict_set(target, "a", ckpt_tree_new_array(tgt), &err);
    ckpt_pytree_restore_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.target = target;
    spec.partial_restore = true;
    cr_assert_eq(ckpt_pytree_restore_io(NULL, items[i], &spec, &out, &err), CKPT_OK, "%s",
                 err.message);
    const ckpt_array *a = ckpt_tree_array(ckpt_tree_get(out, "a"));
    cr_assert_eq(a->n_shards, 2);
    cr_assert_arr_eq(a->shards[0].data, WANT_A, 3 * sizeof(int32_t));
    cr_assert_arr_eq(a->shards[1].data, WANT_A + 3, 5 * sizeof(int32_t));
    cr_assert_null(ckpt_tree_get(out, "b"));
    ckpt_tree_free(out);
    ckpt_tree_free(target);
    uint64_t chunks = 0;
    cr_assert_eq(ckpt_pytree_verify(NULL, items[i], &chunks, &err), CKPT_OK, "%s", err.message);
    cr_assert_eq(chunks, 2);
  }
}

Test(ocdbt_restore, orbax_checkpoints_through_the_checkpointer) {
  NEED_FIXTURES();
  ckpt_error err = CKPT_ERROR_INIT;
  /* Standard: without args (the handler the checkpoint names) and with a StandardRestore */
  ckpt_checkpointer *c = NULL;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, NULL, &c, &err), CKPT_OK,
               "%s", err.message);
  ckpt_value v = {0};
  cr_assert_eq(ckpt_checkpointer_restore(c, ORBAX_FIXTURES "/v0_standard", NULL, &v, &err), CKPT_OK,
               "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_TREE);
  expect_int32(v.u.tree, "a", 8, WANT_A);
  expect_int32(v.u.tree, "b.c", 3, WANT_BC);
  ckpt_value_free(&v);
  ckpt_StandardRestore *sr = ckpt_StandardRestore_new();
  cr_assert_eq(ckpt_checkpointer_restore(c, ORBAX_FIXTURES "/v0_standard", &sr->base, &v, &err),
               CKPT_OK, "%s", err.message);
  expect_int32(v.u.tree, "b.c", 3, WANT_BC);
  ckpt_value_free(&v);
  ckpt_args_delete(&sr->base);
  /* the data directory deleted: an error naming it, no values */
  cr_assert_eq(
      ckpt_checkpointer_restore(c, ORBAX_FIXTURES "/v0_standard_missing_d", NULL, &v, &err),
      CKPT_EINCOMPLETE);
  cr_assert(strstr(err.message, "v0_standard_missing_d/d' is missing"), "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
  /* Composite without args: both items */
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, NULL, &c, &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_restore(c, ORBAX_FIXTURES "/v0_composite", NULL, &v, &err),
               CKPT_OK, "%s", err.message);
  const ckpt_value *state = ckpt_value_item_get(&v, "state");
  cr_assert(state != NULL && state->kind == CKPT_VALUE_TREE);
  expect_int32(state->u.tree, "a", 8, WANT_A);
  expect_int32(state->u.tree, "b.c", 3, WANT_BC);
  const ckpt_value *m = ckpt_value_item_get(&v, "metadata");
  cr_assert(m != NULL && m->kind == CKPT_VALUE_JSON);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m->u.json, "metadata")),
                   "json_data");
  ckpt_value_free(&v);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
}
