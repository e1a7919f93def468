/* cli/verify_report.c — the report `ckpt verify` builds for one checkpoint: every problem with
 * the item, array, chunk and file it concerns, notes about what could not be checked fully, and
 * its text and JSON forms (docs/cli.md). Damage and checks that could not run are told apart by
 * the status code, because they lead to different exit statuses (1 and 2). */
#include <stdlib.h>
#include <string.h>

#include "verify.h"

void vreport_problem(vreport *r, ckpt_status code, const char *item, const char *array,
                     const char *chunk, uint64_t linear, const char *file, const char *reason) {
  if (r->n_problems == r->cap_problems) {
    size_t nc = r->cap_problems ? r->cap_problems * 2 : 8;
    problem *g = realloc(r->problems, nc * sizeof *g);
    if (g == NULL) {
      r->oom = true;
      return;
    }
    r->problems = g;
    r->cap_problems = nc;
  }
  problem *p = &r->problems[r->n_problems++];
  memset(p, 0, sizeof *p);
  p->damage = !(code == CKPT_EIO || code == CKPT_ENOMEM || code == CKPT_EUNSUPPORTED ||
                code == CKPT_ENOSPC || code == CKPT_ECANCELED);
  p->item = cli_strdup(item);
  p->array = cli_strdup(array);
  p->chunk = cli_strdup(chunk);
  p->linear = linear;
  p->file = cli_strdup(file);
  p->reason = cli_strdup(reason);
  if ((item && !p->item) || (array && !p->array) || (chunk && !p->chunk) || (file && !p->file) ||
      !p->reason)
    r->oom = true;
}

void vreport_note(vreport *r, char *note) {
  if (note == NULL) {
    r->oom = true;
    return;
  }
  char **g = realloc(r->notes, (r->n_notes + 1) * sizeof *g);
  if (g == NULL) {
    free(note);
    r->oom = true;
    return;
  }
  r->notes = g;
  r->notes[r->n_notes++] = note;
}

void vreport_free(vreport *r) {
  for (size_t i = 0; i < r->n_problems; i++) {
    problem *p = &r->problems[i];
    free(p->item);
    free(p->array);
    free(p->chunk);
    free(p->file);
    free(p->reason);
  }
  free(r->problems);
  for (size_t i = 0; i < r->n_notes; i++)
    free(r->notes[i]);
  free(r->notes);
  free(r->path);
  memset(r, 0, sizeof *r);
}

static int cmp_str(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return (a != NULL) - (b != NULL);
  return strcmp(a, b);
}

static int cmp_problems(const void *x, const void *y) {
  const problem *a = x, *b = y;
  int c = cmp_str(a->item, b->item);
  if (c == 0)
    c = cmp_str(a->array, b->array);
  if (c == 0 && a->linear != b->linear)
    c = a->linear < b->linear ? -1 : 1;
  if (c == 0)
    c = cmp_str(a->chunk, b->chunk);
  if (c == 0)
    c = cmp_str(a->file, b->file);
  if (c == 0)
    c = cmp_str(a->reason, b->reason);
  return c;
}

void vreport_sort(vreport *r) {
  if (r->n_problems > 1)
    qsort(r->problems, r->n_problems, sizeof *r->problems, cmp_problems);
}

/* ---------------------------------------------------------------- output */

size_t vreport_count(const vreport *r, bool damage) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_problems; i++)
    n += r->problems[i].damage == damage;
  return n;
}

void vreport_print(const vreport *r) {
  if (r->skipped) {
    printf("%s: skipped: %s\n", r->path, r->skip_reason);
    return;
  }
  size_t dmg = vreport_count(r, true), errs = vreport_count(r, false);
  printf("%s: %s (%zu item%s, %zu arra%s, %llu chunk%s, %zu file%s checked)\n", r->path,
         dmg    ? "DAMAGED"
         : errs ? "NOT VERIFIED"
                : "ok",
         r->n_items, r->n_items == 1 ? "" : "s", r->n_arrays, r->n_arrays == 1 ? "y" : "ys",
         (unsigned long long)r->n_chunks, r->n_chunks == 1 ? "" : "s", r->n_files,
         r->n_files == 1 ? "" : "s");
  for (size_t i = 0; i < r->n_problems; i++) {
    const problem *p = &r->problems[i];
    printf("  %s: ", p->damage ? "damaged" : "error");
    if (p->item && p->item[0])
      printf("item '%s': ", p->item);
    printf("%s\n", p->reason);
  }
  for (size_t i = 0; i < r->n_notes; i++)
    printf("  note: %s\n", r->notes[i]);
}

cJSON *vreport_json(const vreport *r, bool *oom) {
  cJSON *o = cJSON_CreateObject();
  cli_jadd(o, "path", cJSON_CreateString(r->path), oom);
  cli_jadd(o, "step", r->has_step ? cli_jint(r->step) : cJSON_CreateNull(), oom);
  size_t dmg = vreport_count(r, true), errs = vreport_count(r, false);
  cli_jadd(o, "ok", cJSON_CreateBool(!r->skipped && dmg == 0 && errs == 0), oom);
  cli_jadd(o, "damaged", cJSON_CreateBool(dmg > 0), oom);
  cli_jadd(o, "skipped", cJSON_CreateBool(r->skipped), oom);
  cli_jadd(o, "skip_reason", cli_jstr(r->skipped ? r->skip_reason : NULL), oom);
  cli_jadd(o, "items", cli_juint(r->n_items), oom);
  cli_jadd(o, "arrays", cli_juint(r->n_arrays), oom);
  cli_jadd(o, "chunks", cli_juint(r->n_chunks), oom);
  cli_jadd(o, "files", cli_juint(r->n_files), oom);
  cJSON *ps = cJSON_CreateArray();
  for (size_t i = 0; i < r->n_problems; i++) {
    const problem *p = &r->problems[i];
    cJSON *j = cJSON_CreateObject();
    cli_jadd(j, "kind", cJSON_CreateString(p->damage ? "damaged" : "error"), oom);
    cli_jadd(j, "item", cli_jstr(p->item), oom);
    cli_jadd(j, "array", cli_jstr(p->array), oom);
    cli_jadd(j, "chunk", cli_jstr(p->chunk), oom);
    cli_jadd(j, "file", cli_jstr(p->file), oom);
    cli_jadd(j, "reason", cJSON_CreateString(p->reason), oom);
    cli_jpush(ps, j, oom);
  }
  cli_jadd(o, "problems", ps, oom);
  cJSON *ns = cJSON_CreateArray();
  for (size_t i = 0; i < r->n_notes; i++)
    cli_jpush(ns, cJSON_CreateString(r->notes[i]), oom);
  cli_jadd(o, "notes", ns, oom);
  return o;
}
