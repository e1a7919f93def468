/* registry.c — Orbax's process-wide args ↔ handler registry and the typestr registry.
 *
 * Three tables, as orbax.checkpoint.args keeps them:
 *   save_map    args type → handler (for_save registrations), in first-registration order;
 *   restore_map args type → handler (for_restore registrations), same;
 *   typestrs    typestr → handler (what _CHECKPOINT_METADATA.item_handlers refers to);
 *               Orbax's other spellings of its handlers' typestrs resolve through
 *               core/orbax_handlers.h to the built-ins.
 * Python dicts keep a key's original position when its value is overwritten, and
 * get_registered_args_cls relies on that order ("first args registered for this handler"), so
 * the maps are arrays updated in place.
 *
 * One mutex guards all tables; look-ups take it too, so any number of threads may look up
 * while another registers. The built-in args of schemas/ckpt/builtin.ckpt register themselves
 * on first use of any function here: the generated ckpt_register() calls back into
 * ckpt_register_with_handler, so the thread doing that marks itself and skips the first-use
 * check (no self-deadlock); other threads wait for it. Unlike pthread_once, a failed built-in
 * registration (out of memory) is retried on the next call instead of being remembered. */
#include "ckpt/registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/builtin.ckpt.h"
#include "core/orbax_handlers.h"
#include "core/registry_internal.h"

typedef struct reg_entry {
  const ckpt_args_desc *args;
  const ckpt_handler_desc *handler;
} reg_entry;

typedef struct reg_map {
  reg_entry *v;
  size_t n, cap;
} reg_map;

typedef struct reg_tables {
  pthread_mutex_t mu;
  reg_map save_map;
  reg_map restore_map;
  const ckpt_handler_desc **typestrs; /* handlers, looked up by their typestr */
  size_t n_typestrs, cap_typestrs;
} reg_tables;

static reg_tables tables = {.mu = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t builtin_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool builtin_done;
static _Thread_local bool registering_builtins;

static const char *hname(const ckpt_handler_desc *h) {
  if (h == NULL)
    return "(null handler)";
  if (h->full_name != NULL)
    return h->full_name;
  return h->name != NULL ? h->name : "(unnamed handler)";
}

static const char *aname(const ckpt_args_desc *a) {
  if (a == NULL)
    return "(null args)";
  if (a->full_name != NULL)
    return a->full_name;
  return a->name != NULL ? a->name : "(unnamed args)";
}

/* Orbax's default typestr is module.qualname; a handler without one uses its full name. */
static const char *typestr_of(const ckpt_handler_desc *h) {
  return h->typestr != NULL ? h->typestr : h->full_name;
}

/* Registers the built-ins once per process (retried if it failed). */
static ckpt_status ensure_builtins(ckpt_error *err) {
  if (registering_builtins || atomic_load_explicit(&builtin_done, memory_order_acquire))
    return CKPT_OK;
  pthread_mutex_lock(&builtin_mu);
  ckpt_status st = CKPT_OK;
  if (!atomic_load_explicit(&builtin_done, memory_order_relaxed)) {
    registering_builtins = true;
    st = ckpt_register(err);
    registering_builtins = false;
    if (st == CKPT_OK)
      atomic_store_explicit(&builtin_done, true, memory_order_release);
    else
      ckpt_error_prefix(err, "cannot register the built-in args and handlers: ");
  }
  pthread_mutex_unlock(&builtin_mu);
  return st;
}

static reg_entry *map_find(reg_map *m, const ckpt_args_desc *args) {
  for (size_t i = 0; i < m->n; i++) {
    if (m->v[i].args == args)
      return &m->v[i];
  }
  return NULL;
}

/* Makes room for one more entry (so the later update cannot fail half-way). */
static bool map_reserve(reg_map *m) {
  if (m->n < m->cap)
    return true;
  size_t ncap = m->cap ? m->cap * 2 : 32;
  reg_entry *nv = realloc(m->v, ncap * sizeof *nv);
  if (nv == NULL)
    return false;
  m->v = nv;
  m->cap = ncap;
  return true;
}

static void map_put(reg_map *m, const ckpt_args_desc *args, const ckpt_handler_desc *h) {
  reg_entry *e = map_find(m, args);
  if (e != NULL)
    e->handler = h; /* overwrite in place, keeping the original position */
  else
    m->v[m->n++] = (reg_entry){args, h};
}

static const ckpt_handler_desc **typestr_find(const char *typestr) {
  for (size_t i = 0; i < tables.n_typestrs; i++) {
    if (strcmp(typestr_of(tables.typestrs[i]), typestr) == 0)
      return &tables.typestrs[i];
  }
  return NULL;
}

static bool same_name(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

/* Checks (and, when apply, performs) the typestr registration of h. Caller holds the lock and
 * has reserved a slot. */
static ckpt_status typestr_register_locked(const ckpt_handler_desc *h, bool apply,
                                           ckpt_error *err) {
  const char *ts = typestr_of(h);
  const ckpt_handler_desc **slot = typestr_find(ts);
  if (slot == NULL) {
    if (apply)
      tables.typestrs[tables.n_typestrs++] = h;
    return CKPT_OK;
  }
  if (*slot == h)
    return CKPT_OK;
  /* Orbax: the same qualified name again (a module reload) replaces the class; another class
   * claiming the typestr is an error. */
  if (same_name((*slot)->full_name, h->full_name) && same_name((*slot)->name, h->name)) {
    if (apply)
      *slot = h;
    return CKPT_OK;
  }
  return ckpt_error_set(err, CKPT_EINVAL,
                        "handler typestr \"%s\" of handler '%s' is already registered to a "
                        "different handler '%s'",
                        ts, hname(h), hname(*slot));
}

static bool typestr_reserve(void) {
  if (tables.n_typestrs < tables.cap_typestrs)
    return true;
  size_t ncap = tables.cap_typestrs ? tables.cap_typestrs * 2 : 16;
  const ckpt_handler_desc **nv = realloc(tables.typestrs, ncap * sizeof *nv);
  if (nv == NULL)
    return false;
  tables.typestrs = nv;
  tables.cap_typestrs = ncap;
  return true;
}

static ckpt_status check_handler(const ckpt_handler_desc *h, ckpt_error *err) {
  if (h == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "handler descriptor is NULL");
  if (typestr_of(h) == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "handler '%s' has neither a typestr nor a full name",
                          hname(h));
  if (h->vtable == NULL || h->vtable->save == NULL || h->vtable->restore == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "handler '%s' has no save/restore functions", hname(h));
  return CKPT_OK;
}

ckpt_status ckpt_register_with_handler(const ckpt_handler_desc *handler, const ckpt_args_desc *args,
                                       bool for_save, bool for_restore, ckpt_error *err) {
  if (!for_save && !for_restore)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "ckpt_register_with_handler(%s, %s): at least one of for_save and "
                          "for_restore must be true",
                          hname(handler), aname(args));
  ckpt_status st = check_handler(handler, err);
  if (st != CKPT_OK)
    return st;
  if (args == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "args descriptor is NULL");
  if (args->magic != CKPT_RECORD_DESC_MAGIC || args->abi_version != CKPT_ABI_VERSION)
    return ckpt_error_set(err, CKPT_EVERSION,
                          "args descriptor '%s' was not generated for this runtime (ABI %d)",
                          aname(args), CKPT_ABI_VERSION);
  if (!args->is_args)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "'%s' is a record, not a CheckpointArgs type (declare it with `args`)",
                          aname(args));
  st = ensure_builtins(err);
  if (st != CKPT_OK)
    return st;

  pthread_mutex_lock(&tables.mu);
  /* Everything that can fail happens before anything changes, so a failed registration leaves
   * the tables as they were (Orbax would have half-registered). */
  if (!map_reserve(&tables.save_map) || !map_reserve(&tables.restore_map) || !typestr_reserve()) {
    pthread_mutex_unlock(&tables.mu);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory registering '%s' with '%s'", aname(args),
                          hname(handler));
  }
  st = typestr_register_locked(handler, false, err);
  if (st == CKPT_OK) {
    typestr_register_locked(handler, true, err);
    if (for_save)
      map_put(&tables.save_map, args, handler);
    if (for_restore)
      map_put(&tables.restore_map, args, handler);
  }
  pthread_mutex_unlock(&tables.mu);
  return st;
}

ckpt_status ckpt_get_registered_handler(const ckpt_args_desc *args, const ckpt_handler_desc **out,
                                        ckpt_error *err) {
  if (out != NULL)
    *out = NULL;
  if (args == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "args descriptor is NULL");
  if (!args->is_args)
    return ckpt_error_set(err, CKPT_ETYPE, "'%s' is a record, not a CheckpointArgs type",
                          aname(args));
  ckpt_status st = ensure_builtins(err);
  if (st != CKPT_OK)
    return st;
  pthread_mutex_lock(&tables.mu);
  reg_entry *e = map_find(&tables.save_map, args);
  if (e == NULL)
    e = map_find(&tables.restore_map, args);
  const ckpt_handler_desc *h = e != NULL ? e->handler : NULL;
  pthread_mutex_unlock(&tables.mu);
  if (h == NULL)
    return ckpt_error_set(err, CKPT_EUNREGISTERED,
                          "unable to find a registered CheckpointHandler for args type '%s'; "
                          "use ckpt_register_with_handler or @register_with_handler in the "
                          "schema",
                          aname(args));
  if (out != NULL)
    *out = h;
  return CKPT_OK;
}

static const ckpt_args_desc *first_for(reg_map *m, const ckpt_handler_desc *h) {
  for (size_t i = 0; i < m->n; i++) {
    if (m->v[i].handler == h)
      return m->v[i].args;
  }
  return NULL;
}

ckpt_status ckpt_get_registered_args(const ckpt_handler_desc *handler,
                                     const ckpt_args_desc **save_args,
                                     const ckpt_args_desc **restore_args, ckpt_error *err) {
  if (save_args != NULL)
    *save_args = NULL;
  if (restore_args != NULL)
    *restore_args = NULL;
  if (handler == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "handler descriptor is NULL");
  ckpt_status st = ensure_builtins(err);
  if (st != CKPT_OK)
    return st;
  pthread_mutex_lock(&tables.mu);
  const ckpt_args_desc *s = first_for(&tables.save_map, handler);
  const ckpt_args_desc *r = first_for(&tables.restore_map, handler);
  pthread_mutex_unlock(&tables.mu);
  if (s == NULL || r == NULL) {
    const char *missing = s == NULL && r == NULL ? "save or restore args"
                          : s == NULL            ? "save args"
                                                 : "restore args";
    const char *hn = handler->name != NULL ? handler->name : hname(handler);
    return ckpt_error_set(err, CKPT_EUNREGISTERED,
                          "CheckpointHandler '%s' has no registered %s; a handler needs both: "
                          "register them with ckpt_register_with_handler(&handler_desc, "
                          "&args_desc, for_save, for_restore) or "
                          "@register_with_handler(%s, for_save = true) / "
                          "@register_with_handler(%s, for_restore = true) in the schema",
                          hname(handler), missing, hn, hn);
  }
  if (save_args != NULL)
    *save_args = s;
  if (restore_args != NULL)
    *restore_args = r;
  return CKPT_OK;
}

bool ckpt_has_registered_args(const ckpt_handler_desc *handler) {
  return ckpt_get_registered_args(handler, NULL, NULL, NULL) == CKPT_OK;
}

ckpt_status ckpt_register_handler_type(const ckpt_handler_desc *handler, ckpt_error *err) {
  ckpt_status st = check_handler(handler, err);
  if (st != CKPT_OK)
    return st;
  st = ensure_builtins(err);
  if (st != CKPT_OK)
    return st;
  pthread_mutex_lock(&tables.mu);
  if (!typestr_reserve()) {
    pthread_mutex_unlock(&tables.mu);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory registering handler '%s'",
                          hname(handler));
  }
  st = typestr_register_locked(handler, true, err);
  pthread_mutex_unlock(&tables.mu);
  return st;
}

ckpt_status ckpt_get_handler_by_typestr(const char *typestr, const ckpt_handler_desc **out,
                                        ckpt_error *err) {
  if (out != NULL)
    *out = NULL;
  if (typestr == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "handler typestr is NULL");
  ckpt_status st = ensure_builtins(err);
  if (st != CKPT_OK)
    return st;
  pthread_mutex_lock(&tables.mu);
  const ckpt_handler_desc **slot = typestr_find(typestr);
  /* Another spelling of an Orbax handler (older module paths, the v1 API) is the built-in
   * that reads what it writes, unless a program registered that exact typestr itself. */
  const ckpt_orbax_handler *alias = slot == NULL ? ckpt_orbax_handler_find(typestr) : NULL;
  if (alias != NULL && alias->builtin != NULL)
    slot = typestr_find(typestr_of(alias->builtin));
  const ckpt_handler_desc *h = slot != NULL ? *slot : NULL;
  pthread_mutex_unlock(&tables.mu);
  if (h == NULL && alias != NULL)
    return ckpt_error_set(err, CKPT_EUNREGISTERED,
                          "typestr \"%s\" names Orbax's %s, which has no counterpart in ckpt%s",
                          typestr, alias->class_name,
                          alias->item == CKPT_ORBAX_ITEM_DESCRIPTOR
                              ? " (it holds no user data; restores without args skip it)"
                              : "");
  if (h == NULL)
    return ckpt_error_set(err, CKPT_EUNREGISTERED,
                          "no CheckpointHandler is registered with typestr \"%s\"; register it "
                          "with ckpt_register_handler_type or ckpt_register_with_handler",
                          typestr);
  if (out != NULL)
    *out = h;
  return CKPT_OK;
}

bool ckpt_registry_handler_accepts(const ckpt_handler_desc *handler, const ckpt_args_desc *args,
                                   bool for_save) {
  if (handler == NULL || args == NULL)
    return false;
  if (ensure_builtins(NULL) != CKPT_OK)
    return false;
  pthread_mutex_lock(&tables.mu);
  reg_entry *e = map_find(for_save ? &tables.save_map : &tables.restore_map, args);
  bool ok = e != NULL && e->handler == handler;
  if (!ok) {
    /* Orbax's look-up ignores direction (save map first, then restore map); accept whatever
     * it would dispatch to this handler. */
    reg_entry *o = map_find(for_save ? &tables.restore_map : &tables.save_map, args);
    ok = e == NULL && o != NULL && o->handler == handler;
  }
  pthread_mutex_unlock(&tables.mu);
  return ok;
}
