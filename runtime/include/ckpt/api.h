/* ckpt/api.h — CKPT_API, the mark of what libckpt exports.
 *
 * libckpt is compiled with -fvisibility=hidden, so a function or object of the library is
 * visible outside libckpt.so only when its declaration carries CKPT_API. Every declaration in
 * the public headers (runtime/include/ckpt/, and the descriptors and ckpt_register of the
 * generated ckpt/builtin.ckpt.h) carries it, and nothing else does: `make test` runs
 * scripts/check-exports, which fails when the exported symbols of libckpt.so and the
 * declarations of the public headers differ (see docs/build-integration.md).
 *
 * It goes first in a declaration: `CKPT_API ckpt_status ckpt_x(...);`,
 * `CKPT_API extern const T ckpt_y;`. In a user's program it changes nothing. */
#ifndef CKPT_API_H
#define CKPT_API_H

#if defined(__GNUC__) || defined(__clang__)
#define CKPT_API __attribute__((visibility("default")))
#else
#define CKPT_API
#endif

#endif
