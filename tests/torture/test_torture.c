/* test_torture.c — the short crash torture of make test (docs/reliability.md, "Crash torture").
 *
 * Runs build/bin/ckpt-torture (tools/torture/torture.c) for 20 trials per commit mode: the
 * first 12 kill a saving child at the protocol points of the commit and of the retention
 * deletions in turn (before and just after each; deterministic), the other 8 at random
 * moments (time, operation or protocol point; the seed is printed, TORTURE_SEED repeats it).
 * After every kill the driver checks the listing (manager and `ckpt ls` agree), `ckpt verify`,
 * a bit-exact restore of the newest step, that no committed step was lost, and retention. No
 * timing is asserted: kills are placed by operation, or land wherever the delay falls. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TORTURE CKPT_BUILD_DIR "/bin/ckpt-torture"

Test(torture, short_run_both_modes, .timeout = 900) {
  const char *cmd = "'" TORTURE "' --trials 20 --edge-trials 12 --tool '" CKPT_TOOL_PATH "' 2>&1";
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "cannot run %s", TORTURE);
  char *out = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&out, &len);
  cr_assert_not_null(mem);
  char line[4096], last[4096] = "";
  while (fgets(line, sizeof line, p) != NULL) {
    fputs(line, stderr); /* the seed, the per-mode summaries and any failure report */
    fputs(line, mem);
    snprintf(last, sizeof last, "%s", line);
  }
  int status = pclose(p);
  fclose(mem);
  /* Its output (the failure reports) is on stderr above. */
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ckpt-torture failed (status %d): %s",
            status, last);
  cr_assert(strstr(last, "ckpt-torture: PASS") != NULL, "unexpected closing line: %s", last);
  free(out);
}
