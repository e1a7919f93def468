/* handlers/pytree_restore.c — the restore half of the PyTree engine.
 *
 * Steps: read _METADATA (or rebuild it, and read the legacy aggregate file, for items of
 * older Orbax versions: ckpt_pytree_meta_read_any); rename saved parameters by the transforms; match them against the
 * target tree (a structural difference is an error listing the paths unless partial_restore);
 * decide for every matched leaf what it becomes (array with which dtype, shape and shard
 * boxes; scalar; string; empty node); plan the chunk reads of all arrays together so each
 * chunk is read once; run them in parallel; and assemble the output tree in the target's
 * shape (or, without a target, in the saved shape). */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/pytree_internal.h"
#include "io/engine.h"
#include "handlers/op.h"
#include "util/arena.h"
#include "util/path.h"
#include "util/sort.h"
#include "storage/aggregate.h"
#include "storage/ocdbt/ocdbt.h"
#include "storage/packed.h"
#include "storage/zarr_io.h"
#include "text/json.h"

typedef enum out_kind { OUT_NONE, OUT_ARRAY, OUT_SCALAR, OUT_BYTES, OUT_STRING, OUT_NODE } out_kind;

typedef struct rs_leaf {
  size_t entry; /* index into meta.entries */
  char *name;   /* parameter name after renames (in the context's arena) */
  bool renamed;
  bool matched; /* a target leaf (or no target) wants it */
  bool claimed; /* a non-placeholder target leaf takes its value */
  out_kind kind;
  ckpt_tree *node;   /* OUT_STRING / OUT_NODE result (owned until placed) */
  ckpt_array *array; /* OUT_ARRAY / OUT_SCALAR / OUT_BYTES destination (owned) */
  char *array_dir;      /* in the context's arena */
  ckpt_zarr_dest *dest; /* in the context's arena */
  ckpt_zarr_read_req req;
  bool has_req;
  /* The array's metadata file, read ahead on the engine (read_array_metas) into ahead (in the
   * context's arena), and the outcome, which prepare_array then takes instead of reading the
   * file itself. */
  ckpt_zarr_meta *ahead;
  bool meta_read;
  ckpt_status meta_st;
  ckpt_error *meta_err; /* owned; the error when meta_st is not CKPT_OK */
} rs_leaf;

typedef struct tgt_leaf {
  char *param;         /* in the context's arena, as are keys and their strings */
  ckpt_meta_key *keys;
  size_t depth;
  const ckpt_tree *node;
  rs_leaf *saved;    /* the saved leaf it takes its value from, or NULL */
  ckpt_tree *result; /* owned until placed */
} tgt_leaf;

typedef struct rs_ctx {
  ckpt_io *io;
  const char *dir;
  const ckpt_pytree_restore_spec *spec;
  const char *what;
  ckpt_pytree_meta meta;
  ckpt_tree *aggregate;      /* the legacy aggregate file, decoded; NULL when there is none */
  ckpt_checksums *checksums; /* _CHECKSUMS, or NULL (Orbax writes none) */
  ckpt_packed_index packed;  /* _PACKED (empty when the item has none) */
  ckpt_ocdbt *ocdbt;         /* the item's OCDBT database (use_ocdbt), or NULL */
  cJSON *strings;
  bool strings_loaded;
  size_t n_leaves;
  rs_leaf *leaves;
  rs_leaf **sorted; /* matched-candidate leaves sorted by name */
  size_t n_sorted;
  size_t next_hint; /* find_saved: the index after its last hit */
  const ckpt_zarr_meta *last_meta; /* share_meta: the last array's (in the arena) */
  size_t n_tgt, cap_tgt;
  tgt_leaf *tgt;
  ckpt_meta_key *stack; /* keys in the arena */
  size_t depth, cap_stack;
  /* The per-leaf names, paths, keys and destination boxes: tens of thousands of small objects
   * for a state of 10,000 arrays, freed at once rather than one by one (docs/performance.md,
   * "OCDBT and the small state"). What goes to the caller (arrays, tree nodes) is malloc'ed. */
  ckpt_arena arena;
} rs_ctx;

/* ---------------------------------------------------------------- cleanup */

static void ctx_free(rs_ctx *c) {
  for (size_t i = 0; i < c->n_leaves; i++) {
    rs_leaf *l = &c->leaves[i];
    if (l->node != NULL)
      ckpt_tree_free(l->node);
    if (l->array != NULL)
      ckpt_array_free(l->array);
    free(l->meta_err);
  }
  free(c->leaves);
  free(c->sorted);
  for (size_t i = 0; i < c->n_tgt; i++)
    if (c->tgt[i].result != NULL)
      ckpt_tree_free(c->tgt[i].result);
  free(c->tgt);
  free(c->stack);
  ckpt_arena_free(&c->arena);
  ckpt_checksums_free(c->checksums);
  ckpt_packed_free(&c->packed);
  ckpt_ocdbt_close(c->ocdbt);
  cJSON_Delete(c->strings);
  ckpt_tree_free(c->aggregate);
  ckpt_pytree_meta_free(&c->meta);
}

/* ---------------------------------------------------------------- transforms */

typedef struct compiled_tf {
  regex_t re;
  bool ok;
} compiled_tf;

/* Expands \1..\9 (and \\) of replacement with the groups of name; groups are shifted by one
 * because the pattern was wrapped as ^(...)$. */
static char *expand(const char *replacement, const char *name, const regmatch_t *m) {
  size_t cap = strlen(replacement) + 1;
  for (const char *r = replacement; *r; r++)
    if (r[0] == '\\' && r[1] >= '1' && r[1] <= '9')
      cap += strlen(name);
  char *out = malloc(cap);
  if (out == NULL)
    return NULL;
  size_t pos = 0;
  for (const char *r = replacement; *r; r++) {
    if (r[0] == '\\' && r[1] >= '1' && r[1] <= '9') {
      const regmatch_t *g = &m[r[1] - '0' + 1];
      if (g->rm_so >= 0) {
        memcpy(out + pos, name + g->rm_so, (size_t)(g->rm_eo - g->rm_so));
        pos += (size_t)(g->rm_eo - g->rm_so);
      }
      r++;
    } else if (r[0] == '\\' && r[1] == '\\') {
      out[pos++] = '\\';
      r++;
    } else {
      out[pos++] = *r;
    }
  }
  out[pos] = '\0';
  return out;
}

static ckpt_status apply_transforms(rs_ctx *c, ckpt_error *err) {
  const ckpt_pytree_restore_spec *s = c->spec;
  size_t nt = s ? s->n_transforms : 0;
  compiled_tf *tf = calloc(nt ? nt : 1, sizeof *tf);
  if (tf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < nt; i++) {
    const char *p = s->transforms[i].pattern;
    if (p == NULL || s->transforms[i].replacement == NULL) {
      st = ckpt_error_set(err, CKPT_EINVAL, "%s: transform %zu lacks a pattern or replacement",
                          c->what, i);
      goto done;
    }
    size_t pl = strlen(p);
    char *wrapped = malloc(pl + 5);
    if (wrapped == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      goto done;
    }
    snprintf(wrapped, pl + 5, "^(%s)$", p);
    int rc = regcomp(&tf[i].re, wrapped, REG_EXTENDED);
    free(wrapped);
    if (rc != 0) {
      char msg[256];
      regerror(rc, &tf[i].re, msg, sizeof msg);
      st = ckpt_error_set(err, CKPT_EINVAL, "%s: transform pattern '%s' is invalid: %s", c->what, p,
                          msg);
      goto done;
    }
    tf[i].ok = true;
  }
  for (size_t i = 0; i < c->n_leaves; i++) {
    rs_leaf *l = &c->leaves[i];
    const char *orig = c->meta.entries[l->entry].param;
    if (s == NULL || !s->has_transforms) {
      l->name = ckpt_arena_strdup(&c->arena, orig);
    } else {
      bool done = false;
      for (size_t k = 0; k < nt && !done; k++) {
        regmatch_t m[11];
        if (regexec(&tf[k].re, orig, 11, m, 0) != 0)
          continue;
        char *renamed = expand(s->transforms[k].replacement, orig, m);
        l->name = renamed != NULL ? ckpt_arena_strdup(&c->arena, renamed) : NULL;
        free(renamed);
        l->renamed = true;
        done = true;
      }
      if (!done) {
        if (!s->transforms_default_to_original) {
          l->matched = false;
          l->name = ckpt_arena_strdup(&c->arena, "");
          l->kind = OUT_NONE;
          if (l->name == NULL)
            goto oom;
          continue;
        }
        l->name = ckpt_arena_strdup(&c->arena, orig);
      }
    }
    if (l->name == NULL)
      goto oom;
  }
  goto done;
oom:
  st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory applying transforms");
done:
  for (size_t i = 0; i < nt; i++)
    if (tf[i].ok)
      regfree(&tf[i].re);
  free(tf);
  return st;
}

/* ---------------------------------------------------------------- target flattening */

static ckpt_status tgt_push(rs_ctx *c, const char *key, int type, ckpt_error *err) {
  if (c->depth == c->cap_stack) {
    size_t cap = c->cap_stack ? c->cap_stack * 2 : 16;
    ckpt_meta_key *s = realloc(c->stack, cap * sizeof *s);
    if (s == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    c->stack = s;
    c->cap_stack = cap;
  }
  c->stack[c->depth].key = ckpt_arena_strdup(&c->arena, key);
  if (c->stack[c->depth].key == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  c->stack[c->depth].key_type = type;
  c->depth++;
  return CKPT_OK;
}

static ckpt_status tgt_add(rs_ctx *c, const ckpt_tree *node, ckpt_error *err) {
  if (c->n_tgt == c->cap_tgt) {
    size_t cap = c->cap_tgt ? c->cap_tgt * 2 : 16;
    tgt_leaf *t = realloc(c->tgt, cap * sizeof *t);
    if (t == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    c->tgt = t;
    c->cap_tgt = cap;
  }
  tgt_leaf *t = &c->tgt[c->n_tgt++];
  memset(t, 0, sizeof *t);
  t->node = node;
  t->keys = ckpt_arena_calloc(&c->arena, (c->depth ? c->depth : 1) * sizeof *t->keys);
  size_t plen = 1;
  for (size_t i = 0; i < c->depth; i++)
    plen += strlen(c->stack[i].key) + 1;
  t->param = ckpt_arena_alloc(&c->arena, plen);
  if (t->keys == NULL || t->param == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  size_t pos = 0;
  for (size_t i = 0; i < c->depth; i++) {
    /* the stack's strings stay in the arena until the restore ends: shared, not copied */
    t->keys[i].key = c->stack[i].key;
    t->keys[i].key_type = c->stack[i].key_type;
    t->depth = i + 1;
    size_t l = strlen(c->stack[i].key);
    if (i)
      t->param[pos++] = '.';
    memcpy(t->param + pos, c->stack[i].key, l);
    pos += l;
  }
  t->param[pos] = '\0';
  return CKPT_OK;
}

static ckpt_status tgt_flatten(rs_ctx *c, const ckpt_tree *node, ckpt_error *err) {
  ckpt_node_kind k = ckpt_tree_kind(node);
  size_t n = ckpt_tree_count(node);
  if ((k != CKPT_NODE_DICT && k != CKPT_NODE_LIST && k != CKPT_NODE_TUPLE) || n == 0)
    return tgt_add(c, node, err);
  for (size_t i = 0; i < n; i++) {
    char idx[CKPT_PT_INDEX_KEY_SIZE];
    int type;
    const char *key = ckpt_pt_child_key(node, i, idx, &type);
    ckpt_status st = tgt_push(c, key, type, err);
    if (st != CKPT_OK)
      return st;
    st = tgt_flatten(c, ckpt_tree_child(node, i), err);
    c->depth--; /* its key stays in the arena (tgt_add shares it) */
    if (st != CKPT_OK)
      return st;
  }
  return CKPT_OK;
}

/* ---------------------------------------------------------------- matching */

static int cmp_leaf_name(const void *a, const void *b) {
  const rs_leaf *x = *(rs_leaf *const *)a, *y = *(rs_leaf *const *)b;
  return strcmp(x->name, y->name);
}

/* First index in sorted whose name is >= key. */
static size_t lower_bound(rs_ctx *c, const char *key) {
  size_t lo = 0, hi = c->n_sorted;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(c->sorted[mid]->name, key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Lookups mostly come in sorted order (a target's leaves, flattened): the successor of the
 * previous hit is tried before the binary search. */
static rs_leaf *find_saved(rs_ctx *c, const char *name) {
  size_t i = c->next_hint;
  if (!(i < c->n_sorted && strcmp(c->sorted[i]->name, name) == 0))
    i = lower_bound(c, name);
  if (i < c->n_sorted && strcmp(c->sorted[i]->name, name) == 0) {
    c->next_hint = i + 1;
    return c->sorted[i];
  }
  return NULL;
}

/* A bounded list of paths for a mismatch message. */
typedef struct diff_list {
  char text[700];
  size_t len;
  size_t count;
} diff_list;

static void diff_add(diff_list *d, const char *repr) {
  d->count++;
  if (d->count > 8)
    return;
  int n =
      snprintf(d->text + d->len, sizeof d->text - d->len, "%s%s", d->count > 1 ? ", " : "", repr);
  if (n > 0)
    d->len += (size_t)n < sizeof d->text - d->len ? (size_t)n : sizeof d->text - d->len - 1;
}

static void diff_finish(diff_list *d) {
  if (d->count > 8)
    snprintf(d->text + d->len, sizeof d->text - d->len, " and %zu more", d->count - 8);
}

static ckpt_status match_target(rs_ctx *c, ckpt_error *err) {
  const ckpt_pytree_restore_spec *s = c->spec;
  diff_list missing, extra;
  memset(&missing, 0, sizeof missing);
  memset(&extra, 0, sizeof extra);
  /* Leaves of the target. */
  for (size_t i = 0; i < c->n_tgt; i++) {
    tgt_leaf *t = &c->tgt[i];
    ckpt_node_kind k = ckpt_tree_kind(t->node);
    if (k == CKPT_NODE_PLACEHOLDER) {
      /* Skipped: the saved leaf, or a whole saved subtree, under this name is not read. */
      for (size_t j = lower_bound(c, t->param); j < c->n_sorted; j++) {
        rs_leaf *l = c->sorted[j];
        size_t pl = strlen(t->param);
        /* Names sharing the prefix are contiguous in sorted order, but "a-x" sorts between
         * "a" and "a.b": skip those rather than stop. */
        if (strncmp(l->name, t->param, pl) != 0)
          break;
        if (l->name[pl] != '\0' && l->name[pl] != '.')
          continue;
        l->matched = true;
        l->kind = OUT_NONE;
      }
      continue;
    }
    rs_leaf *l = find_saved(c, t->param);
    bool empty_target =
        (k == CKPT_NODE_DICT || k == CKPT_NODE_LIST || k == CKPT_NODE_TUPLE || k == CKPT_NODE_NONE);
    if (l == NULL) {
      if (empty_target)
        continue; /* an empty node needs nothing from the checkpoint */
      char *r = ckpt_pt_repr(t->keys, t->depth);
      diff_add(&missing, r);
      ckpt_pt_free_repr(r);
      continue;
    }
    if (l->claimed) {
      char *r = ckpt_pt_repr(t->keys, t->depth);
      ckpt_status st = ckpt_error_set(err, CKPT_EINVAL,
                                      "%s: target leaf %s shares the parameter name '%s' with "
                                      "another target leaf (keys containing '.' collide)",
                                      c->what, r, t->param);
      ckpt_pt_free_repr(r);
      return st;
    }
    l->matched = true;
    l->claimed = true;
    t->saved = l;
  }
  /* Saved leaves nobody asked for. */
  for (size_t i = 0; i < c->n_sorted; i++) {
    rs_leaf *l = c->sorted[i];
    if (l->matched)
      continue;
    if (s->partial_restore)
      continue;
    const ckpt_meta_entry *e = &c->meta.entries[l->entry];
    char *r = ckpt_pt_repr(e->keys, e->depth);
    diff_add(&extra, r);
    ckpt_pt_free_repr(r);
  }
  if (missing.count == 0 && extra.count == 0)
    return CKPT_OK;
  diff_finish(&missing);
  diff_finish(&extra);
  if (missing.count > 0 && extra.count > 0)
    return ckpt_error_set(err, CKPT_EMISMATCH,
                          "%s of '%s': the checkpoint's tree differs from the target: missing from "
                          "the checkpoint: %s; not in the target: %s (partial_restore reads a "
                          "subset)",
                          c->what, c->dir, missing.text, extra.text);
  if (missing.count > 0)
    return ckpt_error_set(err, CKPT_EMISMATCH,
                          "%s of '%s': the target has leaves the checkpoint lacks: %s", c->what,
                          c->dir, missing.text);
  return ckpt_error_set(err, CKPT_EMISMATCH,
                        "%s of '%s': the checkpoint has leaves the target lacks: %s (set "
                        "partial_restore to read only the target's leaves)",
                        c->what, c->dir, extra.text);
}

/* ---------------------------------------------------------------- per-leaf preparation */

static const ckpt_pytree_leaf_restore *find_args(const ckpt_pytree_restore_spec *s,
                                                 const char *name) {
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < s->n_leaf_args; i++)
    if (s->leaf_args[i].param && strcmp(s->leaf_args[i].param, name) == 0)
      return &s->leaf_args[i];
  return NULL;
}

static ckpt_status leaf_fail(rs_ctx *c, rs_leaf *l, ckpt_status code, const char *msg,
                             ckpt_error *err) {
  const ckpt_meta_entry *e = &c->meta.entries[l->entry];
  char *r = ckpt_pt_repr(e->keys, e->depth);
  ckpt_status st = ckpt_error_set(err, code, "%s of '%s': leaf %s: %s", c->what, c->dir, r, msg);
  ckpt_pt_free_repr(r);
  return st;
}

static void shape_text(char *buf, size_t cap, int nd, const int64_t *shape) {
  size_t pos = (size_t)snprintf(buf, cap, "(");
  for (int d = 0; d < nd && pos < cap; d++)
    pos += (size_t)snprintf(buf + pos, cap - pos, "%s%lld", d ? ", " : "", (long long)shape[d]);
  if (nd == 1 && pos < cap)
    pos += (size_t)snprintf(buf + pos, cap - pos, ",");
  if (pos < cap)
    snprintf(buf + pos, cap - pos, ")");
}

static ckpt_tree *empty_node(const char *vt) {
  if (strcmp(vt, CKPT_VT_LIST) == 0)
    return ckpt_tree_new_list();
  if (strcmp(vt, CKPT_VT_TUPLE) == 0)
    return ckpt_tree_new_tuple();
  if (strcmp(vt, CKPT_VT_NONE) == 0)
    return ckpt_tree_new_none();
  return ckpt_tree_new_dict();
}

/* The arrays' metadata as the reads take it (ckpt_zarr_read_req.meta points to it): the
 * previous array's when equal (a state of 10,000 arrays has a few distinct ones), else a copy
 * in the arena. NULL when memory runs out. */
static const ckpt_zarr_meta *share_meta(rs_ctx *c, const ckpt_zarr_meta *m) {
  if (c->last_meta != NULL && memcmp(c->last_meta, m, sizeof *m) == 0)
    return c->last_meta;
  ckpt_zarr_meta *copy = ckpt_arena_alloc(&c->arena, sizeof *copy);
  if (copy != NULL) {
    memcpy(copy, m, sizeof *copy);
    c->last_meta = copy;
  }
  return copy;
}

static ckpt_status prepare_array(rs_ctx *c, rs_leaf *l, const ckpt_tree *tnode,
                                 const ckpt_pytree_leaf_restore *la, ckpt_error *err) {
  const ckpt_meta_entry *e = &c->meta.entries[l->entry];
  ckpt_error local = CKPT_ERROR_INIT;
  if (ckpt_path_check_name(e->param, "parameter name", &local) != CKPT_OK)
    return leaf_fail(c, l, CKPT_EUNSAFE, local.message, err);
  if (l->array_dir == NULL)
    l->array_dir = ckpt_path_join_arena(&c->arena, c->dir, e->param);
  if (l->array_dir == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_zarr_read_req *r = &l->req;
  ckpt_status st = CKPT_OK;
  const ckpt_packed_array *pa = ckpt_packed_find(&c->packed, e->param);
  /* zeroed so that equal metadata compares equal byte for byte (share_meta) */
  ckpt_zarr_meta read;
  memset(&read, 0, sizeof read);
  if (pa != NULL) {
    r->meta = &pa->meta;
    r->packed = pa;
  } else if (c->ocdbt != NULL) {
    st = ckpt_zarr_read_meta_ocdbt(c->ocdbt, e->param, c->checksums, &read, err);
    r->ocdbt = c->ocdbt;
  } else if (l->meta_read) {
    /* read ahead (read_array_metas): the same call's result, reported here so errors come in
     * the order of the leaves, as without the read-ahead */
    st = l->meta_st;
    if (st != CKPT_OK && err != NULL)
      *err = *l->meta_err;
    r->meta = l->ahead;
  } else {
    st = ckpt_zarr_read_meta(c->io, l->array_dir, e->param, c->checksums, &read, err);
  }
  if (st == CKPT_OK && r->meta == NULL && (r->meta = share_meta(c, &read)) == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK && pa == NULL)
    st = ckpt_zarr_check_format(r->meta, c->meta.use_zarr3, e->param, err);
  if (st != CKPT_OK)
    return st;
  const ckpt_zarr_meta *m = r->meta;
  ckpt_node_kind tk = tnode ? ckpt_tree_kind(tnode) : CKPT_NODE_NONE;
  const ckpt_array *ta = tk == CKPT_NODE_ARRAY ? ckpt_tree_array(tnode) : NULL;
  ckpt_scalar tscalar;
  bool tis_scalar = tk == CKPT_NODE_SCALAR && ckpt_tree_scalar(tnode, &tscalar);

  /* What the leaf becomes. */
  if (tnode != NULL && !ta && !tis_scalar && tk != CKPT_NODE_BYTES)
    return leaf_fail(c, l, CKPT_ETYPE,
                     "the checkpoint holds an array but the target leaf is not "
                     "an array, scalar or bytes",
                     err);
  const char *rt = la ? la->restore_type : NULL;
  if (rt != NULL && strcmp(rt, CKPT_VT_STRING) == 0)
    return leaf_fail(c, l, CKPT_ETYPE, "restore_type 'string' for an array leaf", err);
  if (tk == CKPT_NODE_BYTES)
    l->kind = OUT_BYTES;
  else if (tis_scalar)
    l->kind = OUT_SCALAR;
  else if (ta)
    l->kind = OUT_ARRAY;
  else if (rt && strcmp(rt, CKPT_VT_SCALAR) == 0)
    l->kind = OUT_SCALAR;
  else if (rt)
    l->kind = OUT_ARRAY;
  else
    l->kind = strcmp(e->value_type, CKPT_VT_SCALAR) == 0 && m->ndim == 0 ? OUT_SCALAR : OUT_ARRAY;

  ckpt_dtype dt = m->dtype;
  if (ta)
    dt = ta->dtype;
  if (tis_scalar)
    dt = tscalar.dtype;
  if (l->kind == OUT_BYTES)
    dt = CKPT_DTYPE_UINT8;
  if (la && la->has_dtype)
    dt = la->dtype;
  if (!ckpt_dtype_valid(dt))
    return leaf_fail(c, l, CKPT_EINVAL, "invalid restore dtype", err);

  int nd = m->ndim;
  int64_t shape[CKPT_MAX_RANK];
  memcpy(shape, m->shape, sizeof shape);
  if (ta) {
    nd = ta->ndim;
    memcpy(shape, ta->shape, sizeof shape);
  }
  if (la && la->has_global_shape) {
    if (la->ndim < 0 || la->ndim > CKPT_MAX_RANK || (la->ndim > 0 && !la->global_shape))
      return leaf_fail(c, l, CKPT_EINVAL, "invalid global_shape", err);
    if (ta && (la->ndim != ta->ndim ||
               memcmp(la->global_shape, ta->shape, sizeof(int64_t) * (size_t)la->ndim) != 0))
      return leaf_fail(c, l, CKPT_EINVAL,
                       "restore_args.global_shape differs from the target array's shape", err);
    nd = la->ndim;
    for (int d = 0; d < nd; d++)
      shape[d] = la->global_shape[d];
  }
  if (l->kind == OUT_SCALAR)
    nd = 0;
  bool strict = la && la->has_strict ? la->strict : !(c->spec && c->spec->non_strict);
  bool same = nd == m->ndim;
  for (int d = 0; same && d < nd; d++)
    same = shape[d] == m->shape[d];
  if (!same) {
    char a[400], b[400], msg[900];
    shape_text(a, sizeof a, m->ndim, m->shape);
    shape_text(b, sizeof b, nd, shape);
    if (nd != m->ndim) {
      snprintf(msg, sizeof msg,
               "the checkpoint has shape %s but the target has shape %s "
               "(ranks differ)",
               a, b);
      return leaf_fail(c, l, CKPT_EMISMATCH, msg, err);
    }
    if (strict) {
      snprintf(msg, sizeof msg,
               "the checkpoint has shape %s but the target has shape %s "
               "(strict; set strict=false to pad or truncate)",
               a, b);
      return leaf_fail(c, l, CKPT_EMISMATCH, msg, err);
    }
  }
  if (l->kind == OUT_BYTES && nd != 1)
    return leaf_fail(c, l, CKPT_ETYPE, "a bytes target needs a 1-d array in the checkpoint", err);

  /* The destination boxes: the target's shards, or one box covering everything. */
  ckpt_array *out;
  st = ckpt_array_new_sharded(dt, nd, shape, &out, err);
  if (st != CKPT_OK)
    return st;
  l->array = out;
  size_t nsh = ta ? ta->n_shards : 1;
  l->dest = ckpt_arena_calloc(&c->arena, (nsh ? nsh : 1) * sizeof *l->dest);
  if (l->dest == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (ta) {
    for (size_t s = 0; s < ta->n_shards; s++) {
      const ckpt_shard *ts = &ta->shards[s];
      /* Borrowed caller memory of the right dtype is filled in place; anything else gets
       * fresh memory (the target belongs to the caller's args and is not modified). */
      void *mem = (!ts->owns_data && ts->data != NULL && dt == ta->dtype) ? ts->data : NULL;
      st = ckpt_array_add_shard(out, ts->offset, ts->shape, mem, ts->replica_id, err);
      if (st != CKPT_OK)
        return st;
    }
  } else {
    int64_t zero[CKPT_MAX_RANK] = {0};
    st = ckpt_array_add_shard(out, zero, shape, NULL, 0, err);
    if (st != CKPT_OK)
      return st;
  }
  for (size_t s = 0; s < out->n_shards; s++) {
    ckpt_zarr_dest *d = &l->dest[s];
    memcpy(d->offset, out->shards[s].offset, sizeof d->offset);
    memcpy(d->shape, out->shards[s].shape, sizeof d->shape);
    d->data = out->shards[s].data;
    d->zeroed = out->shards[s].owns_data;
  }
  r->io = c->io;
  r->array_dir = l->array_dir;
  r->name = e->param;
  r->dtype = dt;
  r->checksums = ckpt_checksums_array(c->checksums, e->param);
  r->require_checksums = c->checksums != NULL;
  r->missing_is_error = c->meta.store_array_data_equal_to_fill_value;
  r->n_dest = out->n_shards;
  r->dest = l->dest;
  l->has_req = true;
  return CKPT_OK;
}

static ckpt_status prepare_leaf(rs_ctx *c, rs_leaf *l, const ckpt_tree *tnode, ckpt_error *err) {
  const ckpt_meta_entry *e = &c->meta.entries[l->entry];
  const ckpt_pytree_leaf_restore *la = find_args(c->spec, l->name);
  const char *vt = e->value_type;
  ckpt_node_kind tk = tnode ? ckpt_tree_kind(tnode) : CKPT_NODE_NONE;
  /* A value the legacy aggregate file holds (Orbax reads it from there whenever the file has
   * it, placeholders aside); one _METADATA marks as kept there must be in it. */
  const ckpt_tree *agg = c->aggregate != NULL && !ckpt_meta_is_empty_type(vt)
                             ? ckpt_meta_entry_aggregate(c->aggregate, e)
                             : NULL;
  if (agg != NULL) {
    char msg[200] = "";
    ckpt_status st = ckpt_pt_aggregate_leaf(agg, tnode, la, &l->node, msg, sizeof msg);
    if (st == CKPT_ENOMEM)
      return ckpt_error_set(err, st, "out of memory");
    if (st != CKPT_OK)
      return leaf_fail(c, l, st, msg, err);
    l->kind = OUT_NODE;
    return CKPT_OK;
  }
  if (e->skip_deserialize && (ckpt_meta_is_array_type(vt) || strcmp(vt, CKPT_VT_STRING) == 0))
    return leaf_fail(c, l, CKPT_ECORRUPT,
                     c->aggregate == NULL
                         ? "_METADATA keeps its value in the legacy aggregate file '" CKPT_AGGREGATE_FILE
                           "', which is missing"
                         : "_METADATA keeps its value in the legacy aggregate file '" CKPT_AGGREGATE_FILE
                           "', which does not hold it",
                     err);
  if (ckpt_meta_is_empty_type(vt) ||
      (e->skip_deserialize && !ckpt_meta_is_array_type(vt) && strcmp(vt, CKPT_VT_STRING) != 0)) {
    l->kind = OUT_NODE;
    if (tnode != NULL && (tk == CKPT_NODE_DICT || tk == CKPT_NODE_LIST || tk == CKPT_NODE_TUPLE ||
                          tk == CKPT_NODE_NONE))
      l->node = ckpt_tree_clone(tnode);
    else if (tnode != NULL)
      return leaf_fail(c, l, CKPT_ETYPE,
                       "the checkpoint holds an empty node but the target "
                       "holds a leaf",
                       err);
    else
      l->node = ckpt_meta_is_empty_type(vt) ? empty_node(vt) : ckpt_tree_new_none();
    return l->node ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  if (strcmp(vt, CKPT_VT_PLACEHOLDER) == 0) {
    l->kind = OUT_NODE;
    l->node = ckpt_tree_new_placeholder();
    return l->node ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  if (strcmp(vt, CKPT_VT_STRING) == 0) {
    if (c->spec && c->spec->standard)
      return leaf_fail(c, l, CKPT_ETYPE,
                       "string leaves cannot be restored with "
                       "StandardRestore; use PyTreeRestore",
                       err);
    if (tnode != NULL && tk != CKPT_NODE_STRING)
      return leaf_fail(c, l, CKPT_ETYPE,
                       "the checkpoint holds a string but the target leaf is "
                       "not a string",
                       err);
    if (!c->strings_loaded) {
      ckpt_file_sum sum;
      ckpt_status st = ckpt_pytree_strings_read(c->io, c->dir, &c->strings, &sum, err);
      if (st == CKPT_OK)
        st = ckpt_checksums_check_file(c->checksums, c->dir, CKPT_STRINGS_FILE, &sum, err);
      if (st != CKPT_OK)
        return st;
      c->strings_loaded = true;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->strings, e->param);
    if (!cJSON_IsString(v))
      return leaf_fail(c, l, CKPT_ECORRUPT, "its value is missing from _strings.json", err);
    l->kind = OUT_STRING;
    l->node = ckpt_tree_new_string(v->valuestring);
    return l->node ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  /* Arrays and scalars (and unknown types, which old checkpoints used for arrays). */
  return prepare_array(c, l, tnode, la, err);
}

/* Converts a read destination into the leaf's final node. */
static ckpt_status finish_leaf(rs_ctx *c, rs_leaf *l, ckpt_tree **out, ckpt_error *err) {
  (void)c;
  ckpt_tree *n = NULL;
  switch (l->kind) {
    case OUT_NONE:
      n = ckpt_tree_new_placeholder();
      break;
    case OUT_STRING:
    case OUT_NODE:
      n = l->node;
      l->node = NULL;
      break;
    case OUT_ARRAY:
      n = ckpt_tree_new_array(l->array);
      l->array = NULL;
      break;
    case OUT_SCALAR: {
      void *data = ckpt_array_data(l->array);
      n = data ? ckpt_tree_new_scalar(ckpt_scalar_load(l->array->dtype, data)) : NULL;
      break;
    }
    case OUT_BYTES: {
      void *data = ckpt_array_data(l->array);
      n = ckpt_tree_new_bytes(data, (size_t)l->array->shape[0]);
      break;
    }
  }
  if (n == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory building the result");
  *out = n;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- output assembly */

static ckpt_status mirror(rs_ctx *c, const ckpt_tree *node, size_t *next, ckpt_tree **out,
                          ckpt_error *err) {
  ckpt_node_kind k = ckpt_tree_kind(node);
  size_t n = ckpt_tree_count(node);
  if ((k != CKPT_NODE_DICT && k != CKPT_NODE_LIST && k != CKPT_NODE_TUPLE) || n == 0) {
    tgt_leaf *t = &c->tgt[(*next)++];
    if (t->result != NULL) {
      *out = t->result;
      t->result = NULL;
      return CKPT_OK;
    }
    *out = ckpt_tree_clone(node); /* placeholders, and empty nodes the checkpoint lacks */
    return *out ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_tree *t = k == CKPT_NODE_DICT   ? ckpt_tree_new_dict()
                 : k == CKPT_NODE_LIST ? ckpt_tree_new_list()
                                       : ckpt_tree_new_tuple();
  if (t == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    ckpt_tree *child = NULL;
    ckpt_status st = mirror(c, ckpt_tree_child(node, i), next, &child, err);
    if (st == CKPT_OK) {
      st = k == CKPT_NODE_DICT ? ckpt_tree_dict_set(t, ckpt_tree_key(node, i), child, err)
                               : ckpt_tree_append(t, child, err);
    }
    if (st != CKPT_OK) {
      ckpt_tree_free(t);
      return st;
    }
  }
  *out = t;
  return CKPT_OK;
}

/* Building the saved structure without a target: a temporary node per path prefix. */
typedef struct bnode {
  char *key;
  int child_type; /* key type of the children (0 until one is added) */
  size_t n, cap;
  struct bnode **kids;
  ckpt_tree *leaf; /* for leaf positions */
  bool is_leaf;
} bnode;

static void bnode_free(bnode *b) {
  if (b == NULL)
    return;
  for (size_t i = 0; i < b->n; i++)
    bnode_free(b->kids[i]);
  free(b->kids);
  free(b->key);
  ckpt_tree_free(b->leaf);
  free(b);
}

static bnode *bnode_child(bnode *b, const char *key, bool *created) {
  *created = false;
  /* Entries usually arrive in flatten order, so the last child is the common hit. */
  if (b->n > 0 && strcmp(b->kids[b->n - 1]->key, key) == 0)
    return b->kids[b->n - 1];
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->kids[i]->key, key) == 0)
      return b->kids[i];
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4;
    bnode **k = realloc(b->kids, cap * sizeof *k);
    if (k == NULL)
      return NULL;
    b->kids = k;
    b->cap = cap;
  }
  bnode *n = calloc(1, sizeof *n);
  if (n == NULL)
    return NULL;
  n->key = strdup(key);
  if (n->key == NULL) {
    free(n);
    return NULL;
  }
  b->kids[b->n++] = n;
  *created = true;
  return n;
}

static int cmp_index(const void *a, const void *b) {
  const bnode *x = *(bnode *const *)a, *y = *(bnode *const *)b;
  unsigned long long i = strtoull(x->key, NULL, 10), j = strtoull(y->key, NULL, 10);
  return i < j ? -1 : i > j;
}

static ckpt_status bnode_build(rs_ctx *c, bnode *b, ckpt_tree **out, ckpt_error *err) {
  if (b->is_leaf) {
    *out = b->leaf;
    b->leaf = NULL;
    return CKPT_OK;
  }
  bool seq = b->child_type == CKPT_KEY_SEQUENCE;
  ckpt_tree *t = seq ? ckpt_tree_new_list() : ckpt_tree_new_dict();
  if (t == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (seq) {
    qsort(b->kids, b->n, sizeof *b->kids, cmp_index);
    for (size_t i = 0; i < b->n; i++) {
      if (strtoull(b->kids[i]->key, NULL, 10) != i) {
        ckpt_tree_free(t);
        return ckpt_error_set(err, CKPT_ECORRUPT,
                              "%s of '%s': sequence under '%s' lacks index %zu in _METADATA",
                              c->what, c->dir, b->key ? b->key : "(root)", i);
      }
    }
  }
  for (size_t i = 0; i < b->n; i++) {
    ckpt_tree *child;
    ckpt_status st = bnode_build(c, b->kids[i], &child, err);
    if (st == CKPT_OK)
      st = seq ? ckpt_tree_append(t, child, err)
               : ckpt_tree_dict_set(t, b->kids[i]->key, child, err);
    if (st != CKPT_OK) {
      ckpt_tree_free(t);
      return st;
    }
  }
  *out = t;
  return CKPT_OK;
}

/* Splits a renamed parameter name into dict keys. */
static ckpt_status split_name(const char *name, ckpt_meta_key **keys, size_t *depth) {
  size_t n = 1;
  for (const char *p = name; *p; p++)
    n += *p == '.';
  ckpt_meta_key *k = calloc(n, sizeof *k);
  if (k == NULL)
    return CKPT_ENOMEM;
  const char *start = name;
  for (size_t i = 0; i < n; i++) {
    const char *dot = strchr(start, '.');
    size_t len = dot ? (size_t)(dot - start) : strlen(start);
    k[i].key = strndup(start, len);
    k[i].key_type = CKPT_KEY_DICT;
    if (k[i].key == NULL) {
      for (size_t j = 0; j < i; j++)
        free(k[j].key);
      free(k);
      return CKPT_ENOMEM;
    }
    start = dot ? dot + 1 : start + len;
  }
  *keys = k;
  *depth = n;
  return CKPT_OK;
}

static ckpt_status build_saved(rs_ctx *c, ckpt_tree **out, ckpt_error *err) {
  bnode *root = calloc(1, sizeof *root);
  if (root == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = CKPT_OK;
  ckpt_tree *root_leaf = NULL;
  for (size_t i = 0; i < c->n_leaves && st == CKPT_OK; i++) {
    rs_leaf *l = &c->leaves[i];
    if (!l->matched)
      continue;
    const ckpt_meta_entry *e = &c->meta.entries[l->entry];
    ckpt_meta_key *keys = e->keys, *owned = NULL;
    size_t depth = e->depth;
    if (l->renamed) {
      if (split_name(l->name, &owned, &depth) != CKPT_OK) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
        break;
      }
      keys = owned;
    }
    ckpt_tree *leaf = NULL;
    st = finish_leaf(c, l, &leaf, err);
    if (st == CKPT_OK && depth == 0) {
      /* The whole tree is one empty node (an empty dict saved at the root). */
      ckpt_tree_free(root_leaf);
      root_leaf = leaf;
      leaf = NULL;
    }
    bnode *b = root;
    for (size_t k = 0; st == CKPT_OK && k < depth; k++) {
      if (b->is_leaf || (b->child_type != 0 && b->child_type != keys[k].key_type)) {
        char *r = ckpt_pt_repr(keys, depth);
        st = ckpt_error_set(err, CKPT_ECORRUPT,
                            "%s of '%s': leaf %s conflicts with another entry of _METADATA",
                            c->what, c->dir, r);
        ckpt_pt_free_repr(r);
        break;
      }
      b->child_type = keys[k].key_type;
      bool created;
      bnode *child = bnode_child(b, keys[k].key, &created);
      if (child == NULL) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
        break;
      }
      if (k + 1 == depth) {
        if (!created) {
          char *r = ckpt_pt_repr(keys, depth);
          st = ckpt_error_set(err, CKPT_ECORRUPT,
                              "%s of '%s': leaf %s appears twice (or renames collide)", c->what,
                              c->dir, r);
          ckpt_pt_free_repr(r);
          break;
        }
        child->is_leaf = true;
        child->leaf = leaf;
        leaf = NULL;
      }
      b = child;
    }
    ckpt_tree_free(leaf);
    if (owned) {
      for (size_t k = 0; k < depth; k++)
        free(owned[k].key);
      free(owned);
    }
  }
  if (st == CKPT_OK) {
    if (root->n == 0 && root_leaf != NULL) {
      *out = root_leaf;
      root_leaf = NULL;
    } else {
      st = bnode_build(c, root, out, err);
    }
  }
  ckpt_tree_free(root_leaf);
  bnode_free(root);
  return st;
}

/* ---------------------------------------------------------------- metadata read-ahead */

/* Whether prepare_leaf will read l's metadata file from its array directory (an array leaf of
 * the zarr directory layout, not packed, not in an OCDBT database): the same tests, in the
 * same order, as prepare_leaf and prepare_array make before that read. */
static bool reads_meta_file(const rs_ctx *c, const rs_leaf *l) {
  const ckpt_meta_entry *e = &c->meta.entries[l->entry];
  const char *vt = e->value_type;
  if (c->aggregate != NULL && !ckpt_meta_is_empty_type(vt) &&
      ckpt_meta_entry_aggregate(c->aggregate, e) != NULL)
    return false; /* a value of the legacy aggregate file */
  if (ckpt_meta_is_empty_type(vt) || e->skip_deserialize || strcmp(vt, CKPT_VT_PLACEHOLDER) == 0 ||
      strcmp(vt, CKPT_VT_STRING) == 0)
    return false;
  ckpt_error local = CKPT_ERROR_INIT;
  return c->ocdbt == NULL && ckpt_path_check_name(e->param, "parameter name", &local) == CKPT_OK &&
         ckpt_packed_find(&c->packed, e->param) == NULL;
}

typedef struct meta_jobs {
  rs_ctx *c;
  rs_leaf **leaves;
} meta_jobs;

static ckpt_status meta_task(void *ctx, size_t i, ckpt_scratch *scratch, ckpt_error *err) {
  (void)scratch;
  meta_jobs *j = ctx;
  rs_leaf *l = j->leaves[i];
  const char *param = j->c->meta.entries[l->entry].param;
  ckpt_error local = CKPT_ERROR_INIT;
  l->meta_st =
      ckpt_zarr_read_meta(j->c->io, l->array_dir, param, j->c->checksums, l->ahead, &local);
  if (l->meta_st != CKPT_OK) {
    l->meta_err = malloc(sizeof *l->meta_err);
    if (l->meta_err == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading array '%s'", param);
    *l->meta_err = local;
  }
  l->meta_read = true;
  return CKPT_OK;
}

/* Reads the metadata files (.zarray / zarr.json) of the leaves prepare_leaf will take, in
 * order, as parallel tasks on the engine. Read one after the other on the calling thread they
 * were each a synchronous device read (directory, inode and file block) when the checkpoint is
 * not in the page cache: 300 in a row before the first chunk read started, for the llm state
 * (docs/performance.md, "Cold restore"). Each outcome, error included, is kept in its leaf and
 * reported by prepare_array, so what a restore reports does not change. */
static ckpt_status read_array_metas(rs_ctx *c, ckpt_engine *engine, rs_leaf **order, size_t n,
                                    ckpt_error *err) {
  rs_leaf **list = malloc((n ? n : 1) * sizeof *list);
  if (list == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  size_t k = 0;
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    rs_leaf *l = order[i];
    if (l->meta_read || l->array_dir != NULL || !reads_meta_file(c, l))
      continue;
    l->array_dir = ckpt_path_join_arena(&c->arena, c->dir, c->meta.entries[l->entry].param);
    /* each task writes its own leaf's: the arena is the calling thread's only */
    l->ahead = ckpt_arena_calloc(&c->arena, sizeof *l->ahead);
    if (l->array_dir == NULL || l->ahead == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    else
      list[k++] = l;
  }
  /* one file is read as fast in place as through a task */
  if (st == CKPT_OK && k > 1) {
    meta_jobs j = {c, list};
    st = ckpt_task_run(engine, c->dir, k, meta_task, NULL, &j, err);
  }
  free(list);
  return st;
}

/* ---------------------------------------------------------------- the restore */

static ckpt_status task_read(void *ctx, size_t i, ckpt_scratch *scratch, ckpt_error *err) {
  const ckpt_zarr_chunk_task *tasks = ctx;
  return ckpt_zarr_run_read(&tasks[i], scratch, err);
}

/* A chunk task's share of the memory budget: the chunk's decoded size. */
static uint64_t task_weight(void *ctx, size_t i) {
  const ckpt_zarr_chunk_task *tasks = ctx;
  const ckpt_zarr_meta *m = tasks[i].req->meta;
  return ckpt_zarr_chunk_elements(m) * (uint64_t)ckpt_dtype_size(m->dtype);
}

static ckpt_status restore(const ckpt_op *op, ckpt_io *io, ckpt_engine *engine, const char *dir,
                           const ckpt_pytree_restore_spec *spec, ckpt_tree **out, ckpt_error *err) {
  *out = NULL;
  rs_ctx c;
  memset(&c, 0, sizeof c);
  c.io = io ? io : ckpt_io_default();
  c.dir = dir;
  c.spec = spec;
  c.what = spec && spec->what ? spec->what : "PyTree restore";
  ckpt_zarr_chunk_task *tasks = NULL;
  size_t n_tasks = 0, cap_tasks = 0;
  rs_leaf **order = NULL;
  size_t n_order = 0;
  ckpt_status st;
  if (dir == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: no directory", c.what);
  if (spec && spec->partial_restore && spec->target == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "%s of '%s': partial_restore needs a target item",
                          c.what, dir);
  ckpt_meta_source source;
  st = ckpt_pytree_meta_read_any(c.io, dir, &c.meta, &c.aggregate, &source, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "%s: ", c.what);
    goto done;
  }
  /* the same checks, in the same storage functions, as `ckpt verify` runs */
  st = ckpt_checksums_read(c.io, dir, &c.checksums, err);
  if (st == CKPT_OK && op != NULL && op->manifest != NULL) {
    /* _CHECKSUMS itself, against the checkpoint's manifest: deleting or editing it must not
     * turn the checks above off */
    char *path = ckpt_path_join(dir, CKPT_CHECKSUMS_FILE);
    ckpt_file_sum self = ckpt_checksums_self(c.checksums);
    st = path == NULL ? ckpt_error_set(err, CKPT_ENOMEM, "out of memory")
                      : ckpt_op_check_sum(op, path, &self, err);
    free(path);
  }
  if (st == CKPT_OK)
    st = ckpt_packed_read(c.io, dir, &c.packed, err);
  if (st == CKPT_OK)
    st = ckpt_packed_check_meta(&c.packed, &c.meta, dir, err);
  if (st == CKPT_OK)
    st = ckpt_checksums_check_item(c.checksums, dir, &c.meta, &c.packed, NULL, err);
  /* One database per item, read whole once: every array's .zarray and chunks are lookups in
   * its key table afterwards. */
  if (st == CKPT_OK && c.meta.use_ocdbt)
    st = ckpt_ocdbt_open(c.io, dir, &c.ocdbt, err);
  if (st != CKPT_OK)
    goto done;
  c.n_leaves = c.meta.n;
  c.leaves = calloc(c.n_leaves ? c.n_leaves : 1, sizeof *c.leaves);
  c.sorted = calloc(c.n_leaves ? c.n_leaves : 1, sizeof *c.sorted);
  if (c.leaves == NULL || c.sorted == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < c.n_leaves; i++) {
    c.leaves[i].entry = i;
    c.leaves[i].matched = spec == NULL || spec->target == NULL;
  }
  st = apply_transforms(&c, err);
  if (st != CKPT_OK)
    goto done;
  for (size_t i = 0; i < c.n_leaves; i++) {
    rs_leaf *l = &c.leaves[i];
    bool dropped =
        spec && spec->has_transforms && !spec->transforms_default_to_original && !l->renamed;
    if (dropped) {
      l->matched = false;
      continue;
    }
    c.sorted[c.n_sorted++] = l;
  }
  ckpt_sort(c.sorted, c.n_sorted, sizeof *c.sorted, cmp_leaf_name);
  for (size_t i = 1; i < c.n_sorted; i++) {
    if (strcmp(c.sorted[i - 1]->name, c.sorted[i]->name) == 0) {
      st = ckpt_error_set(err, CKPT_EINVAL,
                          "%s of '%s': two saved leaves become '%s' (after transforms)", c.what,
                          dir, c.sorted[i]->name);
      goto done;
    }
  }
  /* restore_args must name leaves that are restored. */
  for (size_t i = 0; spec && i < spec->n_leaf_args; i++) {
    const char *p = spec->leaf_args[i].param;
    if (p == NULL || find_saved(&c, p) == NULL) {
      st = ckpt_error_set(err, CKPT_EINVAL,
                          "%s of '%s': restore_args names '%s', which is not a saved leaf", c.what,
                          dir, p ? p : "(null)");
      goto done;
    }
  }
  if (spec && spec->target) {
    ckpt_node_kind rk = ckpt_tree_kind(spec->target);
    if (rk != CKPT_NODE_DICT && rk != CKPT_NODE_LIST && rk != CKPT_NODE_TUPLE) {
      st = ckpt_error_set(err, CKPT_EINVAL, "%s: the target item must be a dict, list or tuple",
                          c.what);
      goto done;
    }
    st = tgt_flatten(&c, spec->target, err);
    if (st != CKPT_OK)
      goto done;
    st = match_target(&c, err);
    if (st != CKPT_OK)
      goto done;
  }
  /* the leaves to prepare, in the order they are prepared */
  order = malloc((c.n_leaves + c.n_tgt + 1) * sizeof *order);
  if (order == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    goto done;
  }
  if (spec && spec->target) {
    for (size_t i = 0; i < c.n_tgt; i++)
      if (c.tgt[i].saved != NULL)
        order[n_order++] = c.tgt[i].saved;
  } else {
    for (size_t i = 0; i < c.n_leaves; i++)
      if (c.leaves[i].matched)
        order[n_order++] = &c.leaves[i];
  }
  st = read_array_metas(&c, engine, order, n_order, err);
  if (spec && spec->target) {
    for (size_t i = 0; i < c.n_tgt && st == CKPT_OK; i++)
      if (c.tgt[i].saved != NULL)
        st = prepare_leaf(&c, c.tgt[i].saved, c.tgt[i].node, err);
  } else {
    for (size_t i = 0; i < c.n_leaves && st == CKPT_OK; i++)
      if (c.leaves[i].matched)
        st = prepare_leaf(&c, &c.leaves[i], NULL, err);
  }
  if (st != CKPT_OK)
    goto done;

  for (size_t i = 0; i < c.n_leaves && st == CKPT_OK; i++)
    if (c.leaves[i].has_req)
      st = ckpt_zarr_plan_read(&c.leaves[i].req, &tasks, &n_tasks, &cap_tasks, err);
  if (st == CKPT_OK)
    /* Chunk reads in parallel on the op's engine, straight into the destination where the
     * boxes align, each chunk verified against _CHECKSUMS as it is read. */
    st = ckpt_task_run(engine, dir, n_tasks, task_read, task_weight, tasks, err);
  if (st != CKPT_OK)
    goto done;

  if (spec && spec->target) {
    for (size_t i = 0; i < c.n_tgt && st == CKPT_OK; i++)
      if (c.tgt[i].saved != NULL)
        st = finish_leaf(&c, c.tgt[i].saved, &c.tgt[i].result, err);
    size_t next = 0;
    if (st == CKPT_OK)
      st = mirror(&c, spec->target, &next, out, err);
  } else {
    st = build_saved(&c, out, err);
  }
done:
  free(order);
  free(tasks);
  ctx_free(&c);
  return st;
}

ckpt_status ckpt_pytree_restore(ckpt_op *op, const char *dir, const ckpt_pytree_restore_spec *spec,
                                ckpt_tree **out, ckpt_error *err) {
  return restore(op, op ? ckpt_op_io(op) : NULL, ckpt_op_engine(op), dir, spec, out, err);
}

ckpt_status ckpt_pytree_restore_io(ckpt_io *io, const char *dir,
                                   const ckpt_pytree_restore_spec *spec, ckpt_tree **out,
                                   ckpt_error *err) {
  return restore(NULL, io, NULL, dir, spec, out, err);
}
