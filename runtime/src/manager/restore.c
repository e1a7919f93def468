/* manager/restore.c — CheckpointManager.restore (docs/manager.md, "Restore and queries").
 *
 * The mode of a step comes from its directory: only the item `default` (besides `metrics`)
 * is a single-item checkpoint and restores to the bare value; anything else restores to a
 * COMPOSITE value. The manager always hands the checkpointer explicit Composite args: items
 * restored "as saved" get their handler's default restore args, found through the typestr the
 * step's _CHECKPOINT_METADATA records for them (as Orbax's composite does). The metrics item
 * is read directly (mgr_metrics_read, the reader of ckpt_manager_metrics: a step without the
 * file has no metrics) and added to the result as a JSON value when restore-all or the args
 * ask for it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "handlers/item_handlers.h"
#include "manager/manager_internal.h"
#include "storage/checkpoint_metadata.h"
#include "storage/commit.h"

/* "1, 2, 3" (truncated to fit) for messages. */
static void list_steps(const mgr_steps *s, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  if (s->n == 0) {
    snprintf(buf, size, "none");
    return;
  }
  for (size_t i = 0; i < s->n && used + 1 < size; i++) {
    int w = snprintf(buf + used, size - used, "%s%" PRId64, i != 0 ? ", " : "", s->v[i].step);
    if (w < 0)
      break;
    used += (size_t)w;
  }
}

/* Resolves CKPT_LATEST_STEP and checks the step is a finalized checkpoint; *path malloc'ed. */
static ckpt_status step_dir(ckpt_manager *m, int64_t *step, char **path, ckpt_error *err) {
  *path = NULL;
  if (*step == CKPT_LATEST_STEP) {
    if (!ckpt_manager_latest_step(m, step))
      return ckpt_error_set(err, CKPT_ENOENT, "No checkpoints found in '%s' to restore",
                            m->cfg.dir);
  } else if (*step < 0) {
    return ckpt_error_set(err, CKPT_EINVAL,
                          "restore: step %" PRId64 " is negative (CKPT_LATEST_STEP is -1)", *step);
  }
  char *p = mgr_step_path(&m->cfg, *step);
  if (p == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory restoring");
  ckpt_io_kind kind;
  ckpt_status st = ckpt_io_stat(m->cfg.io, p, &kind, NULL, err);
  if (st == CKPT_OK && kind == CKPT_IO_KIND_MISSING) {
    char avail[256];
    list_steps(&m->steps, avail, sizeof avail);
    st = ckpt_error_set(err, CKPT_ENOENT,
                        "No checkpoint for step %" PRId64 " at '%s'; known steps: %s", *step, p,
                        avail);
  } else if (st == CKPT_OK) {
    bool fin;
    st = mgr_step_finalized(&m->cfg, p, &fin, err);
    if (st == CKPT_OK && !fin)
      st = ckpt_error_set(err, CKPT_EINCOMPLETE, "Found incomplete checkpoint at '%s'", p);
  }
  if (st != CKPT_OK) {
    free(p);
    return st;
  }
  *path = p;
  return CKPT_OK;
}

/* Default restore args for an item, from the typestr recorded in the step's metadata. */
typedef struct recorded {
  ckpt_step_metadata meta;
  bool read;
} recorded;

static ckpt_status default_args(const mgr_config *c, const char *dir, recorded *rec,
                                const char *item, ckpt_args **out, ckpt_error *err) {
  *out = NULL;
  if (!rec->read) {
    ckpt_error local = CKPT_ERROR_INIT;
    ckpt_status st = ckpt_step_metadata_read(c->io, dir, &rec->meta, &local);
    if (st == CKPT_ENOENT) {
      st = CKPT_OK; /* older Orbax wrote none: no handlers recorded */
      ckpt_step_metadata_clear(&rec->meta);
    } else if (st != CKPT_OK) {
      ckpt_error_set(err, st, "cannot restore item \"%s\" without args: %s", item, local.message);
      return st;
    }
    rec->read = true;
  }
  const cJSON *ts = NULL;
  if (cJSON_IsObject(rec->meta.item_handlers))
    ts = cJSON_GetObjectItemCaseSensitive(rec->meta.item_handlers, item);
  const ckpt_handler_desc *h = NULL;
  if (!cJSON_IsString(ts))
    h = ckpt_item_handler_from_files(c->io, dir, item); /* none recorded: as its files show */
  if (!cJSON_IsString(ts) && h == NULL)
    return ckpt_error_set(err, CKPT_EUNREGISTERED,
                          "cannot restore item \"%s\" without args: %s/%s records no handler for "
                          "it; pass restore args for it",
                          item, dir, CKPT_CHECKPOINT_METADATA_FILE);
  const ckpt_args_desc *rd;
  ckpt_status st = h != NULL ? CKPT_OK : ckpt_get_handler_by_typestr(ts->valuestring, &h, err);
  if (st == CKPT_OK)
    st = ckpt_get_registered_args(h, NULL, &rd, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "cannot restore item \"%s\" without args: ", item);
    return st;
  }
  *out = ckpt_args_new(rd);
  if (*out == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating restore args for \"%s\"", item);
  return CKPT_OK;
}

/* The Composite handed to the checkpointer. Entries borrow the caller's args and keys, or own
 * default args (owned[i]). */
typedef struct plan {
  ckpt_Composite_items_entry *e;
  bool *owned;
  size_t n;
  bool metrics;          /* add the metrics item to the result */
  bool metrics_required; /* the args named it: its absence is an error */
} plan;

static void plan_free(plan *p) {
  for (size_t i = 0; i < p->n; i++) {
    if (p->owned[i])
      ckpt_args_delete(p->e[i].value);
  }
  free(p->e);
  free(p->owned);
  memset(p, 0, sizeof *p);
}

static ckpt_status plan_alloc(plan *p, size_t cap, ckpt_error *err) {
  p->e = calloc(cap + 1, sizeof *p->e);
  p->owned = calloc(cap + 1, sizeof *p->owned);
  if (p->e == NULL || p->owned == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  return CKPT_OK;
}

static char default_key[] = CKPT_MANAGER_DEFAULT_ITEM;

/* Every item on disk, with default args; the metrics item is read separately. */
static ckpt_status plan_all(const mgr_config *c, const char *dir, char **items, size_t n, plan *p,
                            ckpt_error *err) {
  ckpt_status st = plan_alloc(p, n, err);
  recorded rec = {0};
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    if (strcmp(items[i], CKPT_MANAGER_METRICS_ITEM) == 0) {
      p->metrics = true;
      continue;
    }
    ckpt_args *a;
    st = default_args(c, dir, &rec, items[i], &a, err);
    if (st != CKPT_OK)
      break;
    p->e[p->n] = (ckpt_Composite_items_entry){items[i], a};
    p->owned[p->n++] = true;
  }
  ckpt_step_metadata_clear(&rec.meta);
  return st;
}

static ckpt_status plan_composite(const ckpt_Composite *user, plan *p, ckpt_error *err) {
  ckpt_status st = plan_alloc(p, user->n_items, err);
  for (size_t i = 0; i < user->n_items && st == CKPT_OK; i++) {
    if (user->items[i].key != NULL && strcmp(user->items[i].key, CKPT_MANAGER_METRICS_ITEM) == 0) {
      p->metrics = p->metrics_required = true;
      continue;
    }
    p->e[p->n] = user->items[i];
    p->owned[p->n++] = false;
  }
  return st;
}

static ckpt_status plan_single(const mgr_config *c, const char *dir, const ckpt_args *args, plan *p,
                               ckpt_error *err) {
  ckpt_status st = plan_alloc(p, 1, err);
  if (st != CKPT_OK)
    return st;
  if (args != NULL) {
    /* The composite only reads its args. */
    p->e[0] = (ckpt_Composite_items_entry){default_key, (ckpt_args *)(void *)(uintptr_t)args};
    p->n = 1;
    return CKPT_OK;
  }
  recorded rec = {0};
  ckpt_args *a;
  st = default_args(c, dir, &rec, CKPT_MANAGER_DEFAULT_ITEM, &a, err);
  ckpt_step_metadata_clear(&rec.meta);
  if (st != CKPT_OK)
    return st;
  p->e[0] = (ckpt_Composite_items_entry){default_key, a};
  p->owned[0] = true;
  p->n = 1;
  return CKPT_OK;
}

static ckpt_status add_metrics(const mgr_config *c, const char *dir, bool required, ckpt_value *v,
                               ckpt_error *err) {
  cJSON *j;
  ckpt_status st = mgr_metrics_read(c, dir, &j, err);
  if (st != CKPT_OK)
    return st;
  if (j == NULL) {
    if (!required)
      return CKPT_OK;
    return ckpt_error_set(
        err, CKPT_ENOENT, "Item \"%s\" was not found in the checkpoint at '%s' (no %s/%s file)",
        CKPT_MANAGER_METRICS_ITEM, dir, CKPT_MANAGER_METRICS_ITEM, CKPT_MANAGER_METRICS_ITEM);
  }
  ckpt_value item = {.kind = CKPT_VALUE_JSON};
  item.u.json = j;
  st = ckpt_value_composite_put(v, CKPT_MANAGER_METRICS_ITEM, &item, err);
  if (st != CKPT_OK)
    ckpt_value_free(&item);
  return st;
}

ckpt_status mgr_restore(ckpt_manager *m, int64_t step, const ckpt_args *args, ckpt_value *out,
                        ckpt_error *err) {
  char *dir;
  ckpt_status st = step_dir(m, &step, &dir, err);
  if (st != CKPT_OK)
    return st;
  mgr_mode mode;
  char **items = NULL;
  size_t n_items = 0;
  st = mgr_step_items(&m->cfg, dir, &items, &n_items, err);
  if (st == CKPT_OK)
    st = mgr_step_mode(&m->cfg, dir, &mode, err);
  bool composite = args != NULL && args->desc == &ckpt_Composite_desc;
  if (st == CKPT_OK && args != NULL && args->desc == NULL)
    st = ckpt_error_set(err, CKPT_EINVAL, "restore of step %" PRId64 ": args have no type", step);
  if (st == CKPT_OK && args != NULL && !composite && mode != MGR_MODE_SINGLE)
    st = ckpt_error_set(err, CKPT_EINVAL,
                        "restore of step %" PRId64
                        ": '%s' holds %s; restore it with Composite "
                        "args (or NULL), not '%s'",
                        step, dir, mode == MGR_MODE_MULTI ? "several items" : "no items",
                        args->desc->full_name);
  if (st == CKPT_OK && composite && mode == MGR_MODE_SINGLE)
    st = ckpt_error_set(err, CKPT_EINVAL,
                        "restore of step %" PRId64
                        ": '%s' is a single-item checkpoint (item "
                        "\"default\"); restore it with that item's args (or NULL), not Composite",
                        step, dir);
  plan p = {0};
  if (st == CKPT_OK) {
    const ckpt_Composite *user = composite ? (const ckpt_Composite *)(const void *)args : NULL;
    if (mode == MGR_MODE_SINGLE)
      st = plan_single(&m->cfg, dir, args, &p, err);
    else if (user != NULL && user->n_items > 0)
      st = plan_composite(user, &p, err);
    else
      st = plan_all(&m->cfg, dir, items, n_items, &p, err);
  }
  ckpt_value v = {.kind = CKPT_VALUE_COMPOSITE};
  if (st == CKPT_OK && p.n > 0) {
    ckpt_Composite comp;
    memset(&comp, 0, sizeof comp);
    comp.base.desc = &ckpt_Composite_desc;
    comp.n_items = p.n;
    comp.items = p.e;
    st = ckpt_checkpointer_restore(m->ckptr, dir, &comp.base, &v, err);
  }
  if (st == CKPT_OK && p.metrics && mode != MGR_MODE_SINGLE)
    st = add_metrics(&m->cfg, dir, p.metrics_required, &v, err);
  plan_free(&p);
  ckpt_io_free_names(items, n_items);
  if (st == CKPT_OK && mode == MGR_MODE_SINGLE) {
    ckpt_value *item = ckpt_value_item_get(&v, CKPT_MANAGER_DEFAULT_ITEM);
    if (item == NULL) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "restore of '%s' returned no item \"default\"", dir);
    } else {
      *out = *item;
      memset(item, 0, sizeof *item); /* moved */
      item->kind = CKPT_VALUE_NONE;
    }
    ckpt_value_free(&v);
  } else if (st == CKPT_OK) {
    *out = v;
  } else {
    ckpt_value_free(&v);
  }
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "CheckpointManager restore of step %" PRId64 ": ", step);
  free(dir);
  return st;
}

ckpt_status ckpt_manager_restore(ckpt_manager *m, int64_t step, const ckpt_args *args,
                                 ckpt_value *out, ckpt_error *err) {
  if (m == NULL || out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_manager_restore: NULL argument");
  memset(out, 0, sizeof *out);
  out->kind = CKPT_VALUE_NONE;
  ckpt_status st = mgr_join(m, err);
  if (st != CKPT_OK)
    return st;
  return mgr_restore(m, step, args, out, err);
}
