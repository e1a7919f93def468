/* handlers/process_group.c — process groups (ckpt/process_group.h): the single-process group
 * and the collectives libckpt builds on a transport's five functions.
 *
 * Here, in handlers/, because the PyTree handler is the lowest user (it exchanges the global
 * shard layout); storage/ and below never see a group, only plans and paths
 * (docs/architecture.md, "Where new parts plug in"). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/process_group.h"

struct ckpt_process_group {
  const ckpt_process_group_vtable *vt;
  void *impl;
  int rank, size;
  bool is_static;
};

/* ---------------------------------------------------------------- the single group */

static ckpt_status single_barrier(void *impl, ckpt_error *err) {
  (void)impl;
  (void)err;
  return CKPT_OK;
}

static ckpt_status single_broadcast(void *impl, int root, void *buf, size_t n, ckpt_error *err) {
  (void)impl;
  (void)root;
  (void)buf;
  (void)n;
  (void)err;
  return CKPT_OK;
}

static ckpt_status single_gather(void *impl, const void *in, size_t n, void *out,
                                 const size_t *counts, const size_t *displs, ckpt_error *err) {
  (void)impl;
  (void)counts;
  (void)err;
  if (n > 0)
    memcpy((char *)out + displs[0], in, n);
  return CKPT_OK;
}

static ckpt_status single_gatherv(void *impl, int root, const void *in, size_t n, void *out,
                                  const size_t *counts, const size_t *displs, ckpt_error *err) {
  (void)root;
  return single_gather(impl, in, n, out, counts, displs, err);
}

static const ckpt_process_group_vtable single_vt = {
    "single", single_barrier, single_broadcast, single_gather, single_gatherv, NULL};

static ckpt_process_group single_group = {&single_vt, NULL, 0, 1, true};

ckpt_process_group *ckpt_process_group_single(void) {
  return &single_group;
}

/* ---------------------------------------------------------------- groups */

ckpt_status ckpt_process_group_new(const ckpt_process_group_vtable *vtable, void *impl, int rank,
                                   int size, ckpt_process_group **out, ckpt_error *err) {
  if (out != NULL)
    *out = NULL;
  ckpt_status st = CKPT_OK;
  if (out == NULL || vtable == NULL || vtable->barrier == NULL || vtable->broadcast == NULL ||
      vtable->allgatherv == NULL || vtable->gatherv == NULL)
    st = ckpt_error_set(err, CKPT_EINVAL, "ckpt_process_group_new: a NULL argument or function");
  else if (size < 1 || rank < 0 || rank >= size)
    st = ckpt_error_set(err, CKPT_EINVAL,
                        "ckpt_process_group_new: rank %d of size %d (need 0 <= rank < size)", rank,
                        size);
  ckpt_process_group *pg = NULL;
  if (st == CKPT_OK && (pg = calloc(1, sizeof *pg)) == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating a process group");
  if (st != CKPT_OK) {
    if (vtable != NULL && vtable->destroy != NULL)
      vtable->destroy(impl);
    return st;
  }
  pg->vt = vtable;
  pg->impl = impl;
  pg->rank = rank;
  pg->size = size;
  *out = pg;
  return CKPT_OK;
}

void ckpt_process_group_free(ckpt_process_group *pg) {
  if (pg == NULL || pg->is_static)
    return;
  if (pg->vt->destroy != NULL)
    pg->vt->destroy(pg->impl);
  free(pg);
}

static ckpt_process_group *resolve(ckpt_process_group *pg) {
  return pg != NULL ? pg : &single_group;
}

int ckpt_process_group_rank(const ckpt_process_group *pg) {
  return pg != NULL ? pg->rank : 0;
}

int ckpt_process_group_size(const ckpt_process_group *pg) {
  return pg != NULL ? pg->size : 1;
}

const char *ckpt_process_group_name(const ckpt_process_group *pg) {
  return pg != NULL && pg->vt->name != NULL ? pg->vt->name : "single";
}

ckpt_status ckpt_process_group_barrier(ckpt_process_group *pg, ckpt_error *err) {
  pg = resolve(pg);
  return pg->vt->barrier(pg->impl, err);
}

ckpt_status ckpt_process_group_broadcast(ckpt_process_group *pg, int root, void *buf, size_t n,
                                         ckpt_error *err) {
  pg = resolve(pg);
  if (root < 0 || root >= pg->size)
    return ckpt_error_set(err, CKPT_EINVAL, "broadcast from process %d in a group of %d", root,
                          pg->size);
  return pg->vt->broadcast(pg->impl, root, buf, n, err);
}

ckpt_status ckpt_process_group_allgather(ckpt_process_group *pg, const void *in, size_t n,
                                         void *out, ckpt_error *err) {
  pg = resolve(pg);
  size_t *counts = malloc((size_t)pg->size * 2 * sizeof *counts);
  if (counts == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory in an all-gather");
  size_t *displs = counts + pg->size;
  for (int r = 0; r < pg->size; r++) {
    counts[r] = n;
    displs[r] = (size_t)r * n;
  }
  ckpt_status st = pg->vt->allgatherv(pg->impl, in, n, out, counts, displs, err);
  free(counts);
  return st;
}

/* Every rank's size in (*sizes)[0 .. size) and its displacement in (*sizes)[size .. 2 size);
 * *total their sum. */
static ckpt_status exchange_sizes(ckpt_process_group *pg, size_t n, size_t **sizes, size_t *total,
                                  ckpt_error *err) {
  *sizes = NULL;
  uint64_t mine = n;
  uint64_t *all = malloc((size_t)pg->size * sizeof *all);
  size_t *s = malloc((size_t)pg->size * 2 * sizeof *s);
  if (all == NULL || s == NULL) {
    free(all);
    free(s);
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "out of memory in a gather (the other processes may wait)");
  }
  ckpt_status st = ckpt_process_group_allgather(pg, &mine, sizeof mine, all, err);
  *total = 0;
  for (int r = 0; st == CKPT_OK && r < pg->size; r++) {
    if (all[r] > SIZE_MAX / 4 || *total > SIZE_MAX / 4) {
      st = ckpt_error_set(err, CKPT_EINVAL, "a gather of %llu bytes from process %d is too large",
                          (unsigned long long)all[r], r);
    } else {
      s[pg->size + r] = *total;
      s[r] = (size_t)all[r];
      *total += s[r];
    }
  }
  free(all);
  if (st != CKPT_OK) {
    free(s);
    return st;
  }
  *sizes = s;
  return CKPT_OK;
}

static ckpt_status gather_any(ckpt_process_group *pg, int root, bool all, const void *in,
                              size_t n, void **out, size_t **sizes, ckpt_error *err) {
  pg = resolve(pg);
  *out = NULL;
  *sizes = NULL;
  if (!all && (root < 0 || root >= pg->size))
    return ckpt_error_set(err, CKPT_EINVAL, "gather onto process %d in a group of %d", root,
                          pg->size);
  size_t *s, total = 0;
  ckpt_status st = exchange_sizes(pg, n, &s, &total, err);
  if (st != CKPT_OK)
    return st;
  bool receives = all || pg->rank == root;
  void *buf = receives ? malloc(total ? total : 1) : NULL;
  if (receives && buf == NULL) {
    /* No room to receive into: nothing to take part with (the others may wait). */
    free(s);
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "out of memory gathering %zu bytes (the other processes may wait)",
                          total);
  }
  if (all)
    st = pg->vt->allgatherv(pg->impl, in, n, buf, s, s + pg->size, err);
  else
    st = pg->vt->gatherv(pg->impl, root, in, n, buf, s, s + pg->size, err);
  if (st != CKPT_OK || !receives) {
    free(buf);
    free(s);
    return st;
  }
  *out = buf;
  *sizes = s; /* the displacements after the sizes are harmless extra room */
  return CKPT_OK;
}

ckpt_status ckpt_process_group_allgatherv(ckpt_process_group *pg, const void *in, size_t n,
                                          void **out, size_t **sizes, ckpt_error *err) {
  return gather_any(pg, 0, true, in, n, out, sizes, err);
}

ckpt_status ckpt_process_group_gatherv(ckpt_process_group *pg, int root, const void *in, size_t n,
                                       void **out, size_t **sizes, ckpt_error *err) {
  return gather_any(pg, root, false, in, n, out, sizes, err);
}

/* ---------------------------------------------------------------- agreement */

/* What crosses the wire of an outcome: the code, errno and message. */
typedef struct wire_outcome {
  int32_t code;
  int32_t sys_errno;
  char message[CKPT_ERROR_MESSAGE_MAX];
} wire_outcome;

/* err := the outcome of rank `from`, its message prefixed with the rank unless that prefix is
 * already there (an outcome agreed a second time, e.g. a save's joined by the manager). */
static void take_outcome(ckpt_process_group *pg, int from, const wire_outcome *w,
                         ckpt_error *err) {
  if (err == NULL)
    return;
  ckpt_error e = CKPT_ERROR_INIT;
  e.code = (ckpt_status)w->code;
  e.sys_errno = w->sys_errno;
  char msg[CKPT_ERROR_MESSAGE_MAX];
  memcpy(msg, w->message, sizeof msg);
  msg[sizeof msg - 1] = '\0';
  char prefix[48];
  snprintf(prefix, sizeof prefix, "process %d of %d: ", from, pg->size);
  if (strncmp(msg, prefix, strlen(prefix)) == 0)
    snprintf(e.message, sizeof e.message, "%s", msg);
  else /* the rank's prefix fits: the message is cut (at the end) rather than the prefix */
    snprintf(e.message, sizeof e.message, "%s%.*s", prefix, (int)sizeof e.message - 64,
             msg[0] ? msg : ckpt_status_text(e.code));
  *err = e;
}

ckpt_status ckpt_process_group_agree(ckpt_process_group *pg, ckpt_status local, ckpt_error *err) {
  pg = resolve(pg);
  if (pg->size == 1)
    return local;
  int32_t mine = (int32_t)local;
  int32_t *all = malloc((size_t)pg->size * sizeof *all);
  if (all == NULL) {
    /* Cannot learn the others' status: take part in nothing and report; the transport's
     * partners would hang, so say it loudly. Practically unreachable (4 bytes per rank). */
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "out of memory agreeing on a status (the other processes may wait)");
  }
  ckpt_error scratch = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_process_group_allgather(pg, &mine, sizeof mine, all, &scratch);
  if (st != CKPT_OK) {
    free(all);
    if (err != NULL)
      *err = scratch;
    return st;
  }
  int failing = -1;
  for (int r = 0; r < pg->size && failing < 0; r++)
    if (all[r] != CKPT_OK)
      failing = r;
  free(all);
  if (failing < 0)
    return CKPT_OK;
  wire_outcome *w = calloc(1, sizeof *w);
  if (w == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "out of memory agreeing on an error (the other processes may wait)");
  if (pg->rank == failing) {
    w->code = (int32_t)local;
    w->sys_errno = err != NULL ? err->sys_errno : 0;
    if (err != NULL)
      memcpy(w->message, err->message, sizeof w->message);
  }
  st = ckpt_process_group_broadcast(pg, failing, w, sizeof *w, &scratch);
  if (st != CKPT_OK) {
    free(w);
    if (err != NULL)
      *err = scratch;
    return st;
  }
  take_outcome(pg, failing, w, err);
  ckpt_status agreed = (ckpt_status)w->code;
  free(w);
  if (agreed <= CKPT_OK || agreed >= CKPT_STATUS_COUNT_)
    agreed = CKPT_EIO; /* a bad code on the wire must still fail */
  return agreed;
}

ckpt_status ckpt_process_group_share_outcome(ckpt_process_group *pg, int root,
                                             ckpt_status status, ckpt_error *err) {
  pg = resolve(pg);
  if (pg->size == 1)
    return status;
  wire_outcome *w = calloc(1, sizeof *w);
  /* The wire buffer is needed on every rank: without it there is no way to take part. */
  if (w == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "out of memory sharing an outcome (the other processes may wait)");
  if (pg->rank == root) {
    w->code = (int32_t)status;
    if (status != CKPT_OK && err != NULL) {
      w->sys_errno = err->sys_errno;
      memcpy(w->message, err->message, sizeof w->message);
    }
  }
  ckpt_error scratch = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_process_group_broadcast(pg, root, w, sizeof *w, &scratch);
  if (st != CKPT_OK) {
    free(w);
    if (err != NULL && err->code == CKPT_OK)
      *err = scratch;
    return pg->rank == root && status != CKPT_OK ? status : st;
  }
  ckpt_status out = (ckpt_status)w->code;
  if (pg->rank != root && out != CKPT_OK) {
    take_outcome(pg, root, w, err);
    if (out < CKPT_OK || out >= CKPT_STATUS_COUNT_)
      out = CKPT_EIO;
  }
  free(w);
  return pg->rank == root ? status : out;
}
