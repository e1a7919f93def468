/* value.c — the tagged, owned result of a restore (ckpt_value) and its composite form.
 *
 * A composite value keeps its items sorted by name so look-ups are binary searches and
 * iteration order matches Orbax's (sorted item names). */
#include "ckpt/value.h"

#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/array.h"
#include "ckpt/random.h"
#include "ckpt/tree.h"

void ckpt_value_free(ckpt_value *value) {
  if (value == NULL)
    return;
  switch (value->kind) {
    case CKPT_VALUE_NONE:
      break;
    case CKPT_VALUE_TREE:
      ckpt_tree_free(value->u.tree);
      break;
    case CKPT_VALUE_ARRAY:
      ckpt_array_free(value->u.array);
      break;
    case CKPT_VALUE_JSON:
      cJSON_Delete(value->u.json);
      break;
    case CKPT_VALUE_PROTO:
      if (value->u.proto != NULL)
        protobuf_c_message_free_unpacked(value->u.proto, NULL);
      break;
    case CKPT_VALUE_JAX_KEY:
      ckpt_jax_key_free(value->u.jax_key);
      break;
    case CKPT_VALUE_NUMPY_RNG:
      ckpt_numpy_rng_free(value->u.numpy_rng);
      break;
    case CKPT_VALUE_RECORD:
      if (value->u.record.data != NULL) {
        if (value->u.record.desc != NULL)
          ckpt_record_free(value->u.record.desc, value->u.record.data);
        free(value->u.record.data);
      }
      break;
    case CKPT_VALUE_COMPOSITE:
      for (size_t i = 0; i < value->u.composite.count; i++) {
        free(value->u.composite.items[i].name);
        ckpt_value_free(value->u.composite.items[i].value);
        free(value->u.composite.items[i].value);
      }
      free(value->u.composite.items);
      break;
  }
  memset(value, 0, sizeof *value);
  value->kind = CKPT_VALUE_NONE;
}

/* Index of name, or of where it would be inserted (with *found false). */
static size_t find_item(const ckpt_value *c, const char *name, bool *found) {
  size_t lo = 0, hi = c->u.composite.count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(c->u.composite.items[mid].name, name);
    if (r == 0) {
      *found = true;
      return mid;
    }
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

ckpt_value *ckpt_value_item_get(const ckpt_value *composite, const char *name) {
  if (composite == NULL || name == NULL || composite->kind != CKPT_VALUE_COMPOSITE)
    return NULL;
  bool found;
  size_t i = find_item(composite, name, &found);
  return found ? composite->u.composite.items[i].value : NULL;
}

/* On failure *item is left as it was: the caller still owns it. */
ckpt_status ckpt_value_composite_put(ckpt_value *composite, const char *name, ckpt_value *item,
                                     ckpt_error *err) {
  if (composite == NULL || name == NULL || item == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_value_composite_put: NULL argument");
  if (composite->kind == CKPT_VALUE_NONE) {
    composite->kind = CKPT_VALUE_COMPOSITE;
    composite->u.composite.count = 0;
    composite->u.composite.items = NULL;
  }
  if (composite->kind != CKPT_VALUE_COMPOSITE)
    return ckpt_error_set(err, CKPT_ETYPE, "cannot add item '%s' to a value of kind %s", name,
                          ckpt_value_kind_name(composite->kind));
  bool found;
  size_t at = find_item(composite, name, &found);
  ckpt_value *moved = malloc(sizeof *moved);
  if (moved == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory adding item '%s'", name);
  if (found) {
    *moved = *item;
    ckpt_value *old = composite->u.composite.items[at].value;
    ckpt_value_free(old);
    free(old);
    composite->u.composite.items[at].value = moved;
  } else {
    char *copy = strdup(name);
    size_t n = composite->u.composite.count;
    ckpt_value_item *grown =
        copy != NULL ? realloc(composite->u.composite.items, (n + 1) * sizeof *grown) : NULL;
    if (grown == NULL) {
      free(copy);
      free(moved);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory adding item '%s'", name);
    }
    *moved = *item;
    memmove(grown + at + 1, grown + at, (n - at) * sizeof *grown);
    grown[at].name = copy;
    grown[at].value = moved;
    composite->u.composite.items = grown;
    composite->u.composite.count = n + 1;
  }
  memset(item, 0, sizeof *item);
  item->kind = CKPT_VALUE_NONE;
  return CKPT_OK;
}

const char *ckpt_value_kind_name(ckpt_value_kind kind) {
  switch (kind) {
    case CKPT_VALUE_NONE:
      return "none";
    case CKPT_VALUE_TREE:
      return "tree";
    case CKPT_VALUE_ARRAY:
      return "array";
    case CKPT_VALUE_JSON:
      return "json";
    case CKPT_VALUE_PROTO:
      return "proto";
    case CKPT_VALUE_JAX_KEY:
      return "jax_key";
    case CKPT_VALUE_NUMPY_RNG:
      return "numpy_rng";
    case CKPT_VALUE_RECORD:
      return "record";
    case CKPT_VALUE_COMPOSITE:
      return "composite";
  }
  return "unknown";
}
