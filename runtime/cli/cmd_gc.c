/* cli/cmd_gc.c — `ckpt gc DIR`: remove the leftovers of interrupted saves, the directories of
 * DIR whose names carry Orbax's temporary marker (".orbax-checkpoint-tmp", also with the legacy
 * "-<n>" counter and ckpt's "-replaced" / "-deleting" suffixes), as Orbax's
 * cleanup_tmp_directories does, and the directories of interrupted commit-file saves (the
 * pending commit marker without commit_success.txt; storage/step_dirs.h). Nothing else is
 * ever removed: not files or symlinks with such names (a symlink could point anywhere), not
 * finalized checkpoints, not DIR itself, and nothing below DIR's direct children is
 * considered. Removal never follows symlinks. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inspect/inspect.h"

static const char help[] =
    "Usage: ckpt gc [--json] [--dry-run] DIR\n"
    "\n"
    "Remove the directories directly inside DIR whose names carry the temporary marker\n"
    "'.orbax-checkpoint-tmp' (leftovers of interrupted saves: '<step>.orbax-checkpoint-tmp',\n"
    "legacy '...-tmp-<n>', ckpt's '...-tmp-replaced' and '...-tmp-deleting'), and the\n"
    "directories of interrupted commit-file saves (holding '" CKPT_COMMIT_FILE CKPT_TMP_SUFFIX "'\n"
    "but no '" CKPT_COMMIT_FILE "'). Nothing else\n"
    "is removed: no finalized checkpoint, no file or symlink, nothing deeper than DIR's\n"
    "direct children. Give a manager directory, or a checkpoint to clean its leftover item\n"
    "directories. Do not run it while a save into DIR is in progress: the save's temporary\n"
    "directory is indistinguishable from a leftover.\n"
    "\n"
    "Options:\n"
    "  --dry-run   only list what would be removed\n"
    "  --json      print one JSON document (keys documented in docs/cli.md)\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit status: 0 done (also when there was nothing to remove); 2 usage error, DIR\n"
    "missing or not a directory, a removal failed.\n";

#define DU_MAX_DEPTH 64

/* Bytes of the regular files below path (symlinks not followed); errors only undercount. */
static uint64_t du(ckpt_io *io, const char *path, int depth) {
  ckpt_io_kind kind;
  uint64_t size = 0;
  if (ckpt_io_stat(io, path, &kind, &size, NULL) != CKPT_OK)
    return 0;
  if (kind == CKPT_IO_KIND_FILE)
    return size;
  if (kind != CKPT_IO_KIND_DIR || depth > DU_MAX_DEPTH)
    return 0;
  char **names = NULL;
  size_t n = 0;
  if (ckpt_io_list_dir(io, path, &names, &n, NULL) != CKPT_OK)
    return 0;
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    char *p = ckpt_path_join(path, names[i]);
    if (p)
      total += du(io, p, depth + 1);
    free(p);
  }
  ckpt_io_free_names(names, n);
  return total;
}

int cli_cmd_gc(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"dry-run", no_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool json = false, dry = false;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case 'j':
        json = true;
        break;
      case 'n':
        dry = true;
        break;
      case 'h':
        fputs(help, stdout);
        return CLI_EXIT_OK;
      default:
        return cli_usage_error("gc", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 1)
    return cli_usage_error("gc", "%s", argc - optind == 0 ? "missing DIR" : "expected one DIR");
  ckpt_io *io = ckpt_io_default();
  ckpt_error err = CKPT_ERROR_INIT;
  char *dir = ckpt_path_normalize(argv[optind]);
  if (dir == NULL) {
    fprintf(stderr, "ckpt: out of memory\n");
    return CLI_EXIT_ERROR;
  }
  ckpt_io_kind kind;
  uint64_t size;
  if (ckpt_io_stat(io, dir, &kind, &size, &err) != CKPT_OK) {
    free(dir);
    return cli_report(&err);
  }
  if (kind == CKPT_IO_KIND_MISSING || kind != CKPT_IO_KIND_DIR) {
    fprintf(stderr, "ckpt: gc: '%s' %s\n", argv[optind],
            kind == CKPT_IO_KIND_MISSING ? "does not exist" : "is not a directory");
    free(dir);
    return CLI_EXIT_ERROR;
  }
  char **names = NULL;
  size_t n = 0;
  if (ckpt_io_list_dir(io, dir, &names, &n, &err) != CKPT_OK) {
    free(dir);
    return cli_report(&err);
  }
  bool oom = false;
  int rc = CLI_EXIT_OK;
  cJSON *removed = json ? cJSON_CreateArray() : NULL, *skipped = json ? cJSON_CreateArray() : NULL;
  size_t n_removed = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    char *p = ckpt_path_join(dir, names[i]);
    if (p == NULL) {
      oom = true;
      break;
    }
    ckpt_error e = CKPT_ERROR_INIT;
    /* An interrupted commit-file save: a directory with the pending commit marker and no
     * commit file. It is removed like a tmp directory, hidden under a tmp name first (it may
     * hold a commit timestamp, and must not look finalized while it goes). */
    bool pending = false;
    if (!ckpt_path_is_tmp(names[i])) {
      ckpt_dir_info info;
      pending = ckpt_dir_classify(io, p, CKPT_FINALIZED_ANY, &info, &e) == CKPT_OK &&
                info.state == CKPT_DIR_UNFINALIZED && info.pending;
      if (!pending) {
        free(p);
        continue;
      }
    }
    ckpt_io_kind k = CKPT_IO_KIND_MISSING;
    if (ckpt_io_stat(io, p, &k, &size, &e) != CKPT_OK || k != CKPT_IO_KIND_DIR) {
      const char *why = k == CKPT_IO_KIND_SYMLINK   ? "a symlink, not a directory"
                        : k == CKPT_IO_KIND_FILE    ? "a file, not a directory"
                        : k == CKPT_IO_KIND_MISSING ? "vanished"
                                                    : "not a directory";
      if (json) {
        cJSON *o = cJSON_CreateObject();
        cli_jadd(o, "name", cJSON_CreateString(names[i]), &oom);
        cli_jadd(o, "reason", cJSON_CreateString(why), &oom);
        cli_jpush(skipped, o, &oom);
      } else {
        printf("kept     %s (%s)\n", names[i], why);
      }
      free(p);
      continue;
    }
    uint64_t b = du(io, p, 0);
    ckpt_status st = dry       ? CKPT_OK
                     : pending ? ckpt_dir_remove_hidden(io, p, NULL, &e)
                               : ckpt_io_remove_tree(io, p, &e);
    if (st != CKPT_OK) {
      fprintf(stderr, "ckpt: gc: cannot remove '%s': %s\n", p, e.message);
      rc = CLI_EXIT_ERROR;
      free(p);
      continue;
    }
    n_removed++;
    bytes += b;
    if (json) {
      cJSON *o = cJSON_CreateObject();
      cli_jadd(o, "name", cJSON_CreateString(names[i]), &oom);
      cli_jadd(o, "path", cJSON_CreateString(p), &oom);
      cli_jadd(o, "bytes", cli_juint(b), &oom);
      cli_jpush(removed, o, &oom);
    } else {
      char hb[32];
      printf("%s %s (%s)\n", dry ? "would remove" : "removed ", names[i], cli_format_bytes(b, hb));
    }
    free(p);
  }
  if (!dry && n_removed > 0)
    ckpt_io_fsync_dir(io, dir, NULL);
  ckpt_io_free_names(names, n);
  if (json) {
    cJSON *doc = cJSON_CreateObject();
    cli_jadd(doc, "path", cJSON_CreateString(dir), &oom);
    cli_jadd(doc, "dry_run", cJSON_CreateBool(dry), &oom);
    cli_jadd(doc, "removed", removed, &oom);
    cli_jadd(doc, "skipped", skipped, &oom);
    cli_jadd(doc, "bytes", cli_juint(bytes), &oom);
    int jrc = cli_json_emit(doc, oom);
    if (rc == CLI_EXIT_OK)
      rc = jrc;
  } else if (oom) {
    fprintf(stderr, "ckpt: out of memory\n");
    rc = CLI_EXIT_ERROR;
  } else {
    char hb[32];
    printf("%zu temporary director%s %s, %s\n", n_removed, n_removed == 1 ? "y" : "ies",
           dry ? "would be removed" : "removed", cli_format_bytes(bytes, hb));
  }
  free(dir);
  return rc;
}
