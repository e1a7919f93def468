/* random_tree.c — the tree forms of a numpy MT19937 state and a JAX key inside a record.
 *
 * A record field of kind numpy_random_key becomes numpy's own dict form of the state
 * (RandomState.get_state(legacy=False)), so Python can hand what it reads straight to
 * set_state; a jax_random_key becomes {"key_data", "typed", "impl"?}, matching
 * jax.random.key_data / wrap_key_data. (The standalone random-key handlers use Orbax's layouts
 * instead; see handlers/random_key.c.) */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/array_internal.h"
#include "handlers/record_tree.h"

static ckpt_status set(ckpt_tree *dict, const char *key, ckpt_tree *child, ckpt_error *err) {
  return ckpt_tree_dict_set(dict, key, child, err);
}

ckpt_status ckpt_numpy_rng_validate(const ckpt_numpy_rng *rng, const char *path, ckpt_error *err) {
  if (rng->pos < 0 || rng->pos > CKPT_MT19937_N)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: MT19937 position %" PRId64 " is outside [0, %d]",
                          path, rng->pos, CKPT_MT19937_N);
  if (rng->has_gauss != 0 && rng->has_gauss != 1)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: has_gauss is %" PRId64 ", expected 0 or 1", path,
                          rng->has_gauss);
  return CKPT_OK;
}

ckpt_status ckpt_numpy_rng_to_tree(const ckpt_numpy_rng *rng, ckpt_record_arrays arrays,
                                   const char *path, ckpt_tree **out, ckpt_error *err) {
  *out = NULL;
  ckpt_status st = ckpt_numpy_rng_validate(rng, path, err);
  if (st != CKPT_OK)
    return st;
  int64_t shape[1] = {CKPT_MT19937_N};
  ckpt_array *key = NULL;
  if (arrays != CKPT_RECORD_ARRAYS_VIEW) {
    st = ckpt_array_new(CKPT_DTYPE_UINT32, 1, shape, &key, err);
    if (st == CKPT_OK && arrays == CKPT_RECORD_ARRAYS_COPY)
      memcpy(ckpt_array_data(key), rng->key, sizeof rng->key);
  } else {
    st = ckpt_array_wrap(CKPT_DTYPE_UINT32, 1, shape, (void *)rng->key, &key, err);
  }
  if (st != CKPT_OK)
    return st;
  ckpt_tree *state = ckpt_tree_new_dict();
  ckpt_tree *dict = ckpt_tree_new_dict();
  if (state == NULL || dict == NULL) {
    ckpt_tree_free(state);
    ckpt_tree_free(dict);
    ckpt_array_free(key);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", path);
  }
  st = ckpt_tree_dict_set(state, "key", ckpt_tree_new_array(key), err);
  if (st == CKPT_OK)
    st = set(state, "pos", ckpt_tree_new_int(CKPT_DTYPE_INT64, rng->pos), err);
  if (st == CKPT_OK)
    st = set(dict, "state", state, err);
  else
    ckpt_tree_free(state);
  state = NULL;
  if (st == CKPT_OK)
    st = set(dict, "bit_generator", ckpt_tree_new_string("MT19937"), err);
  if (st == CKPT_OK)
    st = set(dict, "has_gauss", ckpt_tree_new_int(CKPT_DTYPE_INT64, rng->has_gauss), err);
  if (st == CKPT_OK)
    st = set(dict, "gauss", ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, rng->cached_gaussian), err);
  if (st == CKPT_OK) {
    ckpt_scalar legacy;
    memset(&legacy, 0, sizeof legacy);
    legacy.dtype = CKPT_DTYPE_BOOL;
    legacy.v.b = rng->legacy;
    st = set(dict, "legacy", ckpt_tree_new_scalar(legacy), err);
  }
  if (st != CKPT_OK) {
    ckpt_tree_free(dict);
    ckpt_error_prefix(err, "%s: ", path);
    return st;
  }
  *out = dict;
  return CKPT_OK;
}

/* The scalar at dict[key] (a scalar node or a 0-d array) as a double/int64/bool. */
static ckpt_status get_scalar(const ckpt_tree *dict, const char *key, const char *path,
                              ckpt_scalar *s, ckpt_error *err) {
  const ckpt_tree *node = ckpt_tree_dict_get(dict, key);
  if (node == NULL)
    return ckpt_error_set(err, CKPT_EMISMATCH, "%s: missing '%s'", path, key);
  if (ckpt_tree_scalar(node, s))
    return CKPT_OK;
  const ckpt_array *a = ckpt_tree_array(node);
  if (a != NULL && a->ndim == 0 && ckpt_array_data(a) != NULL) {
    *s = ckpt_scalar_load(a->dtype, ckpt_array_data(a));
    return CKPT_OK;
  }
  return ckpt_error_set(err, CKPT_ETYPE, "%s.%s: expected a scalar, found %s", path, key,
                        ckpt_node_kind_name(ckpt_tree_kind(node)));
}

static bool is_int_dtype(ckpt_dtype dt) {
  return dt == CKPT_DTYPE_INT8 || dt == CKPT_DTYPE_INT16 || dt == CKPT_DTYPE_INT32 ||
         dt == CKPT_DTYPE_INT64 || dt == CKPT_DTYPE_UINT8 || dt == CKPT_DTYPE_UINT16 ||
         dt == CKPT_DTYPE_UINT32;
}

static ckpt_status get_int(const ckpt_tree *dict, const char *key, const char *path, int64_t *out,
                           ckpt_error *err) {
  ckpt_scalar s;
  ckpt_status st = get_scalar(dict, key, path, &s, err);
  if (st != CKPT_OK)
    return st;
  if (!is_int_dtype(s.dtype))
    return ckpt_error_set(err, CKPT_ETYPE, "%s.%s: expected an integer, found %s", path, key,
                          ckpt_dtype_name(s.dtype) ? ckpt_dtype_name(s.dtype) : "?");
  bool is_unsigned =
      s.dtype == CKPT_DTYPE_UINT8 || s.dtype == CKPT_DTYPE_UINT16 || s.dtype == CKPT_DTYPE_UINT32;
  *out = is_unsigned ? (int64_t)s.v.u : s.v.i;
  return CKPT_OK;
}

ckpt_status ckpt_numpy_rng_key_from_array(const ckpt_array *a, const char *path, uint32_t *key,
                                          ckpt_error *err) {
  if (a == NULL)
    return ckpt_error_set(err, CKPT_ETYPE, "%s: the MT19937 key is not an array", path);
  if (a->dtype != CKPT_DTYPE_UINT32)
    return ckpt_error_set(err, CKPT_ETYPE, "%s: the MT19937 key has dtype %s, expected uint32",
                          path, ckpt_dtype_name(a->dtype) ? ckpt_dtype_name(a->dtype) : "?");
  if (a->ndim != 1 || a->shape[0] != CKPT_MT19937_N)
    return ckpt_error_set(err, CKPT_EMISMATCH,
                          "%s: the MT19937 key must have shape (%d,), found %d dims (first %" PRId64
                          ")",
                          path, CKPT_MT19937_N, a->ndim, a->ndim > 0 ? a->shape[0] : 0);
  const void *data = ckpt_array_data(a);
  if (data == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: the MT19937 key is not one contiguous shard",
                          path);
  memcpy(key, data, CKPT_MT19937_N * sizeof(uint32_t));
  return CKPT_OK;
}

ckpt_status ckpt_numpy_rng_from_tree(const ckpt_tree *node, const char *path, ckpt_numpy_rng **out,
                                     ckpt_error *err) {
  *out = NULL;
  if (ckpt_tree_kind(node) != CKPT_NODE_DICT)
    return ckpt_error_set(err, CKPT_ETYPE, "%s: expected a dict (numpy MT19937 state), found %s",
                          path, ckpt_node_kind_name(ckpt_tree_kind(node)));
  const char *bitgen = ckpt_tree_string(ckpt_tree_dict_get(node, "bit_generator"));
  if (bitgen == NULL)
    return ckpt_error_set(err, CKPT_EMISMATCH, "%s: missing string 'bit_generator'", path);
  if (strcmp(bitgen, "MT19937") != 0)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED,
                          "%s: bit generator '%s' is not supported (only MT19937)", path, bitgen);
  const ckpt_tree *state = ckpt_tree_dict_get(node, "state");
  if (state == NULL || ckpt_tree_kind(state) != CKPT_NODE_DICT)
    return ckpt_error_set(err, CKPT_EMISMATCH, "%s: missing dict 'state'", path);
  ckpt_numpy_rng *rng = calloc(1, sizeof *rng);
  if (rng == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", path);
  ckpt_status st = ckpt_numpy_rng_key_from_array(ckpt_tree_array(ckpt_tree_dict_get(state, "key")),
                                                 path, rng->key, err);
  if (st == CKPT_OK)
    st = get_int(state, "pos", path, &rng->pos, err);
  if (st == CKPT_OK)
    st = get_int(node, "has_gauss", path, &rng->has_gauss, err);
  ckpt_scalar s;
  if (st == CKPT_OK && (st = get_scalar(node, "gauss", path, &s, err)) == CKPT_OK) {
    if (s.dtype != CKPT_DTYPE_FLOAT64 && s.dtype != CKPT_DTYPE_FLOAT32)
      st = ckpt_error_set(err, CKPT_ETYPE, "%s.gauss: expected a float, found %s", path,
                          ckpt_dtype_name(s.dtype) ? ckpt_dtype_name(s.dtype) : "?");
    else
      rng->cached_gaussian = s.v.f;
  }
  /* "legacy" is ckpt's addition; a dict written by Python's get_state(legacy=False) lacks it. */
  if (st == CKPT_OK && ckpt_tree_dict_get(node, "legacy") != NULL &&
      (st = get_scalar(node, "legacy", path, &s, err)) == CKPT_OK) {
    if (s.dtype != CKPT_DTYPE_BOOL)
      st = ckpt_error_set(err, CKPT_ETYPE, "%s.legacy: expected a bool", path);
    else
      rng->legacy = s.v.b;
  }
  if (st == CKPT_OK)
    st = ckpt_numpy_rng_validate(rng, path, err);
  if (st != CKPT_OK) {
    free(rng);
    return st;
  }
  *out = rng;
  return CKPT_OK;
}

ckpt_status ckpt_jax_key_to_tree(const ckpt_jax_key *key, ckpt_record_arrays arrays,
                                 const char *path, ckpt_tree **out, ckpt_error *err) {
  *out = NULL;
  if (key->data == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: the JAX key has no data", path);
  if (key->data->dtype != CKPT_DTYPE_UINT32 || key->data->ndim < 1)
    return ckpt_error_set(
        err, CKPT_ETYPE,
        "%s: JAX key data must be a uint32 array with a trailing "
        "implementation dim, found a %d-d %s array",
        path, key->data->ndim,
        ckpt_dtype_name(key->data->dtype) ? ckpt_dtype_name(key->data->dtype) : "?");
  ckpt_array *data = NULL;
  ckpt_status st;
  if (arrays == CKPT_RECORD_ARRAYS_COPY) {
    data = ckpt_array_clone(key->data);
    st = data ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", path);
  } else if (arrays == CKPT_RECORD_ARRAYS_SHAPE) {
    st = ckpt_array_like(key->data, &data, err);
  } else {
    st = ckpt_array_view(key->data, &data, err);
  }
  if (st != CKPT_OK)
    return st;
  ckpt_tree *dict = ckpt_tree_new_dict();
  if (dict == NULL) {
    ckpt_array_free(data);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", path);
  }
  st = ckpt_tree_dict_set(dict, "key_data", ckpt_tree_new_array(data), err);
  ckpt_scalar typed;
  memset(&typed, 0, sizeof typed);
  typed.dtype = CKPT_DTYPE_BOOL;
  typed.v.b = key->typed;
  if (st == CKPT_OK)
    st = set(dict, "typed", ckpt_tree_new_scalar(typed), err);
  /* Always present ("" = the default implementation) so the structure does not depend on the
   * value, which a restore target relies on. */
  if (st == CKPT_OK)
    st = set(dict, "impl", ckpt_tree_new_string(key->impl ? key->impl : ""), err);
  if (st != CKPT_OK) {
    ckpt_tree_free(dict);
    ckpt_error_prefix(err, "%s: ", path);
    return st;
  }
  *out = dict;
  return CKPT_OK;
}

ckpt_status ckpt_jax_key_from_tree(ckpt_tree *node, bool take, const char *path, ckpt_jax_key **out,
                                   ckpt_error *err) {
  *out = NULL;
  if (ckpt_tree_kind(node) != CKPT_NODE_DICT)
    return ckpt_error_set(err, CKPT_ETYPE, "%s: expected a dict (JAX key), found %s", path,
                          ckpt_node_kind_name(ckpt_tree_kind(node)));
  ckpt_tree *data_node = ckpt_tree_dict_get(node, "key_data");
  const ckpt_array *a = ckpt_tree_array(data_node);
  if (a == NULL)
    return ckpt_error_set(err, CKPT_EMISMATCH, "%s: missing array 'key_data'", path);
  if (a->dtype != CKPT_DTYPE_UINT32 || a->ndim < 1)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "%s.key_data: expected a uint32 array of rank >= 1, found a %d-d %s "
                          "array",
                          path, a->ndim,
                          ckpt_dtype_name(a->dtype) ? ckpt_dtype_name(a->dtype) : "?");
  ckpt_scalar typed;
  ckpt_status st = get_scalar(node, "typed", path, &typed, err);
  if (st != CKPT_OK)
    return st;
  if (typed.dtype != CKPT_DTYPE_BOOL)
    return ckpt_error_set(err, CKPT_ETYPE, "%s.typed: expected a bool", path);
  const ckpt_tree *impl_node = ckpt_tree_dict_get(node, "impl");
  const char *impl = impl_node ? ckpt_tree_string(impl_node) : NULL;
  if (impl_node != NULL && impl == NULL)
    return ckpt_error_set(err, CKPT_ETYPE, "%s.impl: expected a string", path);
  if (impl != NULL && impl[0] == '\0')
    impl = NULL; /* "" = the default implementation */
  ckpt_jax_key *key = calloc(1, sizeof *key);
  if (key == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", path);
  key->typed = typed.v.b;
  bool owned = true;
  for (size_t i = 0; i < a->n_shards; i++)
    if (!a->shards[i].owns_data && a->shards[i].data != NULL)
      owned = false;
  key->data = take && owned ? ckpt_tree_take_array(data_node) : ckpt_array_clone(a);
  if (impl != NULL)
    key->impl = strdup(impl);
  if (key->data == NULL || (impl != NULL && key->impl == NULL)) {
    ckpt_jax_key_free(key);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", path);
  }
  *out = key;
  return CKPT_OK;
}
