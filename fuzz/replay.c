/* fuzz/replay.c — runs a fuzz target without libFuzzer: every file of the directories (or the
 * files) named on the command line is fed once to LLVMFuzzerTestOneInput, in name order.
 *
 *   replay-<target> fuzz/corpus/<target> fuzz/regressions/<target>
 *
 * This is how `make test` replays the seed corpora and every crash the fuzzers ever found, with
 * the normal compiler and flags (and under ASan/UBSan in `make check`). Each input is copied
 * into a buffer of exactly its size, as libFuzzer does, so a read past its end is caught. A
 * run that fed no input at all fails: a replay that tests nothing must not pass. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 4096, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf != NULL) {
    if (n == cap) {
      unsigned char *nb = realloc(buf, cap *= 2);
      if (nb == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  bool bad = buf == NULL || ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  /* Exactly n bytes, so that ASan sees the end of the input where libFuzzer's would be. */
  unsigned char *exact = malloc(n ? n : 1);
  if (exact != NULL)
    memcpy(exact, buf, n);
  free(buf);
  *size = n;
  return exact;
}

static int run_file(const char *path) {
  size_t size = 0;
  unsigned char *data = read_all(path, &size);
  if (data == NULL) {
    fprintf(stderr, "replay: cannot read '%s'\n", path);
    return -1;
  }
  LLVMFuzzerTestOneInput(data, size);
  free(data);
  return 1;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir (hidden files and README.md excluded); returns the number
 * run, -1 on an error. */
static int run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "replay: cannot open directory '%s'\n", dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      char **nn = realloc(names, cap * sizeof *names);
      if (nn == NULL)
        abort();
      names = nn;
    }
    names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
    if (names[n] == NULL)
      abort();
    sprintf(names[n], "%s/%s", dir, e->d_name);
    n++;
  }
  closedir(d);
  qsort(names, n, sizeof *names, name_cmp);
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (count >= 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      int r = run_file(names[i]);
      count = r < 0 ? -1 : count + r;
    }
    free(names[i]);
  }
  free(names);
  return count;
}

int main(int argc, char **argv) {
  int total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    int r;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: '%s' does not exist\n", argv[i]);
      r = -1;
    } else {
      r = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
    }
    if (r < 0)
      return 1;
    total += r;
  }
  if (total == 0) {
    fprintf(stderr, "replay: no inputs (usage: %s DIR|FILE...)\n", argv[0]);
    return 1;
  }
  printf("%s: %d inputs replayed\n", argv[0], total);
  return 0;
}
