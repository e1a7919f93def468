/* core_fixture.h — shared by the core runtime tests (test_registry, test_io, test_commit,
 * test_composite, test_checkpointer): temporary directories, file helpers, and two small test
 * handlers with hand-written descriptors, registered the way a user's hand-written handler is.
 *
 *   BlobHandler  (typestr "ckpt_tests.BlobHandler"): BlobSave { text; defer } writes
 *                <dir>/blob.txt (from a deferred job when defer is set); BlobRestore { } reads
 *                it back as a JSON string value. Has metadata and finalize hooks.
 *   OtherHandler (typestr "ckpt_tests.OtherHandler"): OtherSave { text } writes <dir>/other.txt;
 *                OtherRestore { } reads it back. No optional hooks. */
#ifndef CKPT_TESTS_CORE_FIXTURE_H
#define CKPT_TESTS_CORE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "ckpt/ckpt.h"

typedef struct cf_BlobSave {
  ckpt_args base;
  char *text;
  bool defer;
} cf_BlobSave;

typedef struct cf_BlobRestore {
  ckpt_args base;
} cf_BlobRestore;

typedef struct cf_OtherSave {
  ckpt_args base;
  char *text;
} cf_OtherSave;

typedef struct cf_OtherRestore {
  ckpt_args base;
} cf_OtherRestore;

extern const ckpt_args_desc cf_BlobSave_desc;
extern const ckpt_args_desc cf_BlobRestore_desc;
extern const ckpt_args_desc cf_OtherSave_desc;
extern const ckpt_args_desc cf_OtherRestore_desc;
extern const ckpt_handler_desc cf_BlobHandler_desc;
extern const ckpt_handler_desc cf_OtherHandler_desc;

/* Calls of BlobHandler's finalize hook in this process. */
extern int cf_blob_finalize_calls;

/* Registers both test handlers with their args (asserts success). */
void cf_register(void);

/* Heap args (ckpt_args_delete). */
ckpt_args *cf_blob_save(const char *text, bool defer);
ckpt_args *cf_blob_restore(void);
ckpt_args *cf_other_save(const char *text);
ckpt_args *cf_other_restore(void);

/* A fresh directory under /tmp (malloc'ed path); cf_rmtree removes it recursively. */
char *cf_tmpdir(void);
void cf_rmtree(const char *path);
/* dir + "/" + name (malloc'ed). */
char *cf_join(const char *dir, const char *name);
/* Whole file as a NUL-terminated malloc'ed string, or NULL when it cannot be read. */
char *cf_slurp(const char *path);
bool cf_exists(const char *path);
bool cf_is_dir(const char *path);
void cf_write(const char *path, const char *text);
/* Number of entries of a directory (without . and ..); -1 if it cannot be listed. */
int cf_count_entries(const char *dir);
/* Runs a shell command (asserting it exits 0) and returns its stdout (malloc'ed). */
char *cf_run(const char *cmd);

/* A fault hook that fails the nth consulted operation (1-based, counting every op) with err,
 * and counts them all. Set nth to 0 to only count. */
typedef struct cf_fault {
  unsigned long seen;
  unsigned long nth;
  int err;
  int fired_op; /* ckpt_io_op of the failed operation, or -1 */
  char fired_path[4096];
} cf_fault;
int cf_fault_hook(void *arg, ckpt_io_op op, const char *path);

#endif
