/* ckpt/error.h — status codes and the caller-owned error record.
 *
 * Every fallible function of libckpt returns a ckpt_status and, when it fails, fills the
 * caller's ckpt_error with the same code and a message naming the file, item, key or
 * schema line involved. The first error recorded wins: later failures while unwinding
 * never overwrite the root cause. There is no global error state. */
#ifndef CKPT_ERROR_H
#define CKPT_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#include "ckpt/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One list defines every code, its symbolic name and its human description. */
#define CKPT_STATUS_LIST(X)                                                        \
  X(CKPT_OK, "ok")                                                                 \
  X(CKPT_EINVAL, "invalid argument")                                               \
  X(CKPT_ENOENT, "not found")                                                      \
  X(CKPT_EEXIST, "already exists")                                                 \
  X(CKPT_EIO, "I/O error")                                                         \
  X(CKPT_ENOSPC, "no space left on device")                                        \
  X(CKPT_ENOMEM, "out of memory")                                                  \
  X(CKPT_ECORRUPT, "corrupt or malformed data")                                    \
  X(CKPT_ETYPE, "type mismatch")                                                   \
  X(CKPT_EUNREGISTERED, "no registration")                                         \
  X(CKPT_EINCOMPLETE, "incomplete checkpoint")                                     \
  X(CKPT_ESTATE, "invalid state")                                                  \
  X(CKPT_EMISMATCH, "structure or shape mismatch")                                 \
  X(CKPT_EUNSUPPORTED, "unsupported")                                              \
  X(CKPT_EUNSAFE, "unsafe path or name")                                           \
  X(CKPT_ECANCELED, "canceled")                                                    \
  X(CKPT_EVERSION, "version mismatch")

typedef enum ckpt_status {
#define CKPT_STATUS_ENUM_(name, text) name,
  CKPT_STATUS_LIST(CKPT_STATUS_ENUM_)
#undef CKPT_STATUS_ENUM_
  CKPT_STATUS_COUNT_
} ckpt_status;

#define CKPT_ERROR_MESSAGE_MAX 1024

/* Owned by the caller (usually on its stack); initialise with CKPT_ERROR_INIT or
 * ckpt_error_clear(). Holds no heap memory, so it never needs freeing. */
typedef struct ckpt_error {
  ckpt_status code;
  int sys_errno; /* errno of the failing system call, or 0 */
  char message[CKPT_ERROR_MESSAGE_MAX];
} ckpt_error;

#define CKPT_ERROR_INIT {CKPT_OK, 0, {0}}

/* "CKPT_ENOENT" etc.; "CKPT_UNKNOWN" for out-of-range values. */
CKPT_API const char *ckpt_status_name(ckpt_status code);
/* "not found" etc. */
CKPT_API const char *ckpt_status_text(ckpt_status code);

CKPT_API void ckpt_error_clear(ckpt_error *err);

/* Records code and a printf-style message unless err already holds an error (first error
 * wins) or err is NULL. Returns code, so callers can write `return ckpt_error_set(...)`. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
CKPT_API ckpt_status ckpt_error_set(ckpt_error *err, ckpt_status code, const char *fmt, ...);

CKPT_API ckpt_status ckpt_error_setv(ckpt_error *err, ckpt_status code, const char *fmt,
                                     va_list ap);

/* Like ckpt_error_set, for a failed system call: maps errnum (ENOSPC, ENOENT, EEXIST, ENOMEM,
 * others to EIO), appends strerror(errnum) and keeps errnum in sys_errno. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
CKPT_API ckpt_status ckpt_error_errno(ckpt_error *err, int errnum, const char *fmt, ...);

/* Prefixes context ("while saving item 'params': ") to an error already recorded, so callers
 * higher up can say where a failure happened without losing the root cause. No-op when err
 * holds no error. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
CKPT_API void ckpt_error_prefix(ckpt_error *err, const char *fmt, ...);

#ifdef __cplusplus
}
#endif
#endif
