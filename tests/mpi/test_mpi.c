/* test_mpi.c — multi-process checkpoints under mpirun (docs/multiprocess.md).
 *
 * Each test starts a program of tests/mpi/ranks/ (mpi_scenario.c; mpi_record.c for generated
 * records and random keys; or examples/train_mlp_mpi/demo.sh) under `mpirun -np N
 * --oversubscribe` (as root with Open MPI's two permission variables) and checks its exit
 * status; every rank prints its own "ok"/"FAIL" lines, which the assertion messages carry.
 * Skipped, saying so, when ckpt was built without Open MPI or mpirun is missing
 * (scripts/install-deps installs both). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ckpt/checkpointer.h"
#include "ckpt/process_group.h"

#define SCENARIO CKPT_BUILD_DIR "/tests/mpi-ranks/mpi_scenario"
#define RECORD CKPT_BUILD_DIR "/tests/mpi-ranks/mpi_record"

static char tmp_dir[] = "/tmp/ckpt-mpi-XXXXXX";

static void need_mpi(void) {
  if (!CKPT_HAVE_MPI || CKPT_MPIRUN[0] == '\0')
    cr_skip_test("ckpt was built without Open MPI (libopenmpi-dev, openmpi-bin: "
                 "scripts/install-deps installs them); the MPI suite is skipped");
  /* Under make check: full stacks for allocations (Open MPI's libraries have no frame
   * pointers), so that tests/lsan.supp can name Open MPI's own leaks. */
  const char *asan = getenv("ASAN_OPTIONS");
  char opts[2048];
  snprintf(opts, sizeof opts, "%s%sfast_unwind_on_malloc=0", asan ? asan : "",
           asan && asan[0] ? ":" : "");
  setenv("ASAN_OPTIONS", opts, 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp");
}

static void cleanup(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", tmp_dir);
}

/* Runs cmd; its output in out (static, last 16 KiB); the exit code (-1: not exited). */
static char out[16384];
static int run(const char *cmd) {
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "cannot run %s", cmd);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  char sink[4096];
  while (fread(sink, 1, sizeof sink, p) > 0) {
  }
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Every job runs under timeout(1): a protocol bug shows as a failed test (exit 124) rather than
 * ranks left waiting in a collective after the test gave up. */
#define MPIRUN_TIMEOUT "timeout -k 5 90 "

/* `mpirun -np n prog args` (env: extra -x options or ""); asserts success. */
static void ranks_of(const char *prog, int n, const char *env, const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           MPIRUN_TIMEOUT "'%s' --oversubscribe --bind-to none %s -np %d '%s' %s 2>&1",
           CKPT_MPIRUN, env, n, prog, args);
  int rc = run(cmd);
  cr_assert_eq(rc, 0, "%d ranks, %s: exit %d\n%s", n, args, rc, out);
}

static void ranks(int n, const char *env, const char *args) {
  ranks_of(SCENARIO, n, env, args);
}

static void alone(const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", SCENARIO, args);
  int rc = run(cmd);
  cr_assert_eq(rc, 0, "%s: exit %d\n%s", args, rc, out);
}

static void verify(const char *path) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' verify '%s' 2>&1", CKPT_TOOL_PATH, path);
  int rc = run(cmd);
  cr_assert_eq(rc, 0, "ckpt verify %s: exit %d\n%s", path, rc, out);
}

TestSuite(mpi, .fini = cleanup, .timeout = 120);

Test(mpi, saved_by_4_restores_on_4_3_2_1) {
  need_mpi();
  char path[512], args[600];
  snprintf(path, sizeof path, "%s/by4", tmp_dir);
  snprintf(args, sizeof args, "save '%s'", path);
  ranks(4, "", args);
  verify(path); /* every chunk of every process, through the merged _CHECKSUMS */
  /* The real peer reads what the four processes wrote. */
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' -c \"import sys, zarr, numpy as np\n"
           "w = zarr.open(sys.argv[1] + '/w', mode='r')[...]\n"
           "m = zarr.open(sys.argv[1] + '/m', mode='r')[...]\n"
           "r, c = np.indices((8, 6))\n"
           "assert (w == 100 * r + c).all(), w\n"
           "r, c = np.indices((4, 6))\n"
           "assert (m == 10 * c + r).all(), m\n"
           "print('zarr ok')\" '%s' 2>&1",
           CKPT_PYTHON, path);
  int rc = run(cmd);
  cr_assert(rc == 0 && strstr(out, "zarr ok") != NULL, "zarr-python: exit %d\n%s", rc, out);
  snprintf(args, sizeof args, "restore '%s'", path);
  for (int n = 4; n >= 1; n--)
    ranks(n, "", args);
}

Test(mpi, saved_by_1_restores_on_4) {
  need_mpi();
  char path[512], args[600];
  snprintf(path, sizeof path, "%s/by1", tmp_dir);
  snprintf(args, sizeof args, "save '%s'", path);
  ranks(1, "", args);
  snprintf(args, sizeof args, "restore '%s'", path);
  ranks(4, "", args);
}

/* The bytes of a 3-process save (uneven shards; the primary on rank 1) and of a 2-process save
 * equal those of one process saving every shard: chunks, .zarray, _METADATA, _CHECKSUMS (but
 * for its per-process files). */
Test(mpi, layout_identical_to_a_single_process_save) {
  need_mpi();
  char multi[512], ref[512], args[1100];
  for (int n = 2; n <= 3; n++) {
    snprintf(multi, sizeof multi, "%s/multi%d", tmp_dir, n);
    snprintf(ref, sizeof ref, "%s/ref%d", tmp_dir, n);
    snprintf(args, sizeof args, "save '%s'", multi);
    ranks(n, n == 3 ? "-x MPI_SCENARIO_PRIMARY=1" : "", args);
    snprintf(args, sizeof args, "ref '%s' %d", ref, n);
    alone(args);
    snprintf(args, sizeof args, "compare '%s' '%s'", multi, ref);
    alone(args);
  }
}

/* `ckpt ARGS` (the tool); asserts it exits 0. */
static void tool(const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", CKPT_TOOL_PATH, args);
  int rc = run(cmd);
  cr_assert_eq(rc, 0, "ckpt %s: exit %d\n%s", args, rc, out);
}

/* OCDBT (Orbax's default multi-host layout): 4 ranks each write their own database
 * ocdbt.process_<i>/, the primary the root over all four. `ckpt verify` checks every process's
 * chunks and database files; restored on 4, 3 and 1 ranks and by one process without MPI; the
 * root's keys and values equal a single-process save's of the same global arrays (and `ckpt
 * diff` finds no difference); `ckpt cat` reads a leaf. */
#define OCDBT_ENV "-x MPI_SCENARIO_FORMAT=ocdbt"
Test(mpi, ocdbt_saved_by_4_restores_on_4_3_1_and_alone) {
  need_mpi();
  char path[512], ref[512], args[1200];
  snprintf(path, sizeof path, "%s/ocdbt4", tmp_dir);
  snprintf(ref, sizeof ref, "%s/ocdbt-ref4", tmp_dir);
  snprintf(args, sizeof args, "save '%s'", path);
  ranks(4, OCDBT_ENV, args);
  verify(path);
  snprintf(args, sizeof args, "restore '%s'", path);
  ranks(4, OCDBT_ENV, args);
  ranks(3, OCDBT_ENV, args);
  ranks(1, OCDBT_ENV, args);
  snprintf(args, sizeof args, "restore-alone '%s'", path);
  setenv("MPI_SCENARIO_FORMAT", "ocdbt", 1);
  alone(args);
  snprintf(args, sizeof args, "ref '%s' 4", ref);
  alone(args);
  snprintf(args, sizeof args, "compare-ocdbt '%s' '%s' 4 4", path, ref);
  alone(args);
  cr_assert(strstr(out, "values in 4 process databases") != NULL, "%s", out);
  unsetenv("MPI_SCENARIO_FORMAT");
  snprintf(args, sizeof args, "diff '%s' '%s'", path, ref);
  tool(args);
  snprintf(args, sizeof args, "cat '%s' m", path);
  tool(args);
  cr_assert(strstr(out, "[ 3 13 23 33 43 53]") != NULL, "ckpt cat m:\n%s", out);
}

/* zarr v3 values in OCDBT, 4 ranks with the primary on rank 2 (it writes every zarr.json key
 * and the root): verified, restored on 3 ranks and alone, keys and values as one process's. */
Test(mpi, zarr3_ocdbt_saved_by_4_primary_2) {
  need_mpi();
  char path[512], ref[512], args[1200];
  snprintf(path, sizeof path, "%s/zarr3-4", tmp_dir);
  snprintf(ref, sizeof ref, "%s/zarr3-ref4", tmp_dir);
  snprintf(args, sizeof args, "save '%s'", path);
  ranks(4, "-x MPI_SCENARIO_FORMAT=zarr3 -x MPI_SCENARIO_PRIMARY=2", args);
  verify(path);
  snprintf(args, sizeof args, "restore '%s'", path);
  ranks(3, "-x MPI_SCENARIO_FORMAT=zarr3", args);
  setenv("MPI_SCENARIO_FORMAT", "zarr3", 1);
  snprintf(args, sizeof args, "restore-alone '%s'", path);
  alone(args);
  snprintf(args, sizeof args, "ref '%s' 4", ref);
  alone(args);
  snprintf(args, sizeof args, "compare-ocdbt '%s' '%s' 4 4", path, ref);
  alone(args);
  unsetenv("MPI_SCENARIO_FORMAT");
}

/* zarr v3 in directories (use_zarr3 without OCDBT), 4 ranks with the primary on rank 2: each
 * rank writes the chunk files of its replica-0 shards, the primary every zarr.json and the item
 * files; verified (the merged _CHECKSUMS covers every chunk), restored on 4, 3 and 1 ranks and
 * alone, and every file's bytes equal a single-process save's. */
Test(mpi, zarr3_directories_saved_by_4_primary_2) {
  need_mpi();
  char path[512], ref[512], args[1200];
  const char *env = "-x MPI_SCENARIO_FORMAT=zarr3-dir";
  snprintf(path, sizeof path, "%s/zarr3dir-4", tmp_dir);
  snprintf(ref, sizeof ref, "%s/zarr3dir-ref4", tmp_dir);
  snprintf(args, sizeof args, "save '%s'", path);
  ranks(4, "-x MPI_SCENARIO_FORMAT=zarr3-dir -x MPI_SCENARIO_PRIMARY=2", args);
  verify(path);
  char zj[600];
  snprintf(zj, sizeof zj, "%s/big/zarr.json", path);
  struct stat st;
  cr_assert_eq(stat(zj, &st), 0, "%s is missing", zj);
  snprintf(args, sizeof args, "restore '%s'", path);
  ranks(4, env, args);
  ranks(3, env, args);
  ranks(1, env, args);
  setenv("MPI_SCENARIO_FORMAT", "zarr3-dir", 1);
  snprintf(args, sizeof args, "restore-alone '%s'", path);
  alone(args);
  snprintf(args, sizeof args, "ref '%s' 4", ref);
  alone(args);
  snprintf(args, sizeof args, "compare '%s' '%s'", path, ref);
  alone(args);
  unsetenv("MPI_SCENARIO_FORMAT");
}

/* OCDBT, one rank's database write fails (rank 2 of 4, then the primary of 3): every rank's save
 * returns that error and nothing is committed or left behind. Then async saves (the merge on
 * the background thread beside the application's MPI), the third failing on the last rank. */
Test(mpi, ocdbt_failing_rank_fails_the_save_everywhere) {
  need_mpi();
  char args[600], root[512];
  snprintf(args, sizeof args, "fault '%s/of2' 2", tmp_dir);
  ranks(4, OCDBT_ENV, args);
  cr_assert(strstr(out, "process 2 of 4") != NULL && strstr(out, "ocdbt.process_2") != NULL,
            "%s", out);
  snprintf(args, sizeof args, "fault '%s/of0' 0", tmp_dir);
  ranks(3, OCDBT_ENV, args);
  snprintf(root, sizeof root, "%s/ocdbt-async", tmp_dir);
  cr_assert_eq(mkdir(root, 0777), 0);
  snprintf(args, sizeof args, "async '%s'", root);
  ranks(3, OCDBT_ENV, args);
  snprintf(args, sizeof args, "%s/2", root);
  cr_assert(!ckpt_is_finalized(NULL, args, CKPT_ATOMICITY_RENAME), "the failed save committed");
}

/* One rank's chunk write fails: every rank's save returns that error, naming the rank and the
 * file, and nothing is committed or left behind (checked by every rank). */
Test(mpi, failing_rank_fails_the_save_everywhere) {
  need_mpi();
  char args[600];
  snprintf(args, sizeof args, "fault '%s/f1' 1", tmp_dir);
  ranks(3, "", args);
  cr_assert(strstr(out, "process 1 of 3") != NULL, "%s", out);
  /* the primary itself failing */
  snprintf(args, sizeof args, "fault '%s/f0' 0", tmp_dir);
  ranks(2, "", args);
}

/* A Composite item failing on one process only (after its own collectives) does not leave the
 * others waiting in the next item's: every process's save fails with that process's error. */
Test(mpi, item_failing_on_one_process) {
  need_mpi();
  char args[600];
  snprintf(args, sizeof args, "item-fail '%s/if'", tmp_dir);
  ranks(3, "", args);
}

/* Processes naming different paths, or storing the arrays in different layouts (OCDBT on one
 * only), are refused on every process, before anything is made. */
Test(mpi, processes_must_save_the_same_path) {
  need_mpi();
  char args[600];
  snprintf(args, sizeof args, "mismatch '%s/mm'", tmp_dir);
  ranks(3, "", args);
}

/* A rank killed in the middle of a save (a non-primary one, then the primary): mpirun ends the
 * job; the previous checkpoint is intact and the interrupted one was never committed. */
static void killed(int victim) {
  char cmd[4096], root[512], one[600], two[600], args[700];
  snprintf(root, sizeof root, "%s/kill%d", tmp_dir, victim);
  cr_assert_eq(mkdir(root, 0777), 0);
  snprintf(cmd, sizeof cmd,
           MPIRUN_TIMEOUT "'%s' --oversubscribe --bind-to none -np 2 '%s' kill '%s' %d 2>&1",
           CKPT_MPIRUN, SCENARIO, root, victim);
  int rc = run(cmd);
  cr_assert_neq(rc, 0, "the job survived its killed rank %d:\n%s", victim, out);
  cr_assert_neq(rc, 124, "the job hung after rank %d was killed:\n%s", victim, out);
  cr_assert(strstr(out, "ok step 1 saved") != NULL, "step 1 was not saved:\n%s", out);
  snprintf(one, sizeof one, "%s/1", root);
  snprintf(two, sizeof two, "%s/2", root);
  cr_assert(ckpt_is_finalized(NULL, one, CKPT_ATOMICITY_RENAME));
  cr_assert(!ckpt_is_finalized(NULL, two, CKPT_ATOMICITY_RENAME), "step 2 was committed");
  verify(one);
  snprintf(args, sizeof args, "restore '%s'", one);
  ranks(2, "", args);
}

Test(mpi, killed_rank_leaves_the_previous_checkpoint) {
  need_mpi();
  killed(1);
  killed(0);
}

/* Processes saving trees of different arrays are refused on every process. */
Test(mpi, processes_must_save_the_same_tree) {
  need_mpi();
  char args[600];
  snprintf(args, sizeof args, "differ '%s/differ'", tmp_dir);
  ranks(3, "", args);
}

/* Async saves while the application runs its own MPI_Allreduce loop; the third save fails on
 * the last rank, and wait_until_finished reports it on every rank. */
Test(mpi, async_saves_beside_the_application_mpi) {
  need_mpi();
  char args[600];
  snprintf(args, sizeof args, "async '%s'", tmp_dir);
  ranks(3, "", args);
  char two[512];
  snprintf(two, sizeof two, "%s/2", tmp_dir);
  cr_assert(!ckpt_is_finalized(NULL, two, CKPT_ATOMICITY_RENAME), "the failed save committed");
}

Test(mpi, group_refuses_a_thread_level_below_multiple) {
  need_mpi();
  ranks(2, "", "thread-level x");
  cr_assert(strstr(out, "MPI_THREAD_MULTIPLE") != NULL, "%s", out);
}

/* A CheckpointManager on every rank (the primary on rank 2): max_to_keep and best-metric
 * retention decided and carried out by the primary, the same step lists on every rank, and a
 * SIGTERM on one rank turning into the same preemption save on all. */
Test(mpi, manager_retention_and_preemption) {
  need_mpi();
  char args[600];
  snprintf(args, sizeof args, "manager '%s'", tmp_dir);
  ranks(3, "-x MPI_SCENARIO_PRIMARY=2", args);
}

/* A Composite of the sharded tree and a JSON item (the primary writes the JSON): restored as
 * saved on every rank, and `ckpt verify` checks both items. */
Test(mpi, composite_with_a_json_item) {
  need_mpi();
  char path[512], args[600];
  snprintf(path, sizeof path, "%s/comp", tmp_dir);
  snprintf(args, sizeof args, "composite '%s'", path);
  ranks(3, "", args);
  verify(path);
}

/* A generated record handler (tests/mpi/ranks/record_state.ckpt) and both random-key handlers
 * in a Composite saved by 3 ranks (the primary on rank 1): the record's arrays sharded, what
 * every rank holds alike written by the primary (the others hold other values: the restore
 * finds the primary's). Restored on 2, 1 and 4 ranks with other shardings; `ckpt verify` and
 * zarr-python read the files. */
Test(mpi, record_handlers_and_random_keys) {
  need_mpi();
  char path[512], args[600];
  snprintf(path, sizeof path, "%s/record", tmp_dir);
  snprintf(args, sizeof args, "save '%s'", path);
  ranks_of(RECORD, 3, "-x MPI_SCENARIO_PRIMARY=1", args);
  verify(path);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' -c \"import sys, json, zarr, numpy as np\n"
           "d = sys.argv[1] + '/state/'\n"
           "w = zarr.open(d + 'w', mode='r')[...]\n"
           "r, c = np.indices((6, 4))\n"
           "assert (w == 10 * r + c).all(), w\n"
           "assert (zarr.open(d + 'plain', mode='r')[...] == 7 * np.arange(5)).all()\n"
           "assert int(zarr.open(d + 'step', mode='r')[...]) == 42\n"
           "assert json.load(open(d + '_strings.json'))['name'] == 'primary'\n"
           "k = zarr.open(sys.argv[1] + '/jax/jax_random_key/checkpoint', mode='r')[...]\n"
           "assert list(k) == [7, 8], k\n"
           "print('zarr ok')\" '%s' 2>&1",
           CKPT_PYTHON, path);
  int rc = run(cmd);
  cr_assert(rc == 0 && strstr(out, "zarr ok") != NULL, "zarr-python: exit %d\n%s", rc, out);
  snprintf(args, sizeof args, "restore '%s'", path);
  ranks_of(RECORD, 2, "", args);
  ranks_of(RECORD, 1, "", args);
  ranks_of(RECORD, 4, "", args);
}

/* examples/train_mlp_mpi/demo.sh, shortened: 4 ranks train with async manager saves, rank 2 is
 * killed with SIGKILL (the job dies), 3 ranks resume and end bit-identical to an uninterrupted
 * run; the 4-rank checkpoint restores exactly on 1, 2 and 3 ranks; zarr-python reads it. */
Test(mpi, train_mlp_mpi_killed_and_resumed_on_other_rank_counts) {
  need_mpi();
  char cmd[4096];
  /* Under make check the example runs with ASan and UBSan but without the leak check: a user's
   * program that calls MPI_Finalize leaves Open MPI's allocations to LeakSanitizer in frames no
   * suppression can name (mpi_scenario.c says why); ckpt's own leaks in these paths are
   * checked by mpi_record and mpi_scenario, which run the check before MPI_Finalize. */
  snprintf(cmd, sizeof cmd,
           "ASAN_OPTIONS=\"$ASAN_OPTIONS:detect_leaks=0\" "
           "STEPS=40 SAVE_EVERY=10 KEEP=2 KILL_AT=30 CKPT_PYTHON='%s' TMPDIR='%s' "
           "timeout -k 5 110 sh '%s/examples/train_mlp_mpi/demo.sh' '%s' 2>&1",
           CKPT_PYTHON, tmp_dir, CKPT_SOURCE_DIR, CKPT_BUILD_DIR);
  int rc = run(cmd);
  cr_assert_eq(rc, 0, "demo.sh: exit %d\n%s", rc, out);
  cr_assert(strstr(out, "rank 2: SIGKILL after step 30") != NULL, "no kill:\n%s", out);
  cr_assert(strstr(out, "resumed from step") != NULL, "no resume:\n%s", out);
  cr_assert(strstr(out, "identical to the reference") != NULL, "%s", out);
  for (int n = 1; n <= 3; n++) {
    char line[64];
    snprintf(line, sizeof line, "%d rank(s): identical", n);
    cr_assert(strstr(out, line) != NULL, "%s missing:\n%s", line, out);
  }
  cr_assert(strstr(out, "zarr-python read 12 arrays") != NULL && strstr(out, "DIFFERENT") == NULL,
            "%s", out);
}
