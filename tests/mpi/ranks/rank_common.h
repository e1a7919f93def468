/* tests/mpi/ranks/rank_common.h — what the rank programs started under mpirun by
 * tests/mpi/test_mpi.c (mpi_scenario.c, mpi_record.c) share: the AddressSanitizer switch, this
 * rank's place in the job, the "ok" line the driver looks for, and the block split of an axis.
 * Header-only: each rank program is one translation unit. */
#ifndef CKPT_TESTS_MPI_RANK_COMMON_H
#define CKPT_TESTS_MPI_RANK_COMMON_H

#include <stdint.h>
#include <stdio.h>

/* Under AddressSanitizer (make check) the leak check runs before MPI_Finalize: Open MPI unloads
 * its components there, and what they allocated would then be reported from "<unknown module>"
 * frames that no suppression can name; before it, Open MPI's memory is still reachable and any
 * leak is ckpt's (or one of libmpi's own, suppressed by name in tests/lsan.supp). */
#if defined(__SANITIZE_ADDRESS__)
#define CKPT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CKPT_TEST_ASAN 1
#endif
#endif
#ifdef CKPT_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* This rank and the job's size (set from MPI_COMM_WORLD by each program's main). */
static int rank_ = 0, size_ = 1;

/* Prints "rank R/N: ok <what>" (the driver reports which rank failed from these lines). */
static void ok(const char *what) {
  printf("rank %d/%d: ok %s\n", rank_, size_, what);
  fflush(stdout);
}

/* [lo, lo + n) of `total` split into `parts` near-equal blocks, block `i`. */
static void block(int64_t total, int parts, int i, int64_t *lo, int64_t *n) {
  int64_t base = total / parts, extra = total % parts;
  *lo = i * base + (i < extra ? i : extra);
  *n = base + (i < extra ? 1 : 0);
}

#endif
