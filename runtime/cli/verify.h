/* cli/verify.h — the parts of `ckpt verify` (private to runtime/cli):
 *   verify_report.c  the report of one checkpoint: problems and notes, sorting, text and JSON
 *   verify_check.c   the checks of one checkpoint: markers, metadata files, every chunk
 *   cmd_verify.c     the command: options, checkpoint or directory of steps, exit status */
#ifndef CKPT_CLI_VERIFY_H
#define CKPT_CLI_VERIFY_H

#include "cli.h"

/* ---------------------------------------------------------------- the report */

typedef struct problem {
  bool damage;     /* false: the check itself could not run (I/O error, unsupported) */
  char *item;      /* item label, NULL for the checkpoint itself */
  char *array;     /* parameter name, or NULL */
  char *chunk;     /* chunk key, or NULL */
  uint64_t linear; /* chunk number, for sorting */
  char *file;      /* the file concerned, or NULL */
  char *reason;
} problem;

typedef struct vreport {
  char *path;
  bool has_step;
  int64_t step;
  bool skipped;
  const char *skip_reason;
  size_t n_items, n_arrays, n_files;
  uint64_t n_chunks;
  size_t n_problems, cap_problems;
  problem *problems;
  size_t n_notes;
  char **notes;
  bool oom;
} vreport;

/* Records a problem (copies every string). code decides damage (ECORRUPT, EINCOMPLETE, ...)
 * versus a check that could not run (EIO, ENOMEM, EUNSUPPORTED, ENOSPC, ECANCELED). linear
 * orders chunk problems of one array. Allocation failures set r->oom. */
void vreport_problem(vreport *r, ckpt_status code, const char *item, const char *array,
                     const char *chunk, uint64_t linear, const char *file, const char *reason);
/* Takes note (malloc'ed; NULL means allocation failed). */
void vreport_note(vreport *r, char *note);
/* Sorts the problems (item, array, chunk), so output does not depend on thread timing. */
void vreport_sort(vreport *r);
/* Problems that are damage (damage true) or failed checks (false). */
size_t vreport_count(const vreport *r, bool damage);
void vreport_print(const vreport *r);
/* The report as the JSON object docs/cli.md documents (caller owns it). */
cJSON *vreport_json(const vreport *r, bool *oom);
void vreport_free(vreport *r);

/* Checks the checkpoint (or item directory) at path into *r (r->path set by the caller); draws
 * a progress bar on stderr when progress. */
void verify_checkpoint(ckpt_io *io, const char *path, bool progress, vreport *r);

#endif
