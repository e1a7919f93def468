/* cli/main.c — the `ckpt` tool's entry point: global options (--help, --version) and the
 * dispatch to one subcommand per file (cmd_*.c). See docs/cli.md for the manual. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: ckpt [--version] [--help] COMMAND [ARGS...]\n"
    "\n"
    "Inspect, check and clean ckpt / Orbax checkpoints (zarr v2 layout).\n"
    "\n"
    "Commands:\n"
    "  ls PATH          list a checkpoint's items and arrays, or a directory's steps\n"
    "  verify PATH      check every chunk checksum, metadata file and commit marker\n"
    "  cat PATH KEY     print the values of one leaf (or statistics of a big array)\n"
    "  diff A B         compare two checkpoints: structure, dtypes, shapes, values\n"
    "  gc DIR           remove leftover *.orbax-checkpoint-tmp directories\n"
    "  convert SRC DST --to zarr2|zarr3|ocdbt[+zarr2|+zarr3]\n"
    "                   copy a checkpoint with its arrays in another layout\n"
    "  unpack SRC DST   the same as convert --to zarr2\n"
    "\n"
    "Every command accepts --json (machine-readable output) and --help.\n"
    "Exit status: 0 success, 1 damaged (verify) or different (diff), 2 usage or I/O error.\n"
    "Run 'ckpt COMMAND --help' for a command's options; the manual is docs/cli.md.\n";

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"ls", cli_cmd_ls},         {"verify", cli_cmd_verify}, {"cat", cli_cmd_cat},
    {"diff", cli_cmd_diff},     {"gc", cli_cmd_gc},         {"convert", cli_cmd_convert},
    {"unpack", cli_cmd_unpack},
};

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return CLI_EXIT_ERROR;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    fputs(usage, stdout);
    return CLI_EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("ckpt %s\n", CKPT_VERSION_STRING);
    return CLI_EXIT_OK;
  }
  if (strcmp(cmd, "help") == 0) {
    if (argc < 3) {
      fputs(usage, stdout);
      return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
      if (strcmp(argv[2], commands[i].name) == 0) {
        char help[] = "--help";
        char *sub[] = {argv[2], help, NULL};
        return commands[i].run(2, sub);
      }
    }
    return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(cmd, commands[i].name) == 0) {
      int rc = commands[i].run(argc - 1, argv + 1);
      cli_task_engine_free();
      return rc;
    }
  }
  if (cmd[0] == '-')
    return cli_usage_error(NULL, "unknown option '%s'", cmd);
  return cli_usage_error(NULL, "unknown command '%s'", cmd);
}
