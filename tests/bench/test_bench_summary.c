/* tests/bench/test_bench_summary.c — pins bench/summarize.py, which turns several `make bench`
 * runs into README's headline table (median, range, runs that met each goal): three results
 * files with known figures in a temporary directory, checked by bench/check_summary.py under
 * Debian's python3. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

Test(bench_summary, median_range_and_met_counts_over_runs) {
  char dir[] = "/tmp/ckpt-bench-summary-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s/tests/bench/check_summary.py %s/bench %s", CKPT_PYTHON, CKPT_SOURCE_DIR,
           CKPT_SOURCE_DIR, dir);
  int rc = system(cmd);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
  cr_assert_eq(rc, 0);
}
