/* state_gen.c — builds the model_state example's deterministic state and meta trees, and the
 * fingerprint and threefry helpers both processes use (see state_gen.h for the definitions
 * that numpy recomputes). */
#include "state_gen.h"

#include <stdlib.h>
#include <string.h>

uint64_t ms_fnv1a64(const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t ms_splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

#define MS_GOLDEN 0x9E3779B97F4A7C15ULL

void ms_fill(uint64_t seed, const char *name, ckpt_dtype dtype, int64_t first, int64_t n,
             void *dst) {
  uint64_t base = ms_splitmix64(seed ^ ms_fnv1a64(name, strlen(name)));
  /* Second moments are non-negative, as an optimizer's would be. */
  int positive = strstr(name, ".nu.") != NULL;
  for (int64_t k = 0; k < n; k++) {
    uint64_t z = ms_splitmix64(base + (uint64_t)(first + k + 1) * MS_GOLDEN);
    if (dtype == CKPT_DTYPE_BFLOAT16) {
      float v = (float)((int32_t)(z >> 56) - 128) * 0x1p-10f;
      if (positive && v < 0) v = -v;
      ((uint16_t *)dst)[k] = ckpt_float_to_bfloat16(v); /* exact: 8 significant bits */
    } else {
      float v = (float)((int32_t)(z >> 40) - (1 << 23)) * 0x1p-26f;
      if (positive && v < 0) v = -v;
      ((float *)dst)[k] = v;
    }
  }
}

uint64_t ms_fingerprint(const void *data, size_t elem_size, int64_t n) {
  const unsigned char *p = data;
  uint64_t sum = 0;
  for (int64_t i = 0; i < n; i++) {
    uint64_t w = 0;
    /* Little-endian host (x86-64, aarch64): the element's bits zero-extended. */
    memcpy(&w, p + (size_t)i * elem_size, elem_size);
    sum += ms_splitmix64(w ^ ((uint64_t)i * 0xD1B54A32D192ED03ULL));
  }
  return sum;
}

int64_t ms_step(uint64_t seed) { return 1000 + (int64_t)(seed % 9000); }
double ms_learning_rate(uint64_t seed) { return 3e-4 * (1.0 + (double)(seed % 7) / 8.0); }

/* One array leaf named prefix.rel, generated. */
static ckpt_tree *leaf(uint64_t seed, const char *prefix, const char *rel, ckpt_dtype dtype,
                       int ndim, int64_t d0, int64_t d1, ckpt_error *err) {
  int64_t shape[2] = {d0, d1};
  ckpt_array *a = NULL;
  if (ckpt_array_new(dtype, ndim, shape, &a, err) != CKPT_OK) return NULL;
  char name[256];
  snprintf(name, sizeof name, "%s.%s", prefix, rel);
  ms_fill(seed, name, dtype, 0, ckpt_array_num_elements(a), ckpt_array_data(a));
  return ckpt_tree_new_array(a);
}

static ckpt_tree *layer_norm(uint64_t seed, const char *prefix, const char *rel,
                             ckpt_dtype dtype, ckpt_error *err) {
  char n[128];
  ckpt_tree *ln = ckpt_tree_new_dict();
  snprintf(n, sizeof n, "%s.scale", rel);
  ckpt_tree_dict_set(ln, "scale", leaf(seed, prefix, n, dtype, 1, MS_D, 0, err), err);
  snprintf(n, sizeof n, "%s.bias", rel);
  ckpt_tree_dict_set(ln, "bias", leaf(seed, prefix, n, dtype, 1, MS_D, 0, err), err);
  return ln;
}

/* The parameter structure with every leaf of dtype, leaf names starting with prefix
 * ("params", "opt_state.mu", ...). The first error is kept in err. */
static ckpt_tree *param_tree(uint64_t seed, const char *prefix, ckpt_dtype dtype,
                             ckpt_error *err) {
  ckpt_tree *p = ckpt_tree_new_dict();
  ckpt_tree *embed = ckpt_tree_new_dict();
  ckpt_tree_dict_set(embed, "embedding",
                     leaf(seed, prefix, "embed.embedding", dtype, 2, MS_VOCAB, MS_D, err), err);
  ckpt_tree_dict_set(p, "embed", embed, err);
  static const char *const proj[] = {"query", "key", "value", "out"};
  for (int l = 0; l < MS_LAYERS; l++) {
    char ln[32], rel[96];
    snprintf(ln, sizeof ln, "layer_%d", l);
    ckpt_tree *layer = ckpt_tree_new_dict();
    ckpt_tree *attn = ckpt_tree_new_dict();
    for (size_t k = 0; k < 4; k++) {
      snprintf(rel, sizeof rel, "%s.attn.%s", ln, proj[k]);
      ckpt_tree_dict_set(attn, proj[k], leaf(seed, prefix, rel, dtype, 2, MS_D, MS_D, err), err);
    }
    ckpt_tree_dict_set(layer, "attn", attn, err);
    ckpt_tree *mlp = ckpt_tree_new_dict();
    snprintf(rel, sizeof rel, "%s.mlp.wi", ln);
    ckpt_tree_dict_set(mlp, "wi", leaf(seed, prefix, rel, dtype, 2, MS_D, MS_F, err), err);
    snprintf(rel, sizeof rel, "%s.mlp.wo", ln);
    ckpt_tree_dict_set(mlp, "wo", leaf(seed, prefix, rel, dtype, 2, MS_F, MS_D, err), err);
    ckpt_tree_dict_set(layer, "mlp", mlp, err);
    snprintf(rel, sizeof rel, "%s.ln_1", ln);
    ckpt_tree_dict_set(layer, "ln_1", layer_norm(seed, prefix, rel, dtype, err), err);
    snprintf(rel, sizeof rel, "%s.ln_2", ln);
    ckpt_tree_dict_set(layer, "ln_2", layer_norm(seed, prefix, rel, dtype, err), err);
    ckpt_tree_dict_set(p, ln, layer, err);
  }
  ckpt_tree_dict_set(p, "final_ln", layer_norm(seed, prefix, "final_ln", dtype, err), err);
  return p;
}

ckpt_tree *ms_build_state(uint64_t seed) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *state = ckpt_tree_new_dict();
  ckpt_tree_dict_set(state, "params", param_tree(seed, "params", CKPT_DTYPE_FLOAT32, &err), &err);
  ckpt_tree *opt = ckpt_tree_new_dict();
  ckpt_tree_dict_set(opt, "mu", param_tree(seed, "opt_state.mu", CKPT_DTYPE_BFLOAT16, &err),
                     &err);
  ckpt_tree_dict_set(opt, "nu", param_tree(seed, "opt_state.nu", CKPT_DTYPE_FLOAT32, &err),
                     &err);
  ckpt_tree_dict_set(state, "opt_state", opt, &err);
  ckpt_tree_dict_set(state, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, ms_step(seed)), &err);
  ckpt_tree_dict_set(state, "learning_rate",
                     ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, ms_learning_rate(seed)), &err);
  if (state == NULL || err.code != CKPT_OK) {
    ckpt_tree_free(state);
    return NULL;
  }
  return state;
}

ckpt_tree *ms_build_meta(uint64_t seed) {
  ckpt_error err = CKPT_ERROR_INIT;
  char run[64];
  snprintf(run, sizeof run, "run-%llu", (unsigned long long)seed);
  ckpt_tree *meta = ckpt_tree_new_dict();
  ckpt_tree_dict_set(meta, "model_name", ckpt_tree_new_string("tiny-transformer"), &err);
  ckpt_tree_dict_set(meta, "run_id", ckpt_tree_new_string(run), &err);
  ckpt_tree_dict_set(meta, "tokenizer", ckpt_tree_new_string("bpe-512 \"byte-level\" ✓"), &err);
  ckpt_tree_dict_set(meta, "seed", ckpt_tree_new_int(CKPT_DTYPE_INT64, (int64_t)seed), &err);
  ckpt_tree *cfg = ckpt_tree_new_dict();
  ckpt_tree_dict_set(cfg, "activation", ckpt_tree_new_string("gelu"), &err);
  ckpt_tree_dict_set(cfg, "num_layers", ckpt_tree_new_int(CKPT_DTYPE_INT64, MS_LAYERS), &err);
  ckpt_tree_dict_set(cfg, "d_model", ckpt_tree_new_int(CKPT_DTYPE_INT64, MS_D), &err);
  ckpt_tree_dict_set(meta, "config", cfg, &err);
  if (meta == NULL || err.code != CKPT_OK) {
    ckpt_tree_free(meta);
    return NULL;
  }
  return meta;
}

/* ---------------------------------------------------------------- threefry2x32-20 */

static uint32_t rotl32(uint32_t x, unsigned r) { return (x << r) | (x >> (32 - r)); }

void ms_threefry2x32(const uint32_t key[2], const uint32_t ctr[2], uint32_t out[2]) {
  static const unsigned rot[8] = {13, 15, 26, 6, 17, 29, 16, 24};
  uint32_t ks[3] = {key[0], key[1], 0x1BD11BDAu ^ key[0] ^ key[1]};
  uint32_t x0 = ctr[0] + ks[0], x1 = ctr[1] + ks[1];
  for (unsigned r = 0; r < 20; r++) {
    x0 += x1;
    x1 = rotl32(x1, rot[r % 8]) ^ x0;
    if (r % 4 == 3) { /* key injection after every 4 rounds */
      unsigned s = r / 4 + 1;
      x0 += ks[s % 3];
      x1 += ks[(s + 1) % 3] + s;
    }
  }
  out[0] = x0;
  out[1] = x1;
}

int ms_threefry_selftest(void) {
  /* Random123 kat_vectors, threefry2x32_20 (also the vectors of JAX's own threefry test). */
  static const uint32_t kat[3][6] = {
      {0, 0, 0, 0, 0x6b200159u, 0x99ba4efeu},
      {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x1cb996fcu, 0xbb002be7u},
      {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xc4923a9cu, 0x483df7a0u}};
  for (int i = 0; i < 3; i++) {
    uint32_t out[2];
    ms_threefry2x32(&kat[i][2], &kat[i][0], out);
    if (out[0] != kat[i][4] || out[1] != kat[i][5]) return 0;
  }
  return 1;
}
