/* record_tree.c — generated records ⇄ ckpt_tree, by walking the descriptor tables.
 *
 * This is what lets a record be saved through the PyTree layout (so Python opens it as a dict of
 * arrays) and restored with validation. The mapping, per field kind:
 *
 *   bool, int*, uint*, float*   scalar leaf of that dtype (a 0-d array on disk)
 *   string                      string leaf (_strings.json)
 *   bytes                       1-d uint8 array
 *   array                       array leaf (dtype, rank, fixed and tied dims checked)
 *   record                      dict of its fields
 *   list / map                  list / dict (map keys are the dict keys)
 *   optional, absent            no key at all
 *   json                        string leaf holding the JSON text
 *   proto                       1-d uint8 array of protobuf_c_message_pack's bytes
 *   jax_random_key              {"key_data", "typed", "impl"?}
 *   numpy_random_key            numpy's get_state(legacy=False) dict (+ "legacy")
 *   tree                        the subtree itself
 *   args, record_ref            unsupported (they only make sense in args)
 *
 * Tied dimensions: a named dim (`H`) must have one size across every array of one record
 * instance, including arrays inside that record's lists and maps; a nested record is its own
 * scope. The check runs on save (a record that breaks its own schema is a bug worth reporting
 * before it reaches disk) and on restore. Every error names the field path, e.g.
 * "TrainState.b1: dim 0 (H) is 32 but TrainState.w1 has H = 64". */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

#include "ckpt/record_handler.h"
#include "core/array_internal.h"
#include "handlers/record_tree.h"
#include "text/json.h"

/* ------------------------------------------------------------------ paths */

/* A growable "TrainState.layers.0.w" buffer; push/pop keep it in step with the walk. On
 * allocation failure it keeps what fits and marks itself truncated, since it only feeds
 * messages and parameter names (the latter are checked for truncation before use). */
typedef struct pathbuf {
  char *s;
  size_t len, cap;
  bool oom;
} pathbuf;

static size_t path_push(pathbuf *p, const char *name) {
  size_t old = p->len;
  size_t add = strlen(name) + (p->len ? 1 : 0);
  if (p->len + add + 1 > p->cap) {
    size_t cap = p->cap ? p->cap : 64;
    while (p->len + add + 1 > cap)
      cap *= 2;
    char *s = realloc(p->s, cap);
    if (s == NULL) {
      p->oom = true;
      return old;
    }
    p->s = s;
    p->cap = cap;
  }
  if (p->len)
    p->s[p->len++] = '.';
  memcpy(p->s + p->len, name, strlen(name) + 1);
  p->len += strlen(name);
  return old;
}

static size_t path_push_index(pathbuf *p, size_t index) {
  char num[32];
  snprintf(num, sizeof num, "%zu", index);
  return path_push(p, num);
}

static void path_pop(pathbuf *p, size_t len) {
  if (p->s && len <= p->len) {
    p->len = len;
    p->s[len] = '\0';
  }
}

static const char *path_str(const pathbuf *p) {
  return p->s ? p->s : "(record)";
}

/* ------------------------------------------------------------------ tied dimensions */

typedef struct tie {
  const char *name;
  int64_t size;
  char *where; /* path of the array that fixed the size */
} tie;

typedef struct tie_scope {
  tie *items;
  size_t n, cap;
} tie_scope;

static void ties_free(tie_scope *t) {
  for (size_t i = 0; i < t->n; i++)
    free(t->items[i].where);
  free(t->items);
  t->items = NULL;
  t->n = t->cap = 0;
}

/* ------------------------------------------------------------------ walk context */

typedef struct walk {
  pathbuf path;
  size_t root_len; /* length of the record name that starts every path */
  ckpt_record_arrays arrays;
  bool copy_arrays; /* arrays == COPY: other leaves (bytes, subtrees) are copied too */
  bool take;
  ckpt_record_leaf_fn leaf_fn;
  void *leaf_ctx;
  ckpt_error *err;
} walk;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ckpt_status
fail(walk *w, ckpt_status code, const char *fmt, ...) {
  char msg[CKPT_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ckpt_error_set(w->err, code, "%s: %s", path_str(&w->path), msg);
}

static ckpt_status oom(walk *w) {
  return fail(w, CKPT_ENOMEM, "out of memory");
}

static const char *kind_name(ckpt_kind k) {
  switch (k) {
    case CKPT_KIND_BOOL:
      return "bool";
    case CKPT_KIND_INT8:
      return "int8";
    case CKPT_KIND_INT16:
      return "int16";
    case CKPT_KIND_INT32:
      return "int32";
    case CKPT_KIND_INT64:
      return "int64";
    case CKPT_KIND_UINT8:
      return "uint8";
    case CKPT_KIND_UINT16:
      return "uint16";
    case CKPT_KIND_UINT32:
      return "uint32";
    case CKPT_KIND_UINT64:
      return "uint64";
    case CKPT_KIND_FLOAT32:
      return "float32";
    case CKPT_KIND_FLOAT64:
      return "float64";
    case CKPT_KIND_STRING:
      return "string";
    case CKPT_KIND_BYTES:
      return "bytes";
    case CKPT_KIND_ARRAY:
      return "array";
    case CKPT_KIND_RECORD:
      return "record";
    case CKPT_KIND_LIST:
      return "list";
    case CKPT_KIND_MAP:
      return "map";
    case CKPT_KIND_JSON:
      return "json";
    case CKPT_KIND_PROTO:
      return "proto";
    case CKPT_KIND_JAX_KEY:
      return "jax_random_key";
    case CKPT_KIND_NUMPY_RNG:
      return "numpy_random_key";
    case CKPT_KIND_TREE:
      return "tree";
    case CKPT_KIND_ARGS:
      return "args";
    case CKPT_KIND_RECORD_REF:
      return "record reference";
  }
  return "unknown kind";
}

static const char *dtype_name(ckpt_dtype dt) {
  const char *n = ckpt_dtype_name(dt);
  return n ? n : "invalid dtype";
}

static const char *node_name(const ckpt_tree *node) {
  return node ? ckpt_node_kind_name(ckpt_tree_kind(node)) : "nothing";
}

static bool is_scalar_kind(ckpt_kind k) {
  return k <= CKPT_KIND_FLOAT64;
}

static ckpt_dtype scalar_dtype(ckpt_kind k) {
  switch (k) {
    case CKPT_KIND_BOOL:
      return CKPT_DTYPE_BOOL;
    case CKPT_KIND_INT8:
      return CKPT_DTYPE_INT8;
    case CKPT_KIND_INT16:
      return CKPT_DTYPE_INT16;
    case CKPT_KIND_INT32:
      return CKPT_DTYPE_INT32;
    case CKPT_KIND_INT64:
      return CKPT_DTYPE_INT64;
    case CKPT_KIND_UINT8:
      return CKPT_DTYPE_UINT8;
    case CKPT_KIND_UINT16:
      return CKPT_DTYPE_UINT16;
    case CKPT_KIND_UINT32:
      return CKPT_DTYPE_UINT32;
    case CKPT_KIND_UINT64:
      return CKPT_DTYPE_UINT64;
    case CKPT_KIND_FLOAT32:
      return CKPT_DTYPE_FLOAT32;
    default:
      return CKPT_DTYPE_FLOAT64;
  }
}

/* ------------------------------------------------------------------ arrays */

/* True when every shard of a owns its memory, so the array can be moved out of a restored tree
 * without aliasing anything the caller still holds. */
static bool owns_all(const ckpt_array *a) {
  for (size_t i = 0; i < a->n_shards; i++)
    if (!a->shards[i].owns_data && a->shards[i].data != NULL)
      return false;
  return true;
}

/* dtype, rank, fixed dims and tied dims of one array against its schema type. A type without a
 * valid dtype (bare `array`) accepts any dtype; one without a dims table accepts any shape. */
static ckpt_status check_array(walk *w, tie_scope *ties, const ckpt_type_desc *t,
                               const ckpt_array *a) {
  if (ckpt_dtype_valid(t->dtype) && a->dtype != t->dtype)
    return fail(w, CKPT_ETYPE, "dtype is %s but the schema says %s", dtype_name(a->dtype),
                dtype_name(t->dtype));
  if (t->dims == NULL)
    return CKPT_OK;
  if (a->ndim < 0 || (uint32_t)a->ndim != t->n_dims)
    return fail(w, CKPT_EMISMATCH, "rank is %d but the schema says %" PRIu32, a->ndim, t->n_dims);
  for (uint32_t d = 0; d < t->n_dims; d++) {
    const ckpt_dim_desc *dim = &t->dims[d];
    int64_t got = a->shape[d];
    if (dim->size >= 0) {
      if (got != dim->size)
        return fail(w, CKPT_EMISMATCH,
                    "dim %" PRIu32 " is %" PRId64 " but the schema says %" PRId64, d, got,
                    dim->size);
      continue;
    }
    if (dim->name == NULL)
      continue;
    tie *found = NULL;
    for (size_t i = 0; i < ties->n; i++)
      if (strcmp(ties->items[i].name, dim->name) == 0)
        found = &ties->items[i];
    if (found != NULL) {
      if (found->size != got)
        return fail(w, CKPT_EMISMATCH,
                    "dim %" PRIu32 " (%s) is %" PRId64 " but %s has %s = %" PRId64, d, dim->name,
                    got, found->where, dim->name, found->size);
      continue;
    }
    if (ties->n == ties->cap) {
      size_t cap = ties->cap ? ties->cap * 2 : 4;
      tie *items = realloc(ties->items, cap * sizeof *items);
      if (items == NULL)
        return oom(w);
      ties->items = items;
      ties->cap = cap;
    }
    char *where = strdup(path_str(&w->path));
    if (where == NULL)
      return oom(w);
    ties->items[ties->n++] = (tie){dim->name, got, where};
  }
  return CKPT_OK;
}

/* ------------------------------------------------------------------ record → tree */

static ckpt_status record_to_tree(walk *w, const ckpt_record_desc *desc, const void *rec,
                                  ckpt_tree **out);

/* Inserts child under key; the dict owns child afterwards (also on error). */
static ckpt_status put(walk *w, ckpt_tree *dict, const char *key, ckpt_tree *child) {
  ckpt_error local = CKPT_ERROR_INIT;
  if (ckpt_tree_dict_set(dict, key, child, &local) != CKPT_OK)
    return fail(w, local.code, "%s", local.message);
  return CKPT_OK;
}

static ckpt_status append(walk *w, ckpt_tree *seq, ckpt_tree *child) {
  ckpt_error local = CKPT_ERROR_INIT;
  if (ckpt_tree_append(seq, child, &local) != CKPT_OK)
    return fail(w, local.code, "%s", local.message);
  return CKPT_OK;
}

/* A copy of a tree whose array leaves share the original memory (zero-copy saves), or, for a
 * restore target, are fresh arrays of the same shape. */
static ckpt_status tree_view(walk *w, const ckpt_tree *node, ckpt_tree **out) {
  *out = NULL;
  ckpt_node_kind k = ckpt_tree_kind(node);
  ckpt_status st = CKPT_OK;
  if (k == CKPT_NODE_DICT || k == CKPT_NODE_LIST || k == CKPT_NODE_TUPLE) {
    ckpt_tree *copy = k == CKPT_NODE_DICT   ? ckpt_tree_new_dict()
                      : k == CKPT_NODE_LIST ? ckpt_tree_new_list()
                                            : ckpt_tree_new_tuple();
    if (copy == NULL)
      return oom(w);
    for (size_t i = 0; i < ckpt_tree_count(node) && st == CKPT_OK; i++) {
      ckpt_tree *child = NULL;
      st = tree_view(w, ckpt_tree_child(node, i), &child);
      if (st != CKPT_OK)
        break;
      st = k == CKPT_NODE_DICT ? put(w, copy, ckpt_tree_key(node, i), child)
                               : append(w, copy, child);
    }
    if (st != CKPT_OK) {
      ckpt_tree_free(copy);
      return st;
    }
    *out = copy;
    return CKPT_OK;
  }
  if (k == CKPT_NODE_ARRAY) {
    ckpt_array *v = NULL;
    ckpt_error local = CKPT_ERROR_INIT;
    const ckpt_array *a = ckpt_tree_array(node);
    if ((w->arrays == CKPT_RECORD_ARRAYS_SHAPE ? ckpt_array_like(a, &v, &local)
                                               : ckpt_array_view(a, &v, &local)) != CKPT_OK)
      return fail(w, local.code, "%s", local.message);
    *out = ckpt_tree_new_array(v);
  } else {
    *out = ckpt_tree_clone(node);
  }
  return *out ? CKPT_OK : oom(w);
}

/* A 1-d uint8 array over len bytes: borrowed when the walk does not copy, else owned. */
static ckpt_status bytes_array(walk *w, const uint8_t *data, size_t len, bool may_borrow,
                               ckpt_tree **out) {
  ckpt_error local = CKPT_ERROR_INIT;
  ckpt_array *a = NULL;
  int64_t shape[1] = {(int64_t)len};
  ckpt_status st;
  if (may_borrow && w->arrays == CKPT_RECORD_ARRAYS_VIEW && len > 0) {
    st = ckpt_array_wrap(CKPT_DTYPE_UINT8, 1, shape, (void *)data, &a, &local);
  } else {
    st = ckpt_array_new(CKPT_DTYPE_UINT8, 1, shape, &a, &local);
    if (st == CKPT_OK && len > 0)
      memcpy(ckpt_array_data(a), data, len);
  }
  if (st != CKPT_OK)
    return fail(w, local.code, "%s", local.message);
  *out = ckpt_tree_new_array(a);
  return *out ? CKPT_OK : oom(w);
}

static bool leaf_options_set(const ckpt_leaf_options *o) {
  return o != NULL && (o->chunk_bytes != 0 || o->compression != CKPT_COMPRESSION_DEFAULT ||
                       o->compression_level != 0 || o->has_save_dtype);
}

static ckpt_status array_leaf(walk *w, tie_scope *ties, const ckpt_type_desc *t,
                              const ckpt_array *a, const ckpt_leaf_options *leaf, ckpt_tree **out) {
  ckpt_status st = check_array(w, ties, t, a);
  if (st != CKPT_OK)
    return st;
  ckpt_array *copy = NULL;
  if (w->arrays == CKPT_RECORD_ARRAYS_COPY) {
    copy = ckpt_array_clone(a);
    if (copy == NULL)
      return oom(w);
  } else {
    ckpt_error local = CKPT_ERROR_INIT;
    if ((w->arrays == CKPT_RECORD_ARRAYS_SHAPE ? ckpt_array_like(a, &copy, &local)
                                               : ckpt_array_view(a, &copy, &local)) != CKPT_OK)
      return fail(w, local.code, "%s", local.message);
  }
  *out = ckpt_tree_new_array(copy);
  if (*out == NULL)
    return oom(w);
  if (w->leaf_fn != NULL && leaf_options_set(leaf)) {
    if (w->path.oom)
      return oom(w);
    const char *param = w->path.s + w->root_len + (w->path.len > w->root_len ? 1 : 0);
    st = w->leaf_fn(w->leaf_ctx, param, leaf, w->err);
    if (st != CKPT_OK) {
      ckpt_tree_free(*out);
      *out = NULL;
    }
  }
  return st;
}

static ckpt_status value_to_tree(walk *w, tie_scope *ties, const ckpt_type_desc *t,
                                 const void *slot, const ckpt_leaf_options *leaf, ckpt_tree **out) {
  *out = NULL;
  if (is_scalar_kind(t->kind)) {
    ckpt_scalar s;
    memset(&s, 0, sizeof s);
    s.dtype = scalar_dtype(t->kind);
    switch (t->kind) {
      case CKPT_KIND_BOOL:
        s.v.b = *(const bool *)slot;
        break;
      case CKPT_KIND_INT8:
        s.v.i = *(const int8_t *)slot;
        break;
      case CKPT_KIND_INT16:
        s.v.i = *(const int16_t *)slot;
        break;
      case CKPT_KIND_INT32:
        s.v.i = *(const int32_t *)slot;
        break;
      case CKPT_KIND_INT64:
        s.v.i = *(const int64_t *)slot;
        break;
      case CKPT_KIND_UINT8:
        s.v.u = *(const uint8_t *)slot;
        break;
      case CKPT_KIND_UINT16:
        s.v.u = *(const uint16_t *)slot;
        break;
      case CKPT_KIND_UINT32:
        s.v.u = *(const uint32_t *)slot;
        break;
      case CKPT_KIND_UINT64:
        s.v.u = *(const uint64_t *)slot;
        break;
      case CKPT_KIND_FLOAT32:
        s.v.f = *(const float *)slot;
        break;
      default:
        s.v.f = *(const double *)slot;
        break;
    }
    *out = ckpt_tree_new_scalar(s);
    return *out ? CKPT_OK : oom(w);
  }
  /* A restore target only needs the right kind of leaf where the value does not matter: an
   * unset string or JSON value stands for "whatever is stored", bytes and protos become bytes
   * leaves (the engine then reads the stored length). */
  bool target = w->arrays == CKPT_RECORD_ARRAYS_SHAPE;
  switch (t->kind) {
    case CKPT_KIND_STRING: {
      const char *s = *(char *const *)slot;
      if (s == NULL && target)
        s = "";
      if (s == NULL)
        return fail(w, CKPT_EINVAL, "required string is NULL");
      *out = ckpt_tree_new_string(s);
      return *out ? CKPT_OK : oom(w);
    }
    case CKPT_KIND_BYTES: {
      const ckpt_bytes *b = slot;
      if (target) {
        *out = ckpt_tree_new_bytes("", 0);
        return *out ? CKPT_OK : oom(w);
      }
      if (b->len > 0 && b->data == NULL)
        return fail(w, CKPT_EINVAL, "bytes of length %zu with NULL data", b->len);
      return bytes_array(w, b->data, b->len, true, out);
    }
    case CKPT_KIND_ARRAY: {
      const ckpt_array *a = *(ckpt_array *const *)slot;
      if (a == NULL && target)
        return fail(w, CKPT_EINVAL,
                    "the target's array is NULL (a target's arrays give the dtype, shape and "
                    "shards to restore; set every one)");
      if (a == NULL)
        return fail(w, CKPT_EINVAL, "required array is NULL");
      return array_leaf(w, ties, t, a, leaf, out);
    }
    case CKPT_KIND_RECORD:
      return record_to_tree(w, t->record, slot, out);
    case CKPT_KIND_JSON: {
      const cJSON *j = *(cJSON *const *)slot;
      if (target) {
        *out = ckpt_tree_new_string("");
        return *out ? CKPT_OK : oom(w);
      }
      if (j == NULL)
        return fail(w, CKPT_EINVAL, "required json value is NULL");
      /* Compact, as this field has always been stored, and exact (NaN, every digit). */
      char *text = NULL;
      size_t len = 0;
      ckpt_error local = CKPT_ERROR_INIT;
      ckpt_status st = ckpt_json_dumps(j, CKPT_JSON_STYLE_TIGHT, &text, &len, &local);
      if (st != CKPT_OK)
        return fail(w, st, "%s", local.message);
      *out = ckpt_tree_new_string(text);
      free(text);
      return *out ? CKPT_OK : oom(w);
    }
    case CKPT_KIND_PROTO: {
      const ProtobufCMessage *m = *(ProtobufCMessage *const *)slot;
      if (target) {
        *out = ckpt_tree_new_bytes("", 0);
        return *out ? CKPT_OK : oom(w);
      }
      if (m == NULL)
        return fail(w, CKPT_EINVAL, "required proto message is NULL");
      if (t->proto != NULL && m->descriptor != t->proto)
        return fail(w, CKPT_ETYPE, "message is a %s but the schema says %s",
                    m->descriptor ? m->descriptor->name : "(no descriptor)", t->proto->name);
      if (!protobuf_c_message_check(m))
        return fail(w, CKPT_EINVAL, "%s message is missing required fields", m->descriptor->name);
      size_t n = protobuf_c_message_get_packed_size(m);
      uint8_t *buf = malloc(n ? n : 1);
      if (buf == NULL)
        return oom(w);
      size_t packed = protobuf_c_message_pack(m, buf);
      ckpt_status st = packed == n ? bytes_array(w, buf, n, false, out)
                                   : fail(w, CKPT_EINVAL, "%s message packed to %zu bytes, not %zu",
                                          m->descriptor->name, packed, n);
      free(buf);
      return st;
    }
    case CKPT_KIND_JAX_KEY: {
      const ckpt_jax_key *k = *(ckpt_jax_key *const *)slot;
      if (k == NULL && target)
        return fail(w, CKPT_EINVAL,
                    "the target's jax_random_key is NULL (its key data shape is the restore "
                    "target; set it)");
      if (k == NULL)
        return fail(w, CKPT_EINVAL, "required jax_random_key is NULL");
      return ckpt_jax_key_to_tree(k, w->arrays, path_str(&w->path), out, w->err);
    }
    case CKPT_KIND_NUMPY_RNG: {
      const ckpt_numpy_rng *r = *(ckpt_numpy_rng *const *)slot;
      if (r == NULL && target) {
        static const ckpt_numpy_rng any_state; /* its shape is all a target needs */
        r = &any_state;
      }
      if (r == NULL)
        return fail(w, CKPT_EINVAL, "required numpy_random_key is NULL");
      return ckpt_numpy_rng_to_tree(r, w->arrays, path_str(&w->path), out, w->err);
    }
    case CKPT_KIND_TREE: {
      const ckpt_tree *tr = *(ckpt_tree *const *)slot;
      if (tr == NULL && target)
        return fail(w, CKPT_EINVAL,
                    "the target's tree is NULL (a target gives the structure to restore; set it)");
      if (tr == NULL)
        return fail(w, CKPT_EINVAL, "required tree is NULL");
      if (!w->copy_arrays)
        return tree_view(w, tr, out);
      *out = ckpt_tree_clone(tr);
      return *out ? CKPT_OK : oom(w);
    }
    case CKPT_KIND_ARGS:
    case CKPT_KIND_RECORD_REF:
      return fail(w, CKPT_EUNSUPPORTED,
                  "a field of kind %s cannot be saved as part of a record (args belong in a "
                  "Composite)",
                  kind_name(t->kind));
    case CKPT_KIND_LIST:
    case CKPT_KIND_MAP:
      return fail(w, CKPT_EINVAL,
                  "a %s cannot directly contain a list or map (wrap it in a record)",
                  kind_name(t->kind));
    default:
      return fail(w, CKPT_EINVAL, "unknown field kind %d in the descriptor", (int)t->kind);
  }
}

static bool field_present(const ckpt_field_desc *f, const void *rec) {
  if (!(f->flags & CKPT_FIELD_OPTIONAL))
    return true;
  if (f->flags & CKPT_FIELD_HAS_PRESENCE)
    return *(const bool *)((const char *)rec + f->presence_offset);
  return *(void *const *)((const char *)rec + f->offset) != NULL;
}

static ckpt_status field_to_tree(walk *w, tie_scope *ties, const ckpt_field_desc *f,
                                 const void *rec, ckpt_tree **out) {
  const char *base = (const char *)rec;
  const ckpt_type_desc *t = f->type;
  *out = NULL;
  if (t->kind != CKPT_KIND_LIST && t->kind != CKPT_KIND_MAP)
    return value_to_tree(w, ties, t, base + f->offset, &f->leaf, out);

  size_t n = *(const size_t *)(base + f->count_offset);
  const char *items = *(char *const *)(base + f->offset);
  if (n > 0 && items == NULL)
    return fail(w, CKPT_EINVAL, "%zu items but a NULL pointer", n);
  if (t->elem == NULL)
    return fail(w, CKPT_EINVAL, "descriptor has no element type");
  bool is_map = t->kind == CKPT_KIND_MAP;
  ckpt_tree *node = is_map ? ckpt_tree_new_dict() : ckpt_tree_new_list();
  if (node == NULL)
    return oom(w);
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    const char *elem = items + i * t->elem_size;
    ckpt_tree *child = NULL;
    if (is_map) {
      const char *key = *(char *const *)elem;
      if (key == NULL) {
        st = fail(w, CKPT_EINVAL, "entry %zu has a NULL key", i);
        break;
      }
      if (ckpt_tree_dict_get(node, key) != NULL) {
        st = fail(w, CKPT_EINVAL, "duplicate map key '%s'", key);
        break;
      }
      size_t mark = path_push(&w->path, key);
      st = value_to_tree(w, ties, t->elem, elem + t->entry_value_offset, &f->leaf, &child);
      path_pop(&w->path, mark);
      if (st == CKPT_OK)
        st = put(w, node, key, child);
    } else {
      size_t mark = path_push_index(&w->path, i);
      st = value_to_tree(w, ties, t->elem, elem, &f->leaf, &child);
      path_pop(&w->path, mark);
      if (st == CKPT_OK)
        st = append(w, node, child);
    }
  }
  if (st != CKPT_OK) {
    ckpt_tree_free(node);
    return st;
  }
  *out = node;
  return CKPT_OK;
}

static ckpt_status check_desc(walk *w, const ckpt_record_desc *desc) {
  if (desc == NULL || desc->magic != CKPT_RECORD_DESC_MAGIC)
    return fail(w, CKPT_EINVAL, "not a record descriptor");
  if (desc->abi_version != CKPT_ABI_VERSION)
    return fail(w, CKPT_EVERSION, "descriptor %s was generated for ABI %" PRIu32 ", runtime has %d",
                desc->full_name ? desc->full_name : "?", desc->abi_version, CKPT_ABI_VERSION);
  return CKPT_OK;
}

static ckpt_status record_to_tree(walk *w, const ckpt_record_desc *desc, const void *rec,
                                  ckpt_tree **out) {
  *out = NULL;
  ckpt_status st = check_desc(w, desc);
  if (st != CKPT_OK)
    return st;
  ckpt_tree *dict = ckpt_tree_new_dict();
  if (dict == NULL)
    return oom(w);
  tie_scope ties = {0};
  for (uint32_t i = 0; i < desc->n_fields && st == CKPT_OK; i++) {
    const ckpt_field_desc *f = &desc->fields[i];
    if (!field_present(f, rec))
      continue;
    size_t mark = path_push(&w->path, f->name);
    ckpt_tree *child = NULL;
    st = field_to_tree(w, &ties, f, rec, &child);
    if (st == CKPT_OK)
      st = put(w, dict, f->name, child);
    path_pop(&w->path, mark);
  }
  ties_free(&ties);
  if (st != CKPT_OK) {
    ckpt_tree_free(dict);
    return st;
  }
  *out = dict;
  return CKPT_OK;
}

static void walk_start(walk *w, const ckpt_record_desc *desc, ckpt_error *err) {
  memset(w, 0, sizeof *w);
  w->err = err;
  path_push(&w->path,
            desc && desc->magic == CKPT_RECORD_DESC_MAGIC && desc->name ? desc->name : "record");
  w->root_len = w->path.len;
}

ckpt_status ckpt_record_to_tree_ex(const ckpt_record_desc *desc, const void *record,
                                   ckpt_record_arrays arrays, ckpt_record_leaf_fn leaf_fn,
                                   void *leaf_ctx, ckpt_tree **out, ckpt_error *err) {
  walk w;
  walk_start(&w, desc, err);
  w.arrays = arrays;
  w.copy_arrays = arrays == CKPT_RECORD_ARRAYS_COPY;
  w.leaf_fn = leaf_fn;
  w.leaf_ctx = leaf_ctx;
  ckpt_status st = record == NULL ? fail(&w, CKPT_EINVAL, "record is NULL")
                                  : record_to_tree(&w, desc, record, out);
  free(w.path.s);
  return st;
}

ckpt_status ckpt_record_to_tree(const ckpt_record_desc *desc, const void *record, bool copy_arrays,
                                ckpt_tree **out, ckpt_error *err) {
  return ckpt_record_to_tree_ex(desc, record,
                                copy_arrays ? CKPT_RECORD_ARRAYS_COPY : CKPT_RECORD_ARRAYS_VIEW,
                                NULL, NULL, out, err);
}

/* ------------------------------------------------------------------ tree → record */

static ckpt_status record_from_tree(walk *w, const ckpt_record_desc *desc, ckpt_tree *node,
                                    void *rec, const void *target);

/* The scalar a leaf holds: a scalar node, or a 0-d array (what Python writes for a 0-d
 * np.ndarray). */
static ckpt_status get_scalar(walk *w, const ckpt_tree *node, ckpt_scalar *s) {
  if (ckpt_tree_scalar(node, s))
    return CKPT_OK;
  const ckpt_array *a = ckpt_tree_array(node);
  if (a != NULL && a->ndim == 0 && ckpt_array_data(a) != NULL) {
    *s = ckpt_scalar_load(a->dtype, ckpt_array_data(a));
    return CKPT_OK;
  }
  if (a != NULL)
    return fail(w, CKPT_ETYPE, "expected a scalar, found a %d-d %s array", a->ndim,
                dtype_name(a->dtype));
  return fail(w, CKPT_ETYPE, "expected a scalar, found %s", node_name(node));
}

typedef enum num_class { NUM_BOOL, NUM_SIGNED, NUM_UNSIGNED, NUM_FLOAT, NUM_OTHER } num_class;

static num_class dtype_num_class(ckpt_dtype dt) {
  switch (dt) {
    case CKPT_DTYPE_BOOL:
      return NUM_BOOL;
    case CKPT_DTYPE_INT8:
    case CKPT_DTYPE_INT16:
    case CKPT_DTYPE_INT32:
    case CKPT_DTYPE_INT64:
      return NUM_SIGNED;
    case CKPT_DTYPE_UINT8:
    case CKPT_DTYPE_UINT16:
    case CKPT_DTYPE_UINT32:
    case CKPT_DTYPE_UINT64:
      return NUM_UNSIGNED;
    case CKPT_DTYPE_FLOAT16:
    case CKPT_DTYPE_BFLOAT16:
    case CKPT_DTYPE_FLOAT32:
    case CKPT_DTYPE_FLOAT64:
      return NUM_FLOAT;
    default:
      return NUM_OTHER;
  }
}

/* Stores a scalar into a field of kind k. Integers convert between integer dtypes when the value
 * fits (Python writes every int as int64), floats between float dtypes (Python floats are
 * float64); anything else — bool ⇄ number, float → integer, integer → float — is a type error,
 * never a silent conversion. */
static ckpt_status scalar_store(walk *w, ckpt_kind k, const ckpt_scalar *s, void *slot) {
  num_class have = dtype_num_class(s->dtype);
  if (k == CKPT_KIND_BOOL) {
    if (have != NUM_BOOL)
      return fail(w, CKPT_ETYPE, "expected a bool scalar, found %s", dtype_name(s->dtype));
    *(bool *)slot = s->v.b;
    return CKPT_OK;
  }
  if (k == CKPT_KIND_FLOAT32 || k == CKPT_KIND_FLOAT64) {
    if (have != NUM_FLOAT)
      return fail(w, CKPT_ETYPE, "expected a %s scalar, found %s", kind_name(k),
                  dtype_name(s->dtype));
    if (k == CKPT_KIND_FLOAT32)
      *(float *)slot = (float)s->v.f;
    else
      *(double *)slot = s->v.f;
    return CKPT_OK;
  }
  if (have != NUM_SIGNED && have != NUM_UNSIGNED)
    return fail(w, CKPT_ETYPE, "expected an integer (%s) scalar, found %s", kind_name(k),
                dtype_name(s->dtype));
  bool neg = have == NUM_SIGNED && s->v.i < 0;
  uint64_t mag = neg ? 0 : (have == NUM_SIGNED ? (uint64_t)s->v.i : s->v.u);
  int64_t sv = have == NUM_SIGNED ? s->v.i : 0;
  bool big = have == NUM_UNSIGNED && s->v.u > (uint64_t)INT64_MAX;
  char shown[32];
  if (have == NUM_SIGNED)
    snprintf(shown, sizeof shown, "%" PRId64, s->v.i);
  else
    snprintf(shown, sizeof shown, "%" PRIu64, s->v.u);
  int64_t lo = 0, hi = 0;
  uint64_t umax = 0;
  switch (k) {
    case CKPT_KIND_INT8:
      lo = INT8_MIN, hi = INT8_MAX;
      break;
    case CKPT_KIND_INT16:
      lo = INT16_MIN, hi = INT16_MAX;
      break;
    case CKPT_KIND_INT32:
      lo = INT32_MIN, hi = INT32_MAX;
      break;
    case CKPT_KIND_INT64:
      lo = INT64_MIN, hi = INT64_MAX;
      break;
    case CKPT_KIND_UINT8:
      umax = UINT8_MAX;
      break;
    case CKPT_KIND_UINT16:
      umax = UINT16_MAX;
      break;
    case CKPT_KIND_UINT32:
      umax = UINT32_MAX;
      break;
    default:
      umax = UINT64_MAX;
      break;
  }
  bool is_signed = k >= CKPT_KIND_INT8 && k <= CKPT_KIND_INT64;
  if (is_signed) {
    int64_t v;
    if (have == NUM_SIGNED)
      v = sv;
    else if (big)
      return fail(w, CKPT_EMISMATCH, "value %s does not fit %s", shown, kind_name(k));
    else
      v = (int64_t)s->v.u;
    if (v < lo || v > hi)
      return fail(w, CKPT_EMISMATCH, "value %s does not fit %s", shown, kind_name(k));
    switch (k) {
      case CKPT_KIND_INT8:
        *(int8_t *)slot = (int8_t)v;
        break;
      case CKPT_KIND_INT16:
        *(int16_t *)slot = (int16_t)v;
        break;
      case CKPT_KIND_INT32:
        *(int32_t *)slot = (int32_t)v;
        break;
      default:
        *(int64_t *)slot = v;
        break;
    }
    return CKPT_OK;
  }
  if (neg || mag > umax)
    return fail(w, CKPT_EMISMATCH, "value %s does not fit %s", shown, kind_name(k));
  switch (k) {
    case CKPT_KIND_UINT8:
      *(uint8_t *)slot = (uint8_t)mag;
      break;
    case CKPT_KIND_UINT16:
      *(uint16_t *)slot = (uint16_t)mag;
      break;
    case CKPT_KIND_UINT32:
      *(uint32_t *)slot = (uint32_t)mag;
      break;
    default:
      *(uint64_t *)slot = mag;
      break;
  }
  return CKPT_OK;
}

/* The bytes of a 1-d uint8 array leaf (or a bytes leaf), contiguous. */
static ckpt_status get_bytes(walk *w, const ckpt_tree *node, const uint8_t **data, size_t *len) {
  const void *d = NULL;
  if (ckpt_tree_bytes(node, &d, len)) {
    *data = d;
    return CKPT_OK;
  }
  const ckpt_array *a = ckpt_tree_array(node);
  if (a == NULL)
    return fail(w, CKPT_ETYPE, "expected a uint8 array, found %s", node_name(node));
  if (a->dtype != CKPT_DTYPE_UINT8 || a->ndim != 1)
    return fail(w, CKPT_ETYPE, "expected a 1-d uint8 array, found a %d-d %s array", a->ndim,
                dtype_name(a->dtype));
  *len = (size_t)a->shape[0];
  *data = ckpt_array_data(a);
  if (*len > 0 && *data == NULL)
    return fail(w, CKPT_EINVAL, "bytes array is not held as one contiguous shard");
  return CKPT_OK;
}

/* A move-copy of a subtree: array leaves are taken out of the source (which keeps None there);
 * everything else is cloned. Used when the caller lets us consume the restored tree. */
static ckpt_status tree_take(walk *w, ckpt_tree *node, ckpt_tree **out) {
  *out = NULL;
  ckpt_node_kind k = ckpt_tree_kind(node);
  if (k == CKPT_NODE_ARRAY) {
    const ckpt_array *a = ckpt_tree_array(node);
    *out = ckpt_tree_new_array(owns_all(a) ? ckpt_tree_take_array(node) : ckpt_array_clone(a));
    return *out ? CKPT_OK : oom(w);
  }
  if (k != CKPT_NODE_DICT && k != CKPT_NODE_LIST && k != CKPT_NODE_TUPLE) {
    *out = ckpt_tree_clone(node);
    return *out ? CKPT_OK : oom(w);
  }
  ckpt_tree *copy = k == CKPT_NODE_DICT   ? ckpt_tree_new_dict()
                    : k == CKPT_NODE_LIST ? ckpt_tree_new_list()
                                          : ckpt_tree_new_tuple();
  if (copy == NULL)
    return oom(w);
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < ckpt_tree_count(node) && st == CKPT_OK; i++) {
    ckpt_tree *child = NULL;
    st = tree_take(w, ckpt_tree_child(node, i), &child);
    if (st == CKPT_OK)
      st = k == CKPT_NODE_DICT ? put(w, copy, ckpt_tree_key(node, i), child)
                               : append(w, copy, child);
  }
  if (st != CKPT_OK) {
    ckpt_tree_free(copy);
    return st;
  }
  *out = copy;
  return CKPT_OK;
}

/* Releases what a slot of type t owns (pointer kinds only) and leaves it empty, so a field can
 * be overwritten even when ckpt_record_init put an allocated default there. */
static void slot_clear(const ckpt_type_desc *t, void *slot) {
  switch (t->kind) {
    case CKPT_KIND_STRING:
      free(*(char **)slot);
      *(char **)slot = NULL;
      break;
    case CKPT_KIND_BYTES: {
      ckpt_bytes *b = slot;
      free(b->data);
      b->data = NULL;
      b->len = 0;
      break;
    }
    case CKPT_KIND_ARRAY:
      ckpt_array_free(*(ckpt_array **)slot);
      *(ckpt_array **)slot = NULL;
      break;
    case CKPT_KIND_JSON:
      cJSON_Delete(*(cJSON **)slot);
      *(cJSON **)slot = NULL;
      break;
    case CKPT_KIND_PROTO:
      if (*(ProtobufCMessage **)slot)
        protobuf_c_message_free_unpacked(*(ProtobufCMessage **)slot, NULL);
      *(ProtobufCMessage **)slot = NULL;
      break;
    case CKPT_KIND_JAX_KEY:
      ckpt_jax_key_free(*(ckpt_jax_key **)slot);
      *(ckpt_jax_key **)slot = NULL;
      break;
    case CKPT_KIND_NUMPY_RNG:
      ckpt_numpy_rng_free(*(ckpt_numpy_rng **)slot);
      *(ckpt_numpy_rng **)slot = NULL;
      break;
    case CKPT_KIND_TREE:
      ckpt_tree_free(*(ckpt_tree **)slot);
      *(ckpt_tree **)slot = NULL;
      break;
    default:
      break;
  }
}

static ckpt_status value_from_tree(walk *w, tie_scope *ties, const ckpt_type_desc *t,
                                   ckpt_tree *node, void *slot, const void *target) {
  if (is_scalar_kind(t->kind)) {
    ckpt_scalar s;
    ckpt_status st = get_scalar(w, node, &s);
    return st == CKPT_OK ? scalar_store(w, t->kind, &s, slot) : st;
  }
  switch (t->kind) {
    case CKPT_KIND_STRING: {
      const char *s = ckpt_tree_string(node);
      if (s == NULL)
        return fail(w, CKPT_ETYPE, "expected a string, found %s", node_name(node));
      char *copy = strdup(s);
      if (copy == NULL)
        return oom(w);
      slot_clear(t, slot);
      *(char **)slot = copy;
      return CKPT_OK;
    }
    case CKPT_KIND_BYTES: {
      const uint8_t *data = NULL;
      size_t len = 0;
      ckpt_status st = get_bytes(w, node, &data, &len);
      if (st != CKPT_OK)
        return st;
      uint8_t *copy = malloc(len ? len : 1);
      if (copy == NULL)
        return oom(w);
      if (len)
        memcpy(copy, data, len);
      slot_clear(t, slot);
      ((ckpt_bytes *)slot)->data = copy;
      ((ckpt_bytes *)slot)->len = len;
      return CKPT_OK;
    }
    case CKPT_KIND_ARRAY: {
      const ckpt_array *a = ckpt_tree_array(node);
      if (a == NULL)
        return fail(w, CKPT_ETYPE, "expected an array, found %s", node_name(node));
      ckpt_status st = check_array(w, ties, t, a);
      if (st != CKPT_OK)
        return st;
      ckpt_array *copy = w->take && owns_all(a) ? ckpt_tree_take_array(node) : ckpt_array_clone(a);
      if (copy == NULL)
        return oom(w);
      slot_clear(t, slot);
      *(ckpt_array **)slot = copy;
      return CKPT_OK;
    }
    case CKPT_KIND_RECORD:
      return record_from_tree(w, t->record, node, slot, target);
    case CKPT_KIND_JSON: {
      const char *text = ckpt_tree_string(node);
      if (text == NULL)
        return fail(w, CKPT_ETYPE, "expected a string holding JSON, found %s", node_name(node));
      /* Errors read "<field path>:line:col: ..." (the field is the source). */
      cJSON *j = NULL;
      ckpt_status st = ckpt_json_load(text, strlen(text), path_str(&w->path), &j, w->err);
      if (st != CKPT_OK)
        return st;
      slot_clear(t, slot);
      *(cJSON **)slot = j;
      return CKPT_OK;
    }
    case CKPT_KIND_PROTO: {
      const ProtobufCMessageDescriptor *pd = t->proto;
      if (pd == NULL && target != NULL && *(ProtobufCMessage *const *)target != NULL)
        pd = (*(ProtobufCMessage *const *)target)->descriptor;
      if (pd == NULL)
        return fail(w, CKPT_EUNSUPPORTED,
                    "a bare `proto` field has no message type; restore with a target whose "
                    "field holds a message of the type to read");
      const uint8_t *data = NULL;
      size_t len = 0;
      ckpt_status st = get_bytes(w, node, &data, &len);
      if (st != CKPT_OK)
        return st;
      static const uint8_t empty[1] = {0};
      ProtobufCMessage *m = protobuf_c_message_unpack(pd, NULL, len, len ? data : empty);
      if (m == NULL)
        return fail(w, CKPT_ECORRUPT, "%zu bytes are not a valid %s message", len, pd->name);
      slot_clear(t, slot);
      *(ProtobufCMessage **)slot = m;
      return CKPT_OK;
    }
    case CKPT_KIND_JAX_KEY: {
      ckpt_jax_key *k = NULL;
      ckpt_status st = ckpt_jax_key_from_tree(node, w->take, path_str(&w->path), &k, w->err);
      if (st != CKPT_OK)
        return st;
      slot_clear(t, slot);
      *(ckpt_jax_key **)slot = k;
      return CKPT_OK;
    }
    case CKPT_KIND_NUMPY_RNG: {
      ckpt_numpy_rng *r = NULL;
      ckpt_status st = ckpt_numpy_rng_from_tree(node, path_str(&w->path), &r, w->err);
      if (st != CKPT_OK)
        return st;
      slot_clear(t, slot);
      *(ckpt_numpy_rng **)slot = r;
      return CKPT_OK;
    }
    case CKPT_KIND_TREE: {
      ckpt_tree *copy = NULL;
      if (w->take) {
        ckpt_status st = tree_take(w, node, &copy);
        if (st != CKPT_OK)
          return st;
      } else if ((copy = ckpt_tree_clone(node)) == NULL) {
        return oom(w);
      }
      slot_clear(t, slot);
      *(ckpt_tree **)slot = copy;
      return CKPT_OK;
    }
    case CKPT_KIND_ARGS:
    case CKPT_KIND_RECORD_REF:
      return fail(w, CKPT_EUNSUPPORTED, "a field of kind %s cannot be restored from a record",
                  kind_name(t->kind));
    default:
      return fail(w, CKPT_EINVAL, "a %s cannot directly contain a list or map", kind_name(t->kind));
  }
}

/* Frees the items of a list/map field and empties it. */
static void container_clear(const ckpt_field_desc *f, void *rec) {
  char *base = rec;
  size_t *count = (size_t *)(base + f->count_offset);
  char **items = (char **)(base + f->offset);
  const ckpt_type_desc *t = f->type;
  for (size_t i = 0; *items != NULL && i < *count; i++) {
    char *elem = *items + i * t->elem_size;
    if (t->kind == CKPT_KIND_MAP) {
      free(*(char **)elem);
      elem += t->entry_value_offset;
    }
    if (t->elem->kind == CKPT_KIND_RECORD)
      ckpt_record_free(t->elem->record, elem);
    else
      slot_clear(t->elem, elem);
  }
  free(*items);
  *items = NULL;
  *count = 0;
}

static ckpt_status field_from_tree(walk *w, tie_scope *ties, const ckpt_field_desc *f,
                                   ckpt_tree *node, void *rec, const void *target) {
  char *base = rec;
  const char *tbase = target;
  const ckpt_type_desc *t = f->type;
  ckpt_status st = CKPT_OK;
  if (t->kind != CKPT_KIND_LIST && t->kind != CKPT_KIND_MAP) {
    st = value_from_tree(w, ties, t, node, base + f->offset, tbase ? tbase + f->offset : NULL);
  } else {
    bool is_map = t->kind == CKPT_KIND_MAP;
    ckpt_node_kind nk = ckpt_tree_kind(node);
    if (is_map ? nk != CKPT_NODE_DICT : (nk != CKPT_NODE_LIST && nk != CKPT_NODE_TUPLE))
      return fail(w, CKPT_ETYPE, "expected a %s, found %s", is_map ? "dict" : "list",
                  node_name(node));
    if (t->elem == NULL || t->elem_size == 0)
      return fail(w, CKPT_EINVAL, "descriptor has no element type");
    size_t n = ckpt_tree_count(node);
    container_clear(f, rec);
    char *items = NULL;
    if (n > 0) {
      if (n > SIZE_MAX / t->elem_size || (items = calloc(n, t->elem_size)) == NULL)
        return oom(w);
    }
    /* The record owns the zeroed items from here on, so an error below leaves it freeable. */
    *(char **)(base + f->offset) = items;
    *(size_t *)(base + f->count_offset) = n;
    size_t tn = 0;
    const char *titems = NULL;
    if (tbase != NULL) {
      tn = *(const size_t *)(tbase + f->count_offset);
      titems = *(char *const *)(tbase + f->offset);
    }
    for (size_t i = 0; i < n && st == CKPT_OK; i++) {
      char *elem = items + i * t->elem_size;
      const char *telem = NULL;
      size_t mark;
      if (is_map) {
        const char *key = ckpt_tree_key(node, i);
        if ((*(char **)elem = strdup(key)) == NULL)
          return oom(w);
        for (size_t j = 0; titems != NULL && j < tn; j++) {
          const char *tkey = *(char *const *)(titems + j * t->elem_size);
          if (tkey != NULL && strcmp(tkey, key) == 0)
            telem = titems + j * t->elem_size;
        }
        mark = path_push(&w->path, key);
        elem += t->entry_value_offset;
        if (telem)
          telem += t->entry_value_offset;
      } else {
        if (titems != NULL && i < tn)
          telem = titems + i * t->elem_size;
        mark = path_push_index(&w->path, i);
      }
      if (t->elem->kind == CKPT_KIND_RECORD) {
        st = ckpt_record_init(t->elem->record, elem);
        if (st != CKPT_OK)
          st = oom(w);
      }
      if (st == CKPT_OK)
        st = value_from_tree(w, ties, t->elem, ckpt_tree_child(node, i), elem, telem);
      path_pop(&w->path, mark);
    }
  }
  if (st == CKPT_OK && (f->flags & CKPT_FIELD_HAS_PRESENCE))
    *(bool *)(base + f->presence_offset) = true;
  return st;
}

static ckpt_status record_from_tree(walk *w, const ckpt_record_desc *desc, ckpt_tree *node,
                                    void *rec, const void *target) {
  ckpt_status st = check_desc(w, desc);
  if (st != CKPT_OK)
    return st;
  if (ckpt_tree_kind(node) != CKPT_NODE_DICT)
    return fail(w, CKPT_ETYPE, "expected a dict (record %s), found %s",
                desc->full_name ? desc->full_name : desc->name, node_name(node));
  for (size_t i = 0; i < ckpt_tree_count(node); i++) {
    const char *key = ckpt_tree_key(node, i);
    if (ckpt_record_field(desc, key) == NULL) {
      size_t mark = path_push(&w->path, key);
      st = fail(w, CKPT_EMISMATCH, "unexpected key (not a field of %s)",
                desc->full_name ? desc->full_name : desc->name);
      path_pop(&w->path, mark);
      return st;
    }
  }
  tie_scope ties = {0};
  for (uint32_t i = 0; i < desc->n_fields && st == CKPT_OK; i++) {
    const ckpt_field_desc *f = &desc->fields[i];
    ckpt_tree *child = ckpt_tree_dict_get(node, f->name);
    size_t mark = path_push(&w->path, f->name);
    /* Python writes an unset optional as None (Orbax records it as a "None" leaf). */
    if (child != NULL && ckpt_tree_kind(child) == CKPT_NODE_NONE &&
        (f->flags & CKPT_FIELD_OPTIONAL))
      child = NULL;
    if (child == NULL) {
      if (!(f->flags & CKPT_FIELD_OPTIONAL))
        st = fail(w, CKPT_EMISMATCH, "missing (a required field of %s)",
                  desc->full_name ? desc->full_name : desc->name);
    } else {
      st = field_from_tree(w, &ties, f, child, rec, target);
    }
    path_pop(&w->path, mark);
  }
  ties_free(&ties);
  return st;
}

ckpt_status ckpt_record_from_tree_ex(const ckpt_record_desc *desc, ckpt_tree *tree, bool take,
                                     const void *target, void *record, ckpt_error *err) {
  walk w;
  walk_start(&w, desc, err);
  w.take = take;
  ckpt_status st;
  if (record == NULL)
    st = fail(&w, CKPT_EINVAL, "record is NULL");
  else if (tree == NULL)
    st = fail(&w, CKPT_EINVAL, "tree is NULL");
  else
    st = record_from_tree(&w, desc, tree, record, target);
  free(w.path.s);
  return st;
}

ckpt_status ckpt_record_from_tree(const ckpt_record_desc *desc, const ckpt_tree *tree, void *record,
                                  ckpt_error *err) {
  /* take = false never modifies the tree; the cast only lets both paths share one walker. */
  return ckpt_record_from_tree_ex(desc, (ckpt_tree *)tree, false, NULL, record, err);
}
