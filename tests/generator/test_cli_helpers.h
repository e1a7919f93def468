/* test_cli_helpers.h — running the real ckptgen binary on files in a temporary directory, for
 * the generator's diagnostic and command-line tests. */
#ifndef CKPT_TEST_CLI_HELPERS_H
#define CKPT_TEST_CLI_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cg_result {
  int status;  /* exit status, or 128 + signal when killed */
  char *out;   /* stdout (heap, NUL-terminated) */
  char *err;   /* stderr (heap, NUL-terminated) */
  size_t out_len, err_len;
} cg_result;

/* A fresh directory under /tmp (heap string); remove with cg_tmpdir_remove. */
char *cg_tmpdir_new(void);
/* rm -rf dir, then frees the string. */
void cg_tmpdir_remove(char *dir);
/* Writes data to dir/rel, creating subdirectories. */
void cg_write_bytes(const char *dir, const char *rel, const void *data, size_t len);
void cg_write_text(const char *dir, const char *rel, const char *text);
/* The contents of dir/rel (heap, NUL-terminated) or NULL if it does not exist. */
char *cg_read_file(const char *dir, const char *rel, size_t *len);
bool cg_exists(const char *dir, const char *rel);
/* Runs CKPTGEN_PATH with args (NULL-terminated) in directory cwd. */
cg_result cg_run(const char *cwd, const char *const *args);
void cg_run_free(cg_result *r);
/* Number of lines in s that contain "error:" after the position. */
int cg_count_errors(const char *s);

#endif
