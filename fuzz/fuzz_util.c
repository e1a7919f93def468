/* fuzz/fuzz_util.c — the helpers of fuzz.h. */
#include "fuzz.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/io.h"

void fuzz_require_at(bool cond, const char *what, const char *file, int line) {
  if (cond)
    return;
  fprintf(stderr, "fuzz: %s:%d: %s\n", file, line, what);
  abort();
}

void fuzz_require_error(ckpt_status st, const ckpt_error *err, const char *what) {
  if (st == CKPT_OK)
    return;
  if (err->code != st || err->message[0] == '\0') {
    fprintf(stderr, "fuzz: %s returned %s with error {%s, \"%s\"}\n", what, ckpt_status_name(st),
            ckpt_status_name(err->code), err->message);
    abort();
  }
}

static char tmpdir[4096];

static void remove_tmpdir(void) {
  if (tmpdir[0] != '\0')
    (void)ckpt_io_remove_tree(NULL, tmpdir, NULL);
}

const char *fuzz_tmpdir(void) {
  if (tmpdir[0] != '\0')
    return tmpdir;
  const char *base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0')
    base = "/tmp";
  snprintf(tmpdir, sizeof tmpdir, "%s/ckpt-fuzz-XXXXXX", base);
  if (mkdtemp(tmpdir) == NULL) {
    perror("fuzz: mkdtemp");
    abort();
  }
  atexit(remove_tmpdir);
  return tmpdir;
}

const char *fuzz_write_input(const char *name, const uint8_t *data, size_t size) {
  static char path[4200];
  snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t done = 0;
  while (fd >= 0 && done < size) {
    ssize_t w = write(fd, data + done, size - done);
    if (w <= 0)
      break;
    done += (size_t)w;
  }
  if (fd < 0 || done != size || close(fd) != 0) {
    perror("fuzz: writing the input file");
    abort();
  }
  return path;
}
