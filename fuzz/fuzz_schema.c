/* fuzz/fuzz_schema.c — ckptgen's front end and back end: the Flex scanner and Bison parser
 * (generator/lexer.l, parser.y), name and type resolution with imports (resolve.c), and, for a
 * schema that compiles, the header and source emitters.
 *
 * compiler_load reads a path (imports are resolved relative to it), so the input is written
 * as fuzz.ckpt into a private temporary directory; `-I schemas` of the source tree is searched,
 * so inputs may import ckpt/builtin.ckpt and the examples (and their .proto files). Diagnostics
 * go to /dev/null: they are formatted (and so exercised) but not shown.
 *
 * Properties: no crash, leak or UB (ckptgen exits on out-of-memory only); a file that did not
 * compile has at least one error reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "diag.h"
#include "emit.h"
#include "fuzz.h"
#include "resolve.h"
#include "util.h"

#ifndef CKPT_SOURCE_DIR
#error "CKPT_SOURCE_DIR (the source tree, for its schemas/) must be defined"
#endif

static FILE *devnull(void) {
  static FILE *f;
  if (f == NULL)
    f = fopen("/dev/null", "w");
  fuzz_require(f != NULL, "cannot open /dev/null");
  return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_input("fuzz.ckpt", data, size);
  static const char *incdirs[] = {CKPT_SOURCE_DIR "/schemas"};
  diag d;
  diag_init(&d, devnull(), 50);
  compiler c;
  compiler_init(&c, &d, incdirs, 1, NULL);
  ast_file *f = compiler_load(&c, path);
  fuzz_require(f != NULL, "the input file was not read");
  fuzz_require(f->ok || d.errors > 0, "a schema failed without an error");
  if (f->ok && d.errors == 0) {
    /* The names main.c derives from the output path, for a schema named fuzz.ckpt. */
    emit_info info = {.rel = "fuzz.ckpt",
                      .header_base = "fuzz.ckpt.h",
                      .guard = "CKPTGEN_FUZZ_CKPT_H",
                      .hash_macro = "FUZZ_SCHEMA_HASH",
                      .hash = fnv1a64(f->src.text, f->src.len)};
    buf out;
    buf_init(&out);
    emit_header(&out, &info, f);
    buf_free(&out);
    buf_init(&out);
    emit_source(&out, &info, f);
    buf_free(&out);
  }
  compiler_free(&c);
  return 0;
}
