/* handlers/composite.c — CompositeCheckpointHandler (docs/api.md, "Composite") and the
 * ckpt_Composite helpers of ckpt/composite.h.
 *
 * A composite saves named items, each with the handler the registry gives its args type, each
 * in <dir>/<item>/ (written as <item>.orbax-checkpoint-tmp/ in rename mode and renamed at
 * finalize, as Orbax's per-item TemporaryPath does). Handlers are created lazily, one per item,
 * and stay bound to it: a later save or restore of that item with args of a different handler
 * is refused, as Orbax's "Item ... does not match with any registered handler!". Items are
 * always processed in sorted order. Restore without args rebuilds each on-disk item's handler
 * from the typestr recorded in <dir>/_CHECKPOINT_METADATA (any of Orbax's spellings,
 * core/orbax_handlers.h); Orbax v1's descriptor item is no user data and is left out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/layout.h"
#include "ckpt/composite.h"
#include "ckpt/registry.h"
#include "core/orbax_handlers.h"
#include "handlers/item_handlers.h"
#include "handlers/op.h"
#include "handlers/json_internal.h"
#include "storage/aggregate.h"
#include "storage/checkpoint_metadata.h"
#include "storage/pytree_meta.h"
#include "storage/commit.h"
#include "storage/subdirs.h"
#include "util/path.h"

/* ================================================================ ckpt_Composite helpers */

ckpt_status ckpt_composite_check_item_name(const char *item, ckpt_error *err) {
  if (item == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "Composite item name is NULL");
  size_t n = strlen(item);
  if (n == 0)
    return ckpt_error_set(err, CKPT_EINVAL, "Composite item name is empty");
  if (n > CKPT_COMPOSITE_ITEM_NAME_MAX)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "Composite item name \"%.40s...\" is %zu bytes long; at most %d are "
                          "allowed (255, the longest file name, minus the %zu of the suffix "
                          "\"%s\" the item's directory carries until the commit)",
                          item, n, CKPT_COMPOSITE_ITEM_NAME_MAX, strlen(CKPT_TMP_SUFFIX),
                          CKPT_TMP_SUFFIX);
  if (strchr(item, '/') != NULL)
    return ckpt_error_set(err, CKPT_EUNSAFE,
                          "Composite item name \"%s\" contains '/'; an item is one directory",
                          item);
  if (strcmp(item, ".") == 0 || strcmp(item, "..") == 0)
    return ckpt_error_set(err, CKPT_EUNSAFE, "Composite item name \"%s\" is not allowed", item);
  if (strncmp(item, "__", 2) == 0)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "Composite item name \"%s\" starts with \"__\", which is reserved", item);
  if (strcmp(item, CKPT_COMPOSITE_RESERVED_ITEM) == 0)
    return ckpt_error_set(err, CKPT_EINVAL, "Cannot specify reserved item name: \"%s\"", item);
  if (strcmp(item, CKPT_CHECKPOINT_METADATA_FILE) == 0 || strcmp(item, CKPT_COMMIT_FILE) == 0 ||
      strcmp(item, CKPT_CHECKPOINT_CHECKSUMS_FILE) == 0)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "Composite item name \"%s\" is a file name the checkpoint itself uses",
                          item);
  if (ckpt_path_is_tmp(item))
    return ckpt_error_set(err, CKPT_EINVAL,
                          "Composite item name \"%s\" contains the temporary-directory marker "
                          "\"%s\"",
                          item, CKPT_TMP_SUFFIX);
  return CKPT_OK;
}

ckpt_Composite *ckpt_composite_new(void) {
  return (ckpt_Composite *)ckpt_args_new(&ckpt_Composite_desc);
}

/* Index of item in c's sorted entries, or its insertion point with *found false. Entries built
 * by hand may be unsorted; look-ups then fall back to a scan (see ckpt_composite_get). */
static size_t entry_search(const ckpt_Composite *c, const char *item, bool *found) {
  size_t lo = 0, hi = c->n_items;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(c->items[mid].key, item);
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

static bool entries_sorted(const ckpt_Composite *c) {
  for (size_t i = 0; i < c->n_items; i++) {
    if (c->items[i].key == NULL)
      return false;
    if (i > 0 && strcmp(c->items[i - 1].key, c->items[i].key) >= 0)
      return false;
  }
  return true;
}

static ptrdiff_t entry_find(const ckpt_Composite *c, const char *item) {
  if (entries_sorted(c)) {
    bool found;
    size_t i = entry_search(c, item, &found);
    return found ? (ptrdiff_t)i : -1;
  }
  for (size_t i = 0; i < c->n_items; i++) {
    if (c->items[i].key != NULL && strcmp(c->items[i].key, item) == 0)
      return (ptrdiff_t)i;
  }
  return -1;
}

ckpt_status ckpt_composite_add(ckpt_Composite *c, const char *item, ckpt_args *args,
                               ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  if (c == NULL || c->base.desc != &ckpt_Composite_desc)
    st = ckpt_error_set(err, CKPT_EINVAL, "ckpt_composite_add: not a Composite");
  else if (args == NULL)
    st = ckpt_error_set(err, CKPT_EINVAL, "ckpt_composite_add: args for item \"%s\" are NULL",
                        item != NULL ? item : "(null)");
  else
    st = ckpt_composite_check_item_name(item, err);
  if (st == CKPT_OK && entry_find(c, item) >= 0)
    st = ckpt_error_set(err, CKPT_EEXIST, "Composite already has an item \"%s\"", item);
  if (st != CKPT_OK) {
    ckpt_args_delete(args);
    return st;
  }
  char *key = strdup(item);
  ckpt_Composite_items_entry *grown =
      key != NULL ? realloc(c->items, (c->n_items + 1) * sizeof *grown) : NULL;
  if (grown == NULL) {
    free(key);
    ckpt_args_delete(args);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory adding item \"%s\"", item);
  }
  c->items = grown;
  /* Insert in order when the entries are sorted (the normal case); append otherwise. */
  size_t at = c->n_items;
  if (entries_sorted(c)) {
    bool found;
    at = entry_search(c, item, &found);
  }
  memmove(c->items + at + 1, c->items + at, (c->n_items - at) * sizeof *c->items);
  c->items[at].key = key;
  c->items[at].value = args;
  c->n_items++;
  return CKPT_OK;
}

ckpt_args *ckpt_composite_get(const ckpt_Composite *c, const char *item) {
  if (c == NULL || item == NULL || c->base.desc != &ckpt_Composite_desc)
    return NULL;
  ptrdiff_t i = entry_find(c, item);
  return i >= 0 ? c->items[i].value : NULL;
}

ckpt_status ckpt_composite_remove(ckpt_Composite *c, const char *item, ckpt_error *err) {
  if (c == NULL || item == NULL || c->base.desc != &ckpt_Composite_desc)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_composite_remove: not a Composite");
  ptrdiff_t i = entry_find(c, item);
  if (i < 0)
    return ckpt_error_set(err, CKPT_ENOENT, "Composite has no item \"%s\"", item);
  free(c->items[i].key);
  ckpt_args_delete(c->items[i].value);
  memmove(c->items + i, c->items + i + 1, (c->n_items - (size_t)i - 1) * sizeof *c->items);
  c->n_items--;
  return CKPT_OK;
}

/* ================================================================ the handler */

/* One item's handler, created on first use and kept for the handler's lifetime. */
typedef struct binding {
  char *name;
  ckpt_handler *handler;
} binding;

typedef struct composite_state {
  binding *items; /* sorted by name */
  size_t n, cap;
  char **saved; /* items of the last save, sorted; finalize renames and forgets them */
  size_t n_saved;
  bool saved_valid; /* a save completed and was not finalized yet */
} composite_state;

static const char *args_name(const ckpt_args_desc *d) {
  if (d == NULL)
    return "(none)";
  return d->full_name != NULL ? d->full_name : (d->name != NULL ? d->name : "(unnamed)");
}

static const char *handler_name(const ckpt_handler_desc *d) {
  if (d == NULL)
    return "(none)";
  return d->full_name != NULL ? d->full_name : (d->name != NULL ? d->name : "(unnamed)");
}

static void clear_saved(composite_state *s) {
  for (size_t i = 0; i < s->n_saved; i++)
    free(s->saved[i]);
  free(s->saved);
  s->saved = NULL;
  s->n_saved = 0;
  s->saved_valid = false;
}

ckpt_status ckpt_CompositeCheckpointHandler_init(ckpt_handler *self, ckpt_error *err) {
  composite_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating a composite handler");
  self->state = s;
  return CKPT_OK;
}

void ckpt_CompositeCheckpointHandler_close(ckpt_handler *self) {
  composite_state *s = self->state;
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->items[i].name);
    ckpt_handler_destroy(s->items[i].handler);
  }
  free(s->items);
  clear_saved(s);
  free(s);
  self->state = NULL;
}

static composite_state *state_of(ckpt_handler *self, ckpt_error *err) {
  composite_state *s = self != NULL ? self->state : NULL;
  if (s == NULL)
    ckpt_error_set(err, CKPT_ESTATE,
                   "CompositeCheckpointHandler used without initialisation (create it with "
                   "ckpt_handler_create)");
  return s;
}

static binding *find_binding(composite_state *s, const char *name, size_t *at) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(s->items[mid].name, name);
    if (r == 0)
      return &s->items[mid];
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (at != NULL)
    *at = lo;
  return NULL;
}

/* Binds h to item at position at of s->items (from find_binding). Takes ownership of h: on
 * failure it is destroyed. */
static ckpt_status insert_binding(composite_state *s, size_t at, const char *item, ckpt_handler *h,
                                  ckpt_error *err) {
  char *name = strdup(item);
  if (name == NULL || (s->n == s->cap && s->cap > SIZE_MAX / 2 / sizeof *s->items)) {
    free(name);
    ckpt_handler_destroy(h);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory binding item \"%s\"", item);
  }
  if (s->n == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 8;
    binding *nv = realloc(s->items, ncap * sizeof *nv);
    if (nv == NULL) {
      free(name);
      ckpt_handler_destroy(h);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory binding item \"%s\"", item);
    }
    s->items = nv;
    s->cap = ncap;
  }
  memmove(s->items + at + 1, s->items + at, (s->n - at) * sizeof *s->items);
  s->items[at] = (binding){name, h};
  s->n++;
  return CKPT_OK;
}

/* Orbax's _get_or_set_handler: the item's bound handler if args fit it, else a new handler from
 * the registry bound to the item (first use), else an error. Args fit a bound handler when the
 * registry dispatches their type to that handler type. */
static ckpt_status get_or_set_handler(composite_state *s, const char *item,
                                      const ckpt_args_desc *args, ckpt_handler **out,
                                      ckpt_error *err) {
  *out = NULL;
  const ckpt_handler_desc *hd = NULL;
  size_t at = 0;
  binding *b = find_binding(s, item, &at);
  ckpt_error lookup = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_get_registered_handler(args, &hd, &lookup);
  if (b != NULL) {
    if (st == CKPT_OK && hd == b->handler->desc) {
      *out = b->handler;
      return CKPT_OK;
    }
    return ckpt_error_set(err, CKPT_ETYPE,
                          "Item \"%s\" and args \"%s\" does not match with any registered "
                          "handler! Item \"%s\" is bound to handler '%s' by its first save or "
                          "restore",
                          item, args_name(args), item, handler_name(b->handler->desc));
  }
  if (st != CKPT_OK) {
    ckpt_error_set(err, lookup.code, "item \"%s\": %s", item, lookup.message);
    return st;
  }
  ckpt_handler *h;
  st = ckpt_handler_create(hd, &h, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "item \"%s\": ", item);
    return st;
  }
  st = insert_binding(s, at, item, h, err);
  if (st == CKPT_OK)
    *out = h;
  return st;
}

ckpt_status ckpt_composite_bind_item(ckpt_handler *composite, const char *item,
                                     ckpt_handler *handler, ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  composite_state *s = NULL;
  if (handler == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "binding item \"%s\": handler is NULL",
                          item != NULL ? item : "(null)");
  if (composite == NULL || composite->desc != &ckpt_CompositeCheckpointHandler_desc)
    st = ckpt_error_set(err, CKPT_EINVAL, "binding item \"%s\": not a CompositeCheckpointHandler",
                        item != NULL ? item : "(null)");
  if (st == CKPT_OK && (s = state_of(composite, err)) == NULL)
    st = CKPT_ESTATE;
  if (st == CKPT_OK)
    st = ckpt_composite_check_item_name(item, err);
  size_t at = 0;
  if (st == CKPT_OK && find_binding(s, item, &at) != NULL)
    st = ckpt_error_set(err, CKPT_EEXIST, "Composite item \"%s\" is already bound to handler '%s'",
                        item, handler_name(find_binding(s, item, NULL)->handler->desc));
  if (st != CKPT_OK) {
    ckpt_handler_destroy(handler);
    return st;
  }
  return insert_binding(s, at, item, handler, err);
}

/* <dir>/<item> plus the tmp suffix while the save is not finalized in rename mode. */
static char *item_dir(const char *dir, const char *item, bool tmp) {
  char *p = ckpt_path_join(dir, item);
  if (p == NULL || !tmp)
    return p;
  char *t = ckpt_path_with_suffix(p, CKPT_TMP_SUFFIX);
  free(p);
  return t;
}

static int cmp_entry_ptr(const void *a, const void *b) {
  const ckpt_Composite_items_entry *x = *(const ckpt_Composite_items_entry *const *)a;
  const ckpt_Composite_items_entry *y = *(const ckpt_Composite_items_entry *const *)b;
  return strcmp(x->key, y->key);
}

/* The items of c sorted by name, validated (names, no duplicates); *out is a malloc'ed array of
 * borrowed entry pointers. */
static ckpt_status sorted_items(const ckpt_Composite *c, bool allow_null_args,
                                const ckpt_Composite_items_entry ***out, ckpt_error *err) {
  *out = NULL;
  if (c->n_items > 0 && c->items == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "Composite has %zu items but no entries", c->n_items);
  const ckpt_Composite_items_entry **v = malloc((c->n_items + 1) * sizeof *v);
  if (v == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n_items; i++) {
    v[i] = &c->items[i];
    ckpt_status st = ckpt_composite_check_item_name(c->items[i].key, err);
    if (st == CKPT_OK && !allow_null_args && c->items[i].value == NULL)
      st = ckpt_error_set(err, CKPT_EINVAL,
                          "Composite item \"%s\" has no args (NULL); saving needs a "
                          "CheckpointArgs for every item",
                          c->items[i].key);
    if (st != CKPT_OK) {
      free(v);
      return st;
    }
  }
  qsort(v, c->n_items, sizeof *v, cmp_entry_ptr);
  for (size_t i = 1; i < c->n_items; i++) {
    if (strcmp(v[i - 1]->key, v[i]->key) == 0) {
      ckpt_status st =
          ckpt_error_set(err, CKPT_EINVAL, "Composite has item \"%s\" twice", v[i]->key);
      free(v);
      return st;
    }
  }
  *out = v;
  return CKPT_OK;
}

static ckpt_status as_composite(const ckpt_args *args, const char *what, const ckpt_Composite **out,
                                ckpt_error *err) {
  if (args->desc != &ckpt_Composite_desc)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "CompositeCheckpointHandler %s takes Composite args, not '%s'", what,
                          args_name(args->desc));
  *out = (const ckpt_Composite *)args;
  return CKPT_OK;
}

ckpt_status ckpt_CompositeCheckpointHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                                 const ckpt_args *args, ckpt_error *err) {
  composite_state *s = state_of(self, err);
  if (s == NULL)
    return CKPT_ESTATE;
  if (args == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "CompositeCheckpointHandler save: args are NULL");
  const ckpt_Composite *c = NULL;
  ckpt_status st = as_composite(args, "save", &c, err);
  if (st != CKPT_OK)
    return st;
  const ckpt_Composite_items_entry **order;
  st = sorted_items(c, false, &order, err);
  if (st != CKPT_OK)
    return st;
  clear_saved(s);
  s->saved = calloc(c->n_items + 1, sizeof *s->saved);
  if (s->saved == NULL) {
    free(order);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving a Composite");
  }
  bool tmp = ckpt_op_atomicity(op) == CKPT_ATOMICITY_RENAME;
  ckpt_io *io = ckpt_op_io(op);
  /* Multi-process: an item that fails on this process only (out of memory in its snapshot,
   * say) must not skip the collectives of the items after it, which the other processes run:
   * the remaining items are still saved (their work is canceled with the save), and the first
   * error is returned, to be agreed by the checkpointer. */
  bool multi = ckpt_op_multiprocess(op);
  ckpt_status first = CKPT_OK;
  ckpt_error scratch = CKPT_ERROR_INIT;
  for (size_t i = 0; i < c->n_items && (st == CKPT_OK || multi); i++) {
    if (st != CKPT_OK && first == CKPT_OK)
      first = st;
    if (first != CKPT_OK) { /* later items' errors are not the one reported */
      err = &scratch;
      ckpt_error_clear(err);
    }
    st = CKPT_OK;
    const char *name = order[i]->key;
    ckpt_handler *h;
    st = get_or_set_handler(s, name, order[i]->value->desc, &h, err);
    if (st != CKPT_OK)
      continue; /* ends the loop unless multi-process */
    char *path = item_dir(dir, name, tmp);
    if (path == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving item \"%s\"", name);
      continue;
    }
    /* Multi-process: the primary creates the item directory; the others write into it only
     * after the agreement that ends the blocking part (checkpointer.c). */
    if (ckpt_op_writes_shared(op))
      st = ckpt_io_mkdir(io, path, err);
    if (st == CKPT_OK) {
      st = h->desc->vtable->save(h, op, path, order[i]->value, err);
      if (st != CKPT_OK) {
        ckpt_error_set(err, st, "saving failed without a message");
        ckpt_error_prefix(err, "while saving item \"%s\": ", name);
      }
    }
    free(path);
    if (st == CKPT_OK) {
      s->saved[s->n_saved] = strdup(name);
      if (s->saved[s->n_saved] == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving item \"%s\"", name);
      else
        s->n_saved++;
    }
  }
  if (first != CKPT_OK)
    st = first;
  free(order);
  if (st != CKPT_OK) {
    clear_saved(s);
    return st;
  }
  s->saved_valid = true;
  return CKPT_OK;
}

ckpt_status ckpt_CompositeCheckpointHandler_finalize(ckpt_handler *self, ckpt_op *op,
                                                     const char *dir, ckpt_error *err) {
  composite_state *s = state_of(self, err);
  if (s == NULL)
    return CKPT_ESTATE;
  if (!s->saved_valid)
    return ckpt_error_set(err, CKPT_ESTATE,
                          "CompositeCheckpointHandler finalize of '%s' without a preceding save",
                          dir);
  bool tmp = ckpt_op_atomicity(op) == CKPT_ATOMICITY_RENAME;
  ckpt_io *io = ckpt_op_io(op);
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < s->n_saved && st == CKPT_OK; i++) {
    const char *name = s->saved[i];
    binding *b = find_binding(s, name, NULL);
    char *path = item_dir(dir, name, tmp);
    char *final = ckpt_path_join(dir, name);
    if (b == NULL || path == NULL || final == NULL) {
      st = ckpt_error_set(err, b == NULL ? CKPT_ESTATE : CKPT_ENOMEM, "cannot finalize item \"%s\"",
                          name);
    } else {
      const ckpt_handler_vtable *vt = b->handler->desc->vtable;
      if (vt->finalize != NULL) {
        st = vt->finalize(b->handler, op, path, err);
        if (st != CKPT_OK)
          ckpt_error_prefix(err, "while finalizing item \"%s\": ", name);
      }
      /* The item's own TemporaryPath finalize: its commit file, then (rename mode) its
       * rename. Durability comes with the step's commit, which syncs the whole tree but for
       * what the item's handler claimed durable: the claims move with the rename. */
      if (st == CKPT_OK)
        st = ckpt_write_commit_file(io, path, final, false, err);
      if (st == CKPT_OK && tmp) {
        st = ckpt_io_rename(io, path, final, err);
        if (st == CKPT_OK)
          ckpt_op_durable_renamed(op, path, final);
      }
    }
    free(path);
    free(final);
  }
  clear_saved(s);
  return st;
}

static ckpt_status composite_item_handlers(ckpt_handler *composite, cJSON **out,
                                           ckpt_error *err) {
  *out = NULL;
  composite_state *s = state_of(composite, err);
  if (s == NULL)
    return CKPT_ESTATE;
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; i < s->n_saved; i++) {
    binding *b = find_binding(s, s->saved[i], NULL);
    const char *ts = b != NULL ? b->handler->desc->typestr : NULL;
    if (ts == NULL && b != NULL)
      ts = b->handler->desc->full_name;
    cJSON *v = ts != NULL ? cJSON_CreateString(ts) : cJSON_CreateNull();
    if (v == NULL || !cJSON_AddItemToObject(o, s->saved[i], v)) {
      cJSON_Delete(v);
      cJSON_Delete(o);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    }
  }
  *out = o;
  return CKPT_OK;
}

ckpt_status ckpt_handler_saved_item_handlers(ckpt_handler *handler, cJSON **out,
                                             ckpt_error *err) {
  if (handler->desc == &ckpt_CompositeCheckpointHandler_desc)
    return composite_item_handlers(handler, out, err);
  const ckpt_handler_desc *d = handler->desc;
  const char *ts = d->typestr != NULL ? d->typestr : d->full_name;
  *out = ts != NULL ? cJSON_CreateString(ts) : cJSON_CreateNull();
  if (*out == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  return CKPT_OK;
}

/* ---------------------------------------------------------------- restore */

/* Subdirectories of dir that can be items (real directories with valid item names). */
static ckpt_status existing_items(ckpt_io *io, const char *dir, char ***names, size_t *count,
                                  ckpt_error *err) {
  return ckpt_list_subdirs(io, dir, ckpt_composite_check_item_name, names, count, err);
}

/* "a, b, c" of names, for messages (truncated to fit buf). */
static void list_names(char *buf, size_t size, char **names, size_t count) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < count && used + 1 < size; i++) {
    int w = snprintf(buf + used, size - used, "%s\"%s\"", i ? ", " : "", names[i]);
    if (w < 0)
      break;
    used += (size_t)w;
  }
  if (count == 0)
    snprintf(buf, size, "none");
}

/* Restores one item (directory checked by the caller) into out under its name. */
static ckpt_status restore_item(ckpt_handler *h, ckpt_op *op, const char *dir, const char *name,
                                const ckpt_args *args, ckpt_value *out, ckpt_error *err) {
  char *path = ckpt_path_join(dir, name);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_value v = {0};
  ckpt_status st = h->desc->vtable->restore(h, op, path, args, &v, err);
  free(path);
  if (st != CKPT_OK) {
    ckpt_error_set(err, st, "restoring failed without a message");
    ckpt_error_prefix(err, "while restoring item \"%s\": ", name);
    ckpt_value_free(&v);
    return st;
  }
  st = ckpt_value_composite_put(out, name, &v, err);
  if (st != CKPT_OK)
    ckpt_value_free(&v);
  return st;
}

static bool has_file(ckpt_io *io, const char *dir, const char *name, ckpt_io_kind want) {
  char *p = ckpt_path_join(dir, name);
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  bool ok = p != NULL && ckpt_io_stat(io, p, &kind, &size, NULL) == CKPT_OK && kind == want;
  free(p);
  return ok;
}

const ckpt_handler_desc *ckpt_item_handler_from_files(ckpt_io *io, const char *dir,
                                                      const char *item) {
  char *p = ckpt_path_join(dir, item);
  const ckpt_handler_desc *h = NULL;
  if (p != NULL && (has_file(io, p, CKPT_METADATA_FILE, CKPT_IO_KIND_FILE) ||
                    has_file(io, p, CKPT_AGGREGATE_FILE, CKPT_IO_KIND_FILE) ||
                    has_file(io, p, CKPT_ARRAY_METADATAS_DIR, CKPT_IO_KIND_DIR)))
    h = &ckpt_PyTreeCheckpointHandler_desc;
  else if (p != NULL && (has_file(io, p, CKPT_JSON_DEFAULT_FILENAME, CKPT_IO_KIND_FILE) ||
                         has_file(io, p, CKPT_JSON_V1_FILE, CKPT_IO_KIND_FILE)))
    h = &ckpt_JsonCheckpointHandler_desc;
  free(p);
  return h;
}

/* The handler type recorded for item in <dir>/_CHECKPOINT_METADATA, or when none is recorded
 * (the file or its item_handlers missing), the one its files show. */
static ckpt_status recorded_handler(ckpt_io *io, const char *dir, ckpt_step_metadata *meta,
                                    bool *meta_read, const char *item,
                                    const ckpt_handler_desc **out, ckpt_error *err) {
  if (!*meta_read) {
    ckpt_error local = CKPT_ERROR_INIT;
    ckpt_status st = ckpt_step_metadata_read(io, dir, meta, &local);
    if (st == CKPT_ENOENT) {
      st = CKPT_OK; /* older Orbax wrote none: read as empty step metadata */
      ckpt_step_metadata_clear(meta);
    } else if (st != CKPT_OK) {
      ckpt_error_set(err, st, "%s", local.message);
    }
    if (st != CKPT_OK) {
      ckpt_error_prefix(err,
                        "Item \"%s\" was found in the checkpoint, but could not be "
                        "restored without args: ",
                        item);
      return st;
    }
    *meta_read = true;
  }
  const cJSON *ts = NULL;
  if (cJSON_IsObject(meta->item_handlers))
    ts = cJSON_GetObjectItemCaseSensitive(meta->item_handlers, item);
  if (!cJSON_IsString(ts) && (*out = ckpt_item_handler_from_files(io, dir, item)) != NULL)
    return CKPT_OK;
  if (!cJSON_IsString(ts))
    return ckpt_error_set(err, CKPT_EUNREGISTERED,
                          "Item \"%s\" was found in the checkpoint, but could not be restored: "
                          "%s/%s records no handler for it; call restore with args for this "
                          "item",
                          item, dir, CKPT_CHECKPOINT_METADATA_FILE);
  ckpt_status st = ckpt_get_handler_by_typestr(ts->valuestring, out, err);
  if (st != CKPT_OK)
    ckpt_error_prefix(err,
                      "Item \"%s\" was found in the checkpoint, but could not be "
                      "restored (its handler in %s/%s): ",
                      item, dir, CKPT_CHECKPOINT_METADATA_FILE);
  return st;
}

/* Every item item_handlers names must be there: a restore-all that silently returned the
 * items left after one was deleted would hand back an incomplete checkpoint. A checkpoint
 * without item_handlers (an unreadable or absent _CHECKPOINT_METADATA is reported by the
 * first item that needs it) restores the items it has, as in Orbax. */
static ckpt_status check_recorded_items(ckpt_io *io, const char *dir, ckpt_step_metadata *meta,
                                        bool *meta_read, char **names, size_t count,
                                        ckpt_error *err) {
  ckpt_error local = CKPT_ERROR_INIT;
  if (!*meta_read && ckpt_step_metadata_read(io, dir, meta, &local) != CKPT_OK) {
    ckpt_step_metadata_clear(meta); /* read again, and reported, by recorded_handler */
    return CKPT_OK;
  }
  *meta_read = true;
  if (!cJSON_IsObject(meta->item_handlers))
    return CKPT_OK;
  const cJSON *h;
  cJSON_ArrayForEach(h, meta->item_handlers) {
    /* Orbax v1's descriptor item describes the checkpoint and holds no user data; Orbax's
     * own compatibility checkpoints drop its directory. */
    if (cJSON_IsString(h) && ckpt_orbax_is_descriptor(h->valuestring))
      continue;
    bool found = false;
    for (size_t i = 0; i < count && !found; i++)
      found = strcmp(names[i], h->string) == 0;
    if (!found) {
      char avail[512];
      list_names(avail, sizeof avail, names, count);
      return ckpt_error_set(err, CKPT_EINCOMPLETE,
                            "Item \"%s\" is named in %s/%s (item_handlers) but its directory "
                            "is missing from the checkpoint. Items present: %s",
                            h->string, dir, CKPT_CHECKPOINT_METADATA_FILE, avail);
    }
  }
  return CKPT_OK;
}

static ckpt_status restore_all(composite_state *s, ckpt_op *op, const char *dir, char **names,
                               size_t count, ckpt_value *out, ckpt_error *err) {
  ckpt_step_metadata meta = {0};
  bool meta_read = false;
  ckpt_status st =
      check_recorded_items(ckpt_op_io(op), dir, &meta, &meta_read, names, count, err);
  for (size_t i = 0; i < count && st == CKPT_OK; i++) {
    const char *name = names[i];
    const ckpt_args_desc *restore_desc = NULL;
    binding *b = find_binding(s, name, NULL);
    const ckpt_handler_desc *hd = b != NULL ? b->handler->desc : NULL;
    if (hd == NULL)
      st = recorded_handler(ckpt_op_io(op), dir, &meta, &meta_read, name, &hd, err);
    if (st == CKPT_OK) {
      st = ckpt_get_registered_args(hd, NULL, &restore_desc, err);
      if (st != CKPT_OK)
        ckpt_error_prefix(err, "cannot restore item \"%s\": ", name);
    }
    ckpt_args *args = NULL;
    if (st == CKPT_OK) {
      /* Orbax default-constructs the handler's restore args. */
      args = ckpt_args_new(restore_desc);
      if (args == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM,
                            "cannot create default restore args '%s' for "
                            "item \"%s\"",
                            args_name(restore_desc), name);
    }
    ckpt_handler *h = NULL;
    if (st == CKPT_OK)
      st = get_or_set_handler(s, name, restore_desc, &h, err);
    if (st == CKPT_OK)
      st = restore_item(h, op, dir, name, args, out, err);
    ckpt_args_delete(args);
  }
  ckpt_step_metadata_clear(&meta);
  return st;
}

static ckpt_status restore_some(composite_state *s, ckpt_op *op, const char *dir,
                                const ckpt_Composite *c, char **names, size_t count,
                                ckpt_value *out, ckpt_error *err) {
  const ckpt_Composite_items_entry **order;
  ckpt_status st = sorted_items(c, true, &order, err);
  if (st != CKPT_OK)
    return st;
  ckpt_io *io = ckpt_op_io(op);
  for (size_t i = 0; i < c->n_items && st == CKPT_OK; i++) {
    const char *name = order[i]->key;
    const ckpt_args *args = order[i]->value;
    bool on_disk = false;
    for (size_t j = 0; j < count && !on_disk; j++)
      on_disk = strcmp(names[j], name) == 0;
    if (!on_disk) {
      char *p = ckpt_path_join(dir, name);
      ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
      if (p != NULL)
        st = ckpt_io_stat(io, p, &kind, NULL, err);
      free(p);
      if (st != CKPT_OK)
        break;
      if (kind == CKPT_IO_KIND_SYMLINK) {
        st = ckpt_error_set(err, CKPT_EUNSAFE,
                            "Item \"%s\" in '%s' is a symlink; checkpoints never contain links "
                            "and they are not followed",
                            name, dir);
      } else {
        char avail[512];
        list_names(avail, sizeof avail, names, count);
        st = ckpt_error_set(err, CKPT_ENOENT,
                            "Item \"%s\" was not found in the checkpoint at '%s'. Available "
                            "items: %s",
                            name, dir, avail);
      }
      break;
    }
    ckpt_handler *h = NULL;
    if (args == NULL) {
      /* Orbax: None is valid only for an item whose handler is already configured. */
      binding *b = find_binding(s, name, NULL);
      if (b == NULL) {
        st = ckpt_error_set(err, CKPT_EINVAL,
                            "Provided NULL args for item \"%s\", and its CheckpointHandler was "
                            "not configured by an earlier save or restore; provide restore args "
                            "so the composite knows how to restore it",
                            name);
        break;
      }
      h = b->handler;
    } else {
      st = get_or_set_handler(s, name, args->desc, &h, err);
    }
    if (st == CKPT_OK)
      st = restore_item(h, op, dir, name, args, out, err);
  }
  free(order);
  return st;
}

ckpt_status ckpt_CompositeCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op,
                                                    const char *dir, const ckpt_args *args,
                                                    ckpt_value *out, ckpt_error *err) {
  composite_state *s = state_of(self, err);
  if (s == NULL)
    return CKPT_ESTATE;
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "restore: out is NULL");
  const ckpt_Composite *c = NULL;
  ckpt_status st = CKPT_OK;
  if (args != NULL)
    st = as_composite(args, "restore", &c, err);
  if (st != CKPT_OK)
    return st;
  char **names;
  size_t count;
  st = existing_items(ckpt_op_io(op), dir, &names, &count, err);
  if (st != CKPT_OK)
    return st;
  ckpt_value result = {.kind = CKPT_VALUE_COMPOSITE};
  if (c == NULL || c->n_items == 0)
    st = restore_all(s, op, dir, names, count, &result, err);
  else
    st = restore_some(s, op, dir, c, names, count, &result, err);
  ckpt_io_free_names(names, count);
  if (st != CKPT_OK) {
    ckpt_value_free(&result);
    return st;
  }
  *out = result;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- metadata */

ckpt_status ckpt_CompositeCheckpointHandler_metadata(ckpt_handler *self, ckpt_op *op,
                                                     const char *dir, cJSON **out,
                                                     ckpt_error *err) {
  composite_state *s = state_of(self, err);
  if (s == NULL)
    return CKPT_ESTATE;
  *out = NULL;
  char **names;
  size_t count;
  ckpt_status st = existing_items(ckpt_op_io(op), dir, &names, &count, err);
  if (st != CKPT_OK)
    return st;
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_step_metadata meta = {0};
  bool meta_read = false;
  for (size_t i = 0; i < count && st == CKPT_OK; i++) {
    /* As Orbax's CompositeItemMetadata: an item whose metadata cannot be had is null; only
     * running out of memory fails the whole call. */
    ckpt_error scratch = CKPT_ERROR_INIT;
    binding *b = find_binding(s, names[i], NULL);
    ckpt_handler *h = b != NULL ? b->handler : NULL;
    ckpt_handler *temp = NULL;
    if (h == NULL) {
      const ckpt_handler_desc *hd;
      if (recorded_handler(ckpt_op_io(op), dir, &meta, &meta_read, names[i], &hd, &scratch) ==
              CKPT_OK &&
          ckpt_handler_create(hd, &temp, &scratch) == CKPT_OK)
        h = temp;
    }
    cJSON *item = NULL;
    char *path = ckpt_path_join(dir, names[i]);
    if (h != NULL && h->desc->vtable->metadata != NULL && path != NULL) {
      if (h->desc->vtable->metadata(h, op, path, &item, &scratch) != CKPT_OK) {
        cJSON_Delete(item);
        item = NULL;
      }
    }
    free(path);
    ckpt_handler_destroy(temp);
    if (item == NULL)
      item = cJSON_CreateNull();
    if (item == NULL || !cJSON_AddItemToObject(o, names[i], item)) {
      cJSON_Delete(item);
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    }
  }
  ckpt_step_metadata_clear(&meta);
  ckpt_io_free_names(names, count);
  if (st != CKPT_OK) {
    cJSON_Delete(o);
    return st;
  }
  *out = o;
  return CKPT_OK;
}
