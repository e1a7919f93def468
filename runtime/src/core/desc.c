/* desc.c — the generic init / free / equal over descriptor tables (ckpt/desc.h).
 *
 * Generated code holds no logic of its own for these: it calls ckpt_record_init, _free and
 * _equal with its const descriptor, and this file walks the field table. The C layout of every
 * kind is the table in desc.h; a "slot" below is the memory of one value of a type (a field's
 * member, a list element, a map entry's value), laid out as a required field of that type. */
#include "ckpt/desc.h"

#include <math.h>
#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ckpt/array.h"
#include "ckpt/random.h"
#include "ckpt/tree.h"

/* A descriptor this runtime can walk: generated for this ABI, not some other memory. */
static bool desc_usable(const ckpt_record_desc *desc) {
  return desc != NULL && desc->magic == CKPT_RECORD_DESC_MAGIC &&
         desc->abi_version == CKPT_ABI_VERSION && (desc->n_fields == 0 || desc->fields != NULL);
}

#define AT(base, off) ((unsigned char *)(base) + (off))
#define CAT(base, off) ((const unsigned char *)(base) + (off))

/* ---------------------------------------------------------------- free */

static void slot_free(const ckpt_type_desc *type, void *slot) {
  switch (type->kind) {
    case CKPT_KIND_BOOL:
    case CKPT_KIND_INT8:
    case CKPT_KIND_INT16:
    case CKPT_KIND_INT32:
    case CKPT_KIND_INT64:
    case CKPT_KIND_UINT8:
    case CKPT_KIND_UINT16:
    case CKPT_KIND_UINT32:
    case CKPT_KIND_UINT64:
    case CKPT_KIND_FLOAT32:
    case CKPT_KIND_FLOAT64:
    case CKPT_KIND_RECORD_REF: /* borrowed: the caller owns the referenced record */
      break;
    case CKPT_KIND_STRING: {
      char **p = slot;
      free(*p);
      *p = NULL;
      break;
    }
    case CKPT_KIND_BYTES: {
      ckpt_bytes *b = slot;
      free(b->data);
      b->data = NULL;
      b->len = 0;
      break;
    }
    case CKPT_KIND_ARRAY: {
      ckpt_array **p = slot;
      ckpt_array_free(*p);
      *p = NULL;
      break;
    }
    case CKPT_KIND_RECORD:
      ckpt_record_free(type->record, slot);
      break;
    case CKPT_KIND_LIST:
    case CKPT_KIND_MAP:
      /* Lists and maps never nest directly (desc.h); their counts live in the enclosing field,
       * which field_free handles. Nothing to do for a bare slot. */
      break;
    case CKPT_KIND_JSON: {
      cJSON **p = slot;
      cJSON_Delete(*p);
      *p = NULL;
      break;
    }
    case CKPT_KIND_PROTO: {
      ProtobufCMessage **p = slot;
      if (*p != NULL)
        protobuf_c_message_free_unpacked(*p, NULL);
      *p = NULL;
      break;
    }
    case CKPT_KIND_JAX_KEY: {
      ckpt_jax_key **p = slot;
      ckpt_jax_key_free(*p);
      *p = NULL;
      break;
    }
    case CKPT_KIND_NUMPY_RNG: {
      ckpt_numpy_rng **p = slot;
      ckpt_numpy_rng_free(*p);
      *p = NULL;
      break;
    }
    case CKPT_KIND_TREE: {
      ckpt_tree **p = slot;
      ckpt_tree_free(*p);
      *p = NULL;
      break;
    }
    case CKPT_KIND_ARGS: {
      ckpt_args **p = slot;
      ckpt_args_delete(*p);
      *p = NULL;
      break;
    }
  }
}

static void field_free(const ckpt_field_desc *f, void *record) {
  const ckpt_type_desc *t = f->type;
  if (t == NULL)
    return;
  void *slot = AT(record, f->offset);
  if (t->kind == CKPT_KIND_LIST || t->kind == CKPT_KIND_MAP) {
    size_t *count = (size_t *)AT(record, f->count_offset);
    unsigned char **items = slot;
    if (*items != NULL && t->elem != NULL) {
      for (size_t i = 0; i < *count; i++) {
        unsigned char *e = *items + i * t->elem_size;
        if (t->kind == CKPT_KIND_MAP) {
          char **key = (char **)e;
          free(*key);
          slot_free(t->elem, e + t->entry_value_offset);
        } else {
          slot_free(t->elem, e);
        }
      }
    }
    free(*items);
    *items = NULL;
    *count = 0;
  } else {
    slot_free(t, slot);
  }
  if (f->flags & CKPT_FIELD_HAS_PRESENCE)
    *(bool *)AT(record, f->presence_offset) = false;
}

void ckpt_record_free(const ckpt_record_desc *desc, void *record) {
  if (record == NULL || !desc_usable(desc))
    return;
  for (uint32_t i = 0; i < desc->n_fields; i++)
    field_free(&desc->fields[i], record);
  /* "As after init with no defaults": zero, but an args struct keeps its type. */
  memset(record, 0, desc->size);
  if (desc->is_args)
    ((ckpt_args *)record)->desc = desc;
}

/* ---------------------------------------------------------------- init */

static ckpt_status field_set_default(const ckpt_field_desc *f, void *record) {
  const ckpt_type_desc *t = f->type;
  void *slot = AT(record, f->offset);
  const ckpt_default *d = &f->def;
  switch (t->kind) {
    case CKPT_KIND_BOOL:
      *(bool *)slot = d->b;
      break;
    case CKPT_KIND_INT8:
      *(int8_t *)slot = (int8_t)d->i;
      break;
    case CKPT_KIND_INT16:
      *(int16_t *)slot = (int16_t)d->i;
      break;
    case CKPT_KIND_INT32:
      *(int32_t *)slot = (int32_t)d->i;
      break;
    case CKPT_KIND_INT64:
      *(int64_t *)slot = d->i;
      break;
    case CKPT_KIND_UINT8:
      *(uint8_t *)slot = (uint8_t)d->u;
      break;
    case CKPT_KIND_UINT16:
      *(uint16_t *)slot = (uint16_t)d->u;
      break;
    case CKPT_KIND_UINT32:
      *(uint32_t *)slot = (uint32_t)d->u;
      break;
    case CKPT_KIND_UINT64:
      *(uint64_t *)slot = d->u;
      break;
    case CKPT_KIND_FLOAT32:
      *(float *)slot = (float)d->f;
      break;
    case CKPT_KIND_FLOAT64:
      *(double *)slot = d->f;
      break;
    case CKPT_KIND_STRING: {
      if (d->s == NULL)
        return CKPT_OK;
      char *copy = strdup(d->s);
      if (copy == NULL)
        return CKPT_ENOMEM;
      *(char **)slot = copy;
      break;
    }
    case CKPT_KIND_BYTES: {
      ckpt_bytes *b = slot;
      if (d->len == 0)
        return CKPT_OK;
      if (d->s == NULL)
        return CKPT_OK;
      b->data = malloc(d->len);
      if (b->data == NULL)
        return CKPT_ENOMEM;
      memcpy(b->data, d->s, d->len);
      b->len = d->len;
      break;
    }
    default:
      /* The schema language has no defaults for other kinds; ignore rather than guess. */
      return CKPT_OK;
  }
  /* An optional field given a default is present from the start. */
  if (f->flags & CKPT_FIELD_HAS_PRESENCE)
    *(bool *)AT(record, f->presence_offset) = true;
  return CKPT_OK;
}

/* Initialises a zeroed record: defaults, nested embedded records, args base. */
static ckpt_status init_zeroed(const ckpt_record_desc *desc, void *record) {
  if (desc->is_args)
    ((ckpt_args *)record)->desc = desc;
  ckpt_status first = CKPT_OK;
  for (uint32_t i = 0; i < desc->n_fields; i++) {
    const ckpt_field_desc *f = &desc->fields[i];
    if (f->type == NULL)
      continue;
    ckpt_status st = CKPT_OK;
    if (f->type->kind == CKPT_KIND_RECORD && f->type->record != NULL) {
      /* An embedded record gets its own defaults even when optional (its presence flag stays
       * false), so setting has_NAME later exposes a well-formed value. */
      if (!desc_usable(f->type->record))
        st = CKPT_EVERSION;
      else
        st = init_zeroed(f->type->record, AT(record, f->offset));
    } else if (f->flags & CKPT_FIELD_HAS_DEFAULT) {
      st = field_set_default(f, record);
    }
    /* Keep going after a failure so the record is fully formed (every pointer NULL or owned)
     * and safe for ckpt_record_free. */
    if (st != CKPT_OK && first == CKPT_OK)
      first = st;
  }
  return first;
}

ckpt_status ckpt_record_init(const ckpt_record_desc *desc, void *record) {
  if (record == NULL || desc == NULL)
    return CKPT_EINVAL;
  if (!desc_usable(desc))
    return CKPT_EVERSION;
  memset(record, 0, desc->size);
  return init_zeroed(desc, record);
}

/* ---------------------------------------------------------------- equal */

static bool proto_equal(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  if (a == b)
    return true;
  if (a == NULL || b == NULL)
    return false;
  if (a->descriptor != b->descriptor)
    return false;
  size_t na = protobuf_c_message_get_packed_size(a);
  size_t nb = protobuf_c_message_get_packed_size(b);
  if (na != nb)
    return false;
  if (na == 0)
    return true;
  uint8_t *pa = malloc(na), *pb = malloc(nb);
  bool eq = false;
  /* Equality has no error channel; without memory to compare, "not equal" is the answer that
   * cannot make a caller skip a needed save. */
  if (pa != NULL && pb != NULL) {
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    eq = memcmp(pa, pb, na) == 0;
  }
  free(pa);
  free(pb);
  return eq;
}

/* Floats compare by value, except that NaN equals NaN: a restored NaN must compare equal to
 * the saved one, or no record with a NaN could ever round-trip. */
static bool f64_equal(double a, double b) {
  return a == b || (isnan(a) && isnan(b));
}

static bool slot_equal(const ckpt_type_desc *t, const void *a, const void *b) {
  switch (t->kind) {
    case CKPT_KIND_BOOL:
      return *(const bool *)a == *(const bool *)b;
    case CKPT_KIND_INT8:
      return *(const int8_t *)a == *(const int8_t *)b;
    case CKPT_KIND_INT16:
      return *(const int16_t *)a == *(const int16_t *)b;
    case CKPT_KIND_INT32:
      return *(const int32_t *)a == *(const int32_t *)b;
    case CKPT_KIND_INT64:
      return *(const int64_t *)a == *(const int64_t *)b;
    case CKPT_KIND_UINT8:
      return *(const uint8_t *)a == *(const uint8_t *)b;
    case CKPT_KIND_UINT16:
      return *(const uint16_t *)a == *(const uint16_t *)b;
    case CKPT_KIND_UINT32:
      return *(const uint32_t *)a == *(const uint32_t *)b;
    case CKPT_KIND_UINT64:
      return *(const uint64_t *)a == *(const uint64_t *)b;
    case CKPT_KIND_FLOAT32:
      return f64_equal(*(const float *)a, *(const float *)b);
    case CKPT_KIND_FLOAT64:
      return f64_equal(*(const double *)a, *(const double *)b);
    case CKPT_KIND_STRING: {
      const char *sa = *(char *const *)a, *sb = *(char *const *)b;
      if (sa == NULL || sb == NULL)
        return sa == sb;
      return strcmp(sa, sb) == 0;
    }
    case CKPT_KIND_BYTES: {
      const ckpt_bytes *ba = a, *bb = b;
      if (ba->len != bb->len)
        return false;
      if (ba->len == 0)
        return true;
      if (ba->data == NULL || bb->data == NULL)
        return ba->data == bb->data;
      return memcmp(ba->data, bb->data, ba->len) == 0;
    }
    case CKPT_KIND_ARRAY: {
      const ckpt_array *x = *(ckpt_array *const *)a, *y = *(ckpt_array *const *)b;
      if (x == NULL || y == NULL)
        return x == y;
      return ckpt_array_equal(x, y);
    }
    case CKPT_KIND_RECORD:
      return ckpt_record_equal(t->record, a, b);
    case CKPT_KIND_LIST:
    case CKPT_KIND_MAP:
      return true; /* never a bare slot (see slot_free) */
    case CKPT_KIND_JSON: {
      const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
      if (x == NULL || y == NULL)
        return x == y;
      return cJSON_Compare(x, y, true);
    }
    case CKPT_KIND_PROTO:
      return proto_equal(*(ProtobufCMessage *const *)a, *(ProtobufCMessage *const *)b);
    case CKPT_KIND_JAX_KEY: {
      const ckpt_jax_key *x = *(ckpt_jax_key *const *)a, *y = *(ckpt_jax_key *const *)b;
      if (x == NULL || y == NULL)
        return x == y;
      return ckpt_jax_key_equal(x, y);
    }
    case CKPT_KIND_NUMPY_RNG: {
      const ckpt_numpy_rng *x = *(ckpt_numpy_rng *const *)a, *y = *(ckpt_numpy_rng *const *)b;
      if (x == NULL || y == NULL)
        return x == y;
      return ckpt_numpy_rng_equal(x, y);
    }
    case CKPT_KIND_TREE: {
      const ckpt_tree *x = *(ckpt_tree *const *)a, *y = *(ckpt_tree *const *)b;
      if (x == NULL || y == NULL)
        return x == y;
      return ckpt_tree_equal(x, y);
    }
    case CKPT_KIND_ARGS:
      return ckpt_args_equal(*(ckpt_args *const *)a, *(ckpt_args *const *)b);
    case CKPT_KIND_RECORD_REF: {
      const void *x = *(const void *const *)a, *y = *(const void *const *)b;
      if (x == y)
        return true;
      if (x == NULL || y == NULL)
        return false;
      return ckpt_record_equal(t->record, x, y);
    }
  }
  return false;
}

/* Looks for key among a map's entries; NULL when absent. Uses a linear scan: maps are compared
 * as sets, so entries need not be in any order. */
static const unsigned char *map_find(const ckpt_type_desc *t, const unsigned char *entries,
                                     size_t n, const char *key) {
  for (size_t i = 0; i < n; i++) {
    const unsigned char *e = entries + i * t->elem_size;
    const char *k = *(char *const *)e;
    if (k != NULL && strcmp(k, key) == 0)
      return e;
  }
  return NULL;
}

static bool map_equal(const ckpt_type_desc *t, const unsigned char *ea, size_t na,
                      const unsigned char *eb, size_t nb) {
  if (na != nb)
    return false;
  if (na == 0)
    return true;
  if (ea == NULL || eb == NULL)
    return false;
  /* Fast path: the same keys in the same position (generated maps are kept sorted). */
  bool aligned = true;
  for (size_t i = 0; i < na && aligned; i++) {
    const unsigned char *x = ea + i * t->elem_size, *y = eb + i * t->elem_size;
    const char *kx = *(char *const *)x, *ky = *(char *const *)y;
    if (kx == NULL || ky == NULL || strcmp(kx, ky) != 0) {
      aligned = false;
      break;
    }
    if (!slot_equal(t->elem, x + t->entry_value_offset, y + t->entry_value_offset))
      return false;
  }
  if (aligned)
    return true;
  /* Equal sizes and every key of a found in b with an equal value, and every key of b found in
   * a (which also rules out duplicate keys hiding a missing one). */
  for (size_t i = 0; i < na; i++) {
    const unsigned char *x = ea + i * t->elem_size;
    const char *k = *(char *const *)x;
    if (k == NULL)
      return false;
    const unsigned char *y = map_find(t, eb, nb, k);
    if (y == NULL)
      return false;
    if (!slot_equal(t->elem, x + t->entry_value_offset, y + t->entry_value_offset))
      return false;
  }
  for (size_t i = 0; i < nb; i++) {
    const char *k = *(char *const *)(eb + i * t->elem_size);
    if (k == NULL || map_find(t, ea, na, k) == NULL)
      return false;
  }
  return true;
}

static bool field_equal(const ckpt_field_desc *f, const void *a, const void *b) {
  const ckpt_type_desc *t = f->type;
  if (t == NULL)
    return true;
  if (f->flags & CKPT_FIELD_HAS_PRESENCE) {
    bool ha = *(const bool *)CAT(a, f->presence_offset);
    bool hb = *(const bool *)CAT(b, f->presence_offset);
    if (ha != hb)
      return false;
    if (!ha)
      return true; /* both absent: whatever the members hold is not a value */
  }
  if (t->kind == CKPT_KIND_LIST || t->kind == CKPT_KIND_MAP) {
    size_t na = *(const size_t *)CAT(a, f->count_offset);
    size_t nb = *(const size_t *)CAT(b, f->count_offset);
    const unsigned char *ia = *(unsigned char *const *)CAT(a, f->offset);
    const unsigned char *ib = *(unsigned char *const *)CAT(b, f->offset);
    if (t->elem == NULL)
      return na == nb;
    if (t->kind == CKPT_KIND_MAP)
      return map_equal(t, ia, na, ib, nb);
    if (na != nb)
      return false;
    if (na == 0)
      return true;
    if (ia == NULL || ib == NULL)
      return ia == ib;
    for (size_t i = 0; i < na; i++) {
      if (!slot_equal(t->elem, ia + i * t->elem_size, ib + i * t->elem_size))
        return false;
    }
    return true;
  }
  return slot_equal(t, CAT(a, f->offset), CAT(b, f->offset));
}

bool ckpt_record_equal(const ckpt_record_desc *desc, const void *a, const void *b) {
  if (a == b)
    return true;
  if (a == NULL || b == NULL || !desc_usable(desc))
    return false;
  for (uint32_t i = 0; i < desc->n_fields; i++) {
    if (!field_equal(&desc->fields[i], a, b))
      return false;
  }
  return true;
}

/* ---------------------------------------------------------------- args */

ckpt_args *ckpt_args_new(const ckpt_args_desc *desc) {
  if (!desc_usable(desc) || !desc->is_args || desc->size < sizeof(ckpt_args))
    return NULL;
  ckpt_args *args = calloc(1, desc->size);
  if (args == NULL)
    return NULL;
  if (ckpt_record_init(desc, args) != CKPT_OK) {
    ckpt_record_free(desc, args);
    free(args);
    return NULL;
  }
  return args;
}

void ckpt_args_delete(ckpt_args *args) {
  if (args == NULL)
    return;
  if (args->desc != NULL)
    ckpt_record_free(args->desc, args);
  free(args);
}

bool ckpt_args_equal(const ckpt_args *a, const ckpt_args *b) {
  if (a == b)
    return true;
  if (a == NULL || b == NULL)
    return false;
  if (a->desc != b->desc || a->desc == NULL)
    return false;
  return ckpt_record_equal(a->desc, a, b);
}

const ckpt_field_desc *ckpt_record_field(const ckpt_record_desc *desc, const char *name) {
  if (!desc_usable(desc) || name == NULL)
    return NULL;
  for (uint32_t i = 0; i < desc->n_fields; i++) {
    if (desc->fields[i].name != NULL && strcmp(desc->fields[i].name, name) == 0)
      return &desc->fields[i];
  }
  return NULL;
}
