/* test_interop_random.c — random-key checkpoints between C and Python (numpy, zarr-python).
 *
 * The peer is tests/interop/random_keys.py, which reads and writes Orbax's layout with zarr and
 * json only. A numpy state saved from C must restore in numpy with set_state and continue the
 * same stream as C's MT19937; a state Python wrote must restore in C and continue the stream
 * Python continues. The same for JAX key data (as arrays; no JAX needed). */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ckpt/ckpt.h"

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ckpt_interop_random_XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void) {
  nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(interop_random, .init = setup, .fini = teardown);

static char *path_in(const char *name) {
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, 512, "%s/%s", tmpdir, name);
  return p;
}

/* Runs random_keys.py with args and returns its JSON output (caller deletes). */
static cJSON *peer(const char *args) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s/tests/interop/random_keys.py %s", CKPT_PYTHON, CKPT_SOURCE_DIR,
           args);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t cap = 1 << 20, len = 0, got;
  char *buf = malloc(cap);
  while ((got = fread(buf + len, 1, cap - 1 - len, p)) > 0)
    len += got;
  buf[len] = '\0';
  int rc = pclose(p);
  cr_assert_eq(rc, 0, "python peer failed (%d) for: %s\n%s", rc, args, buf);
  cJSON *json = cJSON_Parse(buf);
  cr_assert_not_null(json, "peer printed no JSON: %.300s", buf);
  free(buf);
  return json;
}

static double hex_double(const cJSON *a, int i) {
  return strtod(cJSON_GetArrayItem(a, i)->valuestring, NULL);
}

/* rng must continue exactly as Python's RandomState did: N raw u32, N doubles, N normals. */
static void expect_same_stream(ckpt_numpy_rng *rng, const cJSON *py, int n) {
  const cJSON *u = cJSON_GetObjectItem(py, "u32");
  const cJSON *d = cJSON_GetObjectItem(py, "double");
  const cJSON *g = cJSON_GetObjectItem(py, "normal");
  cr_assert_eq(cJSON_GetArraySize(u), n);
  for (int i = 0; i < n; i++)
    cr_assert_eq(ckpt_numpy_rng_next_u32(rng), (uint32_t)cJSON_GetArrayItem(u, i)->valuedouble,
                 "u32 draw %d differs", i);
  for (int i = 0; i < n; i++) {
    double got = ckpt_numpy_rng_next_double(rng), want = hex_double(d, i);
    cr_assert(memcmp(&got, &want, sizeof got) == 0, "double draw %d: %a != %a", i, got, want);
  }
  for (int i = 0; i < n; i++) {
    double got = ckpt_numpy_rng_next_gaussian(rng), want = hex_double(g, i);
    cr_assert(memcmp(&got, &want, sizeof got) == 0, "normal draw %d: %a != %a", i, got, want);
  }
}

static void save_rng(const char *path, const ckpt_numpy_rng *state) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = NULL;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_NumpyRandomKeyCheckpointHandler_desc, NULL, &c, &err),
               CKPT_OK, "%s", err.message);
  ckpt_NumpyRandomKeySave *args = ckpt_NumpyRandomKeySave_new();
  args->item = malloc(sizeof *args->item);
  *args->item = *state;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(&args->base);
}

static ckpt_numpy_rng *restore_rng(const char *path) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = NULL;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_NumpyRandomKeyCheckpointHandler_desc, NULL, &c, &err),
               CKPT_OK, "%s", err.message);
  ckpt_NumpyRandomKeyRestore *args = ckpt_NumpyRandomKeyRestore_new();
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &args->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_NUMPY_RNG);
  ckpt_numpy_rng *rng = v.u.numpy_rng;
  v.kind = CKPT_VALUE_NONE;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(&args->base);
  return rng;
}

static void c_to_python(bool legacy) {
  ckpt_numpy_rng rng;
  ckpt_numpy_rng_seed(&rng, 31337);
  for (int i = 0; i < 500; i++)
    ckpt_numpy_rng_next_double(&rng);
  ckpt_numpy_rng_next_gaussian(&rng); /* leaves one cached: has_gauss = 1 */
  rng.legacy = legacy;
  cr_assert_eq(rng.has_gauss, 1);
  const char *path = path_in("np");
  save_rng(path, &rng);

  char args[600];
  snprintf(args, sizeof args, "read-np %s 1000", path);
  cJSON *py = peer(args);
  cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(py, "legacy")), legacy);
  cr_assert_eq((int64_t)cJSON_GetObjectItem(py, "pos")->valuedouble, rng.pos);
  expect_same_stream(&rng, py, 1000);
  cJSON_Delete(py);
}

Test(interop_random, numpy_legacy_state_from_c_continues_in_numpy) {
  c_to_python(true);
}
Test(interop_random, numpy_dict_state_from_c_continues_in_numpy) {
  c_to_python(false);
}

static void python_to_c(const char *form) {
  const char *path = path_in("np");
  char args[600];
  snprintf(args, sizeof args, "write-np %s 2718 777 %s", path, form);
  cJSON *py = peer(args);
  ckpt_numpy_rng *rng = restore_rng(path);
  cr_assert_eq(rng->legacy, strcmp(form, "legacy") == 0);
  cr_assert_eq(rng->pos, (int64_t)cJSON_GetObjectItem(py, "pos")->valuedouble);
  cr_assert_eq(rng->has_gauss, 1, "Python drew one normal, leaving its pair cached");
  expect_same_stream(rng, py, 1000);
  ckpt_numpy_rng_free(rng);
  cJSON_Delete(py);
}

Test(interop_random, numpy_legacy_state_from_python_continues_in_c) {
  python_to_c("legacy");
}
Test(interop_random, numpy_dict_state_from_python_continues_in_c) {
  python_to_c("dict");
}

/* A state round-tripped C → disk → C → disk → Python is still the same stream. */
Test(interop_random, numpy_state_survives_two_round_trips) {
  ckpt_numpy_rng rng;
  ckpt_numpy_rng_seed(&rng, 4242);
  for (int i = 0; i < 1000; i++)
    ckpt_numpy_rng_next_u32(&rng);
  save_rng(path_in("a"), &rng);
  ckpt_numpy_rng *back = restore_rng(path_in("a"));
  cr_assert(ckpt_numpy_rng_equal(&rng, back));
  save_rng(path_in("b"), back);
  char args[600];
  snprintf(args, sizeof args, "read-np %s 50", path_in("b"));
  cJSON *py = peer(args);
  expect_same_stream(&rng, py, 50);
  cJSON_Delete(py);
  ckpt_numpy_rng_free(back);
}

static ckpt_jax_key *make_key(void) {
  ckpt_jax_key *key = calloc(1, sizeof *key);
  int64_t shape[2] = {3, 2};
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_UINT32, 2, shape, &key->data, &err), CKPT_OK);
  uint32_t *d = ckpt_array_data(key->data);
  for (uint32_t i = 0; i < 6; i++)
    d[i] = i * 2654435761u;
  return key;
}

static void expect_key_data(const ckpt_jax_key *key, const cJSON *py) {
  const cJSON *shape = cJSON_GetObjectItem(py, "shape");
  cr_assert_eq(cJSON_GetArraySize(shape), key->data->ndim);
  for (int i = 0; i < key->data->ndim; i++)
    cr_assert_eq((int64_t)cJSON_GetArrayItem(shape, i)->valuedouble, key->data->shape[i]);
  const cJSON *data = cJSON_GetObjectItem(py, "data");
  const uint32_t *d = ckpt_array_data(key->data);
  for (int i = 0; i < cJSON_GetArraySize(data); i++)
    cr_assert_eq(d[i], (uint32_t)cJSON_GetArrayItem(data, i)->valuedouble, "key word %d", i);
  cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(py, "typed")), key->typed);
}

Test(interop_random, jax_key_from_c_reads_in_python) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = NULL;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_JaxRandomKeyCheckpointHandler_desc, NULL, &c, &err),
               CKPT_OK, "%s", err.message);
  ckpt_JaxRandomKeySave *args = ckpt_JaxRandomKeySave_new();
  args->item = make_key();
  args->item->typed = true;
  cr_assert_eq(ckpt_checkpointer_save(c, path_in("jax"), &args->base, false, NULL, &err), CKPT_OK,
               "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "read-jax %s", path_in("jax"));
  cJSON *py = peer(cmd);
  expect_key_data(args->item, py);
  cJSON_Delete(py);
  ckpt_args_delete(&args->base);
}

Test(interop_random, jax_key_from_python_restores_in_c) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "write-jax %s false", path_in("jax"));
  cJSON *py = peer(cmd);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = NULL;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_JaxRandomKeyCheckpointHandler_desc, NULL, &c, &err),
               CKPT_OK, "%s", err.message);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, path_in("jax"), NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_JAX_KEY);
  cr_assert_not(v.u.jax_key->typed);
  cr_assert_eq(v.u.jax_key->data->dtype, CKPT_DTYPE_UINT32);
  expect_key_data(v.u.jax_key, py);
  ckpt_value_free(&v);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  cJSON_Delete(py);
}
