/* fuzz/fuzz.h — what the fuzz targets share (docs/reliability.md, "Fuzzing").
 *
 * Each fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput for one reader. It is linked either
 * with libFuzzer (`make fuzz`, clang) or with fuzz/replay.c, a main() that feeds it every file
 * of the seed corpus and of the crash regressions (`make test`, any compiler). A target checks
 * more than "no crash": it aborts (fuzz_require) when a property the reader promises fails —
 * an error without a message, or a document that does not survive being written and read back.
 * abort() is fine here: this is a test harness, not the library. */
#ifndef CKPT_FUZZ_H
#define CKPT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with "fuzz: <target>: <what>" when cond is false: libFuzzer records the input as a
 * crash, the replay driver fails. */
#define fuzz_require(cond, what) fuzz_require_at((cond), (what), __FILE__, __LINE__)
void fuzz_require_at(bool cond, const char *what, const char *file, int line);

/* A failed call must say why: status and message go together (docs/architecture.md). */
void fuzz_require_error(ckpt_status st, const ckpt_error *err, const char *what);

/* A directory private to this process (created on first use, removed at exit), for readers
 * that take a checkpoint directory rather than bytes: the input is written to dir/name. Uses
 * $TMPDIR, else /tmp (`make fuzz` points TMPDIR at /dev/shm when it exists). */
const char *fuzz_tmpdir(void);
/* Writes data to fuzz_tmpdir()/name and returns the path (static storage, overwritten by the
 * next call); aborts when the file cannot be written (not the reader's fault). */
const char *fuzz_write_input(const char *name, const uint8_t *data, size_t size);

#endif
