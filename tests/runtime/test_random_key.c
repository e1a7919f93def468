/* test_random_key.c — JaxRandomKeyCheckpointHandler and NumpyRandomKeyCheckpointHandler: the
 * nested-composite layout Orbax writes, round trips, error paths and fault injection. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ckpt/ckpt.h"
#include "handlers/pytree.h"
#include "handlers/op.h"

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ckpt_test_random_key_XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void) {
  nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(random_key, .init = setup, .fini = teardown);

static const char *at(const char *rel) {
  static char buf[8][768];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 768, "%s/%s", tmpdir, rel);
  return p;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s", path);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void spit(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static bool exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static cJSON *json_file(const char *path) {
  cJSON *j = cJSON_Parse(slurp(path));
  cr_assert_not_null(j, "%s is not JSON", path);
  return j;
}

static ckpt_checkpointer *checkpointer(const ckpt_handler_desc *h, ckpt_io *io) {
  ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
  opts.io = io;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(h, &opts, &c, &err), CKPT_OK, "%s", err.message);
  return c;
}

static void close_checkpointer(ckpt_checkpointer *c) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
}

static ckpt_numpy_rng *seeded(uint32_t seed, int draws) {
  ckpt_numpy_rng *rng = malloc(sizeof *rng);
  ckpt_numpy_rng_seed(rng, seed);
  for (int i = 0; i < draws; i++)
    ckpt_numpy_rng_next_double(rng);
  ckpt_numpy_rng_next_gaussian(rng);
  return rng;
}

static ckpt_status save_rng(const char *path, const ckpt_numpy_rng *rng, ckpt_io *io,
                            ckpt_error *err) {
  ckpt_checkpointer *c = checkpointer(&ckpt_NumpyRandomKeyCheckpointHandler_desc, io);
  ckpt_NumpyRandomKeySave *args = ckpt_NumpyRandomKeySave_new();
  args->item = malloc(sizeof *args->item);
  *args->item = *rng;
  ckpt_status st = ckpt_checkpointer_save(c, path, &args->base, false, NULL, err);
  ckpt_error close_err = CKPT_ERROR_INIT;
  ckpt_status cst = ckpt_checkpointer_close(c, &close_err);
  if (st == CKPT_OK && cst != CKPT_OK) {
    *err = close_err;
    st = cst;
  }
  ckpt_args_delete(&args->base);
  return st;
}

static ckpt_status restore_rng(const char *path, ckpt_numpy_rng **out, ckpt_error *err) {
  ckpt_checkpointer *c = checkpointer(&ckpt_NumpyRandomKeyCheckpointHandler_desc, NULL);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  *out = NULL;
  ckpt_status st = ckpt_checkpointer_restore(c, path, NULL, &v, err);
  if (st == CKPT_OK) {
    cr_assert_eq(v.kind, CKPT_VALUE_NUMPY_RNG);
    *out = v.u.numpy_rng;
  }
  close_checkpointer(c);
  return st;
}

/* ------------------------------------------------------------------ numpy */

Test(random_key, numpy_legacy_layout_is_orbax) {
  ckpt_numpy_rng *rng = seeded(5, 100);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save_rng(at("np"), rng, NULL, &err), CKPT_OK, "%s", err.message);

  cr_assert_str_eq(slurp(at("np/np_random_key_metadata/metadata")), "{\"legacy\": true}");
  cr_assert_not(exists(at("np/np_random_key/_CHECKPOINT_METADATA")),
                "nested items carry no step metadata of their own");
  cJSON *strings = json_file(at("np/np_random_key/_strings.json"));
  cr_assert_str_eq(cJSON_GetObjectItem(strings, "0")->valuestring, "MT19937");
  cJSON_Delete(strings);

  /* The key and the three scalars as zarr arrays with the dtypes Orbax's handlers write. */
  static const char *const expect[][3] = {
      {"1", "<u4", "[624]"}, {"2", "<i8", "[]"}, {"3", "<i8", "[]"}, {"4", "<f8", "[]"}};
  for (int i = 0; i < 4; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, "np/np_random_key/%s/.zarray", expect[i][0]);
    cJSON *z = json_file(at(rel));
    cr_assert_str_eq(cJSON_GetObjectItem(z, "dtype")->valuestring, expect[i][1], "%s", rel);
    char *shape = cJSON_PrintUnformatted(cJSON_GetObjectItem(z, "shape"));
    cr_assert_str_eq(shape, expect[i][2], "%s", rel);
    cJSON_free(shape);
    cJSON_Delete(z);
  }
  /* _METADATA: sequence keys (key_type 1) named by tuple position. */
  cJSON *meta = json_file(at("np/np_random_key/_METADATA"));
  const cJSON *tree = cJSON_GetObjectItem(meta, "tree_metadata");
  for (int i = 0; i < 5; i++) {
    char key[32];
    snprintf(key, sizeof key, "('%d',)", i);
    const cJSON *entry = cJSON_GetObjectItem(tree, key);
    cr_assert_not_null(entry, "_METADATA lacks %s", key);
    const cJSON *km = cJSON_GetArrayItem(cJSON_GetObjectItem(entry, "key_metadata"), 0);
    cr_assert_eq(cJSON_GetObjectItem(km, "key_type")->valueint, 1);
  }
  cr_assert_str_eq(
      cJSON_GetObjectItem(
          cJSON_GetObjectItem(cJSON_GetObjectItem(tree, "('2',)"), "value_metadata"), "value_type")
          ->valuestring,
      "scalar");
  cJSON_Delete(meta);

  cJSON *step = json_file(at("np/_CHECKPOINT_METADATA"));
  cr_assert_str_eq(cJSON_GetObjectItem(step, "item_handlers")->valuestring,
                   ckpt_NumpyRandomKeyCheckpointHandler_desc.typestr);
  cJSON_Delete(step);

  ckpt_numpy_rng *back = NULL;
  cr_assert_eq(restore_rng(at("np"), &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_numpy_rng_equal(rng, back));
  for (int i = 0; i < 2000; i++)
    cr_assert_eq(ckpt_numpy_rng_next_u32(rng), ckpt_numpy_rng_next_u32(back));
  cr_assert_eq(ckpt_numpy_rng_next_gaussian(rng), ckpt_numpy_rng_next_gaussian(back));
  ckpt_numpy_rng_free(back);
  free(rng);
}

Test(random_key, numpy_dict_form) {
  ckpt_numpy_rng *rng = seeded(6, 3);
  rng->legacy = false;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save_rng(at("np"), rng, NULL, &err), CKPT_OK, "%s", err.message);
  cr_assert_str_eq(slurp(at("np/np_random_key_metadata/metadata")), "{\"legacy\": false}");
  cJSON *strings = json_file(at("np/np_random_key/_strings.json"));
  cr_assert_str_eq(cJSON_GetObjectItem(strings, "bit_generator")->valuestring, "MT19937");
  cJSON_Delete(strings);
  cr_assert(exists(at("np/np_random_key/state.key/.zarray")));
  cr_assert(exists(at("np/np_random_key/state.pos/.zarray")));
  cr_assert(exists(at("np/np_random_key/has_gauss/.zarray")));
  cr_assert(exists(at("np/np_random_key/gauss/.zarray")));
  cr_assert_not(exists(at("np/np_random_key/legacy")),
                "the legacy flag lives in the metadata item");
  ckpt_numpy_rng *back = NULL;
  cr_assert_eq(restore_rng(at("np"), &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_not(back->legacy);
  cr_assert(ckpt_numpy_rng_equal(rng, back));
  ckpt_numpy_rng_free(back);
  free(rng);
}

/* Edge states: a fresh seed (pos = 624, nothing cached) and pos = 0. */
Test(random_key, numpy_edge_positions) {
  ckpt_numpy_rng rng;
  ckpt_numpy_rng_seed(&rng, 0);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save_rng(at("a"), &rng, NULL, &err), CKPT_OK, "%s", err.message);
  ckpt_numpy_rng *back = NULL;
  cr_assert_eq(restore_rng(at("a"), &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_numpy_rng_equal(&rng, back));
  ckpt_numpy_rng_free(back);
  rng.pos = 0;
  cr_assert_eq(save_rng(at("b"), &rng, NULL, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(restore_rng(at("b"), &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(back->pos, 0);
  ckpt_numpy_rng_free(back);
}

Test(random_key, numpy_invalid_state_is_refused_on_save) {
  ckpt_numpy_rng rng;
  ckpt_numpy_rng_seed(&rng, 1);
  rng.pos = 625;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save_rng(at("np"), &rng, NULL, &err), CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "MT19937 position 625 is outside [0, 624]") != NULL, "%s",
            err.message);
  cr_assert_not(exists(at("np")), "a refused save leaves nothing behind");
  rng.pos = 1;
  rng.has_gauss = 2;
  ckpt_error err2 = CKPT_ERROR_INIT;
  cr_assert_eq(save_rng(at("np"), &rng, NULL, &err2), CKPT_ECORRUPT);
  cr_assert(strstr(err2.message, "has_gauss is 2, expected 0 or 1") != NULL, "%s", err2.message);
}

static void save_then_corrupt(const char *file, const char *text) {
  ckpt_numpy_rng *rng = seeded(9, 10);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save_rng(at("np"), rng, NULL, &err), CKPT_OK, "%s", err.message);
  free(rng);
  if (text != NULL)
    spit(at(file), text);
  else
    cr_assert_eq(remove(at(file)), 0);
}

Test(random_key, numpy_corrupt_metadata_json) {
  save_then_corrupt("np/np_random_key_metadata/metadata", "{\"legacy\": tr");
  ckpt_numpy_rng *back = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(restore_rng(at("np"), &back, &err), CKPT_ECORRUPT);
  cr_assert(
      strstr(err.message, "np_random_key_metadata/metadata:1:12: expected a JSON value") != NULL,
      "%s", err.message);
  cr_assert_null(back);
}

Test(random_key, numpy_metadata_of_wrong_shape) {
  save_then_corrupt("np/np_random_key_metadata/metadata", "{\"legacy\": 1}");
  ckpt_numpy_rng *back = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(restore_rng(at("np"), &back, &err), CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "expected a JSON object {\"legacy\": true|false}") != NULL, "%s",
            err.message);
}

Test(random_key, numpy_missing_metadata_and_item) {
  save_then_corrupt("np/np_random_key_metadata/metadata", NULL);
  ckpt_numpy_rng *back = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(restore_rng(at("np"), &back, &err), CKPT_ENOENT);
  cr_assert(strstr(err.message, "np_random_key_metadata/metadata") != NULL, "%s", err.message);

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", at("np/np_random_key"));
  cr_assert_eq(system(cmd), 0);
  ckpt_error err2 = CKPT_ERROR_INIT;
  cr_assert_eq(restore_rng(at("np"), &back, &err2), CKPT_ENOENT);
  cr_assert(strstr(err2.message,
                   "not a NumpyRandomKey checkpoint: item 'np_random_key' is missing") != NULL,
            "%s", err2.message);
}

/* A state tuple on disk whose position is out of range (written with the PyTree engine, as a
 * foreign writer could) is refused on restore rather than handed to the generator. */
Test(random_key, numpy_out_of_range_position_on_disk) {
  save_then_corrupt("np/np_random_key_metadata/metadata", "{\"legacy\": true}");
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", at("np/np_random_key"));
  cr_assert_eq(system(cmd), 0);
  cr_assert_eq(mkdir(at("np/np_random_key"), 0777), 0);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_tuple();
  int64_t shape[1] = {624};
  ckpt_array *key = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_UINT32, 1, shape, &key, &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_append(t, ckpt_tree_new_string("MT19937"), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_append(t, ckpt_tree_new_array(key), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_append(t, ckpt_tree_new_int(CKPT_DTYPE_INT64, 100000), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_append(t, ckpt_tree_new_int(CKPT_DTYPE_INT64, 0), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_append(t, ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, 0), &err), CKPT_OK);
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  cr_assert_eq(ckpt_pytree_save_sync(ckpt_io_default(), false, at("np/np_random_key"), &spec, &err),
               CKPT_OK, "%s", err.message);
  ckpt_tree_free(t);
  /* a hand-written item: the checkpoint's manifest no longer describes it */
  cr_assert_eq(unlink(at("np/_CHECKPOINT_CHECKSUMS")), 0);
  ckpt_numpy_rng *back = NULL;
  cr_assert_eq(restore_rng(at("np"), &back, &err), CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "MT19937 position 100000 is outside [0, 624]") != NULL, "%s",
            err.message);
}

/* ------------------------------------------------------------------ JAX */

static ckpt_jax_key *jax_key(int rows, bool typed) {
  ckpt_jax_key *key = calloc(1, sizeof *key);
  int64_t shape[2] = {rows, 2};
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(
      ckpt_array_new(CKPT_DTYPE_UINT32, rows ? 2 : 1, rows ? shape : shape + 1, &key->data, &err),
      CKPT_OK);
  uint32_t *d = ckpt_array_data(key->data);
  for (int64_t i = 0; i < ckpt_array_num_elements(key->data); i++)
    d[i] = (uint32_t)(i * 7919 + 1);
  key->typed = typed;
  return key;
}

static ckpt_status save_key(const char *path, ckpt_jax_key *key, ckpt_error *err) {
  ckpt_checkpointer *c = checkpointer(&ckpt_JaxRandomKeyCheckpointHandler_desc, NULL);
  ckpt_JaxRandomKeySave *args = ckpt_JaxRandomKeySave_new();
  args->item = key;
  ckpt_status st = ckpt_checkpointer_save(c, path, &args->base, false, NULL, err);
  close_checkpointer(c);
  args->item = NULL; /* the caller keeps the key */
  ckpt_args_delete(&args->base);
  return st;
}

static ckpt_status restore_key(const char *path, ckpt_jax_key **out, ckpt_error *err) {
  ckpt_checkpointer *c = checkpointer(&ckpt_JaxRandomKeyCheckpointHandler_desc, NULL);
  ckpt_JaxRandomKeyRestore *args = ckpt_JaxRandomKeyRestore_new();
  ckpt_value v;
  memset(&v, 0, sizeof v);
  *out = NULL;
  ckpt_status st = ckpt_checkpointer_restore(c, path, &args->base, &v, err);
  if (st == CKPT_OK) {
    cr_assert_eq(v.kind, CKPT_VALUE_JAX_KEY);
    *out = v.u.jax_key;
  }
  close_checkpointer(c);
  ckpt_args_delete(&args->base);
  return st;
}

Test(random_key, jax_layout_and_round_trip) {
  ckpt_jax_key *key = jax_key(0, true); /* a single key: shape (2,) */
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save_key(at("k"), key, &err), CKPT_OK, "%s", err.message);
  cr_assert_str_eq(slurp(at("k/jax_random_key_metadata/metadata")), "{\"typed\": true}");
  cJSON *z = json_file(at("k/jax_random_key/checkpoint/.zarray"));
  cr_assert_str_eq(cJSON_GetObjectItem(z, "dtype")->valuestring, "<u4");
  cJSON_Delete(z);
  cJSON *meta = json_file(at("k/jax_random_key/_METADATA"));
  cr_assert_not_null(
      cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "tree_metadata"), "('checkpoint',)"));
  cJSON_Delete(meta);
  ckpt_jax_key *back = NULL;
  cr_assert_eq(restore_key(at("k"), &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_jax_key_equal(key, back));
  ckpt_jax_key_free(back);

  /* A batch of untyped keys, shape (4, 2). */
  ckpt_jax_key *batch = jax_key(4, false);
  cr_assert_eq(save_key(at("b"), batch, &err), CKPT_OK, "%s", err.message);
  cr_assert_str_eq(slurp(at("b/jax_random_key_metadata/metadata")), "{\"typed\": false}");
  cr_assert_eq(restore_key(at("b"), &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_jax_key_equal(batch, back));
  cr_assert_eq(back->data->shape[0], 4);
  ckpt_jax_key_free(back);
  ckpt_jax_key_free(batch);
  ckpt_jax_key_free(key);
}

/* SaveArgs pass through to the array item (here: zstd compression). */
Test(random_key, jax_save_args_reach_the_array) {
  ckpt_jax_key *key = jax_key(8, true);
  ckpt_checkpointer *c = checkpointer(&ckpt_JaxRandomKeyCheckpointHandler_desc, NULL);
  ckpt_JaxRandomKeySave *args = ckpt_JaxRandomKeySave_new();
  args->item = key;
  args->has_save_args = true;
  args->save_args.compression = strdup("zstd");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, at("k"), &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  close_checkpointer(c);
  cJSON *z = json_file(at("k/jax_random_key/checkpoint/.zarray"));
  cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(z, "compressor"), "id")->valuestring,
                   "zstd");
  cJSON_Delete(z);
  ckpt_jax_key *back = NULL;
  cr_assert_eq(restore_key(at("k"), &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_jax_key_equal(key, back));
  ckpt_jax_key_free(back);
  ckpt_args_delete(&args->base);
}

Test(random_key, jax_bad_keys_and_metadata) {
  ckpt_jax_key *key = jax_key(2, true);
  ckpt_array *good = key->data;
  int64_t shape[1] = {2};
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_FLOAT32, 1, shape, &key->data, &err), CKPT_OK);
  cr_assert_eq(save_key(at("k"), key, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message,
                   "key data must be uint32 with a trailing implementation dim, "
                   "found a 1-d float32 array") != NULL,
            "%s", err.message);
  ckpt_array_free(key->data);
  key->data = good;

  ckpt_error err2 = CKPT_ERROR_INIT;
  cr_assert_eq(save_key(at("k"), key, &err2), CKPT_OK, "%s", err2.message);
  spit(at("k/jax_random_key_metadata/metadata"), "[true]");
  ckpt_jax_key *back = NULL;
  ckpt_error err3 = CKPT_ERROR_INIT;
  cr_assert_eq(restore_key(at("k"), &back, &err3), CKPT_ECORRUPT);
  cr_assert(strstr(err3.message,
                   "jax_random_key_metadata/metadata: expected a JSON object "
                   "{\"typed\": true|false}") != NULL,
            "%s", err3.message);
  ckpt_jax_key_free(key);
}

/* An async save of both key kinds: the metadata job and the engine's writes run in the
 * background after the args (and the caller's copies) are gone. */
Test(random_key, async_saves) {
  ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
  opts.async = true;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_NumpyRandomKeyCheckpointHandler_desc, &opts, &c, &err),
               CKPT_OK, "%s", err.message);
  ckpt_NumpyRandomKeySave *args = ckpt_NumpyRandomKeySave_new();
  args->item = seeded(12, 34);
  ckpt_numpy_rng expect = *args->item;
  cr_assert_eq(ckpt_checkpointer_save(c, at("np"), &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&args->base);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_numpy_rng *back = NULL;
  cr_assert_eq(restore_rng(at("np"), &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_numpy_rng_equal(&expect, back));
  ckpt_numpy_rng_free(back);

  cr_assert_eq(ckpt_checkpointer_new(&ckpt_JaxRandomKeyCheckpointHandler_desc, &opts, &c, &err),
               CKPT_OK, "%s", err.message);
  ckpt_JaxRandomKeySave *jargs = ckpt_JaxRandomKeySave_new();
  ckpt_jax_key *key = jax_key(5, true);
  jargs->item = calloc(1, sizeof *jargs->item);
  cr_assert_not_null(jargs->item);
  jargs->item->data = ckpt_array_clone(key->data);
  jargs->item->typed = true;
  cr_assert_eq(ckpt_checkpointer_save(c, at("jax"), &jargs->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&jargs->base);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_jax_key *kback = NULL;
  cr_assert_eq(restore_key(at("jax"), &kback, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_jax_key_equal(key, kback));
  ckpt_jax_key_free(kback);
  ckpt_jax_key_free(key);
}

/* ------------------------------------------------------------------ direct handler calls */

/* The handlers check their args type themselves (a Composite or a user may call them with
 * anything). */
Test(random_key, wrong_args_and_null_items) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_op *op = NULL;
  cr_assert_eq(ckpt_op_new(NULL, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);
  ckpt_handler *np = NULL, *jax = NULL;
  cr_assert_eq(ckpt_handler_create(&ckpt_NumpyRandomKeyCheckpointHandler_desc, &np, &err), CKPT_OK);
  cr_assert_eq(ckpt_handler_create(&ckpt_JaxRandomKeyCheckpointHandler_desc, &jax, &err), CKPT_OK);
  ckpt_JsonSave *json = ckpt_JsonSave_new();

  ckpt_error e1 = CKPT_ERROR_INIT;
  cr_assert_eq(np->desc->vtable->save(np, op, tmpdir, &json->base, &e1), CKPT_ETYPE);
  cr_assert(strstr(e1.message, "needs NumpyRandomKeySave args, got JsonSave") != NULL, "%s",
            e1.message);
  ckpt_error e2 = CKPT_ERROR_INIT;
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(jax->desc->vtable->restore(jax, op, tmpdir, &json->base, &v, &e2), CKPT_ETYPE);
  cr_assert(strstr(e2.message, "needs JaxRandomKeyRestore args, got JsonSave") != NULL, "%s",
            e2.message);

  ckpt_NumpyRandomKeySave *nps = ckpt_NumpyRandomKeySave_new();
  ckpt_error e3 = CKPT_ERROR_INIT;
  cr_assert_eq(np->desc->vtable->save(np, op, tmpdir, &nps->base, &e3), CKPT_EINVAL);
  cr_assert(strstr(e3.message, "the state is NULL") != NULL, "%s", e3.message);
  ckpt_JaxRandomKeySave *jks = ckpt_JaxRandomKeySave_new();
  ckpt_error e4 = CKPT_ERROR_INIT;
  cr_assert_eq(jax->desc->vtable->save(jax, op, tmpdir, &jks->base, &e4), CKPT_EINVAL);
  cr_assert(strstr(e4.message, "the key is NULL") != NULL, "%s", e4.message);
  cr_assert_eq(ckpt_op_pending(op), 0, "nothing was queued for refused saves");

  ckpt_args_delete(&jks->base);
  ckpt_args_delete(&nps->base);
  ckpt_args_delete(&json->base);
  ckpt_handler_destroy(np);
  ckpt_handler_destroy(jax);
  ckpt_op_free(op);
}

/* ------------------------------------------------------------------ fault injection */

typedef struct fault {
  uint64_t seen;    /* operations so far */
  uint64_t fail_at; /* fail the n-th operation (1-based) of any kind; 0 = never */
  int errnum;
  bool record; /* remember which operations touch this handler's own files */
  bool own[4096];
} fault;

static bool own_path(const char *path) {
  size_t n = strlen(path);
  return strstr(path, "np_random_key_metadata") != NULL ||
         (n >= 14 && strcmp(path + n - 14, "/np_random_key") == 0);
}

static int fail_nth(void *arg, ckpt_io_op op, const char *path) {
  (void)op;
  fault *f = arg;
  uint64_t k = ++f->seen;
  if (f->record && k < sizeof f->own)
    f->own[k] = path != NULL && own_path(path);
  return k == f->fail_at ? f->errnum : 0;
}

/* I/O calls of a numpy-key save failed in turn — every call on the handler's own files (item
 * directories, the metadata file and its directory fsyncs) and every eighth call elsewhere (the
 * PyTree engine and the commit protocol have sweeps of their own): the save reports the error
 * naming a path, no checkpoint appears, nothing leaks, and the next save succeeds. */
Test(random_key, io_failures_are_reported) {
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_numpy_rng *rng = seeded(77, 1);
  static fault f;
  memset(&f, 0, sizeof f);
  f.record = true;
  ckpt_io_set_fault(io, fail_nth, &f);
  cr_assert_eq(save_rng(at("count"), rng, io, &err), CKPT_OK, "%s", err.message);
  uint64_t total = f.seen;
  cr_assert_gt(total, 10);
  cr_assert_lt(total, sizeof f.own);
  uint64_t failed = 0, own = 0;
  for (uint64_t k = 1; k <= total; k++) {
    if (!f.own[k] && k % 8 != 0)
      continue;
    own += f.own[k];
    f.seen = 0;
    f.record = false;
    f.fail_at = k;
    f.errnum = k % 2 ? ENOSPC : EIO;
    ckpt_error e = CKPT_ERROR_INIT;
    ckpt_status st = save_rng(at("np"), rng, io, &e);
    if (st == CKPT_OK) {
      /* A call whose failure is harmless (e.g. a best-effort cleanup) must still leave a
       * complete checkpoint. */
      f.fail_at = 0;
      ckpt_numpy_rng *back = NULL;
      cr_assert_eq(restore_rng(at("np"), &back, &e), CKPT_OK, "k=%" PRIu64 ": %s", k, e.message);
      cr_assert(ckpt_numpy_rng_equal(rng, back));
      ckpt_numpy_rng_free(back);
    } else {
      failed++;
      cr_assert(st == CKPT_ENOSPC || st == CKPT_EIO, "k=%" PRIu64 ": %s: %s", k,
                ckpt_status_name(st), e.message);
      cr_assert(strstr(e.message, tmpdir) != NULL, "k=%" PRIu64 ": message names no path: %s", k,
                e.message);
      cr_assert_not(exists(at("np")), "k=%" PRIu64 ": a failed save left a checkpoint", k);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s.orbax-checkpoint-tmp", at("np"), at("np"));
    cr_assert_eq(system(cmd), 0);
  }
  cr_assert_geq(own, 4, "the handler's own calls were found (%" PRIu64 ")", own);
  cr_assert_gt(failed, own);
  f.fail_at = 0;
  ckpt_error e = CKPT_ERROR_INIT;
  cr_assert_eq(save_rng(at("np"), rng, io, &e), CKPT_OK, "%s", e.message);
  ckpt_io_set_fault(io, NULL, NULL);
  free(rng);
  ckpt_io_free(io);
}

/* ------------------------------------------------------------------ inside a Composite */

Test(random_key, composite_items_restore_by_typestr) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *c = ckpt_composite_new();
  ckpt_NumpyRandomKeySave *nps = ckpt_NumpyRandomKeySave_new();
  nps->item = seeded(3, 30);
  ckpt_numpy_rng expect_rng = *nps->item;
  ckpt_JaxRandomKeySave *jks = ckpt_JaxRandomKeySave_new();
  jks->item = jax_key(3, true);
  cr_assert_eq(ckpt_composite_add(c, "np_rng", &nps->base, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_composite_add(c, "jax_rng", &jks->base, &err), CKPT_OK, "%s", err.message);
  ckpt_checkpointer *cp = checkpointer(NULL, NULL);
  cr_assert_eq(ckpt_checkpointer_save(cp, at("step"), &c->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  close_checkpointer(cp);
  cr_assert(exists(at("step/np_rng/np_random_key/_METADATA")));
  cr_assert(exists(at("step/jax_rng/jax_random_key_metadata/metadata")));

  cp = checkpointer(NULL, NULL);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(cp, at("step"), NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  close_checkpointer(cp);
  const ckpt_value *np = ckpt_value_item_get(&v, "np_rng");
  const ckpt_value *jax = ckpt_value_item_get(&v, "jax_rng");
  cr_assert(np && np->kind == CKPT_VALUE_NUMPY_RNG);
  cr_assert(jax && jax->kind == CKPT_VALUE_JAX_KEY);
  cr_assert(ckpt_numpy_rng_equal(np->u.numpy_rng, &expect_rng));
  cr_assert(ckpt_jax_key_equal(jax->u.jax_key, jks->item));
  ckpt_value_free(&v);
  ckpt_args_delete(&c->base);
}
