/* error.c — status names and texts, and the caller-owned ckpt_error record.
 *
 * The first error recorded in a ckpt_error wins: code paths that fail while unwinding (a
 * cleanup that also fails, a close after a failed write) must not hide the root cause, so
 * every setter is a no-op once err->code is not CKPT_OK. Nothing here allocates. */
#include "ckpt/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *ckpt_status_name(ckpt_status code) {
  switch (code) {
#define CKPT_STATUS_NAME_(name, text) \
  case name:                          \
    return #name;
    CKPT_STATUS_LIST(CKPT_STATUS_NAME_)
#undef CKPT_STATUS_NAME_
    default:
      return "CKPT_UNKNOWN";
  }
}

const char *ckpt_status_text(ckpt_status code) {
  switch (code) {
#define CKPT_STATUS_TEXT_(name, text) \
  case name:                          \
    return text;
    CKPT_STATUS_LIST(CKPT_STATUS_TEXT_)
#undef CKPT_STATUS_TEXT_
    default:
      return "unknown status";
  }
}

void ckpt_error_clear(ckpt_error *err) {
  if (err == NULL)
    return;
  err->code = CKPT_OK;
  err->sys_errno = 0;
  err->message[0] = '\0';
}

ckpt_status ckpt_error_setv(ckpt_error *err, ckpt_status code, const char *fmt, va_list ap) {
  /* CKPT_OK is not an error: recording it would make a later real error look like a second
   * one, so it is ignored. */
  if (err == NULL || code == CKPT_OK || err->code != CKPT_OK)
    return code;
  err->code = code;
  err->sys_errno = 0;
  if (fmt == NULL) {
    snprintf(err->message, sizeof err->message, "%s", ckpt_status_text(code));
  } else {
    vsnprintf(err->message, sizeof err->message, fmt, ap);
  }
  return code;
}

ckpt_status ckpt_error_set(ckpt_error *err, ckpt_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ckpt_status st = ckpt_error_setv(err, code, fmt, ap);
  va_end(ap);
  return st;
}

/* The status a failed system call maps to. ENOTEMPTY counts as "already exists": it is what
 * rename(2) reports when the destination directory is present and not empty. */
static ckpt_status status_from_errno(int errnum) {
  switch (errnum) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
      return CKPT_ENOSPC;
    case ENOENT:
      return CKPT_ENOENT;
    case EEXIST:
    case ENOTEMPTY:
      return CKPT_EEXIST;
    case ENOMEM:
      return CKPT_ENOMEM;
    default:
      return CKPT_EIO;
  }
}

ckpt_status ckpt_error_errno(ckpt_error *err, int errnum, const char *fmt, ...) {
  ckpt_status code = status_from_errno(errnum);
  if (err == NULL || err->code != CKPT_OK)
    return code;
  va_list ap;
  va_start(ap, fmt);
  ckpt_error_setv(err, code, fmt, ap);
  va_end(ap);
  err->sys_errno = errnum;
  /* strerror_r in its GNU form (_GNU_SOURCE is set project-wide) is thread-safe and returns
   * the text, possibly in a static buffer of its own. */
  char buf[256];
  const char *text = strerror_r(errnum, buf, sizeof buf);
  size_t used = strlen(err->message);
  if (used < sizeof err->message - 1) {
    snprintf(err->message + used, sizeof err->message - used, ": %s", text);
  }
  return code;
}

void ckpt_error_prefix(ckpt_error *err, const char *fmt, ...) {
  if (err == NULL || err->code == CKPT_OK || fmt == NULL)
    return;
  char prefix[CKPT_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  /* Join by hand: the result is cut at the message size, which is what is wanted. */
  char joined[CKPT_ERROR_MESSAGE_MAX];
  size_t a = strlen(prefix);
  size_t b = strlen(err->message);
  if (a > sizeof joined - 1)
    a = sizeof joined - 1;
  if (b > sizeof joined - 1 - a)
    b = sizeof joined - 1 - a;
  memcpy(joined, prefix, a);
  memcpy(joined + a, err->message, b);
  joined[a + b] = '\0';
  memcpy(err->message, joined, a + b + 1);
}
