/* ckpt/io.h — the I/O layer every file operation of the runtime goes through.
 *
 * Two reasons it exists: tests (and cautious users) can inject a failure at any call site
 * through a fault hook, and backends (plain POSIX calls, the async engine) sit behind one
 * set of functions. Every function reports failures as a ckpt_status plus a message naming
 * the path and the system error; none retries silently, none loses a short write.
 *
 * A ckpt_io is created by the caller and must outlive every checkpointer using it.
 * ckpt_io_default() returns a process-wide instance without faults; it is never freed. */
#ifndef CKPT_IO_H
#define CKPT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/api.h"
#include "ckpt/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_IO_OP_LIST(X) \
  X(OPEN, "open")          \
  X(WRITE, "write")        \
  X(READ, "read")          \
  X(FSYNC, "fsync")        \
  X(CLOSE, "close")        \
  X(RENAME, "rename")      \
  X(MKDIR, "mkdir")        \
  X(REMOVE, "remove")      \
  X(STAT, "stat")          \
  X(LIST, "list")

typedef enum ckpt_io_op {
#define CKPT_IO_OP_ENUM_(id, name) CKPT_IO_##id,
  CKPT_IO_OP_LIST(CKPT_IO_OP_ENUM_)
#undef CKPT_IO_OP_ENUM_
  CKPT_IO_OP_COUNT_
} ckpt_io_op;

CKPT_API const char *ckpt_io_op_name(ckpt_io_op op);

/* Called before every operation; return 0 to let it run, or an errno value (ENOSPC, EIO, ...)
 * to make it fail with that error instead. For WRITE, returning -1 makes the write short
 * (half the bytes), which the layer must then complete or report. Called from any thread. */
typedef int (*ckpt_io_fault_fn)(void *arg, ckpt_io_op op, const char *path);

typedef struct ckpt_io ckpt_io;

CKPT_API ckpt_io *ckpt_io_default(void);
/* *out owned by the caller; release with ckpt_io_free once nothing uses it. */
CKPT_API ckpt_status ckpt_io_new(ckpt_io **out, ckpt_error *err);
CKPT_API void ckpt_io_free(ckpt_io *io);
CKPT_API void ckpt_io_set_fault(ckpt_io *io, ckpt_io_fault_fn fn, void *arg);
/* Number of operations of each kind performed so far (for fault-injection sweeps). */
CKPT_API uint64_t ckpt_io_count(const ckpt_io *io, ckpt_io_op op);
/* For I/O performed outside the functions below (an io_uring submission, say): counts op and
 * consults the fault hook exactly as they do. Returns 0 (go ahead), an errno to fail with, or
 * -1 for a WRITE that should be made short. io NULL means ckpt_io_default(). */
CKPT_API int ckpt_io_fault_check(ckpt_io *io, ckpt_io_op op, const char *path);

/* File descriptors: flags/mode as for open(2); O_CLOEXEC is always added. */
CKPT_API ckpt_status ckpt_io_open(ckpt_io *io, const char *path, int flags, int mode, int *fd,
                                  ckpt_error *err);
/* pwrite loop: writes all n bytes at offset or fails. path is for messages. */
CKPT_API ckpt_status ckpt_io_pwrite_all(ckpt_io *io, int fd, const char *path, const void *buf,
                                        size_t n, uint64_t offset, ckpt_error *err);
/* pread loop: reads up to n bytes at offset; *got < n only at end of file. */
CKPT_API ckpt_status ckpt_io_pread_all(ckpt_io *io, int fd, const char *path, void *buf, size_t n,
                                       uint64_t offset, size_t *got, ckpt_error *err);
CKPT_API ckpt_status ckpt_io_fsync(ckpt_io *io, int fd, const char *path, ckpt_error *err);
/* Closes fd even on failure (a failed close still releases it). */
CKPT_API ckpt_status ckpt_io_close(ckpt_io *io, int fd, const char *path, ckpt_error *err);

/* Paths */
CKPT_API ckpt_status ckpt_io_mkdir(ckpt_io *io, const char *path,
                                   ckpt_error *err); /* mode 0777 & umask */
/* mkdir -p for the components of path that are missing. */
CKPT_API ckpt_status ckpt_io_mkdirs(ckpt_io *io, const char *path, ckpt_error *err);
CKPT_API ckpt_status ckpt_io_rename(ckpt_io *io, const char *from, const char *to, ckpt_error *err);
/* Atomically swaps two existing paths (renameat2 RENAME_EXCHANGE; counted as a RENAME). When
 * the kernel or file system cannot exchange, returns CKPT_OK with *exchanged false and changes
 * nothing, so the caller can fall back to two renames. */
CKPT_API ckpt_status ckpt_io_exchange(ckpt_io *io, const char *a, const char *b, bool *exchanged,
                                      ckpt_error *err);
/* Removes a file, or a directory tree without following symlinks; a missing path is OK. */
CKPT_API ckpt_status ckpt_io_remove_tree(ckpt_io *io, const char *path, ckpt_error *err);
/* Opens the directory, fsyncs it and closes it. */
CKPT_API ckpt_status ckpt_io_fsync_dir(ckpt_io *io, const char *path, ckpt_error *err);

typedef enum ckpt_io_kind {
  CKPT_IO_KIND_MISSING = 0,
  CKPT_IO_KIND_FILE,
  CKPT_IO_KIND_DIR,
  CKPT_IO_KIND_SYMLINK,
  CKPT_IO_KIND_OTHER
} ckpt_io_kind;
/* lstat: does not follow symlinks. A missing path is not an error (kind MISSING). */
CKPT_API ckpt_status ckpt_io_stat(ckpt_io *io, const char *path, ckpt_io_kind *kind, uint64_t *size,
                                  ckpt_error *err);
/* Names in a directory, sorted, without "." and "..". *names is an array of *count strings;
 * release with ckpt_io_free_names. */
CKPT_API ckpt_status ckpt_io_list_dir(ckpt_io *io, const char *path, char ***names, size_t *count,
                                      ckpt_error *err);
CKPT_API void ckpt_io_free_names(char **names, size_t count);

/* Whole files. write_file creates or truncates path, writes n bytes and, when durable,
 * fsyncs before closing. read_file reads at most max_bytes (error beyond) into a malloc'ed
 * buffer with one extra NUL byte after the data; caller frees *data. Symlinks are refused
 * (CKPT_EUNSAFE) so a planted link cannot redirect a read or write outside a checkpoint. */
CKPT_API ckpt_status ckpt_io_write_file(ckpt_io *io, const char *path, const void *data, size_t n,
                                        bool durable, ckpt_error *err);
CKPT_API ckpt_status ckpt_io_read_file(ckpt_io *io, const char *path, size_t max_bytes, void **data,
                                       size_t *n, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
