/* core/array_internal.h — array operations libckpt uses internally and does not export
 * (private to libckpt). */
#ifndef CKPT_CORE_ARRAY_INTERNAL_H
#define CKPT_CORE_ARRAY_INTERNAL_H

#include "ckpt/array.h"

/* A new array with a's dtype, shape, shard boxes and replica ids, and zeroed memory of its own.
 * *out owned by the caller. */
ckpt_status ckpt_array_like(const ckpt_array *a, ckpt_array **out, ckpt_error *err);

/* A new array sharing a's shard memory (not copied, not freed): dtype, shape, shard boxes and
 * replica ids are a's. *out owned by the caller (ckpt_array_free leaves a's data alone). */
ckpt_status ckpt_array_view(const ckpt_array *a, ckpt_array **out, ckpt_error *err);

#endif
