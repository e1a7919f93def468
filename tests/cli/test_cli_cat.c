/* test_cli_cat.c — `ckpt cat`: arrays print exactly as numpy prints them (the Python peer reads
 * the same zarr arrays with zarr-python and prints them with numpy: every dtype, positional and
 * scientific notation, NaN/inf, line wrapping, 3-D, numpy's "..." summaries); statistics of big
 * arrays agree with numpy's; scalars, strings, JSON values and proto text print plainly; KEY is
 * resolved with or without the item; errors exit 2, damaged data exits 1. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_cli_support.h"

static char *dir;

static void setup(void) {
  dir = tc_mkdtemp();
}
static void teardown(void) {
  tc_rmdir(dir);
  dir = NULL;
}

TestSuite(cli_cat, .init = setup, .fini = teardown);

static void set(ckpt_tree *t, const char *key, ckpt_tree *child) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_dict_set(t, key, child, &err), CKPT_OK, "%s", err.message);
}

/* Deterministic pseudo-random doubles in (-scale, scale). */
static void fill_random(double *v, size_t n, double scale, uint64_t seed) {
  uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = ((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0) * scale;
  }
}

static ckpt_tree *complex_array(ckpt_dtype dt, int ndim, const int64_t *shape, const double *re,
                                const double *im) {
  ckpt_array *a = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new(dt, ndim, shape, &a, &err), CKPT_OK);
  int64_t n = ckpt_array_num_elements(a);
  unsigned char *d = ckpt_array_data(a);
  for (int64_t i = 0; i < n; i++) {
    if (dt == CKPT_DTYPE_COMPLEX64) {
      float p[2] = {(float)re[i], (float)im[i]};
      memcpy(d + i * 8, p, 8);
    } else {
      double p[2] = {re[i], im[i]};
      memcpy(d + i * 16, p, 16);
    }
  }
  return ckpt_tree_new_array(a);
}

/* A single-item checkpoint whose leaves exercise numpy's printing rules. */
static char *numpy_fixture(void) {
  char *ck = tc_join(dir, "np");
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t s43[] = {4, 3}, s57[] = {5, 7}, s3[] = {3}, s4[] = {4}, s2[] = {2}, s34[] = {3, 4},
          s50[] = {50}, s10[] = {10}, s5[] = {5}, s22[] = {2, 2}, s234[] = {2, 3, 4},
          s1000[] = {1000}, s4060[] = {40, 60}, s10820[] = {10, 8, 20}, s03[] = {0, 3}, s6[] = {6};
  set(t, "f32_grid", tc_array(CKPT_DTYPE_FLOAT32, 2, s43, NULL));
  double r35[35];
  fill_random(r35, 35, 3.0, 1);
  set(t, "f64_rand", tc_array(CKPT_DTYPE_FLOAT64, 2, s57, r35));
  set(t, "f64_exp", tc_array(CKPT_DTYPE_FLOAT64, 1, s3, (double[]){1e-5, 1.0, 123456.0}));
  set(t, "f32_large", tc_array(CKPT_DTYPE_FLOAT32, 1, s3, (double[]){1e10, 2.5, -3.0}));
  set(t, "f64_nonfinite",
      tc_array(CKPT_DTYPE_FLOAT64, 1, s4, (double[]){NAN, 1.5, -INFINITY, 2.0}));
  set(t, "f32_allnan", tc_array(CKPT_DTYPE_FLOAT32, 1, s2, (double[]){NAN, NAN}));
  set(t, "f64_signs", tc_array(CKPT_DTYPE_FLOAT64, 1, s4, (double[]){-1.25, 0.0, 3.5, -0.0}));
  set(t, "f64_wide", tc_array(CKPT_DTYPE_FLOAT64, 1, s3, (double[]){123456.789, 0.001, 1e-300}));
  set(t, "f32_tenths",
      tc_array(CKPT_DTYPE_FLOAT32, 1, s6,
               (double[]){0.1, 0.2, 0.3, 1.0 / 3.0, 2.0 / 3.0, 100.125}));
  double i34[12];
  for (int i = 0; i < 12; i++)
    i34[i] = (i - 5) * 37;
  set(t, "i32", tc_array(CKPT_DTYPE_INT32, 2, s34, i34));
  double i50[50];
  for (int i = 0; i < 50; i++)
    i50[i] = (double)i * i * 1000003.0 - 7e8;
  set(t, "i64_long", tc_array(CKPT_DTYPE_INT64, 1, s50, i50));
  double u10[10];
  for (int i = 0; i < 10; i++)
    u10[i] = i * 29 % 256;
  set(t, "u8", tc_array(CKPT_DTYPE_UINT8, 1, s10, u10));
  set(t, "bools", tc_array(CKPT_DTYPE_BOOL, 1, s5, (double[]){1, 0, 1, 1, 0}));
  set(t, "c64",
      complex_array(CKPT_DTYPE_COMPLEX64, 1, s3, (double[]){1, 3.5, -0.5},
                    (double[]){2, -1, 0.25}));
  set(t, "c128",
      complex_array(CKPT_DTYPE_COMPLEX128, 2, s22, (double[]){1e-3, NAN, 0, 2},
                    (double[]){1e3, 1, INFINITY, -2}));
  set(t, "f16", tc_array(CKPT_DTYPE_FLOAT16, 1, s4, (double[]){0.1, 0.2, 65504, -1.5}));
  set(t, "cube", tc_array(CKPT_DTYPE_FLOAT32, 3, s234, NULL));
  double k1000[1000];
  for (int i = 0; i < 1000; i++)
    k1000[i] = i * 7 % 1000;
  set(t, "ints1000", tc_array(CKPT_DTYPE_INT32, 1, s1000, k1000));
  double big[2400];
  fill_random(big, 2400, 100.0, 2);
  set(t, "big", tc_array(CKPT_DTYPE_FLOAT32, 2, s4060, big));
  double big3[1600];
  for (int i = 0; i < 1600; i++)
    big3[i] = (i * 31) % 2000 - 1000;
  set(t, "big3d", tc_array(CKPT_DTYPE_INT16, 3, s10820, big3));
  set(t, "empty", tc_array(CKPT_DTYPE_FLOAT32, 2, s03, NULL));
  set(t, "s_f32", ckpt_tree_new_float(CKPT_DTYPE_FLOAT32, 0.1));
  set(t, "s_f64", ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, 1e20));
  set(t, "s_f64_int", ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, 2.0));
  set(t, "s_i64", ckpt_tree_new_int(CKPT_DTYPE_INT64, -7));
  ckpt_scalar sb = {.dtype = CKPT_DTYPE_BOOL, .v.b = true};
  set(t, "s_bool", ckpt_tree_new_scalar(sb));
  tc_save_standard(ck, t, NULL, 0, false);
  return ck;
}

/* Prints every key with ckpt (option may be NULL) and with numpy (one Python run for all of
 * them) and requires the same text. */
static void same_as_numpy(const char *ck, const char *const *keys, size_t n, const char *option) {
  const char *argv[64] = {"print"};
  cr_assert_lt(n, 60);
  for (size_t i = 0; i < n; i++)
    argv[i + 1] = tc_join(ck, keys[i]);
  argv[n + 1] = NULL;
  tc_run theirs;
  tc_peer(&theirs, argv);
  const char *np = theirs.out;
  for (size_t i = 0; i < n; i++) {
    tc_run mine;
    if (option)
      TC_TOOL(&mine, "cat", option, ck, keys[i]);
    else
      TC_TOOL(&mine, "cat", ck, keys[i]);
    cr_assert_eq(mine.status, 0, "cat %s: %s", keys[i], mine.err);
    const char *end = strstr(np, "<<END>>\n");
    cr_assert_not_null(end, "peer output ended early: %s", theirs.out);
    size_t len = (size_t)(end - np);
    cr_assert(strlen(mine.out) == len && strncmp(mine.out, np, len) == 0,
              "%s: ckpt printed\n%snumpy printed\n%.*s", keys[i], mine.out, (int)len, np);
    np = end + strlen("<<END>>\n");
    tc_run_free(&mine);
  }
  tc_run_free(&theirs);
  for (size_t i = 0; i < n; i++)
    free((char *)argv[i + 1]);
}

Test(cli_cat, arrays_print_as_numpy_prints_them) {
  char *ck = numpy_fixture();
  static const char *const keys[] = {
      "f32_grid",  "f64_rand", "f64_exp",    "f32_large", "f64_nonfinite", "f32_allnan",
      "f64_signs", "f64_wide", "f32_tenths", "i32",       "i64_long",      "u8",
      "bools",     "c64",      "c128",       "f16",       "cube",          "ints1000",
      "empty",     "s_f32",    "s_f64",      "s_f64_int", "s_i64",         "s_bool"};
  same_as_numpy(ck, keys, sizeof keys / sizeof keys[0], NULL);
  free(ck);
}

Test(cli_cat, large_arrays_summarised_as_numpy_with_values) {
  char *ck = numpy_fixture();
  static const char *const keys[] = {"big", "big3d"};
  same_as_numpy(ck, keys, 2, "--values");
  free(ck);
}

Test(cli_cat, large_array_gets_statistics) {
  char *ck = numpy_fixture();
  tc_run r;
  TC_TOOL(&r, "cat", ck, "big3d");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tc_golden("cat_stats.txt", r.out);
  tc_run_free(&r);
  /* small arrays too, when asked */
  TC_TOOL(&r, "cat", "--stats", ck, "f64_nonfinite");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "nan    1\ninf    1\n"), "%s", r.out);
  cr_assert(strstr(r.out, "min    1.5\nmax    2.0\n"), "%s", r.out);
  tc_run_free(&r);
  free(ck);
}

static double field(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItem(o, k);
  cr_assert(cJSON_IsNumber(v), "%s is not a number", k);
  return v->valuedouble;
}

Test(cli_cat, statistics_agree_with_numpy) {
  char *ck = tc_join(dir, "stats");
  int64_t shape[] = {300, 400};
  size_t n = 120000;
  double *v = malloc(n * sizeof *v);
  fill_random(v, n, 50.0, 3);
  v[17] = NAN;
  v[18] = NAN;
  v[1000] = INFINITY;
  v[2000] = -INFINITY;
  for (size_t i = 5000; i < 5100; i++)
    v[i] = 0;
  ckpt_tree *t = ckpt_tree_new_dict();
  set(t, "x", tc_array(CKPT_DTYPE_FLOAT32, 2, shape, v));
  free(v);
  /* small chunks, so the statistics run over many chunks and several slabs */
  tc_save_standard(ck, t, "x", 40000, true);
  tc_run r, p;
  TC_TOOL(&r, "cat", "--json", ck, "x");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cJSON *doc = cJSON_Parse(r.out);
  cr_assert_not_null(doc, "%s", r.out);
  cJSON *s = cJSON_GetObjectItem(doc, "stats");
  cr_assert_not_null(s, "%s", r.out);
  char *adir = tc_join(ck, "x");
  TC_PEER(&p, "stats", adir);
  double want[8];
  const char *line = p.out;
  for (int i = 0; i < 8; i++) {
    want[i] = strtod(line, NULL);
    line = strchr(line, '\n') + 1;
  }
  cr_assert_eq(field(s, "count"), want[0]);
  cr_assert_eq(field(s, "nan"), want[1]);
  cr_assert_eq(field(s, "inf"), want[2]);
  cr_assert_eq(field(s, "zeros"), want[3]);
  cr_assert_eq(field(s, "min"), want[4]);
  cr_assert_eq(field(s, "max"), want[5]);
  cr_assert_lt(fabs(field(s, "mean") - want[6]), 1e-9 * fabs(want[7]));
  cr_assert_lt(fabs(field(s, "std") - want[7]), 1e-9 * want[7]);
  cJSON_Delete(doc);
  tc_run_free(&r);
  tc_run_free(&p);
  free(adir);
  free(ck);
}

Test(cli_cat, json_values) {
  char *ck = numpy_fixture();
  tc_run r;
  TC_TOOL(&r, "cat", "--json", ck, "c64");
  cr_assert_eq(r.status, 0, "%s", r.err);
  char *norm = tc_normalize(r.out, dir);
  cr_assert_str_eq(norm,
                   "{\"path\": \"<DIR>/np\", \"item\": null, \"kind\": \"pytree\", \"key\": "
                   "\"c64\", \"value_type\": \"np.ndarray\", \"dtype\": \"complex64\", \"shape\": "
                   "[3], \"values\": [[1.0, 2.0], [3.5, -1.0], [-0.5, 0.25]]}\n");
  free(norm);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", "--json", ck, "f64_nonfinite");
  cr_assert(strstr(r.out, "\"values\": [\"nan\", 1.5, \"-inf\", 2.0]"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", "--json", ck, "f32_tenths");
  cr_assert(strstr(r.out, "[0.1, 0.2, 0.3, 0.33333334, 0.6666667, 100.125]"),
            "float32 values in their shortest form: %s", r.out);
  tc_run_free(&r);
  free(ck);
}

Test(cli_cat, items_and_keys_of_a_composite) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  struct {
    const char *args[4];
    const char *out;
  } cases[] = {
      {{"params/layer0.b"}, "[ 0.25 -1.5   3.  ]\n"},
      {{"layer0.b"}, "[ 0.25 -1.5   3.  ]\n"},
      {{"--item", "params", "step"}, "100\n"},
      {{"params/lr"}, "0.001\n"},
      {{"config"}, "{\"lr\": 0.001, \"layers\": [4, 3], \"name\": \"mlp\"}\n"},
      {{"config/name"}, "mlp\n"},
      {{"config/layers.1"}, "3\n"},
      {{"run"}, "name: \"baseline\"\nseed: 1234\nhosts: \"w0\"\nhosts: \"w1\"\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *argv[8] = {"cat"};
    size_t n = 1;
    size_t k = 0;
    for (; cases[i].args[k] && cases[i].args[k][0] == '-'; k += 2) {
      argv[n++] = cases[i].args[k];
      argv[n++] = cases[i].args[k + 1];
    }
    argv[n++] = ck;
    argv[n++] = cases[i].args[k];
    argv[n] = NULL;
    tc_run r;
    tc_tool(&r, argv);
    cr_assert_eq(r.status, 0, "case %zu: %s", i, r.err);
    cr_assert_str_eq(r.out, cases[i].out, "case %zu", i);
    tc_run_free(&r);
  }
  free(ck);
}

Test(cli_cat, key_errors_exit_2) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  struct {
    const char *key, *msg;
  } cases[] = {
      {"params/nope", "item 'params' has no leaf 'nope'"},
      {"params/layer0", "'layer0' is a subtree of item 'params' with 2 leaves: layer0.b, layer0.w"},
      {"params", "'params' is a PyTree item; name one of its 5 leaves"},
      {"config/missing", "JSON item 'config' has no value at 'missing'"},
      {"run/name", "'run' is a proto item, printed whole"},
      {"nothing", "has no item or leaf 'nothing' (items: config params run)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tc_run r;
    TC_TOOL(&r, "cat", ck, cases[i].key);
    cr_assert_eq(r.status, 2, "%s: exit %d", cases[i].key, r.status);
    cr_assert(strstr(r.err, cases[i].msg), "%s: %s", cases[i].key, r.err);
    cr_assert_str_eq(r.out, "");
    tc_run_free(&r);
  }
  free(ck);
}

Test(cli_cat, ambiguous_leaf_needs_the_item) {
  char *m = tc_join(dir, "ckpt");
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *c = ckpt_composite_new();
  for (int i = 0; i < 2; i++) {
    ckpt_tree *t = ckpt_tree_new_dict();
    set(t, "w", ckpt_tree_new_int(CKPT_DTYPE_INT32, i));
    ckpt_StandardSave *s = ckpt_StandardSave_new();
    s->item = t;
    ckpt_composite_add(c, i ? "b" : "a", &s->base, &err);
  }
  tc_save_args(NULL, m, &c->base);
  tc_run r;
  TC_TOOL(&r, "cat", m, "w");
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "several items have a leaf 'w'"), "%s", r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", m, "b/w");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "1\n");
  tc_run_free(&r);
  free(m);
}

Test(cli_cat, string_leaf) {
  char *p = tc_join(dir, "strings");
  ckpt_tree *t = ckpt_tree_new_dict();
  set(t, "opt", ckpt_tree_new_string("adam, β=0.9"));
  ckpt_PyTreeSave *s = ckpt_PyTreeSave_new();
  s->item = t;
  tc_save_args(&ckpt_PyTreeCheckpointHandler_desc, p, &s->base);
  tc_run r;
  TC_TOOL(&r, "cat", p, "opt");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "adam, β=0.9\n");
  tc_run_free(&r);
  free(p);
}

Test(cli_cat, manager_directory_latest_or_step) {
  char *m = tc_join(dir, "run");
  tc_save_step(m, "ckpt", 0, 3, 1.0);
  tc_save_step(m, "ckpt", 0, 8, 0.5);
  tc_run r;
  TC_TOOL(&r, "cat", m, "w");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "[ 8. -8.]\n");
  tc_run_free(&r);
  TC_TOOL(&r, "cat", "--step", "3", m, "default/step");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "3\n");
  tc_run_free(&r);
  TC_TOOL(&r, "cat", m, "metrics/loss");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "0.5\n");
  tc_run_free(&r);
  TC_TOOL(&r, "cat", "--step", "4", m, "w");
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "cat: '") && strstr(r.err, "' has no finalized step 4\n"), "%s", r.err);
  tc_run_free(&r);
  free(m);
}

Test(cli_cat, damaged_chunk_exits_1_naming_it) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  char *c = tc_join2(ck, "params/layer0.w", "1.0");
  tc_flip_bit(c, 2);
  tc_run r;
  TC_TOOL(&r, "cat", ck, "params/layer0.w");
  cr_assert_eq(r.status, 1, "%s", r.out);
  cr_assert(strstr(r.err, "array 'layer0.w': chunk '1.0' is corrupt"), "%s", r.err);
  tc_run_free(&r);
  free(c);
  free(ck);
}
