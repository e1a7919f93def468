/* test_manager_util.h — helpers shared by the CheckpointManager tests (test_manager*.c):
 * temporary directories, JSON/StandardSave args, and a manager opened with asserted success. */
#ifndef CKPT_TESTS_TEST_MANAGER_UTIL_H
#define CKPT_TESTS_TEST_MANAGER_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "ckpt/ckpt.h"

/* A fresh directory under /tmp (malloc'ed path); mt_rmtree removes it recursively. */
char *mt_tmpdir(void);
void mt_rmtree(const char *path);
/* printf-style path (malloc'ed). */
char *mt_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool mt_exists(const char *path);
bool mt_is_dir(const char *path);
/* Creates a directory / a file with the given text (asserts success). */
void mt_mkdir(const char *path);
void mt_write(const char *path, const char *text);
/* Whole file (malloc'ed, NUL-terminated) or NULL. */
char *mt_slurp(const char *path);

/* JsonSave {"step": step, "tag": tag} (heap args; ckpt_args_delete). */
ckpt_args *mt_json_save(int64_t step, const char *tag);
/* JsonSave of a JSON text. */
ckpt_args *mt_json_text_save(const char *json);
/* A metrics object {"<name>": value}. */
cJSON *mt_metrics(const char *name, double value);

/* Opens a manager (asserts success). */
ckpt_manager *mt_open(const char *dir, const ckpt_manager_options *o);
/* Closes it (asserts success). */
void mt_close(ckpt_manager *m);
/* Saves (asserts success) and returns *saved. */
bool mt_save(ckpt_manager *m, int64_t step, const ckpt_args *args, const cJSON *metrics,
             bool force);
/* Saves JsonSave {"step": step} in single-item mode; returns *saved. */
bool mt_save_json(ckpt_manager *m, int64_t step);
/* Saves steps first..last (single item, asserts each was saved), each with the metric
 * values[step - first] under name (NAN or name NULL: no metrics at all). */
void mt_save_range(ckpt_manager *m, int64_t first, int64_t last, const char *name,
                   const double *values);
/* Waits for the pending save (asserts success). */
void mt_wait(ckpt_manager *m);
/* The known steps as "1,2,3" (static buffer). */
const char *mt_steps(const ckpt_manager *m);
/* The step directories on disk (finalized or not, anything named) as "a,b,c", sorted. */
const char *mt_ls(const char *dir);

#endif
