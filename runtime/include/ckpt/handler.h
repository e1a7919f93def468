/* ckpt/handler.h — CheckpointHandler descriptors, instances and the per-operation context.
 *
 * A handler type is a const ckpt_handler_desc (name, Orbax typestr, vtable). Instances are
 * default-constructed from it (ckpt_handler_create), as Orbax's CompositeCheckpointHandler
 * does lazily. A handler writes or reads one object inside one directory; atomicity is the
 * Checkpointer's job, not the handler's. */
#ifndef CKPT_HANDLER_H
#define CKPT_HANDLER_H

#include <cjson/cJSON.h>

#include "ckpt/api.h"
#include "ckpt/desc.h"
#include "ckpt/error.h"
#include "ckpt/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_handler ckpt_handler;
typedef struct ckpt_handler_desc ckpt_handler_desc;
typedef struct ckpt_op ckpt_op;
struct ckpt_io;

typedef struct ckpt_handler_vtable {
  /* Optional: set up instance state after the zeroed allocation. */
  ckpt_status (*init)(ckpt_handler *self, ckpt_error *err);
  /* Writes args into dir (which exists). Heavy work may be deferred with ckpt_op_defer so that
   * an async checkpointer runs it in the background; everything args points to must be
   * copied (snapshotted) before save returns unless the op is zero-copy. */
  ckpt_status (*save)(ckpt_handler *self, ckpt_op *op, const char *dir, const ckpt_args *args,
                      ckpt_error *err);
  /* Reads dir into *out (caller-owned afterwards; release with ckpt_value_free). args may be
   * NULL: restore what is on disk as it was saved. */
  ckpt_status (*restore)(ckpt_handler *self, ckpt_op *op, const char *dir,
                         const ckpt_args *args, ckpt_value *out, ckpt_error *err);
  /* Optional: describes what dir holds without reading bulk data; *out caller-owned. */
  ckpt_status (*metadata)(ckpt_handler *self, ckpt_op *op, const char *dir, cJSON **out,
                          ckpt_error *err);
  /* Optional: runs on the primary process after every save of the checkpoint completed,
   * before the commit. */
  ckpt_status (*finalize)(ckpt_handler *self, ckpt_op *op, const char *dir, ckpt_error *err);
  /* Optional: releases instance state (not the instance itself). */
  void (*close)(ckpt_handler *self);
} ckpt_handler_vtable;

struct ckpt_handler_desc {
  const char *name;      /* "JsonCheckpointHandler" */
  const char *full_name; /* "ckpt.JsonCheckpointHandler" */
  const char *typestr;   /* written to _CHECKPOINT_METADATA.item_handlers; Orbax's for built-ins */
  const ckpt_handler_vtable *vtable;
  const void *impl;      /* handler-specific const data, e.g. a generated record handler's record */
  const char *doc;
};

/* An instance. Handlers that keep state between calls (Composite's item handlers) allocate it
 * in vtable->init and release it in vtable->close. */
struct ckpt_handler {
  const ckpt_handler_desc *desc;
  void *state;
};

/* Default-constructs an instance (zeroed, then vtable->init if set). *out is owned by the caller;
 * release with ckpt_handler_destroy. */
CKPT_API ckpt_status ckpt_handler_create(const ckpt_handler_desc *desc, ckpt_handler **out,
                                         ckpt_error *err);
/* Calls vtable->close, then frees. NULL is a no-op. */
CKPT_API void ckpt_handler_destroy(ckpt_handler *handler);

/* Orbax's JsonCheckpointHandler(filename=...): an instance of the built-in JSON handler that
 * writes and reads <item dir>/<filename> instead of `metadata`. filename must be one path
 * component (not empty, no '/', not "." or "..", without the ".orbax-checkpoint-tmp" marker,
 * and none of the names the layout reserves in an item directory — commit_success.txt,
 * _CHECKPOINT_METADATA, _METADATA, _CHECKSUMS, _strings.json, _PACKED... — which would
 * overwrite or be overwritten by the layout's own file; CKPT_EINVAL or CKPT_EUNSAFE
 * otherwise); it is copied. Bind it to a Composite item with
 * ckpt_checkpointer_bind_item. *out owned by the caller (ckpt_handler_destroy). */
CKPT_API ckpt_status ckpt_json_handler_new(const char *filename, ckpt_handler **out,
                                           ckpt_error *err);

/* ---- The context of one save or restore, provided by the checkpointer ---- */

typedef ckpt_status (*ckpt_deferred_fn)(void *arg, ckpt_error *err);

/* The I/O layer every file operation must go through (fault injection, backends). */
CKPT_API struct ckpt_io *ckpt_op_io(ckpt_op *op);
/* True when the caller promised not to modify saved data until the save finished, so a
 * handler may keep pointers instead of snapshotting. */
CKPT_API bool ckpt_op_zero_copy(const ckpt_op *op);
/* Queues run(arg) to execute after save returns: inline in a synchronous checkpointer, on the
 * I/O engine in an async one, always before the commit. release(arg), if not NULL, runs
 * exactly once afterwards, whether run ran, failed or was canceled. On failure to queue,
 * release(arg) has been called and the error is returned. */
CKPT_API ckpt_status ckpt_op_defer(ckpt_op *op, ckpt_deferred_fn run, void *arg,
                                   void (*release)(void *), ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
