/* gen_support.h — helpers shared by the tests that run ckptgen, compilers and make as real child
 * processes (golden files, C++ compilation, the install test): temporary directories, running a
 * command with its output captured, reading and comparing files, listing a tree.
 *
 * Header-only (static inline) so that each suite that needs it (tests/generator, tests/e2e)
 * includes it without adding a source file to the other's binary. Nothing here is a test double:
 * every helper runs the real program on real files. */
#ifndef CKPT_TESTS_GEN_SUPPORT_H
#define CKPT_TESTS_GEN_SUPPORT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

/* The sanitizer flags this binary was built with, so that programs the tests compile and link
 * against the (then instrumented) libckpt use the same ones. SAN=1 always means both. */
#if defined(__SANITIZE_ADDRESS__)
#define GS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GS_SANITIZED 1
#endif
#endif
#ifdef GS_SANITIZED
#define GS_SAN_FLAGS "-fsanitize=address,undefined -fno-sanitize-recover=all"
#else
#define GS_SAN_FLAGS ""
#endif

#ifdef GS_SANITIZED
#include <sanitizer/lsan_interface.h>
#endif

/* Fails the test if LeakSanitizer finds memory that nothing references any more. Needed because
 * the leak report LeakSanitizer prints when a Criterion test process exits does not fail the
 * test (Criterion counts it as passed). Call it at the end of a test body, after everything the
 * test made was released; without sanitizers it does nothing. */
static inline void gs_expect_no_leaks(void) {
#ifdef GS_SANITIZED
  cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
               "LeakSanitizer found leaks (its report is printed above)");
#endif
}

/* printf into a fresh heap string; the caller frees it. Aborts the test on failure. */
static inline char *gs_fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *out = NULL;
  int n = vasprintf(&out, fmt, ap);
  va_end(ap);
  cr_assert(n >= 0 && out != NULL, "vasprintf failed");
  return out;
}

static inline int gs_rm_entry_(const char *path, const struct stat *st, int type,
                               struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* The temporary directories this test process made and has not removed yet, so that a failed
 * assertion (which leaves the test body early) does not leave them behind: suites using
 * gs_mkdtemp declare `TestSuite(name, .fini = gs_cleanup_tmpdirs)`. Criterion runs every test
 * in its own process, so the list belongs to one test. */
typedef struct gs_tmplist {
  char *dirs[64];
  size_t count;
} gs_tmplist;

static inline gs_tmplist *gs_tmplist_(void) {
  static gs_tmplist list;
  return &list;
}

/* A new empty directory under /tmp; the caller removes it with gs_rmtree and frees the string
 * (gs_cleanup_tmpdirs removes it if the test fails first). */
static inline char *gs_mkdtemp(const char *tag) {
  char *tmpl = gs_fmt("/tmp/ckpt-%s-XXXXXX", tag);
  cr_assert(mkdtemp(tmpl) != NULL, "mkdtemp(%s): %s", tmpl, strerror(errno));
  gs_tmplist *l = gs_tmplist_();
  if (l->count < sizeof l->dirs / sizeof l->dirs[0]) l->dirs[l->count++] = strdup(tmpl);
  return tmpl;
}

/* rm -rf path (does not follow symlinks). */
static inline void gs_rmtree(const char *path) {
  if (path == NULL) return;
  nftw(path, gs_rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
  gs_tmplist *l = gs_tmplist_();
  for (size_t i = 0; i < l->count; i++) {
    if (l->dirs[i] != NULL && strcmp(l->dirs[i], path) == 0) {
      free(l->dirs[i]);
      l->dirs[i] = NULL;
    }
  }
}

/* Removes every temporary directory of this test that is still there (a .fini hook). */
static inline void gs_cleanup_tmpdirs(void) {
  gs_tmplist *l = gs_tmplist_();
  for (size_t i = 0; i < l->count; i++) {
    if (l->dirs[i] != NULL) {
      nftw(l->dirs[i], gs_rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
      free(l->dirs[i]);
      l->dirs[i] = NULL;
    }
  }
  l->count = 0;
}

/* Reads a whole file into a NUL-terminated heap buffer (caller frees); NULL if unreadable. */
static inline char *gs_read_file(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  cr_assert(buf != NULL);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
    len += got;
    if (len == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
      cr_assert(buf != NULL);
    }
  }
  fclose(f);
  buf[len] = '\0';
  if (len_out != NULL) *len_out = len;
  return buf;
}

/* Writes text to path (creating or truncating it); fails the test on error. */
static inline void gs_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  cr_assert(f != NULL, "open %s: %s", path, strerror(errno));
  size_t n = strlen(text);
  cr_assert(fwrite(text, 1, n, f) == n, "write %s", path);
  cr_assert(fclose(f) == 0, "close %s", path);
}

static inline bool gs_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* The result of gs_run: exit status (-1 when it did not exit normally) and the combined
 * stdout+stderr (heap, NUL-terminated; free with gs_result_free). */
typedef struct gs_result {
  int status;
  char *output;
  size_t len;
} gs_result;

static inline void gs_result_free(gs_result *r) {
  free(r->output);
  r->output = NULL;
}

/* Runs argv (argv[0] looked up on PATH) in directory cwd (NULL: the current one), with
 * stdin from /dev/null and stdout+stderr captured. env_set is a NULL-terminated list of
 * "NAME=VALUE" to set in the child, and names without '=' to unset there (may be NULL). */
static inline gs_result gs_run(const char *cwd, char *const argv[], const char *const *env_set) {
  int fds[2];
  cr_assert(pipe(fds) == 0, "pipe: %s", strerror(errno));
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[1]);
    for (const char *const *e = env_set; e != NULL && *e != NULL; e++) {
      const char *eq = strchr(*e, '=');
      if (eq == NULL) {
        unsetenv(*e);
      } else {
        char name[256];
        size_t n = (size_t)(eq - *e);
        if (n >= sizeof name) _exit(126);
        memcpy(name, *e, n);
        name[n] = '\0';
        setenv(name, eq + 1, 1);
      }
    }
    if (cwd != NULL && chdir(cwd) != 0) {
      fprintf(stderr, "chdir %s: %s\n", cwd, strerror(errno));
      _exit(126);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  gs_result r = {-1, NULL, 0};
  size_t cap = 8192;
  r.output = malloc(cap + 1);
  cr_assert(r.output != NULL);
  for (;;) {
    if (r.len == cap) {
      cap *= 2;
      r.output = realloc(r.output, cap + 1);
      cr_assert(r.output != NULL);
    }
    ssize_t got = read(fds[0], r.output + r.len, cap - r.len);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    r.len += (size_t)got;
  }
  r.output[r.len] = '\0';
  close(fds[0]);
  int wstatus;
  while (waitpid(pid, &wstatus, 0) < 0) {
    cr_assert(errno == EINTR, "waitpid: %s", strerror(errno));
  }
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  return r;
}

/* Runs a shell command line (sh -c) in cwd; see gs_run. */
static inline gs_result gs_sh(const char *cwd, const char *const *env_set, const char *cmd) {
  char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL};
  return gs_run(cwd, argv, env_set);
}

/* Fails the test with the command's output when it did not exit with status 0. The output is
 * cut to its last 6,000 bytes, where compilers and make put the error that matters. */
static inline void gs_expect_success(const gs_result *r, const char *what) {
  if (r->status != 0) {
    const char *tail = r->output;
    if (r->len > 6000) tail = r->output + r->len - 6000;
    cr_assert_fail("%s failed (exit status %d):\n%s", what, r->status, tail);
  }
}

/* The C++ compiler that goes with CKPT_CC: gcc → g++, clang → clang++, cc → c++, keeping any
 * directory and version suffix (gcc-12 → g++-12). Caller frees. */
static inline char *gs_cxx_for(const char *cc) {
  const char *base = strrchr(cc, '/');
  base = base != NULL ? base + 1 : cc;
  size_t dir_len = (size_t)(base - cc);
  const char *hit;
  if ((hit = strstr(base, "clang")) != NULL) {
    return gs_fmt("%.*s%.*sclang++%s", (int)dir_len, cc, (int)(hit - base), base, hit + 5);
  }
  if ((hit = strstr(base, "gcc")) != NULL) {
    return gs_fmt("%.*s%.*sg++%s", (int)dir_len, cc, (int)(hit - base), base, hit + 3);
  }
  if (strcmp(base, "cc") == 0) return gs_fmt("%.*sc++", (int)dir_len, cc);
  return gs_fmt("c++");
}

/* Paths of the regular files below root (relative to root, sorted), whose names end with one
 * of the suffixes (NULL-terminated list). Caller frees with gs_free_list. */
typedef struct gs_list {
  char **items;
  size_t count, cap;
} gs_list;

static inline void gs_list_push(gs_list *l, char *item) {
  if (l->count == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->items = realloc(l->items, l->cap * sizeof *l->items);
    cr_assert(l->items != NULL);
  }
  l->items[l->count++] = item;
}

static inline int gs_cmp_str_(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline void gs_list_files_(const char *root, const char *rel, const char *const *suffixes,
                                  gs_list *out) {
  char *dir = rel[0] ? gs_fmt("%s/%s", root, rel) : gs_fmt("%s", root);
  DIR *d = opendir(dir);
  free(dir);
  if (d == NULL) return;
  struct dirent *ent;
  while ((ent = readdir(d)) != NULL) {
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
    char *child = rel[0] ? gs_fmt("%s/%s", rel, ent->d_name) : gs_fmt("%s", ent->d_name);
    char *full = gs_fmt("%s/%s", root, child);
    struct stat st;
    bool keep = false;
    if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
      gs_list_files_(root, child, suffixes, out);
    } else if (lstat(full, &st) == 0 && S_ISREG(st.st_mode)) {
      size_t n = strlen(child);
      for (const char *const *s = suffixes; *s != NULL; s++) {
        size_t m = strlen(*s);
        if (n >= m && strcmp(child + n - m, *s) == 0) keep = true;
      }
    }
    if (keep) {
      gs_list_push(out, child);
    } else {
      free(child);
    }
    free(full);
  }
  closedir(d);
}

static inline gs_list gs_list_files(const char *root, const char *const *suffixes) {
  gs_list out = {NULL, 0, 0};
  gs_list_files_(root, "", suffixes, &out);
  if (out.count > 1) qsort(out.items, out.count, sizeof *out.items, gs_cmp_str_);
  return out;
}

static inline void gs_free_list(gs_list *l) {
  for (size_t i = 0; i < l->count; i++) free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->count = l->cap = 0;
}

#endif
