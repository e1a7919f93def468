/* state_gen.h — the deterministic transformer-like model state of the model_state example: its
 * layout, the generator that fills every leaf from (seed, parameter name, element index), the
 * per-leaf fingerprint printed by both processes, and the threefry2x32 block function used to
 * continue the JAX key's stream.
 *
 * Everything here is defined so that numpy can recompute it exactly (check_zarr.py does):
 *   z(i)      = splitmix64(mix(seed, fnv1a64(name)) + (i + 1) * 0x9E3779B97F4A7C15)
 *   float32   = ((z >> 40) - 2^23) * 2^-26        (a 24-bit integer times a power of two)
 *   bfloat16  = ((z >> 56) - 128) * 2^-10          (8 significant bits: exactly a bfloat16)
 *   names containing ".nu." (second moments) take the absolute value.
 * No rounding happens anywhere, so the values are the same bits in C and in numpy. */
#ifndef MODEL_STATE_STATE_GEN_H
#define MODEL_STATE_STATE_GEN_H

#include <stdint.h>
#include <stdio.h>

#include <ckpt/ckpt.h>

/* Sizes of the model: vocabulary, model width, MLP width, number of layers. */
#define MS_VOCAB 512
#define MS_D 64
#define MS_F 256
#define MS_LAYERS 4

uint64_t ms_fnv1a64(const void *data, size_t n);
uint64_t ms_splitmix64(uint64_t x);

/* The state item (StandardSave): {"params": ..., "opt_state": {"mu": bfloat16 copy of params,
 * "nu": float32}, "step": int64, "learning_rate": float64}. NULL when memory runs out; the
 * caller owns the tree (ckpt_tree_free). */
ckpt_tree *ms_build_state(uint64_t seed);
/* The expected step and learning rate of seed. */
int64_t ms_step(uint64_t seed);
double ms_learning_rate(uint64_t seed);

/* Fills n elements of dtype (float32 or bfloat16) of the leaf called name, starting at element
 * index first, into dst. */
void ms_fill(uint64_t seed, const char *name, ckpt_dtype dtype, int64_t first, int64_t n,
             void *dst);

/* Position-sensitive fingerprint of n elements (1, 2, 4 or 8 bytes each) in C order:
 * sum over i of splitmix64(bits_i ^ (i * 0xD1B54A32D192ED03)), mod 2^64. */
uint64_t ms_fingerprint(const void *data, size_t elem_size, int64_t n);

/* Random123's threefry2x32 with 20 rounds, the block function of JAX's default PRNG. */
void ms_threefry2x32(const uint32_t key[2], const uint32_t ctr[2], uint32_t out[2]);
/* Checks ms_threefry2x32 against Random123's known-answer vectors. */
int ms_threefry_selftest(void);

/* The tree of strings and integers saved with PyTreeSave as the "meta" item (StandardSave
 * rejects string leaves). NULL when memory runs out; caller owns it. */
ckpt_tree *ms_build_meta(uint64_t seed);

#endif
