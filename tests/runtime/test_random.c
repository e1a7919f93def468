/* test_random.c — ckpt's MT19937 against numpy's RandomState (the real one, run through
 * CKPT_PYTHON), and the equality / free helpers of ckpt/random.h. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ckpt/array.h"
#include "ckpt/random.h"

/* Runs a Python program with numpy and returns its stdout parsed as JSON (caller deletes). */
static cJSON *run_python_json(const char *program) {
  char path[] = "/tmp/ckpt_test_random_XXXXXX.py";
  int fd = mkstemps(path, 3);
  cr_assert(fd >= 0, "mkstemps failed");
  FILE *f = fdopen(fd, "w");
  cr_assert(f != NULL);
  fputs(program, f);
  fclose(f);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s %s", CKPT_PYTHON, path);
  FILE *p = popen(cmd, "r");
  cr_assert(p != NULL, "popen %s failed", cmd);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += got;
    if (len + 1 == cap)
      buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  int rc = pclose(p);
  remove(path);
  cr_assert_eq(rc, 0, "python failed (%d): %s", rc, buf);
  cJSON *json = cJSON_Parse(buf);
  cr_assert(json != NULL, "python printed no JSON: %.200s", buf);
  free(buf);
  return json;
}

static uint32_t json_u32(const cJSON *a, int i) {
  return (uint32_t)cJSON_GetArrayItem(a, i)->valuedouble;
}

/* np.random.RandomState(seed) for 32-bit integer seeds: the key, pos, has_gauss and gauss. */
Test(random, seeding_matches_numpy) {
  static const uint32_t seeds[] = {0, 1, 42, 5489, 123456789, 4294967295u};
  cJSON *out = run_python_json(
      "import json, numpy as np\n"
      "res = []\n"
      "for s in [0, 1, 42, 5489, 123456789, 4294967295]:\n"
      "    st = np.random.RandomState(s).get_state()\n"
      "    res.append({'key': [int(x) for x in st[1]], 'pos': st[2], 'has_gauss': st[3],\n"
      "                'gauss': st[4]})\n"
      "print(json.dumps(res))\n");
  for (int i = 0; i < (int)(sizeof seeds / sizeof seeds[0]); i++) {
    ckpt_numpy_rng rng;
    memset(&rng, 0xab, sizeof rng);
    ckpt_numpy_rng_seed(&rng, seeds[i]);
    const cJSON *st = cJSON_GetArrayItem(out, i);
    const cJSON *key = cJSON_GetObjectItem(st, "key");
    cr_assert_eq(cJSON_GetArraySize(key), CKPT_MT19937_N);
    for (int j = 0; j < CKPT_MT19937_N; j++)
      cr_assert_eq(rng.key[j], json_u32(key, j), "seed %" PRIu32 ": key[%d] differs", seeds[i], j);
    cr_assert_eq(rng.pos, (int64_t)cJSON_GetObjectItem(st, "pos")->valuedouble);
    cr_assert_eq(rng.has_gauss, 0);
    cr_assert_eq(rng.cached_gaussian, 0.0);
    cr_assert(rng.legacy, "a seeded state is the legacy tuple form, like get_state()");
  }
  cJSON_Delete(out);
}

/* The raw 32-bit stream (what randint(0, 2**32, dtype=uint32) and RandomState.bytes use) and
 * random_sample's doubles, across several block regenerations. */
Test(random, streams_match_numpy) {
  cJSON *out = run_python_json(
      "import json, numpy as np\n"
      "r = np.random.RandomState(20240521)\n"
      "u = [int(x) for x in r.randint(0, 2**32, size=2000, dtype=np.uint32)]\n"
      "d = [float(x).hex() for x in r.random_sample(1500)]\n"
      "u2 = [int(x) for x in r.randint(0, 2**32, size=700, dtype=np.uint32)]\n"
      "print(json.dumps({'u': u, 'd': d, 'u2': u2}))\n");
  ckpt_numpy_rng rng;
  ckpt_numpy_rng_seed(&rng, 20240521u);
  const cJSON *u = cJSON_GetObjectItem(out, "u");
  for (int i = 0; i < 2000; i++)
    cr_assert_eq(ckpt_numpy_rng_next_u32(&rng), json_u32(u, i), "u32 draw %d differs", i);
  const cJSON *d = cJSON_GetObjectItem(out, "d");
  for (int i = 0; i < 1500; i++) {
    double want = strtod(cJSON_GetArrayItem(d, i)->valuestring, NULL);
    double got = ckpt_numpy_rng_next_double(&rng);
    cr_assert(memcmp(&got, &want, sizeof got) == 0, "double draw %d: %a != %a", i, got, want);
    cr_assert(got >= 0.0 && got < 1.0);
  }
  const cJSON *u2 = cJSON_GetObjectItem(out, "u2");
  for (int i = 0; i < 700; i++)
    cr_assert_eq(ckpt_numpy_rng_next_u32(&rng), json_u32(u2, i), "u32 draw %d differs", i);
  cJSON_Delete(out);
}

/* A state taken mid-stream from numpy (pos not at a block boundary, a cached gaussian)
 * continues in C exactly as in numpy — the property the random-key handlers rely on. */
Test(random, continues_numpy_state) {
  cJSON *out = run_python_json(
      "import json, numpy as np\n"
      "r = np.random.RandomState(7)\n"
      "r.random_sample(311)\n"
      "r.standard_normal()\n"
      "st = r.get_state()\n"
      "g = [float(x).hex() for x in r.standard_normal(301)]\n"
      "d = [float(x).hex() for x in r.random_sample(900)]\n"
      "print(json.dumps({'key': [int(x) for x in st[1]], 'pos': st[2], 'has_gauss': st[3],\n"
      "                  'gauss': float(st[4]).hex(), 'g': g, 'd': d}))\n");
  ckpt_numpy_rng rng;
  memset(&rng, 0, sizeof rng);
  const cJSON *key = cJSON_GetObjectItem(out, "key");
  for (int j = 0; j < CKPT_MT19937_N; j++)
    rng.key[j] = json_u32(key, j);
  rng.pos = (int64_t)cJSON_GetObjectItem(out, "pos")->valuedouble;
  rng.has_gauss = (int64_t)cJSON_GetObjectItem(out, "has_gauss")->valuedouble;
  rng.cached_gaussian = strtod(cJSON_GetObjectItem(out, "gauss")->valuestring, NULL);
  cr_assert_eq(rng.has_gauss, 1, "an odd number of normals leaves one cached");
  cr_assert(rng.pos > 0 && rng.pos < CKPT_MT19937_N);
  const cJSON *g = cJSON_GetObjectItem(out, "g");
  for (int i = 0; i < 301; i++) {
    double want = strtod(cJSON_GetArrayItem(g, i)->valuestring, NULL);
    double got = ckpt_numpy_rng_next_gaussian(&rng);
    cr_assert(memcmp(&got, &want, sizeof got) == 0, "normal %d: %a != %a", i, got, want);
  }
  const cJSON *d = cJSON_GetObjectItem(out, "d");
  for (int i = 0; i < 900; i++) {
    double want = strtod(cJSON_GetArrayItem(d, i)->valuestring, NULL);
    double got = ckpt_numpy_rng_next_double(&rng);
    cr_assert(memcmp(&got, &want, sizeof got) == 0, "double %d after normals differs", i);
  }
  cJSON_Delete(out);
}

/* Reference values that do not need Python: the first outputs of MT19937 seeded with 5489
 * (the generator's published test vector) and numpy's first random_sample for seed 0. */
Test(random, known_vectors) {
  ckpt_numpy_rng rng;
  ckpt_numpy_rng_seed(&rng, 5489u);
  cr_assert_eq(ckpt_numpy_rng_next_u32(&rng), 3499211612u);
  cr_assert_eq(ckpt_numpy_rng_next_u32(&rng), 581869302u);
  cr_assert_eq(ckpt_numpy_rng_next_u32(&rng), 3890346734u);
  for (int i = 3; i < 9999; i++)
    ckpt_numpy_rng_next_u32(&rng);
  cr_assert_eq(ckpt_numpy_rng_next_u32(&rng), 4123659995u, "the 10000th output of mt19937");
  ckpt_numpy_rng_seed(&rng, 0);
  double first = ckpt_numpy_rng_next_double(&rng);
  cr_assert_eq(first, 0.5488135039273248, "%a", first);
}

/* A hand-made state with an out-of-range position must not read outside the key. */
Test(random, bad_position_is_memory_safe) {
  ckpt_numpy_rng rng;
  ckpt_numpy_rng_seed(&rng, 3);
  ckpt_numpy_rng ref = rng;
  rng.pos = -5;
  ref.pos = CKPT_MT19937_N;
  cr_assert_eq(ckpt_numpy_rng_next_u32(&rng), ckpt_numpy_rng_next_u32(&ref));
  rng.pos = 100000;
  ckpt_numpy_rng_next_u32(&rng);
  cr_assert_eq(rng.pos, 1);
}

Test(random, numpy_rng_equal) {
  ckpt_numpy_rng *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
  ckpt_numpy_rng_seed(a, 11);
  *b = *a;
  cr_assert(ckpt_numpy_rng_equal(a, b));
  cr_assert(ckpt_numpy_rng_equal(NULL, NULL));
  cr_assert_not(ckpt_numpy_rng_equal(a, NULL));
  b->key[623] ^= 1;
  cr_assert_not(ckpt_numpy_rng_equal(a, b));
  b->key[623] ^= 1;
  b->pos = 3;
  cr_assert_not(ckpt_numpy_rng_equal(a, b));
  b->pos = a->pos;
  b->has_gauss = 1;
  cr_assert_not(ckpt_numpy_rng_equal(a, b));
  b->has_gauss = 0;
  b->legacy = !a->legacy;
  cr_assert_not(ckpt_numpy_rng_equal(a, b));
  b->legacy = a->legacy;
  a->cached_gaussian = b->cached_gaussian = NAN;
  cr_assert(ckpt_numpy_rng_equal(a, b), "a NaN cached value equals itself bit for bit");
  b->cached_gaussian = -0.0;
  a->cached_gaussian = 0.0;
  cr_assert_not(ckpt_numpy_rng_equal(a, b));
  ckpt_numpy_rng_free(a);
  ckpt_numpy_rng_free(b);
  ckpt_numpy_rng_free(NULL);
}

static ckpt_jax_key *make_key(uint32_t k0, uint32_t k1, bool typed, const char *impl) {
  ckpt_jax_key *key = calloc(1, sizeof *key);
  int64_t shape[1] = {2};
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_UINT32, 1, shape, &key->data, &err), CKPT_OK, "%s",
               err.message);
  uint32_t *d = ckpt_array_data(key->data);
  d[0] = k0;
  d[1] = k1;
  key->typed = typed;
  key->impl = impl ? strdup(impl) : NULL;
  return key;
}

Test(random, jax_key_equal_and_free) {
  ckpt_jax_key *a = make_key(0, 42, true, NULL), *b = make_key(0, 42, true, NULL);
  cr_assert(ckpt_jax_key_equal(a, b));
  cr_assert(ckpt_jax_key_equal(NULL, NULL));
  cr_assert_not(ckpt_jax_key_equal(a, NULL));
  b->typed = false;
  cr_assert_not(ckpt_jax_key_equal(a, b));
  b->typed = true;
  b->impl = strdup("rbg");
  cr_assert_not(ckpt_jax_key_equal(a, b));
  ckpt_jax_key *c = make_key(0, 43, true, NULL);
  cr_assert_not(ckpt_jax_key_equal(a, c));
  ckpt_jax_key_free(a);
  ckpt_jax_key_free(b);
  ckpt_jax_key_free(c);
  ckpt_jax_key_free(NULL);
}
