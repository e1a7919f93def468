/* checkpointer/checkpointer.c — Orbax's Checkpointer and AsyncCheckpointer
 * (docs/api.md, "Checkpointer").
 *
 * A save is two parts. The blocking part, on the caller's thread: wait for the previous save,
 * check the destination, create the tmp directory, and run the handler's save (which snapshots
 * what it needs and queues everything with a file in it with ckpt_op_defer). The finishing
 * part: run the deferred work (whose file I/O fans out on the checkpointer's I/O engine and is
 * durable when it returns), write _CHECKPOINT_METADATA (init time, item_handlers,
 * custom_metadata), let the handler finalize, stamp the commit time, and commit
 * (storage/commit.c). An async checkpointer runs the finishing part on a background thread and
 * returns; a synchronous one is the same save followed by the wait, with the finishing part run
 * on the caller's thread (same code, same engine, no thread to start). Background errors are
 * kept and returned once, by the next save, restore, metadata, wait_until_finished,
 * check_for_errors or close.
 *
 * The engine (io/engine.h) is created with the checkpointer and reused by every save and
 * restore: options.io_threads workers (0: CKPT_IO_THREADS, else 4) and a memory budget of
 * options.memory_budget_bytes in-flight read/write bytes (0: unlimited — a staged snapshot is
 * already in memory, and a restore reads into the caller's buffers). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/builtin.ckpt.h"
#include "ckpt/checkpointer.h"
#include "ckpt/registry.h"
#include "checkpointer/checkpointer_internal.h"
#include "handlers/item_handlers.h"
#include "io/engine.h"
#include "handlers/op.h"
#include "core/registry_internal.h"
#include "storage/checkpoint_metadata.h"
#include "storage/commit.h"
#include "storage/step_dirs.h"
#include "storage/zarr_io.h"
#include "io/staging_pool.h"
#include "util/crc32c.h"
#include "util/path.h"

/* One save between its blocking part and its commit. */
typedef struct pending_save {
  ckpt_checkpointer *ckptr;
  ckpt_commit commit;
  ckpt_op op;
  bool op_live;
  ckpt_step_metadata meta;
  cJSON *custom_metadata; /* the caller's, copied; joins meta after the handler save */
  ckpt_status status;     /* of the finishing part, once it ran */
  ckpt_error err;
} pending_save;

struct ckpt_checkpointer {
  const ckpt_handler_desc *handler_desc;
  ckpt_handler *handler;
  ckpt_checkpointer_options opts;
  ckpt_io *io;
  ckpt_engine *engine;   /* every save's and restore's file I/O; owned */
  ckpt_process_group *pg; /* NULL: this process alone (borrowed) */
  pending_save *pending; /* the save running in the background, if any */
  pthread_t thread;
  atomic_bool thread_done;
  ckpt_staging_preparer staging; /* the pool of options.snapshot_bytes_hint, being built */
};

static const char *desc_name(const ckpt_handler_desc *d) {
  if (d == NULL)
    return "(none)";
  return d->full_name != NULL ? d->full_name : (d->name != NULL ? d->name : "(unnamed)");
}

static const char *args_name(const ckpt_args_desc *d) {
  if (d == NULL)
    return "(none)";
  return d->full_name != NULL ? d->full_name : (d->name != NULL ? d->name : "(unnamed)");
}

ckpt_status ckpt_checkpointer_new(const ckpt_handler_desc *handler,
                                  const ckpt_checkpointer_options *options, ckpt_checkpointer **out,
                                  ckpt_error *err) {
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_checkpointer_new: out is NULL");
  *out = NULL;
  ckpt_checkpointer_options defaults = CKPT_CHECKPOINTER_OPTIONS_INIT;
  const ckpt_checkpointer_options *o = options != NULL ? options : &defaults;
  if (o->atomicity != CKPT_ATOMICITY_RENAME && o->atomicity != CKPT_ATOMICITY_COMMIT_FILE)
    return ckpt_error_set(err, CKPT_EINVAL, "unknown atomicity mode %d", (int)o->atomicity);
  if (o->io_threads < 0 || o->io_threads > 256)
    return ckpt_error_set(err, CKPT_EINVAL, "io_threads must be 0 (default) to 256, not %d",
                          o->io_threads);
  int group_size = ckpt_process_group_size(o->process_group);
  if (o->primary < 0 || o->primary >= group_size)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "primary process %d is not a rank of the process group (size %d)",
                          o->primary, group_size);
  ckpt_checkpointer *c = calloc(1, sizeof *c);
  if (c == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating a checkpointer");
  c->opts = *o;
  c->io = o->io != NULL ? o->io : ckpt_io_default();
  c->pg = group_size > 1 ? o->process_group : NULL;
  c->handler_desc = handler != NULL ? handler : &ckpt_CompositeCheckpointHandler_desc;
  atomic_init(&c->thread_done, false);
  ckpt_engine_options eo;
  ckpt_engine_options_init(&eo);
  eo.io = c->io;
  eo.threads = (unsigned)o->io_threads;
  eo.max_inflight_bytes = o->memory_budget_bytes;
  ckpt_status st = ckpt_engine_new(&eo, &c->engine, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "creating the I/O engine of a checkpointer: ");
    free(c);
    return st;
  }
  st = ckpt_handler_create(c->handler_desc, &c->handler, err);
  if (st != CKPT_OK) {
    ckpt_engine_free(c->engine);
    free(c);
    return st;
  }
  if (c->opts.async)
    ckpt_staging_retain(); /* keeps the snapshot pool warm from one save to the next */
  /* The first save's pool, faulted in behind the caller's back (staging_pool.h); none for
   * checkpointers that never copy (synchronous or zero-copy ones). */
  bool copies = c->opts.async && !c->opts.zero_copy;
  ckpt_staging_prepare_start(&c->staging, copies ? o->snapshot_bytes_hint : 0);
  *out = c;
  return CKPT_OK;
}

bool ckpt_checkpointer_snapshot_pool_ready(const ckpt_checkpointer *ckptr) {
  if (ckptr == NULL)
    return false;
  return ckpt_staging_prepare_done((ckpt_staging_preparer *)&ckptr->staging);
}

ckpt_status ckpt_checkpointer_bind_item(ckpt_checkpointer *ckptr, const char *item,
                                        ckpt_handler *handler, ckpt_error *err) {
  const char *name = item != NULL ? item : "(null)";
  ckpt_status st = CKPT_OK;
  if (ckptr == NULL)
    st = ckpt_error_set(err, CKPT_EINVAL, "binding item \"%s\": checkpointer is NULL", name);
  else if (ckptr->handler->desc != &ckpt_CompositeCheckpointHandler_desc)
    st = ckpt_error_set(err, CKPT_ETYPE,
                        "binding item \"%s\": the checkpointer's handler is '%s', not "
                        "CompositeCheckpointHandler (only Composite items can be bound)",
                        name, desc_name(ckptr->handler_desc));
  else if (ckptr->pending != NULL)
    st = ckpt_error_set(err, CKPT_ESTATE,
                        "binding item \"%s\": a save is in flight (bind before saving, or "
                        "after wait_until_finished)",
                        name);
  if (st != CKPT_OK) {
    ckpt_handler_destroy(handler);
    return st;
  }
  return ckpt_composite_bind_item(ckptr->handler, item, handler, err);
}

ckpt_handler *ckpt_checkpointer_handler(ckpt_checkpointer *ckptr) {
  return ckptr->handler;
}

/* ---------------------------------------------------------------- the finishing part */

static void pending_free(pending_save *p) {
  if (p == NULL)
    return;
  if (p->op_live)
    ckpt_op_destroy(&p->op);
  ckpt_commit_clear(&p->commit);
  ckpt_step_metadata_clear(&p->meta);
  cJSON_Delete(p->custom_metadata);
  free(p);
}

/* The checkpoint's manifest: _CHECKPOINT_METADATA and the item files the handlers noted on the
 * op as they wrote them (CRCs taken from memory then). A note lost to low memory fails the save:
 * a manifest missing a file would make the restore report it as corrupt. */
static ckpt_status write_manifest(ckpt_io *io, const char *dir, ckpt_op *op,
                                  const ckpt_file_sum *meta_sum, ckpt_error *err) {
  if (op->files_lost)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory recording the checksums of '%s'",
                          dir);
  return ckpt_manifest_write_noted(io, dir, op->files, meta_sum, err);
}

/* A multi-process save (docs/multiprocess.md): not this process alone. */
static bool multiprocess(const ckpt_checkpointer *c) {
  return c->pg != NULL;
}

static bool is_primary(const ckpt_checkpointer *c) {
  return c->pg == NULL || ckpt_process_group_rank(c->pg) == c->opts.primary;
}

/* The finishing part once the handlers' work is written: step metadata, finalize, the commit
 * timestamp, the manifest and the commit. On the primary only. */
static ckpt_status commit_save(pending_save *p, ckpt_error *err) {
  ckpt_checkpointer *c = p->ckptr;
  const char *tmp = p->commit.tmp_path;
  ckpt_status st = CKPT_OK;
  if (st == CKPT_OK) {
    cJSON_Delete(p->meta.item_handlers);
    p->meta.item_handlers = NULL;
    st = ckpt_handler_saved_item_handlers(c->handler, &p->meta.item_handlers, err);
    /* Orbax's step-metadata update after the save: item_handlers and custom_metadata. */
    p->meta.custom_metadata = p->custom_metadata;
    p->custom_metadata = NULL;
  }
  const ckpt_handler_vtable *vt = c->handler->desc->vtable;
  /* Orbax's lifecycle writes the updated metadata before finalize, which may read it. Without
   * a finalize nothing can: the write with the commit timestamp below is the only one then
   * (rewriting a small file through O_TRUNC waits on the journal, a few ms on ext4). */
  if (st == CKPT_OK && vt->finalize != NULL)
    st = ckpt_step_metadata_write(c->io, tmp, &p->meta, err);
  if (st == CKPT_OK && vt->finalize != NULL) {
    st = vt->finalize(c->handler, &p->op, tmp, err);
    if (st != CKPT_OK)
      ckpt_error_set(err, st, "handler finalize failed without a message");
    /* Work a finalize queued runs before the commit too. */
    if (st == CKPT_OK)
      st = ckpt_op_run_deferred(&p->op, err);
  }
  /* In commit-file mode the timestamp must not outlive a lost pending marker. */
  if (st == CKPT_OK)
    st = ckpt_commit_prepare(&p->commit, err);
  ckpt_file_sum meta_sum = {false, 0, 0};
  if (st == CKPT_OK) {
    p->meta.has_commit_timestamp = true;
    p->meta.commit_timestamp_nsecs = ckpt_now_nsecs();
    st = ckpt_step_metadata_write_sum(c->io, tmp, &p->meta, &meta_sum, err);
  }
  if (st == CKPT_OK)
    st = write_manifest(c->io, tmp, &p->op, &meta_sum, err);
  if (st == CKPT_OK) {
    /* The tree's remaining fsyncs run in parallel on the engine; what the handlers made
     * durable themselves (their claims) is not fsync'd twice. */
    p->commit.engine = ckpt_op_engine(&p->op);
    p->commit.durable = ckpt_op_durable(&p->op);
    st = ckpt_commit_finish(&p->commit, err);
  }
  return st;
}

/* The commit protocol across processes: every process writes (its deferred work, durable) →
 * an agreed status → every process joins the agreed work (each item's gather of chunk
 * checksums onto the primary, which writes the item files) → the primary commits → its outcome
 * is broadcast. A failure anywhere before the commit leaves nothing committed (the primary
 * removes the tmp directory), and every process returns the same error. */
static ckpt_status finish_save(pending_save *p, ckpt_error *err) {
  ckpt_checkpointer *c = p->ckptr;
  ckpt_status st = ckpt_op_run_deferred(&p->op, err);
  bool shared = false;
  if (multiprocess(c)) {
    st = ckpt_process_group_agree(c->pg, st, err);
    if (st == CKPT_OK) {
      st = ckpt_op_run_agreed(&p->op, err);
      shared = true;
    }
  }
  if (st == CKPT_OK && is_primary(c))
    st = commit_save(p, err);
  if (st != CKPT_OK) {
    ckpt_op_cancel(&p->op);
    ckpt_commit_abort(&p->commit); /* nothing unless this process created the tmp directory */
  }
  if (shared)
    st = ckpt_process_group_share_outcome(c->pg, c->opts.primary, st, err);
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "saving checkpoint '%s' failed: ", p->commit.final_path);
  return st;
}

static void *background_main(void *arg) {
  pending_save *p = arg;
  ckpt_error_clear(&p->err);
  p->status = finish_save(p, &p->err);
  atomic_store(&p->ckptr->thread_done, true);
  return NULL;
}

/* Joins the background save, if any, and reports its outcome (once). */
static ckpt_status join_pending(ckpt_checkpointer *c, ckpt_error *err) {
  pending_save *p = c->pending;
  if (p == NULL)
    return CKPT_OK;
  pthread_join(c->thread, NULL);
  c->pending = NULL;
  atomic_store(&c->thread_done, false);
  ckpt_status st = p->status;
  if (st != CKPT_OK) {
    ckpt_error_set(err, st, "%s", p->err.message);
    if (err != NULL && err->code == st)
      err->sys_errno = p->err.sys_errno;
  }
  pending_free(p);
  return st;
}

ckpt_status ckpt_checkpointer_wait_until_finished(ckpt_checkpointer *ckptr, ckpt_error *err) {
  if (ckptr == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "checkpointer is NULL");
  return join_pending(ckptr, err);
}

ckpt_status ckpt_checkpointer_check_for_errors(ckpt_checkpointer *ckptr, ckpt_error *err) {
  if (ckptr == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "checkpointer is NULL");
  if (ckptr->pending == NULL || !atomic_load(&ckptr->thread_done))
    return CKPT_OK;
  return join_pending(ckptr, err);
}

/* ---------------------------------------------------------------- save */

/* The checks of a save's arguments, before anything is created. */
static ckpt_status check_save(ckpt_checkpointer *ckptr, const char *path, const ckpt_args *args,
                              const cJSON *custom_metadata, ckpt_error *err) {
  if (path == NULL || path[0] == '\0')
    return ckpt_error_set(err, CKPT_EINVAL, "save: checkpoint path is empty");
  if (args == NULL || args->desc == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "save of '%s': args are NULL", path);
  if (!ckpt_registry_handler_accepts(ckptr->handler_desc, args->desc, true)) {
    const ckpt_handler_desc *other = NULL;
    ckpt_get_registered_handler(args->desc, &other, NULL);
    return ckpt_error_set(err, CKPT_ETYPE,
                          "save of '%s': args '%s' are not registered with this checkpointer's "
                          "handler '%s' (they belong to '%s')",
                          path, args_name(args->desc), desc_name(ckptr->handler_desc),
                          desc_name(other));
  }
  if (custom_metadata != NULL && !cJSON_IsObject(custom_metadata))
    return ckpt_error_set(err, CKPT_EINVAL, "save of '%s': custom_metadata must be a JSON object",
                          path);
  return CKPT_OK;
}

/* Multi-process: every process must save the same path with the same force and name the same
 * primary (a process writing elsewhere would leave the checkpoint without its chunks), and
 * store its arrays in the same layout (OCDBT adds a collective to the merge: a process without
 * it would leave the others waiting). Checked by an all-gather of the path's CRC-32C, force,
 * the primary and the layout options; a difference is every process's CKPT_EINVAL. */
static ckpt_status same_everywhere(ckpt_checkpointer *c, const char *path, bool force,
                                   ckpt_error *err) {
  int size = ckpt_process_group_size(c->pg);
  uint32_t layout = (uint32_t)(c->opts.use_ocdbt || c->opts.pack_arrays_up_to_bytes > 0) |
                    (uint32_t)c->opts.use_zarr3 << 1;
  uint32_t mine[4] = {ckpt_crc32c(0, path, strlen(path)), force, (uint32_t)c->opts.primary,
                      layout};
  uint32_t *all = malloc((size_t)size * sizeof mine);
  if (all == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving '%s' (the other processes "
                          "may wait)", path);
  ckpt_status st = ckpt_process_group_allgather(c->pg, mine, sizeof mine, all, err);
  static const char *const what[4] = {"to another path", "with another force",
                                      "with another primary",
                                      "with another array layout (use_ocdbt, use_zarr3)"};
  for (int r = 1; st == CKPT_OK && r < size; r++)
    for (int k = 0; st == CKPT_OK && k < 4; k++)
      if (all[4 * r + k] != all[k])
        st = ckpt_error_set(err, CKPT_EINVAL,
                            "save of '%s': process %d saves %s than process 0 (every process "
                            "must save the same path with the same force, primary and array "
                            "layout)",
                            path, r, what[k]);
  free(all);
  return st;
}

/* In a multi-process save, every process's status agreed (the lowest failing rank's error on
 * every process); alone, st as it is. */
static ckpt_status agree(ckpt_checkpointer *c, ckpt_status st, ckpt_error *err) {
  return multiprocess(c) ? ckpt_process_group_agree(c->pg, st, err) : st;
}

ckpt_status ckpt_checkpointer_save(ckpt_checkpointer *ckptr, const char *path,
                                   const ckpt_args *args, bool force, const cJSON *custom_metadata,
                                   ckpt_error *err) {
  if (ckptr == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "checkpointer is NULL");
  /* The previous async save must be committed (or its error reported) first. Its outcome was
   * agreed by every process, so every process returns here alike. */
  ckpt_status st = join_pending(ckptr, err);
  if (st != CKPT_OK)
    return st;
  /* Multi-process: every step below that can fail on one process only ends in an agreement,
   * so no process waits in a collective the others skipped. */
  st = agree(ckptr, check_save(ckptr, path, args, custom_metadata, err), err);
  if (st == CKPT_OK && multiprocess(ckptr))
    st = same_everywhere(ckptr, path, force, err);
  if (st != CKPT_OK)
    return st;

  pending_save *p = calloc(1, sizeof *p);
  if (p != NULL)
    p->ckptr = ckptr;
  if (p == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving '%s'", path);
  if (st == CKPT_OK && custom_metadata != NULL) {
    p->custom_metadata = cJSON_Duplicate(custom_metadata, true);
    if (p->custom_metadata == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving '%s'", path);
  }
  /* The primary creates the tmp directory; the others only learn its name, and wait for the
   * agreement that it exists before writing into it. */
  if (st == CKPT_OK && is_primary(ckptr))
    st = ckpt_commit_begin(&p->commit, ckptr->io, ckptr->opts.atomicity, path, force, err);
  else if (st == CKPT_OK)
    st = ckpt_commit_paths(&p->commit, ckptr->io, ckptr->opts.atomicity, path, err);
  if (st == CKPT_OK && is_primary(ckptr)) {
    /* Orbax's lifecycle: the tmp directory starts with the init timestamp, and handlers may
     * look at it. One small file, not fsync'd (the commit syncs it with everything else): the
     * only file the blocking path creates. */
    p->meta.has_init_timestamp = true;
    p->meta.init_timestamp_nsecs = ckpt_now_nsecs();
    st = ckpt_step_metadata_write(ckptr->io, p->commit.tmp_path, &p->meta, err);
  }
  st = agree(ckptr, st, err);
  if (st == CKPT_OK) {
    /* A synchronous save returns only once everything is written, so the caller cannot touch
     * its arrays meanwhile: it needs no snapshot, and the engine writes from the caller's
     * memory (no copy, no staging memory). */
    bool zero_copy = ckptr->opts.zero_copy || !ckptr->opts.async;
    st = ckpt_op_init(&p->op, ckptr->io, zero_copy, ckptr->opts.atomicity, err);
    p->op_live = st == CKPT_OK;
    if (p->op_live) {
      ckpt_op_set_engine(&p->op, ckptr->engine);
      ckpt_op_set_group(&p->op, ckptr->pg, ckptr->opts.primary);
      /* The deprecated packed threshold now selects OCDBT (checkpointer.h). */
      p->op.use_ocdbt = ckptr->opts.use_ocdbt || ckptr->opts.pack_arrays_up_to_bytes != 0;
      p->op.use_zarr3 = ckptr->opts.use_zarr3;
    }
    if (st == CKPT_OK) {
      st = ckptr->handler->desc->vtable->save(ckptr->handler, &p->op, p->commit.tmp_path, args,
                                              err);
      if (st != CKPT_OK)
        ckpt_error_set(err, st, "handler save failed without a message");
    }
    st = agree(ckptr, st, err);
  }
  if (st != CKPT_OK) {
    if (p != NULL && p->op_live)
      ckpt_op_cancel(&p->op);
    if (p != NULL) {
      ckpt_commit_abort(&p->commit); /* the primary's tmp directory, if it made one */
      if (p->commit.final_path != NULL)
        ckpt_error_prefix(err, "saving checkpoint '%s' failed: ", p->commit.final_path);
    }
    pending_free(p);
    return st;
  }

  if (ckptr->opts.async) {
    atomic_store(&ckptr->thread_done, false);
    int rc = pthread_create(&ckptr->thread, NULL, background_main, p);
    if (rc == 0) {
      ckptr->pending = p;
      return CKPT_OK;
    }
    /* No thread to be had: finish here rather than fail a save that is half done. */
  }
  st = finish_save(p, err);
  pending_free(p);
  return st;
}

/* ---------------------------------------------------------------- restore, metadata */

/* The rule of storage/step_dirs.h for a path given explicitly: in rename mode Orbax's (no tmp
 * marker), in commit-file mode the commit file. */
static ckpt_finalized_rule rule_of(ckpt_atomicity atomicity) {
  return atomicity == CKPT_ATOMICITY_COMMIT_FILE ? CKPT_FINALIZED_COMMIT_FILE
                                                 : CKPT_FINALIZED_RENAME;
}

bool ckpt_is_finalized(ckpt_io *io, const char *path, ckpt_atomicity atomicity) {
  if (path == NULL || path[0] == '\0')
    return false;
  ckpt_dir_info info;
  return ckpt_dir_classify(io != NULL ? io : ckpt_io_default(), path, rule_of(atomicity), &info,
                           NULL) == CKPT_OK &&
         info.state == CKPT_DIR_FINALIZED;
}

/* The checks of Orbax's restore: the path exists and is a finalized checkpoint. An I/O error
 * on the way keeps its kind (an EIO is CKPT_EIO naming the path, not "incomplete"). */
static ckpt_status check_restorable(ckpt_checkpointer *c, const char *path, bool need_final,
                                    ckpt_error *err) {
  if (path == NULL || path[0] == '\0')
    return ckpt_error_set(err, CKPT_EINVAL, "checkpoint path is empty");
  ckpt_dir_info info;
  ckpt_status st = ckpt_dir_classify(c->io, path, rule_of(c->opts.atomicity), &info, err);
  if (st != CKPT_OK)
    return st;
  ckpt_io_kind kind = info.kind;
  if (kind == CKPT_IO_KIND_MISSING)
    return ckpt_error_set(err, CKPT_ENOENT, "No checkpoint found at '%s'", path);
  if (need_final && info.state != CKPT_DIR_FINALIZED) {
    const char *why = kind == CKPT_IO_KIND_SYMLINK ? " (a symlink is never a finalized checkpoint)"
                      : kind != CKPT_IO_KIND_DIR   ? " (not a directory)"
                      : info.state == CKPT_DIR_TEMPORARY ? " (temporary directory)"
                      : info.pending ? " (a commit-file save that did not commit: " CKPT_COMMIT_PENDING_FILE
                                       " without " CKPT_COMMIT_FILE ")"
                                     : " (no " CKPT_COMMIT_FILE ")";
    return ckpt_error_set(err, CKPT_EINCOMPLETE, "Found incomplete checkpoint at '%s'%s", path,
                          why);
  }
  if (!need_final && kind != CKPT_IO_KIND_DIR)
    return ckpt_error_set(err, CKPT_ENOENT, "No checkpoint directory at '%s'", path);
  return CKPT_OK;
}

/* The checkpoint's manifest, when it has one (Orbax writes none): checks _CHECKPOINT_METADATA
 * (a small file) now, and leaves the manifest on the op for the handlers' files. */
static ckpt_status open_manifest(ckpt_io *io, const char *path, ckpt_op *op, ckpt_error *err) {
  ckpt_status st = ckpt_checksums_read_named(io, path, CKPT_MANIFEST_FILE, &op->manifest, err);
  if (st != CKPT_OK || op->manifest == NULL)
    return st;
  op->manifest_dir = path;
  char *mp = ckpt_path_join(path, CKPT_CHECKPOINT_METADATA_FILE);
  if (mp == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  void *data = NULL;
  size_t n = 0;
  ckpt_error local = CKPT_ERROR_INIT;
  st = ckpt_io_read_file(io, mp, CKPT_STEP_METADATA_MAX_BYTES, &data, &n, &local);
  if (st == CKPT_ENOENT)
    st = ckpt_op_check_file(op, mp, NULL, 0, err);
  else if (st != CKPT_OK)
    ckpt_error_set(err, st, "%s", local.message);
  else
    st = ckpt_op_check_file(op, mp, data, n, err);
  free(data);
  free(mp);
  return st;
}

ckpt_status ckpt_checkpointer_restore(ckpt_checkpointer *ckptr, const char *path,
                                      const ckpt_args *args, ckpt_value *out, ckpt_error *err) {
  if (ckptr == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "checkpointer is NULL");
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "restore: out is NULL");
  memset(out, 0, sizeof *out);
  out->kind = CKPT_VALUE_NONE;
  ckpt_status st = join_pending(ckptr, err);
  if (st != CKPT_OK)
    return st;
  st = check_restorable(ckptr, path, true, err);
  if (st != CKPT_OK)
    return st;
  if (args != NULL) {
    if (args->desc == NULL)
      return ckpt_error_set(err, CKPT_EINVAL, "restore of '%s': args have no type", path);
    if (!ckpt_registry_handler_accepts(ckptr->handler_desc, args->desc, false))
      return ckpt_error_set(err, CKPT_ETYPE,
                            "restore of '%s': args '%s' are not registered with this "
                            "checkpointer's handler '%s'",
                            path, args_name(args->desc), desc_name(ckptr->handler_desc));
  }
  ckpt_op op;
  st = ckpt_op_init(&op, ckptr->io, false, ckptr->opts.atomicity, err);
  if (st != CKPT_OK)
    return st;
  ckpt_op_set_engine(&op, ckptr->engine);
  st = open_manifest(ckptr->io, path, &op, err);
  ckpt_value v = {0};
  if (st == CKPT_OK)
    st = ckptr->handler->desc->vtable->restore(ckptr->handler, &op, path, args, &v, err);
  if (st != CKPT_OK)
    ckpt_error_set(err, st, "handler restore failed without a message");
  if (st == CKPT_OK)
    st = ckpt_op_run_deferred(&op, err);
  ckpt_checksums_free(op.manifest);
  ckpt_op_destroy(&op);
  if (st != CKPT_OK) {
    ckpt_value_free(&v);
    ckpt_error_prefix(err, "restoring checkpoint '%s' failed: ", path);
    return st;
  }
  *out = v;
  return CKPT_OK;
}

ckpt_status ckpt_checkpointer_metadata(ckpt_checkpointer *ckptr, const char *path, cJSON **out,
                                       ckpt_error *err) {
  if (ckptr == NULL || out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "metadata: NULL argument");
  *out = NULL;
  ckpt_status st = join_pending(ckptr, err);
  if (st != CKPT_OK)
    return st;
  st = check_restorable(ckptr, path, false, err);
  if (st != CKPT_OK)
    return st;

  /* As Orbax: a missing or unreadable _CHECKPOINT_METADATA reads as no step metadata. */
  cJSON *step = NULL;
  ckpt_step_metadata meta;
  ckpt_error scratch = CKPT_ERROR_INIT;
  st = ckpt_step_metadata_read(ckptr->io, path, &meta, &scratch);
  if (st == CKPT_OK) {
    st = ckpt_step_metadata_to_json(&meta, false, &step, err);
    ckpt_step_metadata_clear(&meta);
    if (st != CKPT_OK)
      return st;
  } else if (st == CKPT_ENOMEM) {
    return ckpt_error_set(err, st, "%s", scratch.message);
  }

  cJSON *item = NULL;
  const ckpt_handler_vtable *vt = ckptr->handler->desc->vtable;
  if (vt->metadata != NULL) {
    ckpt_op op;
    st = ckpt_op_init(&op, ckptr->io, false, ckptr->opts.atomicity, err);
    if (st == CKPT_OK) {
      ckpt_op_set_engine(&op, ckptr->engine);
      st = vt->metadata(ckptr->handler, &op, path, &item, err);
      if (st != CKPT_OK)
        ckpt_error_set(err, st, "handler metadata failed without a message");
      ckpt_op_destroy(&op);
    }
    if (st != CKPT_OK) {
      cJSON_Delete(item);
      cJSON_Delete(step);
      ckpt_error_prefix(err, "reading the metadata of '%s': ", path);
      return st;
    }
  }
  cJSON *o = cJSON_CreateObject();
  if (o == NULL || !cJSON_AddItemToObject(o, "step_metadata", step ? step : cJSON_CreateNull()) ||
      !cJSON_AddItemToObject(o, "item_metadata", item ? item : cJSON_CreateNull())) {
    /* Whatever was not added is owned here still. */
    if (o == NULL || cJSON_GetObjectItemCaseSensitive(o, "step_metadata") == NULL)
      cJSON_Delete(step);
    if (o == NULL || cJSON_GetObjectItemCaseSensitive(o, "item_metadata") == NULL)
      cJSON_Delete(item);
    cJSON_Delete(o);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading the metadata of '%s'", path);
  }
  *out = o;
  return CKPT_OK;
}

ckpt_status ckpt_checkpointer_close(ckpt_checkpointer *ckptr, ckpt_error *err) {
  if (ckptr == NULL)
    return CKPT_OK;
  ckpt_status st = join_pending(ckptr, err);
  ckpt_handler_destroy(ckptr->handler);
  ckpt_engine_free(ckptr->engine);
  ckpt_staging_prepare_join(&ckptr->staging); /* before the drop: the pool may be unmapped */
  if (ckptr->opts.async)
    ckpt_staging_drop(); /* the last async checkpointer gives the pool's memory back */
  free(ckptr);
  return st;
}
