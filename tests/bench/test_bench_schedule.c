/* tests/bench/test_bench_schedule.c — pins how `make bench` schedules its rounds
 * (bench/run.py), since every figure's trustworthiness rests on it: with the default settings
 * every job a goal figure needs runs in every round, the limits ckpt is compared with are
 * measured in ckpt's own process right before the op they pair with, each peer runs right
 * before or after ckpt in most rounds, small1's save follows small's, work that only feeds
 * the context section runs once, and the MPI section runs each rank count's ckpt and parallel
 * HDF5 jobs back to back in at least three rounds. Checked by bench/check_schedule.py under Debian's python3. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

static int check(const char *args) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s/tests/bench/check_schedule.py %s/bench %s", CKPT_PYTHON,
           CKPT_SOURCE_DIR, CKPT_SOURCE_DIR, args);
  return system(cmd);
}

Test(bench_schedule, default_run_gives_every_goal_five_adjacent_rounds) {
  cr_assert_eq(check("5 0"), 0);
}

Test(bench_schedule, quick_run_keeps_every_goal) {
  cr_assert_eq(check("3 1"), 0);
}

Test(bench_schedule, the_checker_fails_on_a_broken_schedule) {
  /* "broken" moves llm's hdf5 job to the context section (first round only): the checker must
   * notice that restore_vs_hdf5 and save_vs_hdf5 lose their rounds. */
  cr_assert_neq(check("5 0 broken"), 0);
}

Test(bench_schedule, the_checker_fails_when_an_ocdbt_goal_loses_its_op) {
  /* "no_ocdbt" drops save_ocdbt from llm's ckpt ops: the job still runs, but
   * llm_ocdbt_save_vs_save would have no numerator; the checker must say so. */
  cr_assert_neq(check("5 0 no_ocdbt"), 0);
  cr_assert_neq(check("3 1 no_ocdbt"), 0);
}

Test(bench_schedule, the_checker_fails_when_the_mpi_section_loses_its_rounds) {
  /* "broken-mpi" runs the MPI section in one round of five: its goals need at least three. */
  cr_assert_neq(check("5 0 broken-mpi"), 0);
}
