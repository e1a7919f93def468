/* ckpt/value.h — what a restore returns: one tagged, owned value.
 *
 * Orbax's restore returns whatever the handler produces (a PyTree, a dict, a proto, a
 * Composite of those). In C that is a ckpt_value: a kind and the matching owned pointer.
 * The caller owns a value filled by a restore and releases it with ckpt_value_free. */
#ifndef CKPT_VALUE_H
#define CKPT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/api.h"
#include "ckpt/desc.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ProtobufCMessage;
typedef struct ckpt_tree ckpt_tree;
typedef struct ckpt_array ckpt_array;
typedef struct ckpt_jax_key ckpt_jax_key;
typedef struct ckpt_numpy_rng ckpt_numpy_rng;
typedef struct ckpt_value ckpt_value;

typedef enum ckpt_value_kind {
  CKPT_VALUE_NONE = 0,
  CKPT_VALUE_TREE,      /* u.tree */
  CKPT_VALUE_ARRAY,     /* u.array */
  CKPT_VALUE_JSON,      /* u.json */
  CKPT_VALUE_PROTO,     /* u.proto */
  CKPT_VALUE_JAX_KEY,   /* u.jax_key */
  CKPT_VALUE_NUMPY_RNG, /* u.numpy_rng */
  CKPT_VALUE_RECORD,    /* u.record: a generated struct and its descriptor */
  CKPT_VALUE_COMPOSITE  /* u.composite: named items, sorted by name */
} ckpt_value_kind;

typedef struct ckpt_value_item {
  char *name;
  ckpt_value *value;
} ckpt_value_item;

struct ckpt_value {
  ckpt_value_kind kind;
  union {
    ckpt_tree *tree;
    ckpt_array *array;
    cJSON *json;
    struct ProtobufCMessage *proto;
    ckpt_jax_key *jax_key;
    ckpt_numpy_rng *numpy_rng;
    struct {
      const ckpt_record_desc *desc;
      void *data; /* heap struct of desc->size bytes */
    } record;
    struct {
      size_t count;
      ckpt_value_item *items;
    } composite;
  } u;
};

/* Releases what the value owns and resets it to CKPT_VALUE_NONE. */
CKPT_API void ckpt_value_free(ckpt_value *value);
/* Composite look-up by item name; NULL when absent or not a composite. */
CKPT_API ckpt_value *ckpt_value_item_get(const ckpt_value *composite, const char *name);
/* Moves *item (which is reset to NONE) into a composite value under name (copied), keeping
 * names sorted; replaces an existing item of that name. A NONE composite becomes an empty
 * COMPOSITE first. On failure *item is left unchanged and still belongs to the caller. */
CKPT_API ckpt_status ckpt_value_composite_put(ckpt_value *composite, const char *name,
                                              ckpt_value *item, ckpt_error *err);
CKPT_API const char *ckpt_value_kind_name(ckpt_value_kind kind);

#ifdef __cplusplus
}
#endif
#endif
