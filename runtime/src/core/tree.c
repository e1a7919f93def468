/* tree.c — ckpt_tree, the C PyTree: dict / list / tuple / None inner nodes and array, scalar,
 * string, bytes and placeholder leaves. Dict keys are kept sorted (bytewise), which is the
 * order jax.tree_util flattens dicts in and therefore the order Orbax names and stores leaves. */
#include "ckpt/tree.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ckpt_tree {
  ckpt_node_kind kind;
  /* dict / list / tuple */
  size_t count, cap;
  char **keys; /* dict only, sorted */
  ckpt_tree **children;
  /* leaves */
  ckpt_array *array;
  ckpt_scalar scalar;
  char *string;
  unsigned char *bytes;
  size_t len;
};

static ckpt_tree *node_new(ckpt_node_kind kind) {
  ckpt_tree *t = calloc(1, sizeof *t);
  if (t)
    t->kind = kind;
  return t;
}

ckpt_tree *ckpt_tree_new_dict(void) {
  return node_new(CKPT_NODE_DICT);
}
ckpt_tree *ckpt_tree_new_list(void) {
  return node_new(CKPT_NODE_LIST);
}
ckpt_tree *ckpt_tree_new_tuple(void) {
  return node_new(CKPT_NODE_TUPLE);
}
ckpt_tree *ckpt_tree_new_none(void) {
  return node_new(CKPT_NODE_NONE);
}
ckpt_tree *ckpt_tree_new_placeholder(void) {
  return node_new(CKPT_NODE_PLACEHOLDER);
}

ckpt_tree *ckpt_tree_new_array(ckpt_array *array) {
  if (array == NULL)
    return NULL;
  ckpt_tree *t = node_new(CKPT_NODE_ARRAY);
  if (t == NULL) {
    ckpt_array_free(array);
    return NULL;
  }
  t->array = array;
  return t;
}

ckpt_tree *ckpt_tree_new_scalar(ckpt_scalar value) {
  ckpt_tree *t = node_new(CKPT_NODE_SCALAR);
  if (t)
    t->scalar = value;
  return t;
}

ckpt_tree *ckpt_tree_new_int(ckpt_dtype dtype, int64_t value) {
  ckpt_scalar s;
  memset(&s, 0, sizeof s);
  s.dtype = dtype;
  switch (ckpt_dtype_class_of(dtype)) {
    case CKPT_DTYPE_CLASS_BOOL:
      s.v.b = value != 0;
      break;
    case CKPT_DTYPE_CLASS_SIGNED:
      s.v.i = value;
      break;
    case CKPT_DTYPE_CLASS_UNSIGNED:
      s.v.u = (uint64_t)value;
      break;
    default:
      s.v.f = (double)value;
      break;
  }
  return ckpt_tree_new_scalar(s);
}

ckpt_tree *ckpt_tree_new_float(ckpt_dtype dtype, double value) {
  /* Store through the dtype's own representation so that a float32 scalar holds exactly the
   * float32 value it will be written as (and compares equal after a round trip). */
  unsigned char buf[16];
  ckpt_dtype_convert(dtype, buf, CKPT_DTYPE_FLOAT64, &value, 1);
  return ckpt_tree_new_scalar(ckpt_scalar_load(dtype, buf));
}

ckpt_tree *ckpt_tree_new_string(const char *value) {
  if (value == NULL)
    return NULL;
  ckpt_tree *t = node_new(CKPT_NODE_STRING);
  if (t == NULL)
    return NULL;
  t->string = strdup(value);
  if (t->string == NULL) {
    free(t);
    return NULL;
  }
  return t;
}

ckpt_tree *ckpt_tree_new_bytes(const void *data, size_t len) {
  if (data == NULL && len > 0)
    return NULL;
  ckpt_tree *t = node_new(CKPT_NODE_BYTES);
  if (t == NULL)
    return NULL;
  t->bytes = malloc(len > 0 ? len : 1);
  if (t->bytes == NULL) {
    free(t);
    return NULL;
  }
  if (len > 0)
    memcpy(t->bytes, data, len);
  t->len = len;
  return t;
}

static bool is_container(const ckpt_tree *t) {
  return t &&
         (t->kind == CKPT_NODE_DICT || t->kind == CKPT_NODE_LIST || t->kind == CKPT_NODE_TUPLE);
}

static bool grow(ckpt_tree *t) {
  if (t->count < t->cap)
    return true;
  size_t cap = t->cap ? t->cap * 2 : 4;
  ckpt_tree **ch = realloc(t->children, cap * sizeof *ch);
  if (ch == NULL)
    return false;
  t->children = ch;
  if (t->kind == CKPT_NODE_DICT) {
    char **k = realloc(t->keys, cap * sizeof *k);
    if (k == NULL)
      return false;
    t->keys = k;
  }
  t->cap = cap;
  return true;
}

/* Index of key in the sorted keys, or the insertion point with *found false. */
static size_t dict_find(const ckpt_tree *t, const char *key, bool *found) {
  size_t lo = 0, hi = t->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(t->keys[mid], key);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

ckpt_status ckpt_tree_dict_set(ckpt_tree *dict, const char *key, ckpt_tree *child,
                               ckpt_error *err) {
  if (child == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "tree: out of memory building "
                          "the value of key '%s'",
                          key ? key : "(null)");
  if (dict == NULL || dict->kind != CKPT_NODE_DICT || key == NULL) {
    ckpt_tree_free(child);
    return ckpt_error_set(err, CKPT_EINVAL, "tree_dict_set: %s",
                          key == NULL ? "NULL key" : "not a dict");
  }
  bool found = false;
  /* Keys usually arrive in order (a restore builds dicts from sorted names): appending after
   * the last key needs one comparison, not a binary search. */
  size_t at = dict->count > 0 && strcmp(dict->keys[dict->count - 1], key) < 0
                  ? dict->count
                  : dict_find(dict, key, &found);
  if (found) {
    ckpt_tree_free(dict->children[at]);
    dict->children[at] = child;
    return CKPT_OK;
  }
  char *k = strdup(key);
  if (k == NULL || !grow(dict)) {
    free(k);
    ckpt_tree_free(child);
    return ckpt_error_set(err, CKPT_ENOMEM, "tree: out of memory adding key '%s'", key);
  }
  memmove(&dict->keys[at + 1], &dict->keys[at], (dict->count - at) * sizeof *dict->keys);
  memmove(&dict->children[at + 1], &dict->children[at],
          (dict->count - at) * sizeof *dict->children);
  dict->keys[at] = k;
  dict->children[at] = child;
  dict->count++;
  return CKPT_OK;
}

ckpt_status ckpt_tree_append(ckpt_tree *seq, ckpt_tree *child, ckpt_error *err) {
  if (child == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "tree: out of memory building a sequence element");
  if (seq == NULL || (seq->kind != CKPT_NODE_LIST && seq->kind != CKPT_NODE_TUPLE)) {
    ckpt_tree_free(child);
    return ckpt_error_set(err, CKPT_EINVAL, "tree_append: not a list or tuple");
  }
  if (!grow(seq)) {
    ckpt_tree_free(child);
    return ckpt_error_set(err, CKPT_ENOMEM, "tree: out of memory appending element %zu",
                          seq->count);
  }
  seq->children[seq->count++] = child;
  return CKPT_OK;
}

ckpt_status ckpt_tree_set_child(ckpt_tree *node, size_t index, ckpt_tree *child, ckpt_error *err) {
  if (child == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "tree: out of memory building child %zu", index);
  if (!is_container(node) || index >= node->count) {
    ckpt_tree_free(child);
    return ckpt_error_set(err, CKPT_EINVAL, "tree_set_child: no child %zu", index);
  }
  ckpt_tree_free(node->children[index]);
  node->children[index] = child;
  return CKPT_OK;
}

bool ckpt_tree_dict_remove(ckpt_tree *dict, const char *key) {
  if (dict == NULL || dict->kind != CKPT_NODE_DICT || key == NULL)
    return false;
  bool found;
  size_t at = dict_find(dict, key, &found);
  if (!found)
    return false;
  free(dict->keys[at]);
  ckpt_tree_free(dict->children[at]);
  memmove(&dict->keys[at], &dict->keys[at + 1], (dict->count - at - 1) * sizeof *dict->keys);
  memmove(&dict->children[at], &dict->children[at + 1],
          (dict->count - at - 1) * sizeof *dict->children);
  dict->count--;
  return true;
}

ckpt_node_kind ckpt_tree_kind(const ckpt_tree *node) {
  return node ? node->kind : CKPT_NODE_NONE;
}

const char *ckpt_node_kind_name(ckpt_node_kind kind) {
  switch (kind) {
    case CKPT_NODE_DICT:
      return "dict";
    case CKPT_NODE_LIST:
      return "list";
    case CKPT_NODE_TUPLE:
      return "tuple";
    case CKPT_NODE_NONE:
      return "None";
    case CKPT_NODE_ARRAY:
      return "array";
    case CKPT_NODE_SCALAR:
      return "scalar";
    case CKPT_NODE_STRING:
      return "string";
    case CKPT_NODE_BYTES:
      return "bytes";
    case CKPT_NODE_PLACEHOLDER:
      return "placeholder";
  }
  return "unknown";
}

size_t ckpt_tree_count(const ckpt_tree *node) {
  return is_container(node) ? node->count : 0;
}

ckpt_tree *ckpt_tree_child(const ckpt_tree *node, size_t index) {
  if (!is_container(node) || index >= node->count)
    return NULL;
  return node->children[index];
}

const char *ckpt_tree_key(const ckpt_tree *node, size_t index) {
  if (node == NULL || node->kind != CKPT_NODE_DICT || index >= node->count)
    return NULL;
  return node->keys[index];
}

ckpt_tree *ckpt_tree_dict_get(const ckpt_tree *dict, const char *key) {
  if (dict == NULL || dict->kind != CKPT_NODE_DICT || key == NULL)
    return NULL;
  bool found;
  size_t at = dict_find(dict, key, &found);
  return found ? dict->children[at] : NULL;
}

/* Dict keys may themselves contain '.', so a path is matched against keys as prefixes with
 * backtracking rather than split blindly. */
static ckpt_tree *get_path(const ckpt_tree *node, const char *path) {
  if (*path == '\0')
    return (ckpt_tree *)node;
  if (node == NULL)
    return NULL;
  if (node->kind == CKPT_NODE_DICT) {
    /* A key equal to the whole rest of the path wins over a nested path. */
    bool found;
    size_t at = dict_find(node, path, &found);
    if (found)
      return node->children[at];
    for (size_t i = 0; i < node->count; i++) {
      size_t kl = strlen(node->keys[i]);
      if (strncmp(path, node->keys[i], kl) != 0)
        continue;
      if (path[kl] == '\0')
        return node->children[i];
      if (path[kl] == '.') {
        ckpt_tree *r = get_path(node->children[i], path + kl + 1);
        if (r)
          return r;
      }
    }
    return NULL;
  }
  if (node->kind == CKPT_NODE_LIST || node->kind == CKPT_NODE_TUPLE) {
    size_t idx = 0, n = 0;
    while (path[n] >= '0' && path[n] <= '9') {
      if (idx > (SIZE_MAX - 9) / 10)
        return NULL;
      idx = idx * 10 + (size_t)(path[n] - '0');
      n++;
    }
    if (n == 0 || (n > 1 && path[0] == '0') || idx >= node->count)
      return NULL;
    if (path[n] == '\0')
      return node->children[idx];
    if (path[n] != '.')
      return NULL;
    return get_path(node->children[idx], path + n + 1);
  }
  return NULL;
}

ckpt_tree *ckpt_tree_get(const ckpt_tree *root, const char *path) {
  if (root == NULL || path == NULL)
    return NULL;
  return get_path(root, path);
}

ckpt_array *ckpt_tree_array(const ckpt_tree *node) {
  return node && node->kind == CKPT_NODE_ARRAY ? node->array : NULL;
}

ckpt_array *ckpt_tree_take_array(ckpt_tree *node) {
  if (node == NULL || node->kind != CKPT_NODE_ARRAY)
    return NULL;
  ckpt_array *a = node->array;
  node->array = NULL;
  node->kind = CKPT_NODE_NONE;
  return a;
}

bool ckpt_tree_scalar(const ckpt_tree *node, ckpt_scalar *out) {
  if (node == NULL || node->kind != CKPT_NODE_SCALAR)
    return false;
  if (out)
    *out = node->scalar;
  return true;
}

const char *ckpt_tree_string(const ckpt_tree *node) {
  return node && node->kind == CKPT_NODE_STRING ? node->string : NULL;
}

bool ckpt_tree_bytes(const ckpt_tree *node, const void **data, size_t *len) {
  if (node == NULL || node->kind != CKPT_NODE_BYTES)
    return false;
  if (data)
    *data = node->bytes;
  if (len)
    *len = node->len;
  return true;
}

void ckpt_tree_free(ckpt_tree *node) {
  if (node == NULL)
    return;
  for (size_t i = 0; i < node->count; i++) {
    ckpt_tree_free(node->children[i]);
    if (node->keys)
      free(node->keys[i]);
  }
  free(node->children);
  free(node->keys);
  ckpt_array_free(node->array);
  free(node->string);
  free(node->bytes);
  free(node);
}

ckpt_tree *ckpt_tree_clone(const ckpt_tree *node) {
  if (node == NULL)
    return NULL;
  ckpt_tree *c = NULL;
  switch (node->kind) {
    case CKPT_NODE_ARRAY:
      return ckpt_tree_new_array(ckpt_array_clone(node->array));
    case CKPT_NODE_SCALAR:
      return ckpt_tree_new_scalar(node->scalar);
    case CKPT_NODE_STRING:
      return ckpt_tree_new_string(node->string);
    case CKPT_NODE_BYTES:
      return ckpt_tree_new_bytes(node->bytes, node->len);
    case CKPT_NODE_NONE:
    case CKPT_NODE_PLACEHOLDER:
      return node_new(node->kind);
    default:
      break;
  }
  c = node_new(node->kind);
  if (c == NULL)
    return NULL;
  if (node->count > 0) {
    c->cap = node->count;
    c->children = calloc(node->count, sizeof *c->children);
    if (node->kind == CKPT_NODE_DICT)
      c->keys = calloc(node->count, sizeof *c->keys);
    if (c->children == NULL || (node->kind == CKPT_NODE_DICT && c->keys == NULL)) {
      ckpt_tree_free(c);
      return NULL;
    }
  }
  for (size_t i = 0; i < node->count; i++) {
    ckpt_tree *ch = ckpt_tree_clone(node->children[i]);
    char *k = node->kind == CKPT_NODE_DICT ? strdup(node->keys[i]) : NULL;
    if (ch == NULL || (node->kind == CKPT_NODE_DICT && k == NULL)) {
      ckpt_tree_free(ch);
      free(k);
      ckpt_tree_free(c);
      return NULL;
    }
    c->children[i] = ch;
    if (c->keys)
      c->keys[i] = k;
    c->count = i + 1;
  }
  return c;
}

static bool scalar_equal(const ckpt_scalar *a, const ckpt_scalar *b) {
  if (a->dtype != b->dtype)
    return false;
  unsigned char x[16] = {0}, y[16] = {0};
  ckpt_scalar_store(a, x);
  ckpt_scalar_store(b, y);
  return memcmp(x, y, sizeof x) == 0;
}

bool ckpt_tree_equal(const ckpt_tree *a, const ckpt_tree *b) {
  if (a == b)
    return true;
  if (a == NULL || b == NULL || a->kind != b->kind)
    return false;
  switch (a->kind) {
    case CKPT_NODE_ARRAY:
      return ckpt_array_equal(a->array, b->array);
    case CKPT_NODE_SCALAR:
      return scalar_equal(&a->scalar, &b->scalar);
    case CKPT_NODE_STRING:
      return strcmp(a->string, b->string) == 0;
    case CKPT_NODE_BYTES:
      return a->len == b->len && (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
    case CKPT_NODE_NONE:
    case CKPT_NODE_PLACEHOLDER:
      return true;
    default:
      break;
  }
  if (a->count != b->count)
    return false;
  for (size_t i = 0; i < a->count; i++) {
    if (a->kind == CKPT_NODE_DICT && strcmp(a->keys[i], b->keys[i]) != 0)
      return false;
    if (!ckpt_tree_equal(a->children[i], b->children[i]))
      return false;
  }
  return true;
}

void ckpt_scalar_store(const ckpt_scalar *value, void *dst) {
  switch (ckpt_dtype_class_of(value->dtype)) {
    case CKPT_DTYPE_CLASS_BOOL: {
      unsigned char b = value->v.b ? 1 : 0;
      memcpy(dst, &b, 1);
      break;
    }
    case CKPT_DTYPE_CLASS_SIGNED:
      ckpt_dtype_convert(value->dtype, dst, CKPT_DTYPE_INT64, &value->v.i, 1);
      break;
    case CKPT_DTYPE_CLASS_UNSIGNED:
      ckpt_dtype_convert(value->dtype, dst, CKPT_DTYPE_UINT64, &value->v.u, 1);
      break;
    default: /* float, and complex with a zero imaginary part */
      ckpt_dtype_convert(value->dtype, dst, CKPT_DTYPE_FLOAT64, &value->v.f, 1);
      break;
  }
}

ckpt_scalar ckpt_scalar_load(ckpt_dtype dtype, const void *src) {
  ckpt_scalar s;
  memset(&s, 0, sizeof s);
  s.dtype = dtype;
  switch (ckpt_dtype_class_of(dtype)) {
    case CKPT_DTYPE_CLASS_BOOL:
      s.v.b = *(const unsigned char *)src != 0;
      break;
    case CKPT_DTYPE_CLASS_SIGNED:
      ckpt_dtype_convert(CKPT_DTYPE_INT64, &s.v.i, dtype, src, 1);
      break;
    case CKPT_DTYPE_CLASS_UNSIGNED:
      ckpt_dtype_convert(CKPT_DTYPE_UINT64, &s.v.u, dtype, src, 1);
      break;
    default:
      ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &s.v.f, dtype, src, 1);
      break;
  }
  return s;
}

size_t ckpt_tree_num_leaves(const ckpt_tree *node) {
  if (node == NULL)
    return 0;
  switch (node->kind) {
    case CKPT_NODE_ARRAY:
    case CKPT_NODE_SCALAR:
    case CKPT_NODE_STRING:
    case CKPT_NODE_BYTES:
    case CKPT_NODE_PLACEHOLDER:
      return 1;
    case CKPT_NODE_NONE:
      return 0;
    default:
      break;
  }
  size_t n = 0;
  for (size_t i = 0; i < node->count; i++)
    n += ckpt_tree_num_leaves(node->children[i]);
  return n;
}

/* ---- walk ---- */

typedef struct walk_state {
  ckpt_tree_visit_fn fn;
  void *ctx;
  const char **path;
  char **owned; /* index strings we allocated, parallel to path */
  size_t cap;
} walk_state;

static ckpt_status walk(walk_state *w, size_t depth, const ckpt_tree *node, ckpt_error *err) {
  if (!is_container(node) || node->count == 0)
    return w->fn(w->ctx, w->path, depth, node, err);
  if (depth + 1 > w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 16;
    const char **p = realloc(w->path, cap * sizeof *p);
    if (p == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "tree_walk: out of memory");
    w->path = p;
    char **o = realloc(w->owned, cap * sizeof *o);
    if (o == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "tree_walk: out of memory");
    for (size_t i = w->cap; i < cap; i++)
      o[i] = NULL;
    w->owned = o;
    w->cap = cap;
  }
  for (size_t i = 0; i < node->count; i++) {
    if (node->kind == CKPT_NODE_DICT) {
      w->path[depth] = node->keys[i];
    } else {
      char buf[32];
      snprintf(buf, sizeof buf, "%zu", i);
      free(w->owned[depth]);
      w->owned[depth] = strdup(buf);
      if (w->owned[depth] == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "tree_walk: out of memory");
      w->path[depth] = w->owned[depth];
    }
    ckpt_status st = walk(w, depth + 1, node->children[i], err);
    if (st != CKPT_OK)
      return st;
  }
  return CKPT_OK;
}

ckpt_status ckpt_tree_walk(const ckpt_tree *root, ckpt_tree_visit_fn fn, void *ctx,
                           ckpt_error *err) {
  if (root == NULL || fn == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "tree_walk: NULL %s", root ? "callback" : "tree");
  walk_state w = {fn, ctx, NULL, NULL, 0};
  ckpt_status st = walk(&w, 0, root, err);
  for (size_t i = 0; i < w.cap; i++)
    free(w.owned[i]);
  free(w.owned);
  free(w.path);
  return st;
}
