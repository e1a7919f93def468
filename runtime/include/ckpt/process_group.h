/* ckpt/process_group.h — the processes that save and restore one checkpoint together, and the
 * few collectives a checkpoint needs of them (docs/multiprocess.md).
 *
 * A process group is a rank, a size and a transport. libckpt itself has no transport: the
 * default group is this process alone (ckpt_process_group_single, rank 0 of 1, every collective
 * a local copy), so libckpt without MPI builds and behaves as a single-process library. The MPI
 * transport lives in libckpt_mpi (ckpt/mpi.h, ckpt_process_group_mpi); another transport is a
 * vtable of five functions given to ckpt_process_group_new.
 *
 * Collectives: every rank of the group must call the same collectives in the same order (as
 * in MPI). A group is used by one thread at a time; the checkpointer's saves never run two
 * collectives of one group at once. Buffers are bytes: ranks must agree on their meaning. */
#ifndef CKPT_PROCESS_GROUP_H
#define CKPT_PROCESS_GROUP_H

#include <stddef.h>

#include "ckpt/api.h"
#include "ckpt/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_process_group ckpt_process_group;

/* A transport. Every function returns CKPT_OK or an error with a message (ckpt_error_set); a
 * transport that cannot recover from a failed collective should say so in the message.
 *   broadcast:  root's n bytes of buf into every rank's buf.
 *   allgatherv: rank r's counts[r] bytes (in) into out at displs[r], on every rank; counts
 *               and displs are the same on every rank (libckpt exchanges the counts first).
 *   gatherv:    the same, into root's out only (out, counts and displs used on root only).
 *   barrier:    returns once every rank entered it.
 *   destroy:    frees impl (may be NULL). */
typedef struct ckpt_process_group_vtable {
  const char *name; /* "single", "mpi", ...: for messages */
  ckpt_status (*barrier)(void *impl, ckpt_error *err);
  ckpt_status (*broadcast)(void *impl, int root, void *buf, size_t n, ckpt_error *err);
  ckpt_status (*allgatherv)(void *impl, const void *in, size_t n, void *out, const size_t *counts,
                            const size_t *displs, ckpt_error *err);
  ckpt_status (*gatherv)(void *impl, int root, const void *in, size_t n, void *out,
                         const size_t *counts, const size_t *displs, ckpt_error *err);
  void (*destroy)(void *impl);
} ckpt_process_group_vtable;

/* A group over a transport: this process is rank `rank` of `size` (0 <= rank < size). Takes
 * ownership of impl (vtable->destroy on failure too). *out released with
 * ckpt_process_group_free. */
CKPT_API ckpt_status ckpt_process_group_new(const ckpt_process_group_vtable *vtable, void *impl,
                                            int rank, int size, ckpt_process_group **out,
                                            ckpt_error *err);
/* Frees a group made by ckpt_process_group_new (NULL and the single group are no-ops). */
CKPT_API void ckpt_process_group_free(ckpt_process_group *pg);
/* This process alone: rank 0 of 1. Static; never freed. */
CKPT_API ckpt_process_group *ckpt_process_group_single(void);

/* NULL means the single group. */
CKPT_API int ckpt_process_group_rank(const ckpt_process_group *pg);
CKPT_API int ckpt_process_group_size(const ckpt_process_group *pg);
CKPT_API const char *ckpt_process_group_name(const ckpt_process_group *pg);

CKPT_API ckpt_status ckpt_process_group_barrier(ckpt_process_group *pg, ckpt_error *err);
/* root's n bytes of buf to every rank (n must be the same everywhere). */
CKPT_API ckpt_status ckpt_process_group_broadcast(ckpt_process_group *pg, int root, void *buf,
                                                  size_t n, ckpt_error *err);
/* Every rank's n bytes (n the same everywhere) into out[size * n], in rank order. */
CKPT_API ckpt_status ckpt_process_group_allgather(ckpt_process_group *pg, const void *in,
                                                  size_t n, void *out, ckpt_error *err);
/* Every rank's buffer (sizes may differ) on every rank: *out malloc'ed, the buffers in rank
 * order; *sizes malloc'ed, size entries (both freed by the caller; NULL on error). */
CKPT_API ckpt_status ckpt_process_group_allgatherv(ckpt_process_group *pg, const void *in,
                                                   size_t n, void **out, size_t **sizes,
                                                   ckpt_error *err);
/* The same, onto root only: elsewhere *out and *sizes are NULL. */
CKPT_API ckpt_status ckpt_process_group_gatherv(ckpt_process_group *pg, int root, const void *in,
                                                size_t n, void **out, size_t **sizes,
                                                ckpt_error *err);

/* An agreed error: every rank gives its local status (and err holding its message when that
 * is not CKPT_OK); every rank gets back the status of the lowest failing rank, and err then
 * holds that rank's code and message as "process <rank> of <size>: <message>" (a rank's own
 * message too). CKPT_OK everywhere when every rank is OK. A transport failure is returned as
 * it is (the ranks may then disagree: the transport says how it fails). */
CKPT_API ckpt_status ckpt_process_group_agree(ckpt_process_group *pg, ckpt_status local,
                                              ckpt_error *err);
/* Broadcasts root's outcome (status and err's message) to every rank: the others return it,
 * prefixed "process <root> of <size>: " when it is an error. */
CKPT_API ckpt_status ckpt_process_group_share_outcome(ckpt_process_group *pg, int root,
                                                      ckpt_status status, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
