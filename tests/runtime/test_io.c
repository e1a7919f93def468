/* test_io.c — the POSIX I/O layer (io/posix_io.c): whole files, symlink refusal, short writes
 * completed, fault hook and counters, directories and recursive removal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "ckpt/io.h"
#include "core_fixture.h"

static char *dir;
static ckpt_io *io;

static void setup(void) {
  dir = cf_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
}

static void teardown(void) {
  ckpt_io_free(io);
  cf_rmtree(dir);
  free(dir);
}

TestSuite(io, .init = setup, .fini = teardown);

Test(io, write_then_read_round_trips_with_trailing_nul) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *p = cf_join(dir, "f.bin");
  const char data[] = {'a', 0, 'b', (char)0xff};
  cr_assert_eq(ckpt_io_write_file(io, p, data, sizeof data, true, &err), CKPT_OK, "%s",
               err.message);
  void *got = NULL;
  size_t n = 0;
  cr_assert_eq(ckpt_io_read_file(io, p, 100, &got, &n, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(n, sizeof data);
  cr_assert_eq(memcmp(got, data, n), 0);
  cr_assert_eq(((char *)got)[n], '\0');
  free(got);
  /* Rewriting truncates. */
  cr_assert_eq(ckpt_io_write_file(io, p, "x", 1, false, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_read_file(io, p, 100, &got, &n, &err), CKPT_OK);
  cr_assert_eq(n, 1);
  free(got);
  /* An empty file reads as zero bytes with a NUL. */
  cr_assert_eq(ckpt_io_write_file(io, p, NULL, 0, false, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_read_file(io, p, 100, &got, &n, &err), CKPT_OK);
  cr_assert_eq(n, 0);
  cr_assert_eq(((char *)got)[0], '\0');
  free(got);
  free(p);
}

Test(io, read_beyond_the_limit_is_an_error_naming_the_file) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *p = cf_join(dir, "big");
  cf_write(p, "0123456789");
  void *got = (void *)1;
  cr_assert_eq(ckpt_io_read_file(io, p, 9, &got, NULL, &err), CKPT_ECORRUPT);
  cr_assert_null(got);
  cr_assert(strstr(err.message, p) != NULL, "%s", err.message);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_io_read_file(io, p, 10, &got, NULL, &err), CKPT_OK, "%s", err.message);
  free(got);
  free(p);
}

Test(io, missing_file_is_enoent_naming_it) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *p = cf_join(dir, "nope");
  void *got;
  cr_assert_eq(ckpt_io_read_file(io, p, 10, &got, NULL, &err), CKPT_ENOENT);
  cr_assert_eq(err.sys_errno, ENOENT);
  cr_assert(strstr(err.message, p) != NULL, "%s", err.message);
  free(p);
}

Test(io, symlinks_are_refused_for_whole_file_read_and_write) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *target = cf_join(dir, "outside.txt");
  char *link = cf_join(dir, "link");
  cf_write(target, "secret");
  cr_assert_eq(symlink(target, link), 0);
  void *got = NULL;
  cr_assert_eq(ckpt_io_read_file(io, link, 100, &got, NULL, &err), CKPT_EUNSAFE);
  cr_assert(strstr(err.message, link) != NULL, "%s", err.message);
  cr_assert_null(got);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_io_write_file(io, link, "pwned", 5, false, &err), CKPT_EUNSAFE);
  char *still = cf_slurp(target);
  cr_assert_str_eq(still, "secret");
  free(still);
  free(target);
  free(link);
}

Test(io, a_fifo_is_refused_without_blocking) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *p = cf_join(dir, "fifo");
  cr_assert_eq(mkfifo(p, 0600), 0);
  void *got = NULL;
  cr_assert_eq(ckpt_io_read_file(io, p, 100, &got, NULL, &err), CKPT_EUNSAFE);
  cr_assert(strstr(err.message, "not a regular file") != NULL, "%s", err.message);
  free(p);
}

static int always_short(void *arg, ckpt_io_op op, const char *path) {
  (void)arg;
  (void)path;
  return op == CKPT_IO_WRITE ? -1 : 0;
}

Test(io, short_writes_are_completed) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *p = cf_join(dir, "short");
  char data[1000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (char)('a' + i % 26);
  ckpt_io_set_fault(io, always_short, NULL);
  uint64_t before = ckpt_io_count(io, CKPT_IO_WRITE);
  cr_assert_eq(ckpt_io_write_file(io, p, data, sizeof data, false, &err), CKPT_OK, "%s",
               err.message);
  /* Halving each time: 1000 → 500 → 250 ... needs about log2(1000) + 1 calls. */
  cr_assert_geq(ckpt_io_count(io, CKPT_IO_WRITE) - before, 10);
  ckpt_io_set_fault(io, NULL, NULL);
  char *got = cf_slurp(p);
  cr_assert_eq(memcmp(got, data, sizeof data), 0);
  free(got);
  /* A one-byte write still makes progress under a permanent short-write fault. */
  ckpt_io_set_fault(io, always_short, NULL);
  cr_assert_eq(ckpt_io_write_file(io, p, "z", 1, false, &err), CKPT_OK);
  ckpt_io_set_fault(io, NULL, NULL);
  got = cf_slurp(p);
  cr_assert_str_eq(got, "z");
  free(got);
  free(p);
}

Test(io, pwrite_and_pread_at_offsets) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *p = cf_join(dir, "off");
  int fd;
  cr_assert_eq(ckpt_io_open(io, p, O_RDWR | O_CREAT | O_TRUNC, 0644, &fd, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_pwrite_all(io, fd, p, "world", 5, 6, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_pwrite_all(io, fd, p, "hello ", 6, 0, &err), CKPT_OK);
  char buf[32] = {0};
  size_t got = 0;
  cr_assert_eq(ckpt_io_pread_all(io, fd, p, buf, sizeof buf, 0, &got, &err), CKPT_OK);
  cr_assert_eq(got, 11); /* end of file */
  cr_assert_str_eq(buf, "hello world");
  cr_assert_eq(ckpt_io_pread_all(io, fd, p, buf, 3, 6, &got, &err), CKPT_OK);
  cr_assert_eq(got, 3);
  cr_assert_eq(memcmp(buf, "wor", 3), 0);
  cr_assert_eq(ckpt_io_fsync(io, fd, p, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_close(io, fd, p, &err), CKPT_OK);
  /* The descriptor really is closed. */
  cr_assert_eq(fcntl(fd, F_GETFD), -1);
  free(p);
}

typedef struct fail_op {
  ckpt_io_op op;
  int err;
  int calls;
  char last_path[4096];
} fail_op;

static int fail_one_kind(void *arg, ckpt_io_op op, const char *path) {
  fail_op *f = arg;
  f->calls++;
  if (op != f->op)
    return 0;
  strncpy(f->last_path, path, sizeof f->last_path - 1);
  return f->err;
}

Test(io, every_kind_of_operation_can_be_failed_with_the_injected_errno) {
  char *f = cf_join(dir, "file");
  char *sub = cf_join(dir, "sub");
  cf_write(f, "abc");
  ckpt_io_op ops[] = {CKPT_IO_OPEN,   CKPT_IO_WRITE, CKPT_IO_READ,   CKPT_IO_FSYNC, CKPT_IO_CLOSE,
                      CKPT_IO_RENAME, CKPT_IO_MKDIR, CKPT_IO_REMOVE, CKPT_IO_STAT,  CKPT_IO_LIST};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    fail_op fo = {.op = ops[i], .err = ENOSPC};
    ckpt_io_set_fault(io, fail_one_kind, &fo);
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_status st = CKPT_OK;
    void *data = NULL;
    char **names = NULL;
    size_t count = 0;
    ckpt_io_kind kind;
    char *to = cf_join(dir, "renamed");
    switch (ops[i]) {
      case CKPT_IO_OPEN:
      case CKPT_IO_WRITE:
      case CKPT_IO_FSYNC:
      case CKPT_IO_CLOSE:
        st = ckpt_io_write_file(io, f, "xyz", 3, true, &err);
        break;
      case CKPT_IO_READ:
        st = ckpt_io_read_file(io, f, 100, &data, NULL, &err);
        break;
      case CKPT_IO_RENAME:
        st = ckpt_io_rename(io, f, to, &err);
        break;
      case CKPT_IO_MKDIR:
        st = ckpt_io_mkdir(io, sub, &err);
        break;
      case CKPT_IO_REMOVE:
        st = ckpt_io_remove_tree(io, f, &err);
        break;
      case CKPT_IO_STAT:
        st = ckpt_io_stat(io, f, &kind, NULL, &err);
        break;
      case CKPT_IO_LIST:
        st = ckpt_io_list_dir(io, dir, &names, &count, &err);
        break;
      default:
        break;
    }
    ckpt_io_set_fault(io, NULL, NULL);
    cr_assert_eq(st, CKPT_ENOSPC, "op %s: got %s (%s)", ckpt_io_op_name(ops[i]),
                 ckpt_status_name(st), err.message);
    cr_assert_eq(err.sys_errno, ENOSPC);
    cr_assert(strstr(err.message, fo.last_path) != NULL, "op %s: message '%s' lacks path '%s'",
              ckpt_io_op_name(ops[i]), err.message, fo.last_path);
    cr_assert_null(data);
    cr_assert_null(names);
    free(to);
    /* The failed operation did not happen: the file is still there with its content. */
    char *content = cf_slurp(f);
    cr_assert_not_null(content, "op %s removed the file", ckpt_io_op_name(ops[i]));
    free(content);
  }
  cr_assert(!cf_exists(sub));
  free(f);
  free(sub);
}

Test(io, counters_count_each_operation_kind) {
  ckpt_error err = CKPT_ERROR_INIT;
  for (int i = 0; i < CKPT_IO_OP_COUNT_; i++)
    cr_assert_eq(ckpt_io_count(io, (ckpt_io_op)i), 0);
  char *p = cf_join(dir, "c");
  cr_assert_eq(ckpt_io_write_file(io, p, "abc", 3, true, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_OPEN), 1);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_WRITE), 1);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_FSYNC), 1);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_CLOSE), 1);
  cr_assert_eq(ckpt_io_write_file(io, p, "abc", 3, false, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_FSYNC), 1, "no fsync when not durable");
  cr_assert_eq(ckpt_io_fsync_dir(io, dir, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_FSYNC), 2);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_OPEN), 3);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_RENAME), 0);
  cr_assert_str_eq(ckpt_io_op_name(CKPT_IO_MKDIR), "mkdir");
  cr_assert_str_eq(ckpt_io_op_name(CKPT_IO_LIST), "list");
  free(p);
}

Test(io, the_default_instance_exists_and_is_never_freed) {
  ckpt_io *d = ckpt_io_default();
  cr_assert_not_null(d);
  cr_assert_eq(d, ckpt_io_default());
  ckpt_io_free(d); /* a no-op */
  ckpt_error err = CKPT_ERROR_INIT;
  char *p = cf_join(dir, "d");
  cr_assert_eq(ckpt_io_write_file(d, p, "1", 1, false, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_write_file(NULL, p, "2", 1, false, &err), CKPT_OK, "NULL means default");
  free(p);
}

Test(io, mkdirs_creates_missing_components_and_tolerates_existing) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *deep = cf_join(dir, "a/b//c/d/");
  cr_assert_eq(ckpt_io_mkdirs(io, deep, &err), CKPT_OK, "%s", err.message);
  char *d = cf_join(dir, "a/b/c/d");
  cr_assert(cf_is_dir(d));
  cr_assert_eq(ckpt_io_mkdirs(io, deep, &err), CKPT_OK, "existing is fine");
  /* A file in the way is an error naming it. */
  char *file = cf_join(dir, "a/file");
  cf_write(file, "x");
  char *under = cf_join(dir, "a/file/sub");
  cr_assert_neq(ckpt_io_mkdirs(io, under, &err), CKPT_OK);
  cr_assert(strstr(err.message, "a/file") != NULL, "%s", err.message);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_io_mkdirs(io, file, &err), CKPT_EEXIST, "%s", err.message);
  /* mkdir of an existing directory is EEXIST. */
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_io_mkdir(io, d, &err), CKPT_EEXIST);
  free(deep);
  free(d);
  free(file);
  free(under);
}

Test(io, stat_reports_kinds_without_following_links) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *f = cf_join(dir, "f"), *l = cf_join(dir, "l"), *m = cf_join(dir, "missing/x");
  cf_write(f, "12345");
  cr_assert_eq(symlink(dir, l), 0);
  ckpt_io_kind k;
  uint64_t size;
  cr_assert_eq(ckpt_io_stat(io, f, &k, &size, &err), CKPT_OK);
  cr_assert_eq(k, CKPT_IO_KIND_FILE);
  cr_assert_eq(size, 5);
  cr_assert_eq(ckpt_io_stat(io, dir, &k, NULL, &err), CKPT_OK);
  cr_assert_eq(k, CKPT_IO_KIND_DIR);
  cr_assert_eq(ckpt_io_stat(io, l, &k, NULL, &err), CKPT_OK);
  cr_assert_eq(k, CKPT_IO_KIND_SYMLINK);
  cr_assert_eq(ckpt_io_stat(io, m, &k, NULL, &err), CKPT_OK);
  cr_assert_eq(k, CKPT_IO_KIND_MISSING);
  char *under_file = cf_join(dir, "f/x");
  cr_assert_eq(ckpt_io_stat(io, under_file, &k, NULL, &err), CKPT_OK);
  cr_assert_eq(k, CKPT_IO_KIND_MISSING);
  free(under_file);
  free(f);
  free(l);
  free(m);
}

Test(io, list_dir_is_sorted_without_dot_entries) {
  ckpt_error err = CKPT_ERROR_INIT;
  const char *names[] = {"zeta", "alpha", "Mid", "_x", "beta"};
  for (size_t i = 0; i < 5; i++) {
    char *p = cf_join(dir, names[i]);
    cf_write(p, "");
    free(p);
  }
  char **got;
  size_t n;
  cr_assert_eq(ckpt_io_list_dir(io, dir, &got, &n, &err), CKPT_OK);
  cr_assert_eq(n, 5);
  const char *want[] = {"Mid", "_x", "alpha", "beta", "zeta"};
  for (size_t i = 0; i < n; i++)
    cr_assert_str_eq(got[i], want[i]);
  ckpt_io_free_names(got, n);
  char *missing = cf_join(dir, "nodir");
  cr_assert_eq(ckpt_io_list_dir(io, missing, &got, &n, &err), CKPT_ENOENT);
  free(missing);
}

Test(io, remove_tree_removes_everything_but_never_follows_links) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *outside = cf_tmpdir();
  char *keep = cf_join(outside, "keep.txt");
  cf_write(keep, "keep me");
  char *root = cf_join(dir, "tree");
  char *cmd = malloc(8192);
  snprintf(cmd, 8192,
           "mkdir -p '%s/a/b/c' '%s/e' && echo 1 > '%s/a/f1' && echo 2 > '%s/a/b/c/f2' && "
           "ln -s '%s' '%s/a/link_to_outside_dir' && ln -s '%s' '%s/e/link_to_file'",
           root, root, root, root, outside, root, keep, root);
  free(cf_run(cmd));
  free(cmd);
  cr_assert_eq(ckpt_io_remove_tree(io, root, &err), CKPT_OK, "%s", err.message);
  cr_assert(!cf_exists(root));
  char *still = cf_slurp(keep);
  cr_assert_str_eq(still, "keep me");
  free(still);
  /* A missing path is fine; a single file is removed. */
  cr_assert_eq(ckpt_io_remove_tree(io, root, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_remove_tree(io, keep, &err), CKPT_OK);
  cr_assert(!cf_exists(keep));
  cr_assert(cf_is_dir(outside));
  cf_rmtree(outside);
  free(outside);
  free(keep);
  free(root);
}

Test(io, remove_tree_reports_the_failing_path) {
  char *root = cf_join(dir, "t");
  char *cmd = malloc(4096);
  snprintf(cmd, 4096, "mkdir -p '%s/x/y' && echo 1 > '%s/x/y/z'", root, root);
  free(cf_run(cmd));
  free(cmd);
  fail_op fo = {.op = CKPT_IO_REMOVE, .err = EIO};
  ckpt_io_set_fault(io, fail_one_kind, &fo);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_remove_tree(io, root, &err), CKPT_EIO);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert(strstr(err.message, "x/y/z") != NULL, "%s", err.message);
  cr_assert(cf_is_dir(root));
  free(root);
}

Test(io, rename_and_exchange) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *a = cf_join(dir, "a"), *b = cf_join(dir, "b"), *c = cf_join(dir, "c");
  cr_assert_eq(mkdir(a, 0755), 0);
  cr_assert_eq(mkdir(b, 0755), 0);
  char *fa = cf_join(a, "which"), *fb = cf_join(b, "which");
  cf_write(fa, "A");
  cf_write(fb, "B");
  bool exchanged = false;
  cr_assert_eq(ckpt_io_exchange(io, a, b, &exchanged, &err), CKPT_OK, "%s", err.message);
  cr_assert(exchanged, "ext4/tmpfs support RENAME_EXCHANGE");
  char *s = cf_slurp(fa);
  cr_assert_str_eq(s, "B");
  free(s);
  cr_assert_eq(ckpt_io_rename(io, a, c, &err), CKPT_OK);
  cr_assert(!cf_exists(a));
  cr_assert(cf_is_dir(c));
  /* Exchange with a missing path is an error. */
  cr_assert_neq(ckpt_io_exchange(io, a, b, &exchanged, &err), CKPT_OK);
  cr_assert(!exchanged);
  free(a);
  free(b);
  free(c);
  free(fa);
  free(fb);
}

Test(io, exchange_reports_unsupported_as_not_exchanged) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *a = cf_join(dir, "a"), *b = cf_join(dir, "b");
  cr_assert_eq(mkdir(a, 0755), 0);
  cr_assert_eq(mkdir(b, 0755), 0);
  fail_op fo = {.op = CKPT_IO_RENAME, .err = EINVAL};
  ckpt_io_set_fault(io, fail_one_kind, &fo);
  bool exchanged = true;
  cr_assert_eq(ckpt_io_exchange(io, a, b, &exchanged, &err), CKPT_OK, "%s", err.message);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert(!exchanged);
  free(a);
  free(b);
}

/* EINTR: a signal handler installed without SA_RESTART interrupts a blocking open of a FIFO;
 * ckpt_io_open must retry until the writer shows up instead of failing. */
static void on_alarm(int sig) {
  (void)sig;
}

static void *fifo_writer(void *arg) {
  const char *p = arg;
  /* The alarms must interrupt the reader's open, not this thread's sleep. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  usleep(300 * 1000);
  int fd = open(p, O_WRONLY);
  if (fd >= 0) {
    if (write(fd, "x", 1) < 0) { /* the reader checks */
    }
    close(fd);
  }
  return NULL;
}

Test(io, eintr_is_retried) {
  char *p = cf_join(dir, "fifo");
  cr_assert_eq(mkfifo(p, 0600), 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = 0; /* no SA_RESTART: open(2) returns EINTR */
  sigaction(SIGALRM, &sa, NULL);
  pthread_t t;
  pthread_create(&t, NULL, fifo_writer, p);
  /* Several interruptions while open blocks waiting for the writer. */
  struct itimerval iv = {{0, 50 * 1000}, {0, 50 * 1000}};
  setitimer(ITIMER_REAL, &iv, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  int fd = -1;
  ckpt_status st = ckpt_io_open(io, p, O_RDONLY, 0, &fd, &err);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  pthread_join(t, NULL);
  cr_assert_eq(st, CKPT_OK, "%s", err.message);
  cr_assert_geq(fd, 0);
  ckpt_io_close(io, fd, p, &err);
  free(p);
}

typedef struct answer {
  int value;
  int calls;
  ckpt_io_op last_op;
} answer;

static int answer_hook(void *arg, ckpt_io_op op, const char *path) {
  answer *a = arg;
  (void)path;
  a->calls++;
  a->last_op = op;
  return a->value;
}

Test(io, fault_check_consults_the_hook_and_counts_like_the_io_functions) {
  answer a = {0, 0, CKPT_IO_OPEN};
  ckpt_io_set_fault(io, answer_hook, &a);
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_WRITE, "/x"), 0);
  cr_assert_eq(a.calls, 1);
  cr_assert_eq(a.last_op, CKPT_IO_WRITE);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_WRITE), 1);
  a.value = ENOSPC;
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_FSYNC, "/x"), ENOSPC);
  a.value = -1;
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_WRITE, "/x"), -1, "short write");
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_READ, "/x"), EIO, "short means nothing here");
  a.value = -7;
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_WRITE, "/x"), EIO, "not an errno");
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_WRITE), 3);
  cr_assert_eq(ckpt_io_fault_check(io, (ckpt_io_op)99, "/x"), 0, "unknown ops are not counted");
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_WRITE, "/x"), 0);
}
