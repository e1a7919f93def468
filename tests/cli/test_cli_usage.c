/* test_cli_usage.c — the command line itself: --help for the tool and for each subcommand
 * (exit 0, on stdout), --version, and usage errors (no command, unknown command or option,
 * missing or extra arguments, bad numbers, paths that do not exist or are no checkpoint), which
 * exit 2 with a message on stderr and nothing on stdout. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_cli_support.h"

static char *dir;

static void setup(void) {
  dir = tc_mkdtemp();
}
static void teardown(void) {
  tc_rmdir(dir);
  dir = NULL;
}

TestSuite(cli_usage, .init = setup, .fini = teardown);

Test(cli_usage, help_for_the_tool_and_every_command) {
  tc_run r;
  TC_TOOL(&r, "--help");
  cr_assert_eq(r.status, 0);
  cr_assert(strstr(r.out, "Usage: ckpt [--version] [--help] COMMAND"), "%s", r.out);
  tc_run_free(&r);
  static const char *const cmds[] = {"ls", "verify", "cat", "diff", "gc"};
  for (size_t i = 0; i < 5; i++) {
    char want[64];
    snprintf(want, sizeof want, "Usage: ckpt %s ", cmds[i]);
    TC_TOOL(&r, cmds[i], "--help");
    cr_assert_eq(r.status, 0, "%s --help", cmds[i]);
    cr_assert(strstr(r.out, want), "%s", r.out);
    cr_assert(strstr(r.out, "Exit status:"), "%s", r.out);
    cr_assert(strstr(r.out, "--json"), "%s --help mentions --json", cmds[i]);
    tc_run_free(&r);
    TC_TOOL(&r, "help", cmds[i]);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, want), "%s", r.out);
    tc_run_free(&r);
  }
}

Test(cli_usage, version) {
  tc_run r;
  TC_TOOL(&r, "--version");
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.out, "ckpt " CKPT_VERSION_STRING "\n");
  tc_run_free(&r);
}

Test(cli_usage, usage_errors_exit_2) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  char *missing = tc_join(dir, "missing");
  char *file = tc_join(ck, "commit_success.txt");
  char *plain = tc_join(dir, "plain");
  char *pf = tc_join(plain, "x.txt");
  char *pd = tc_join(plain, "sub");
  tc_run r;
  TC_TOOL(&r, "ls");
  tc_run_free(&r);
  struct {
    const char *args[6];
    const char *msg;
  } cases[] = {
      {{NULL}, "Usage: ckpt"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"--frob"}, "unknown option '--frob'"},
      {{"ls"}, "ls: missing PATH"},
      {{"ls", ck, ck}, "ls: expected one PATH"},
      {{"ls", "--bogus", ck}, "ls: unknown or incomplete option '--bogus'"},
      {{"ls", "--step", "x", ck}, "--step needs a non-negative integer"},
      {{"ls", "--step", "1", ck}, "--step applies to a directory of steps"},
      {{"ls", missing}, "does not exist"},
      {{"ls", file}, "is not a directory"},
      {{"ls", plain}, "is neither a checkpoint nor a directory of checkpoint steps"},
      {{"verify"}, "verify: missing PATH"},
      {{"verify", missing}, "does not exist"},
      {{"verify", "--step"}, "verify: unknown or incomplete option"},
      {{"cat", ck}, "cat: missing PATH or KEY"},
      {{"cat", "--stats", "--values", ck, "params/lr"}, "--stats and --values exclude"},
      {{"cat", missing, "k"}, "does not exist"},
      {{"cat", "--step", "1", ck, "params/lr"}, "cat: --step applies to a directory of steps"},
      {{"cat", pd, "w"}, "has no finalized step\n"},
      {{"diff", ck}, "diff: missing A or B"},
      {{"diff", "--atol", "nan", ck, ck}, "--atol needs a finite number"},
      {{"gc"}, "gc: missing DIR"},
      {{"gc", "--force", ck}, "gc: unknown or incomplete option '--force'"},
      {{"help", "nope"}, "unknown command 'nope'"},
  };
  cr_assert_eq(mkdir(plain, 0755), 0);
  tc_write(pf, "x", 1);
  cr_assert_eq(mkdir(pd, 0755), 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *argv[8];
    size_t n = 0;
    for (; n < 6 && cases[i].args[n]; n++)
      argv[n] = cases[i].args[n];
    argv[n] = NULL;
    tc_tool(&r, argv);
    cr_assert_eq(r.status, 2, "case %zu (%s): exit %d, stderr %s", i, cases[i].msg, r.status,
                 r.err);
    cr_assert(strstr(r.err, cases[i].msg), "case %zu: want '%s' in stderr:\n%s", i, cases[i].msg,
              r.err);
    cr_assert_str_eq(r.out, "", "case %zu: nothing on stdout", i);
    tc_run_free(&r);
  }
  free(pf);
  free(pd);
  free(plain);
  free(file);
  free(missing);
  free(ck);
}

Test(cli_usage, empty_directory_is_an_empty_step_directory) {
  tc_run r;
  TC_TOOL(&r, "ls", dir);
  cr_assert_eq(r.status, 0, "%s", r.err);
  char *norm = tc_normalize(r.out, dir);
  cr_assert_str_eq(norm, "steps in <DIR>: 0 finalized\n");
  free(norm);
  tc_run_free(&r);
  TC_TOOL(&r, "verify", dir);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "0 checkpoints verified, 0 damaged\n");
  tc_run_free(&r);
}

Test(cli_usage, options_after_operands_and_double_dash) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  tc_run r;
  TC_TOOL(&r, "cat", ck, "params/step", "--json");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "\"values\": 100"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "ls", "--", ck);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tc_run_free(&r);
  free(ck);
}
