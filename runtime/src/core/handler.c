/* handler.c — default construction and destruction of CheckpointHandler instances.
 *
 * Orbax creates handlers lazily with no arguments (CompositeCheckpointHandler does it per
 * item), so every handler type must be constructible from its descriptor alone: a zeroed
 * instance, then the optional init hook for state. */
#include "ckpt/handler.h"

#include <stdlib.h>

ckpt_status ckpt_handler_create(const ckpt_handler_desc *desc, ckpt_handler **out,
                                ckpt_error *err) {
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_handler_create: out is NULL");
  *out = NULL;
  if (desc == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_handler_create: handler descriptor is NULL");
  if (desc->vtable == NULL || desc->vtable->save == NULL || desc->vtable->restore == NULL)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "handler '%s' has no save/restore functions in its vtable",
                          desc->name != NULL ? desc->name : "(unnamed)");
  ckpt_handler *h = calloc(1, sizeof *h);
  if (h == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating handler '%s'",
                          desc->name != NULL ? desc->name : "(unnamed)");
  h->desc = desc;
  if (desc->vtable->init != NULL) {
    ckpt_status st = desc->vtable->init(h, err);
    if (st != CKPT_OK) {
      ckpt_error_prefix(
          err, "cannot initialise handler '%s': ", desc->name != NULL ? desc->name : "(unnamed)");
      /* init failed, so there is no state for close to release. */
      free(h);
      return st;
    }
  }
  *out = h;
  return CKPT_OK;
}

void ckpt_handler_destroy(ckpt_handler *handler) {
  if (handler == NULL)
    return;
  if (handler->desc != NULL && handler->desc->vtable != NULL &&
      handler->desc->vtable->close != NULL)
    handler->desc->vtable->close(handler);
  free(handler);
}
