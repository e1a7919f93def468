/* runtime/mpi/process_group_mpi.c — the MPI transport of a process group (ckpt/mpi.h), built
 * into libckpt_mpi, apart from libckpt so that libckpt has no MPI dependency.
 *
 * Owns: one duplicated communicator per group. Includes only public headers (the check in
 * scripts/check-layers): it is a transport behind ckpt/process_group.h like any user's. */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/mpi.h"

typedef struct mpi_group {
  MPI_Comm comm;
} mpi_group;

/* CKPT_EIO naming the collective and MPI's own text for rc. */
static ckpt_status mpi_error(ckpt_error *err, int rc, const char *what) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS || len <= 0)
    len = 0;
  text[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = '\0';
  return ckpt_error_set(err, CKPT_EIO, "MPI %s failed: %s (error %d)", what,
                        len > 0 ? text : "no message", rc);
}

/* MPI counts are ints: larger buffers are refused rather than truncated. */
static bool fits_int(size_t n) {
  return n <= (size_t)INT_MAX;
}

static ckpt_status mpi_barrier(void *impl, ckpt_error *err) {
  int rc = MPI_Barrier(((mpi_group *)impl)->comm);
  return rc == MPI_SUCCESS ? CKPT_OK : mpi_error(err, rc, "barrier");
}

static ckpt_status mpi_broadcast(void *impl, int root, void *buf, size_t n, ckpt_error *err) {
  if (!fits_int(n))
    return ckpt_error_set(err, CKPT_EINVAL, "MPI broadcast of %zu bytes: too large", n);
  int rc = MPI_Bcast(buf, (int)n, MPI_BYTE, root, ((mpi_group *)impl)->comm);
  return rc == MPI_SUCCESS ? CKPT_OK : mpi_error(err, rc, "broadcast");
}

/* counts/displs as MPI's ints (*out malloc'ed: 2 * size ints). */
static ckpt_status int_counts(MPI_Comm comm, const size_t *counts, const size_t *displs, int **out,
                              ckpt_error *err) {
  int size;
  MPI_Comm_size(comm, &size);
  int *v = malloc((size_t)size * 2 * sizeof *v);
  if (v == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory in an MPI gather");
  for (int r = 0; r < size; r++) {
    if (!fits_int(counts[r]) || !fits_int(displs[r])) {
      free(v);
      return ckpt_error_set(err, CKPT_EINVAL, "MPI gather: %zu bytes at %zu from process %d: too "
                            "large for MPI's int counts", counts[r], displs[r], r);
    }
    v[r] = (int)counts[r];
    v[size + r] = (int)displs[r];
  }
  *out = v;
  return CKPT_OK;
}

static ckpt_status mpi_allgatherv(void *impl, const void *in, size_t n, void *out,
                                  const size_t *counts, const size_t *displs, ckpt_error *err) {
  MPI_Comm comm = ((mpi_group *)impl)->comm;
  int size, *v;
  MPI_Comm_size(comm, &size);
  ckpt_status st = int_counts(comm, counts, displs, &v, err);
  if (st != CKPT_OK)
    return st;
  int rc = MPI_Allgatherv(in, (int)n, MPI_BYTE, out, v, v + size, MPI_BYTE, comm);
  free(v);
  return rc == MPI_SUCCESS ? CKPT_OK : mpi_error(err, rc, "all-gather");
}

static ckpt_status mpi_gatherv(void *impl, int root, const void *in, size_t n, void *out,
                               const size_t *counts, const size_t *displs, ckpt_error *err) {
  MPI_Comm comm = ((mpi_group *)impl)->comm;
  int size, *v;
  MPI_Comm_size(comm, &size);
  ckpt_status st = int_counts(comm, counts, displs, &v, err);
  if (st != CKPT_OK)
    return st;
  int rc = MPI_Gatherv(in, (int)n, MPI_BYTE, out, v, v + size, MPI_BYTE, root, comm);
  free(v);
  return rc == MPI_SUCCESS ? CKPT_OK : mpi_error(err, rc, "gather");
}

static void mpi_destroy(void *impl) {
  mpi_group *g = impl;
  if (g == NULL)
    return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Comm_free(&g->comm);
  free(g);
}

static const ckpt_process_group_vtable mpi_vt = {"mpi",         mpi_barrier, mpi_broadcast,
                                                 mpi_allgatherv, mpi_gatherv, mpi_destroy};

ckpt_status ckpt_process_group_mpi(MPI_Comm comm, ckpt_process_group **out, ckpt_error *err) {
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_process_group_mpi: out is NULL");
  *out = NULL;
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED,
                          "ckpt_process_group_mpi: MPI is %s; call MPI_Init_thread(..., "
                          "MPI_THREAD_MULTIPLE, ...) first",
                          finalized ? "finalized" : "not initialized");
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_MULTIPLE)
    return ckpt_error_set(
        err, CKPT_EUNSUPPORTED,
        "ckpt_process_group_mpi: MPI runs at thread level %d (%s), ckpt needs "
        "MPI_THREAD_MULTIPLE: initialise MPI with MPI_Init_thread(&argc, &argv, "
        "MPI_THREAD_MULTIPLE, &provided) and check that provided is MPI_THREAD_MULTIPLE (an async "
        "checkpointer's background thread calls MPI while the application may)",
        level,
        level == MPI_THREAD_SINGLE       ? "MPI_THREAD_SINGLE"
        : level == MPI_THREAD_FUNNELED   ? "MPI_THREAD_FUNNELED"
        : level == MPI_THREAD_SERIALIZED ? "MPI_THREAD_SERIALIZED"
                                         : "unknown");
  mpi_group *g = calloc(1, sizeof *g);
  if (g == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating an MPI process group");
  int rc = MPI_Comm_dup(comm, &g->comm);
  if (rc != MPI_SUCCESS) {
    free(g);
    return mpi_error(err, rc, "communicator duplication (MPI_Comm_dup)");
  }
  MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(g->comm, &rank);
  MPI_Comm_size(g->comm, &size);
  return ckpt_process_group_new(&mpi_vt, g, rank, size, out, err);
}
