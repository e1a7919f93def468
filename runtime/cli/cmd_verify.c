/* cli/cmd_verify.c — `ckpt verify PATH`: the command. It verifies one checkpoint, or every
 * finalized step of a directory of steps (tmp and unfinalized step directories are reported as
 * skipped: they are not checkpoints), prints the reports and decides the exit status: 1 when
 * anything is damaged, 2 when a check could not run. The checks are in verify_check.c. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspect/inspect.h"
#include "verify.h"

static const char help[] =
    "Usage: ckpt verify [--json] [--no-progress] [--step N] PATH\n"
    "\n"
    "Check a checkpoint, or every step of a directory of steps: commit markers\n"
    "(commit_success.txt, the commit timestamp, no temporary name), every metadata file\n"
    "(_CHECKPOINT_METADATA, _METADATA, _strings.json, _CHECKSUMS, .zarray, JSON and proto\n"
    "item files), and every chunk of every array (present, size, CRC-32C, decompression).\n"
    "Every problem found is reported with the item, array and chunk it concerns.\n"
    "A progress bar is drawn on stderr when stderr is a terminal.\n"
    "\n"
    "Options:\n"
    "  --json         print one JSON document (keys documented in docs/cli.md)\n"
    "  --no-progress  never draw the progress bar\n"
    "  --step N       with a directory of steps: verify only step N\n"
    "  -h, --help     show this help\n"
    "\n"
    "Exit status: 0 sound; 1 damaged; 2 usage error, PATH missing or not a checkpoint,\n"
    "or a check that could not run (I/O error, unsupported format).\n";

/* ---------------------------------------------------------------- command */

int cli_cmd_verify(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"no-progress", no_argument, NULL, 'n'},
                                       {"step", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool json = false, progress = true, has_step = false;
  int64_t step = -1;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case 'j':
        json = true;
        break;
      case 'n':
        progress = false;
        break;
      case 's':
        if (!cli_parse_i64(optarg, &step))
          return cli_usage_error("verify", "--step needs a non-negative integer, not '%s'", optarg);
        has_step = true;
        break;
      case 'h':
        fputs(help, stdout);
        return CLI_EXIT_OK;
      default:
        return cli_usage_error("verify", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 1)
    return cli_usage_error("verify", "%s",
                           argc - optind == 0 ? "missing PATH" : "expected one PATH");
  const char *path = argv[optind];
  progress = progress && isatty(STDERR_FILENO);
  ckpt_io *io = ckpt_io_default();
  cli_path_kind kind;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_classify(io, path, &kind, &err) != CKPT_OK)
    return cli_report(&err);
  if (has_step && kind != CLI_PATH_MANAGER)
    return cli_usage_error("verify", "--step applies to a directory of steps; '%s' is a checkpoint",
                           path);

  vreport *reports = NULL;
  size_t n = 0;
  cli_mgr m;
  memset(&m, 0, sizeof m);
  int rc = CLI_EXIT_OK;
  if (kind == CLI_PATH_MANAGER) {
    if (cli_mgr_scan(io, path, &m, &err) != CKPT_OK) {
      cli_mgr_free(&m);
      return cli_report(&err);
    }
    reports = calloc(m.n ? m.n : 1, sizeof *reports);
    if (reports == NULL) {
      cli_mgr_free(&m);
      fprintf(stderr, "ckpt: out of memory\n");
      return CLI_EXIT_ERROR;
    }
    bool found = false;
    for (size_t i = 0; i < m.n; i++) {
      const cli_step *s = &m.steps[i];
      if (has_step && s->step != step)
        continue;
      vreport *r = &reports[n++];
      r->path = cli_strdup(s->path);
      r->has_step = true;
      r->step = s->step;
      if (r->path == NULL)
        r->oom = true;
      if (s->tmp) {
        r->skipped = true;
        r->skip_reason =
            "temporary directory of an unfinished or interrupted save (not a "
            "checkpoint; 'ckpt gc' removes it)";
      } else if (!s->finalized) {
        r->skipped = true;
        r->skip_reason =
            "not finalized (no commit_success.txt, and a pending commit marker or no "
            "commit timestamp): an interrupted save, not a checkpoint";
      } else {
        found = true;
        verify_checkpoint(io, s->path, progress, r);
      }
    }
    if (has_step && !found) {
      fprintf(stderr, "ckpt: verify: '%s' has no finalized step %lld\n", path, (long long)step);
      rc = CLI_EXIT_ERROR;
    }
  } else {
    reports = calloc(1, sizeof *reports);
    if (reports == NULL) {
      fprintf(stderr, "ckpt: out of memory\n");
      return CLI_EXIT_ERROR;
    }
    n = 1;
    reports[0].path = ckpt_path_normalize(path);
    if (reports[0].path == NULL)
      reports[0].oom = true;
    else
      verify_checkpoint(io, reports[0].path, progress, &reports[0]);
  }

  size_t damaged = 0, errors = 0, verified = 0;
  bool oom = false;
  for (size_t i = 0; i < n; i++) {
    oom |= reports[i].oom;
    if (reports[i].skipped)
      continue;
    verified++;
    if (vreport_count(&reports[i], true))
      damaged++;
    else if (vreport_count(&reports[i], false))
      errors++;
  }
  if (rc == CLI_EXIT_OK) {
    if (json) {
      cJSON *doc = cJSON_CreateObject(), *arr = cJSON_CreateArray();
      cli_jadd(doc, "path", cJSON_CreateString(path), &oom);
      cli_jadd(doc, "ok", cJSON_CreateBool(damaged == 0 && errors == 0), &oom);
      cli_jadd(doc, "verified", cli_juint(verified), &oom);
      cli_jadd(doc, "damaged", cli_juint(damaged), &oom);
      for (size_t i = 0; i < n; i++)
        cli_jpush(arr, vreport_json(&reports[i], &oom), &oom);
      cli_jadd(doc, "checkpoints", arr, &oom);
      rc = cli_json_emit(doc, oom);
    } else if (oom) {
      fprintf(stderr, "ckpt: out of memory\n");
      rc = CLI_EXIT_ERROR;
    } else {
      for (size_t i = 0; i < n; i++)
        vreport_print(&reports[i]);
      if (kind == CLI_PATH_MANAGER)
        printf("%zu checkpoint%s verified, %zu damaged%s\n", verified, verified == 1 ? "" : "s",
               damaged, errors ? ", some not verifiable" : "");
    }
    if (rc == CLI_EXIT_OK)
      rc = damaged ? CLI_EXIT_DAMAGED : errors ? CLI_EXIT_ERROR : CLI_EXIT_OK;
  }
  for (size_t i = 0; i < n; i++)
    vreport_free(&reports[i]);
  free(reports);
  cli_mgr_free(&m);
  return rc;
}
