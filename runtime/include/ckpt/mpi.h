/* ckpt/mpi.h — a process group over MPI (libckpt_mpi; docs/multiprocess.md).
 *
 * Link with -lckpt_mpi -lckpt and your MPI (pkg-config ckpt-mpi). Not included by ckpt/ckpt.h:
 * libckpt itself has no MPI dependency.
 *
 * ckpt_process_group_mpi duplicates comm (MPI_Comm_dup, a collective over comm): ckpt's
 * messages never mix with the application's, whatever tags it uses. MPI must be initialised
 * with MPI_THREAD_MULTIPLE (MPI_Init_thread): an async checkpointer runs its collectives on its
 * background thread while the application's own thread may be inside MPI. Errors on the
 * duplicated communicator are returned (MPI_ERRORS_RETURN) and become CKPT_EIO with MPI's
 * message; a rank that dies mid-collective is the MPI launcher's to handle (Open MPI's mpirun
 * ends the job). */
#ifndef CKPT_MPI_H
#define CKPT_MPI_H

#include <mpi.h>

#include "ckpt/api.h"
#include "ckpt/error.h"
#include "ckpt/process_group.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A group of comm's processes (rank and size as in comm). A collective over comm: every rank
 * calls it. CKPT_EUNSUPPORTED when MPI is not initialised, already finalised, or its thread
 * level (MPI_Query_thread) is below MPI_THREAD_MULTIPLE; the message says what to change.
 * *out released with ckpt_process_group_free (which frees the duplicate: call it before
 * MPI_Finalize, on every rank). */
CKPT_API ckpt_status ckpt_process_group_mpi(MPI_Comm comm, ckpt_process_group **out,
                                            ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
