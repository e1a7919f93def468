/* io/posix_io.c — the POSIX implementation of ckpt/io.h.
 *
 * Every file operation of the runtime passes through here so that (1) a test can make any
 * single call site fail through the fault hook, and (2) the loops that POSIX leaves to the
 * caller (short writes, EINTR) are written once. Before each system call the hook is
 * consulted and the per-operation counter incremented; a hook returning an errno makes the
 * call fail exactly as if the kernel had returned it.
 *
 * Paths that come from inside a checkpoint are untrusted: whole-file reads and writes use
 * O_NOFOLLOW (a planted symlink cannot redirect them), reads refuse non-regular files (a FIFO
 * would block forever), and the recursive remove never follows a symlink. */
#include "ckpt/io.h"
#include "util/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ckpt_io {
  pthread_mutex_t mu; /* guards fault/fault_arg so a hook and its argument change together */
  ckpt_io_fault_fn fault;
  void *fault_arg;
  _Atomic uint64_t counts[CKPT_IO_OP_COUNT_];
  bool is_default;
};

static ckpt_io default_io = {.mu = PTHREAD_MUTEX_INITIALIZER, .is_default = true};

const char *ckpt_io_op_name(ckpt_io_op op) {
  switch (op) {
#define CKPT_IO_OP_NAME_(id, name) \
  case CKPT_IO_##id:               \
    return name;
    CKPT_IO_OP_LIST(CKPT_IO_OP_NAME_)
#undef CKPT_IO_OP_NAME_
    default:
      return "unknown";
  }
}

ckpt_io *ckpt_io_default(void) {
  return &default_io;
}

ckpt_status ckpt_io_new(ckpt_io **out, ckpt_error *err) {
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_new: out is NULL");
  *out = NULL;
  ckpt_io *io = calloc(1, sizeof *io);
  if (io == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "ckpt_io_new: out of memory");
  int rc = pthread_mutex_init(&io->mu, NULL);
  if (rc != 0) {
    free(io);
    return ckpt_error_errno(err, rc, "ckpt_io_new: cannot create mutex");
  }
  for (int i = 0; i < CKPT_IO_OP_COUNT_; i++)
    atomic_init(&io->counts[i], 0);
  *out = io;
  return CKPT_OK;
}

void ckpt_io_free(ckpt_io *io) {
  if (io == NULL || io->is_default)
    return;
  pthread_mutex_destroy(&io->mu);
  free(io);
}

void ckpt_io_set_fault(ckpt_io *io, ckpt_io_fault_fn fn, void *arg) {
  if (io == NULL)
    return;
  pthread_mutex_lock(&io->mu);
  io->fault = fn;
  io->fault_arg = arg;
  pthread_mutex_unlock(&io->mu);
}

uint64_t ckpt_io_count(const ckpt_io *io, ckpt_io_op op) {
  if (io == NULL || op < 0 || op >= CKPT_IO_OP_COUNT_)
    return 0;
  return atomic_load(&((ckpt_io *)io)->counts[op]);
}

static ckpt_io *resolve(ckpt_io *io) {
  return io != NULL ? io : &default_io;
}

/* Counts the operation and asks the hook whether it should fail. Returns 0 (run it), an errno
 * (fail with it) or -1 (WRITE only: make it short). */
static int consult(ckpt_io *io, ckpt_io_op op, const char *path) {
  atomic_fetch_add(&io->counts[op], 1);
  pthread_mutex_lock(&io->mu);
  ckpt_io_fault_fn fn = io->fault;
  void *arg = io->fault_arg;
  pthread_mutex_unlock(&io->mu);
  if (fn == NULL)
    return 0;
  int r = fn(arg, op, path != NULL ? path : "");
  if (r == -1 && op != CKPT_IO_WRITE)
    return EIO; /* "short" only means something for writes */
  if (r < -1)
    return EIO; /* not an errno: fail rather than ignore */
  return r;
}

int ckpt_io_fault_check(ckpt_io *io, ckpt_io_op op, const char *path) {
  if (op < 0 || op >= CKPT_IO_OP_COUNT_)
    return 0;
  return consult(resolve(io), op, path);
}

/* ---------------------------------------------------------------- file descriptors */

/* open(2) with EINTR retried. O_NOFOLLOW failures (ELOOP) become CKPT_EUNSAFE. */
static ckpt_status do_open(ckpt_io *io, const char *path, int flags, int mode, int *fd,
                           ckpt_error *err) {
  int f = consult(io, CKPT_IO_OPEN, path);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot open '%s'", path);
  int r;
  do {
    r = open(path, flags | O_CLOEXEC, mode);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    if (e == ELOOP && (flags & O_NOFOLLOW)) {
      return ckpt_error_set(err, CKPT_EUNSAFE, "refusing to open '%s': it is a symlink", path);
    }
    return ckpt_error_errno(err, e, "cannot open '%s'", path);
  }
  *fd = r;
  return CKPT_OK;
}

ckpt_status ckpt_io_open(ckpt_io *io, const char *path, int flags, int mode, int *fd,
                         ckpt_error *err) {
  if (path == NULL || fd == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_open: path or fd is NULL");
  *fd = -1;
  return do_open(resolve(io), path, flags, mode, fd, err);
}

ckpt_status ckpt_io_pwrite_all(ckpt_io *io, int fd, const char *path, const void *buf, size_t n,
                               uint64_t offset, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL)
    path = "(unnamed file)";
  if (buf == NULL && n > 0)
    return ckpt_error_set(err, CKPT_EINVAL, "write to '%s': buffer is NULL", path);
  const unsigned char *p = buf;
  size_t done = 0;
  /* One iteration per write(2) call, each consulted and counted, so a sweep can fail the
   * second half of a write that the kernel (or the hook) made short. */
  while (done < n) {
    size_t want = n - done;
    if (want > (size_t)SSIZE_MAX)
      want = (size_t)SSIZE_MAX;
    int f = consult(io, CKPT_IO_WRITE, path);
    if (f > 0)
      return ckpt_error_errno(err, f, "cannot write '%s'", path);
    if (f == -1)
      want = (want + 1) / 2; /* injected short write: at least one byte */
    ssize_t w = pwrite(fd, p + done, want, (off_t)(offset + done));
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return ckpt_error_errno(err, errno, "cannot write '%s'", path);
    }
    if (w == 0) {
      return ckpt_error_set(err, CKPT_EIO,
                            "cannot write '%s': the device accepted no bytes at offset %llu", path,
                            (unsigned long long)(offset + done));
    }
    done += (size_t)w;
  }
  return CKPT_OK;
}

ckpt_status ckpt_io_pread_all(ckpt_io *io, int fd, const char *path, void *buf, size_t n,
                              uint64_t offset, size_t *got, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL)
    path = "(unnamed file)";
  if (got != NULL)
    *got = 0;
  if (buf == NULL && n > 0)
    return ckpt_error_set(err, CKPT_EINVAL, "read of '%s': buffer is NULL", path);
  unsigned char *p = buf;
  size_t done = 0;
  while (done < n) {
    size_t want = n - done;
    if (want > (size_t)SSIZE_MAX)
      want = (size_t)SSIZE_MAX;
    int f = consult(io, CKPT_IO_READ, path);
    if (f != 0)
      return ckpt_error_errno(err, f, "cannot read '%s'", path);
    ssize_t r = pread(fd, p + done, want, (off_t)(offset + done));
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return ckpt_error_errno(err, errno, "cannot read '%s'", path);
    }
    if (r == 0)
      break; /* end of file */
    done += (size_t)r;
  }
  if (got != NULL)
    *got = done;
  return CKPT_OK;
}

ckpt_status ckpt_io_fsync(ckpt_io *io, int fd, const char *path, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL)
    path = "(unnamed file)";
  int f = consult(io, CKPT_IO_FSYNC, path);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot fsync '%s'", path);
  int r;
  do {
    r = fsync(fd);
  } while (r < 0 && errno == EINTR);
  /* Directories on some file systems do not support fsync (EINVAL); nothing is lost then. */
  if (r < 0 && errno != EINVAL)
    return ckpt_error_errno(err, errno, "cannot fsync '%s'", path);
  return CKPT_OK;
}

ckpt_status ckpt_io_close(ckpt_io *io, int fd, const char *path, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL)
    path = "(unnamed file)";
  int f = consult(io, CKPT_IO_CLOSE, path);
  /* The descriptor is released even when the hook fails the call: callers never retry a
   * close, so skipping it would leak the descriptor. */
  int r = close(fd);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot close '%s'", path);
  /* On Linux the descriptor is gone after EINTR too; retrying could close another file. */
  if (r < 0 && errno != EINTR)
    return ckpt_error_errno(err, errno, "cannot close '%s'", path);
  return CKPT_OK;
}

/* ---------------------------------------------------------------- paths */

ckpt_status ckpt_io_mkdir(ckpt_io *io, const char *path, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_mkdir: path is NULL");
  int f = consult(io, CKPT_IO_MKDIR, path);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot create directory '%s'", path);
  int r;
  do {
    r = mkdir(path, 0777);
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    return ckpt_error_errno(err, errno, "cannot create directory '%s'", path);
  return CKPT_OK;
}

/* One mkdir of ckpt_io_mkdirs: an existing directory (or a symlink to one, as user paths such
 * as /tmp may be) is fine. *created tells whether this call made it. */
static ckpt_status mkdir_existing_ok(ckpt_io *io, const char *path, bool *created,
                                     ckpt_error *err) {
  *created = false;
  int f = consult(io, CKPT_IO_MKDIR, path);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot create directory '%s'", path);
  int r;
  do {
    r = mkdir(path, 0777);
  } while (r < 0 && errno == EINTR);
  if (r == 0) {
    *created = true;
    return CKPT_OK;
  }
  int e = errno;
  struct stat sb;
  if (e == EEXIST && stat(path, &sb) == 0) {
    if (S_ISDIR(sb.st_mode))
      return CKPT_OK;
    return ckpt_error_set(err, CKPT_EEXIST,
                          "cannot create directory '%s': it exists and is not a directory", path);
  }
  return ckpt_error_errno(err, e, "cannot create directory '%s'", path);
}

ckpt_status ckpt_io_mkdirs(ckpt_io *io, const char *path, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL || path[0] == '\0')
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_mkdirs: empty path");
  int f = consult(io, CKPT_IO_STAT, path);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot stat '%s'", path);
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return CKPT_OK;
  char *buf = strdup(path);
  if (buf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating '%s'", path);
  size_t len = strlen(buf);
  ckpt_status st = CKPT_OK;
  /* Each prefix ending before a '/' (and the whole path) in turn; repeated slashes and the
   * root are skipped. A directory this call creates is durable only once the directory holding
   * its entry is fsync'd: without that, a power loss could drop it (and with it a checkpoint
   * whose save reported success). So each new component's parent is fsync'd — the first
   * pre-existing one included, each created one as the parent of the next. */
  size_t parent_end = 0; /* length of the previous component's prefix (0: "." or "/") */
  for (size_t i = 1; i <= len && st == CKPT_OK; i++) {
    if (i < len && buf[i] != '/')
      continue;
    if (buf[i - 1] == '/')
      continue;
    char saved = buf[i];
    buf[i] = '\0';
    bool created;
    st = mkdir_existing_ok(io, buf, &created, err);
    buf[i] = saved;
    if (st == CKPT_OK && created) {
      char psaved = buf[parent_end];
      const char *parent = parent_end > 0 ? buf : (buf[0] == '/' ? "/" : ".");
      buf[parent_end] = '\0';
      st = ckpt_io_fsync_dir(io, parent, err);
      buf[parent_end] = psaved;
    }
    parent_end = i;
  }
  free(buf);
  return st;
}

ckpt_status ckpt_io_rename(ckpt_io *io, const char *from, const char *to, ckpt_error *err) {
  io = resolve(io);
  if (from == NULL || to == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_rename: NULL path");
  int f = consult(io, CKPT_IO_RENAME, from);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot rename '%s' to '%s'", from, to);
  int r;
  do {
    r = rename(from, to);
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    return ckpt_error_errno(err, errno, "cannot rename '%s' to '%s'", from, to);
  return CKPT_OK;
}

ckpt_status ckpt_io_exchange(ckpt_io *io, const char *a, const char *b, bool *exchanged,
                             ckpt_error *err) {
  io = resolve(io);
  if (exchanged != NULL)
    *exchanged = false;
  if (a == NULL || b == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_exchange: NULL path");
  /* An injected errno takes the same path as a real one, so a hook returning EINVAL makes
   * this behave like a file system without RENAME_EXCHANGE. */
  int r = 0, e = consult(io, CKPT_IO_RENAME, a);
  if (e == 0) {
    do {
      r = renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
      e = errno;
  }
  if (e != 0) {
    /* Not supported by this kernel or file system: the caller falls back to two renames. */
    if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP)
      return CKPT_OK;
    return ckpt_error_errno(err, e, "cannot exchange '%s' and '%s'", a, b);
  }
  if (exchanged != NULL)
    *exchanged = true;
  return CKPT_OK;
}

ckpt_status ckpt_io_stat(ckpt_io *io, const char *path, ckpt_io_kind *kind, uint64_t *size,
                         ckpt_error *err) {
  io = resolve(io);
  if (kind != NULL)
    *kind = CKPT_IO_KIND_MISSING;
  if (size != NULL)
    *size = 0;
  if (path == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_stat: path is NULL");
  int f = consult(io, CKPT_IO_STAT, path);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot stat '%s'", path);
  struct stat sb;
  if (lstat(path, &sb) < 0) {
    /* ENOTDIR: a prefix is a file, so the path cannot exist. */
    if (errno == ENOENT || errno == ENOTDIR)
      return CKPT_OK;
    return ckpt_error_errno(err, errno, "cannot stat '%s'", path);
  }
  ckpt_io_kind k = CKPT_IO_KIND_OTHER;
  if (S_ISREG(sb.st_mode))
    k = CKPT_IO_KIND_FILE;
  else if (S_ISDIR(sb.st_mode))
    k = CKPT_IO_KIND_DIR;
  else if (S_ISLNK(sb.st_mode))
    k = CKPT_IO_KIND_SYMLINK;
  if (kind != NULL)
    *kind = k;
  if (size != NULL)
    *size = (uint64_t)sb.st_size;
  return CKPT_OK;
}

void ckpt_io_free_names(char **names, size_t count) {
  if (names == NULL)
    return;
  for (size_t i = 0; i < count; i++)
    free(names[i]);
  free(names);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the names in an open directory stream (without "." and ".."), sorted. Closes dir. */
static ckpt_status read_names(DIR *dir, const char *path, char ***names, size_t *count,
                              ckpt_error *err) {
  char **v = NULL;
  size_t n = 0, cap = 0;
  ckpt_status st = CKPT_OK;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(dir);
    if (e == NULL) {
      if (errno != 0)
        st = ckpt_error_errno(err, errno, "cannot list directory '%s'", path);
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      char **nv = realloc(v, ncap * sizeof *nv);
      if (nv == NULL) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s'", path);
        break;
      }
      v = nv;
      cap = ncap;
    }
    v[n] = strdup(e->d_name);
    if (v[n] == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s'", path);
      break;
    }
    n++;
  }
  closedir(dir);
  if (st != CKPT_OK) {
    ckpt_io_free_names(v, n);
    return st;
  }
  if (n > 1)
    qsort(v, n, sizeof *v, cmp_names);
  *names = v;
  *count = n;
  return CKPT_OK;
}

/* Opens a directory stream relative to at_fd without following a symlink at the last
 * component. Counts as one LIST operation. */
static ckpt_status open_dir_at(ckpt_io *io, int at_fd, const char *name, const char *path,
                               DIR **out, ckpt_error *err) {
  int f = consult(io, CKPT_IO_LIST, path);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot list directory '%s'", path);
  int fd;
  do {
    fd = openat(at_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ELOOP)
      return ckpt_error_set(err, CKPT_EUNSAFE, "refusing to list '%s': it is a symlink", path);
    return ckpt_error_errno(err, errno, "cannot list directory '%s'", path);
  }
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return ckpt_error_errno(err, e, "cannot list directory '%s'", path);
  }
  *out = d;
  return CKPT_OK;
}

ckpt_status ckpt_io_list_dir(ckpt_io *io, const char *path, char ***names, size_t *count,
                             ckpt_error *err) {
  io = resolve(io);
  if (names == NULL || count == NULL || path == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_list_dir: NULL argument");
  *names = NULL;
  *count = 0;
  DIR *d;
  ckpt_status st = open_dir_at(io, AT_FDCWD, path, path, &d, err);
  if (st != CKPT_OK)
    return st;
  return read_names(d, path, names, count, err);
}

/* Removes the entry `name` of the directory parent_fd (its full path is `path`, for messages
 * and the hook). Directories are emptied first through descriptors, so a symlink swapped in for a
 * directory is unlinked, never followed. */
static ckpt_status remove_at(ckpt_io *io, int parent_fd, const char *name, const char *path,
                             int depth, ckpt_error *err) {
  if (depth > 256)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "cannot remove '%s': nested too deeply", path);
  struct stat sb;
  if (fstatat(parent_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      return CKPT_OK;
    return ckpt_error_errno(err, errno, "cannot stat '%s'", path);
  }
  if (S_ISDIR(sb.st_mode)) {
    DIR *d;
    ckpt_status st = open_dir_at(io, parent_fd, name, path, &d, err);
    if (st != CKPT_OK)
      return st;
    int fd = dirfd(d);
    /* Names are collected before removing, as readdir's behaviour under concurrent unlinks
     * is unspecified; the stream's descriptor stays open for the *at calls. */
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
      int e = errno;
      closedir(d);
      return ckpt_error_errno(err, e, "cannot remove '%s'", path);
    }
    char **names = NULL;
    size_t count = 0;
    st = read_names(d, path, &names, &count, err); /* closes d */
    for (size_t i = 0; st == CKPT_OK && i < count; i++) {
      char *child = ckpt_path_join(path, names[i]);
      if (child == NULL) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory removing '%s'", path);
        break;
      }
      st = remove_at(io, dup_fd, names[i], child, depth + 1, err);
      free(child);
    }
    ckpt_io_free_names(names, count);
    close(dup_fd);
    if (st != CKPT_OK)
      return st;
  }
  int f = consult(io, CKPT_IO_REMOVE, path);
  if (f != 0)
    return ckpt_error_errno(err, f, "cannot remove '%s'", path);
  if (unlinkat(parent_fd, name, S_ISDIR(sb.st_mode) ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT)
    return ckpt_error_errno(err, errno, "cannot remove '%s'", path);
  return CKPT_OK;
}

ckpt_status ckpt_io_remove_tree(ckpt_io *io, const char *path, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL || path[0] == '\0')
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_remove_tree: empty path");
  return remove_at(io, AT_FDCWD, path, path, 0, err);
}

ckpt_status ckpt_io_fsync_dir(ckpt_io *io, const char *path, ckpt_error *err) {
  io = resolve(io);
  int fd;
  ckpt_status st = do_open(io, path, O_RDONLY | O_DIRECTORY, 0, &fd, err);
  if (st != CKPT_OK)
    return st;
  st = ckpt_io_fsync(io, fd, path, err);
  ckpt_status cst = ckpt_io_close(io, fd, path, err);
  return st != CKPT_OK ? st : cst;
}

/* ---------------------------------------------------------------- whole files */

ckpt_status ckpt_io_write_file(ckpt_io *io, const char *path, const void *data, size_t n,
                               bool durable, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_write_file: path is NULL");
  int fd;
  ckpt_status st = do_open(io, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666, &fd, err);
  if (st != CKPT_OK)
    return st;
  st = ckpt_io_pwrite_all(io, fd, path, data, n, 0, err);
  if (st == CKPT_OK && durable)
    st = ckpt_io_fsync(io, fd, path, err);
  ckpt_status cst = ckpt_io_close(io, fd, path, err);
  return st != CKPT_OK ? st : cst;
}

ckpt_status ckpt_io_read_file(ckpt_io *io, const char *path, size_t max_bytes, void **data,
                              size_t *n, ckpt_error *err) {
  io = resolve(io);
  if (path == NULL || data == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_io_read_file: NULL argument");
  *data = NULL;
  if (n != NULL)
    *n = 0;
  int fd;
  /* O_NONBLOCK: opening a FIFO planted in a checkpoint must not hang; it is refused below. */
  ckpt_status st = do_open(io, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, &fd, err);
  if (st != CKPT_OK)
    return st;
  unsigned char *buf = NULL;
  size_t len = 0;
  int f = consult(io, CKPT_IO_STAT, path);
  struct stat sb;
  if (f != 0) {
    st = ckpt_error_errno(err, f, "cannot stat '%s'", path);
  } else if (fstat(fd, &sb) < 0) {
    st = ckpt_error_errno(err, errno, "cannot stat '%s'", path);
  } else if (!S_ISREG(sb.st_mode)) {
    st = ckpt_error_set(err, CKPT_EUNSAFE, "refusing to read '%s': not a regular file", path);
  } else if ((uint64_t)sb.st_size > (uint64_t)max_bytes) {
    st = ckpt_error_set(err, CKPT_ECORRUPT,
                        "'%s' is %llu bytes, more than the %zu bytes allowed for it", path,
                        (unsigned long long)sb.st_size, max_bytes);
  }
  if (st == CKPT_OK) {
    /* Read one byte past the size stat reported, so a file that grew in between is noticed
     * instead of silently truncated. */
    size_t cap = (size_t)sb.st_size + 1;
    buf = malloc(cap + 1);
    if (buf == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s' (%zu bytes)", path, cap);
    } else {
      st = ckpt_io_pread_all(io, fd, path, buf, cap, 0, &len, err);
      if (st == CKPT_OK && len > max_bytes) {
        st = ckpt_error_set(err, CKPT_ECORRUPT,
                            "'%s' grew beyond the %zu bytes allowed for "
                            "it while being read",
                            path, max_bytes);
      } else if (st == CKPT_OK && len == cap) {
        st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' changed size while being read", path);
      }
    }
  }
  ckpt_status cst = ckpt_io_close(io, fd, path, err);
  if (st == CKPT_OK)
    st = cst;
  if (st != CKPT_OK) {
    free(buf);
    return st;
  }
  buf[len] = '\0';
  *data = buf;
  if (n != NULL)
    *n = len;
  return CKPT_OK;
}
