/* ckpt/random.h — random-number-generator state as Orbax's random-key handlers store it. */
#ifndef CKPT_RANDOM_H
#define CKPT_RANDOM_H

#include <stdbool.h>
#include <stdint.h>

#include "ckpt/api.h"
#include "ckpt/array.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A JAX PRNG key: the raw uint32 key data (trailing implementation dimension, e.g. (..., 2)
 * for threefry) and whether it was a typed key. */
struct ckpt_jax_key {
  ckpt_array *data; /* owned; dtype uint32 */
  bool typed;
  char *impl;       /* implementation name ("threefry2x32") or NULL for the default */
};

#define CKPT_MT19937_N 624

/* numpy's legacy MT19937 state: np.random.get_state() → ("MT19937", key, pos, has_gauss,
 * cached_gaussian). */
struct ckpt_numpy_rng {
  uint32_t key[CKPT_MT19937_N];
  int64_t pos;
  int64_t has_gauss;
  double cached_gaussian;
  bool legacy; /* saved from the tuple form (Orbax's {"legacy": true}) */
};

typedef struct ckpt_jax_key ckpt_jax_key;
typedef struct ckpt_numpy_rng ckpt_numpy_rng;

/* Free the struct and what it owns (data, impl); the structs are heap-allocated (malloc/calloc)
 * wherever the runtime creates them. NULL is a no-op. */
CKPT_API void ckpt_jax_key_free(ckpt_jax_key *key);
CKPT_API bool ckpt_jax_key_equal(const ckpt_jax_key *a, const ckpt_jax_key *b);
CKPT_API void ckpt_numpy_rng_free(ckpt_numpy_rng *rng);
CKPT_API bool ckpt_numpy_rng_equal(const ckpt_numpy_rng *a, const ckpt_numpy_rng *b);

/* MT19937 exactly as numpy's RandomState: seeding with a 32-bit seed (init_genrand), and the
 * next uint32 / double in [0, 1) (random_sample's 53-bit construction). Seeding sets every
 * field: pos = 624, no cached normal, legacy = true (get_state() returns the tuple form). */
CKPT_API void ckpt_numpy_rng_seed(ckpt_numpy_rng *rng, uint32_t seed);
CKPT_API uint32_t ckpt_numpy_rng_next_u32(ckpt_numpy_rng *rng);
CKPT_API double ckpt_numpy_rng_next_double(ckpt_numpy_rng *rng);
/* The next standard normal as RandomState.standard_normal() draws it (numpy's legacy polar
 * method, which caches every second value in has_gauss / cached_gaussian). Bit-identical to
 * numpy when both use the same libm (log, sqrt). */
CKPT_API double ckpt_numpy_rng_next_gaussian(ckpt_numpy_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
