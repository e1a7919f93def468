/* random.c — random-number-generator state types of ckpt/random.h and an MT19937 that is
 * bit-identical to numpy's legacy RandomState.
 *
 * Why a generator at all: a training loop written in C that checkpoints numpy's RandomState
 * state (NumpyRandomKeySave) must be able to continue the very same stream after a restore,
 * whether the state came from Python or from C. So seeding, the raw 32-bit output and
 * random_sample's double follow numpy's C sources (numpy/random/src/mt19937 and legacy):
 *   - RandomState(seed) with an integer seed in [0, 2**32) runs init_genrand(seed) and leaves
 *     pos = 624 (the first draw regenerates the whole block), has_gauss = 0, gauss = 0.0;
 *   - genrand_int32: regenerate the block when pos reaches 624, then temper key[pos++];
 *   - random_sample: (a * 2**26 + b) / 2**53 with a = next >> 5, b = next >> 6;
 *   - standard_normal: the legacy polar method, whose second value is cached in the state
 *     (has_gauss, gauss) — which is why those two fields are part of what Orbax saves. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/random.h"

enum {
  MT_N = CKPT_MT19937_N,
  MT_M = 397,
};

#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER_MASK 0x80000000u
#define MT_LOWER_MASK 0x7fffffffu

void ckpt_jax_key_free(ckpt_jax_key *key) {
  if (key == NULL)
    return;
  ckpt_array_free(key->data);
  free(key->impl);
  free(key);
}

static bool same_string(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

bool ckpt_jax_key_equal(const ckpt_jax_key *a, const ckpt_jax_key *b) {
  if (a == NULL || b == NULL)
    return a == b;
  if (a->typed != b->typed || !same_string(a->impl, b->impl))
    return false;
  if (a->data == NULL || b->data == NULL)
    return a->data == b->data;
  return ckpt_array_equal(a->data, b->data);
}

void ckpt_numpy_rng_free(ckpt_numpy_rng *rng) {
  free(rng);
}

bool ckpt_numpy_rng_equal(const ckpt_numpy_rng *a, const ckpt_numpy_rng *b) {
  if (a == NULL || b == NULL)
    return a == b;
  /* cached_gaussian compares by bits: a NaN state must equal itself and -0.0 differs from 0.0
   * in what the next draw returns. */
  return memcmp(a->key, b->key, sizeof a->key) == 0 && a->pos == b->pos &&
         a->has_gauss == b->has_gauss &&
         memcmp(&a->cached_gaussian, &b->cached_gaussian, sizeof(double)) == 0 &&
         a->legacy == b->legacy;
}

void ckpt_numpy_rng_seed(ckpt_numpy_rng *rng, uint32_t seed) {
  rng->key[0] = seed;
  for (uint32_t i = 1; i < MT_N; i++) {
    uint32_t prev = rng->key[i - 1];
    rng->key[i] = 1812433253u * (prev ^ (prev >> 30)) + i;
  }
  rng->pos = MT_N;
  rng->has_gauss = 0;
  rng->cached_gaussian = 0.0;
  /* RandomState.get_state() returns the tuple form, which Orbax records as legacy. */
  rng->legacy = true;
}

/* Regenerates the whole block of 624 words (numpy's mt19937_gen). */
static void mt_generate(uint32_t *key) {
  int i;
  uint32_t y;
  for (i = 0; i < MT_N - MT_M; i++) {
    y = (key[i] & MT_UPPER_MASK) | (key[i + 1] & MT_LOWER_MASK);
    key[i] = key[i + MT_M] ^ (y >> 1) ^ ((0u - (y & 1u)) & MT_MATRIX_A);
  }
  for (; i < MT_N - 1; i++) {
    y = (key[i] & MT_UPPER_MASK) | (key[i + 1] & MT_LOWER_MASK);
    key[i] = key[i + (MT_M - MT_N)] ^ (y >> 1) ^ ((0u - (y & 1u)) & MT_MATRIX_A);
  }
  y = (key[MT_N - 1] & MT_UPPER_MASK) | (key[0] & MT_LOWER_MASK);
  key[MT_N - 1] = key[MT_M - 1] ^ (y >> 1) ^ ((0u - (y & 1u)) & MT_MATRIX_A);
}

uint32_t ckpt_numpy_rng_next_u32(ckpt_numpy_rng *rng) {
  /* A restored state may carry any pos; numpy treats pos >= 624 as "block exhausted", and a
   * negative pos cannot come from a valid state (the handler rejects it), but stay memory-safe
   * for a caller that built a state by hand. */
  if (rng->pos >= MT_N || rng->pos < 0) {
    mt_generate(rng->key);
    rng->pos = 0;
  }
  uint32_t y = rng->key[rng->pos++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

double ckpt_numpy_rng_next_double(ckpt_numpy_rng *rng) {
  uint32_t a = ckpt_numpy_rng_next_u32(rng) >> 5;
  uint32_t b = ckpt_numpy_rng_next_u32(rng) >> 6;
  return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

double ckpt_numpy_rng_next_gaussian(ckpt_numpy_rng *rng) {
  if (rng->has_gauss) {
    double cached = rng->cached_gaussian;
    rng->has_gauss = 0;
    rng->cached_gaussian = 0.0;
    return cached;
  }
  double x1, x2, r2;
  do {
    x1 = 2.0 * ckpt_numpy_rng_next_double(rng) - 1.0;
    x2 = 2.0 * ckpt_numpy_rng_next_double(rng) - 1.0;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1.0 || r2 == 0.0);
  double f = sqrt(-2.0 * log(r2) / r2);
  rng->cached_gaussian = f * x1;
  rng->has_gauss = 1;
  return f * x2;
}
