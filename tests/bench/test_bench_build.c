/* tests/bench/test_bench_build.c — the C programs of `make bench` build against this build's
 * libckpt (bench/build_tools.py, with its own list of libraries to link). A library libckpt
 * gains and that list lacks turns every ckpt figure of `make bench` into n/a; nothing else in
 * `make test` would notice (it happened when ISA-L came in). bench_ckpt then runs its OCDBT
 * op on a tiny state, so a renamed or broken op fails here rather than as n/a in a bench run. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "../generator/gen_support.h"

/* With Open MPI and parallel HDF5 installed (scripts/install-deps installs both), the MPI
 * section's programs must build too: bench_mpi_ckpt against this build's libckpt_mpi.a,
 * bench_mpi_hdf5 against Debian's libhdf5-openmpi-dev. */
Test(bench_build, bench_ckpt_and_bench_limits_build) {
#ifdef GS_SANITIZED
  /* build_tools links without sanitizer flags, as `make bench` never runs on a SAN build. */
  cr_skip_test("skipped under sanitizers: make bench builds against an uninstrumented libckpt");
#endif
  char dir[] = "/tmp/ckpt-bench-build-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "cd %s/bench && %s -c 'import sys, build_tools; "
           "built, failed = build_tools.build(\"%s\", \"%s\", \"%s\", \"%s\"); "
           "[print(k, v) for k, v in failed.items()]; "
           "need = [\"bench_ckpt\", \"bench_limits\"]; "
           "mpi = build_tools._mpi_flags() and build_tools._phdf5_flags(); "
           "need += [\"bench_mpi_ckpt\", \"bench_mpi_hdf5\"] if mpi else []; "
           "mpi or print(\"bench_build: no Open MPI or parallel HDF5 (pkg-config ompi-c, "
           "hdf5-openmpi): the MPI programs are not required\"); "
           "sys.exit(0 if all(n in built for n in need) else 1)'",
           CKPT_SOURCE_DIR, CKPT_PYTHON, CKPT_SOURCE_DIR, CKPT_BUILD_DIR, dir, CKPT_CC);
  int rc = system(cmd);
  int ran = -1;
  if (rc == 0) {
    /* The ops the OCDBT goals are measured with (small_*, llm_ocdbt_save_vs_save): a save and
     * its verified restore on a state of three small arrays (one under the inline limit) must
     * each record a time. */
    char manifest[64], run[1024];
    snprintf(manifest, sizeof manifest, "%s/tiny.manifest", dir);
    FILE *f = fopen(manifest, "w");
    cr_assert_not_null(f);
    fprintf(f, "ckpt-bench-state 1 tiny 3\n"
               "a.w 1 float32 2 64 32\n"
               "a.b 2 float32 1 100\n"
               "c 3 float32 1 4096\n");
    fclose(f);
    snprintf(run, sizeof run,
             "mkdir %s/data && %s/bench_ckpt %s %s/data save_ocdbt > %s/out.jsonl && "
             "grep -q '\"op\": \"save_ocdbt\"' %s/out.jsonl && "
             "grep -q '\"op\": \"restore_ocdbt\"' %s/out.jsonl || { cat %s/out.jsonl; exit 1; }",
             dir, dir, manifest, dir, dir, dir, dir, dir);
    ran = system(run);
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  (void)system(cmd);
  cr_assert_eq(rc, 0, "a bench program did not build (its error is printed above)");
  cr_assert_eq(ran, 0, "bench_ckpt save_ocdbt recorded no save_ocdbt and restore_ocdbt times");
}
