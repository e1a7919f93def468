/* resolve.h — loading schema files with their imports, and the semantic checks.
 *
 * A compiler value owns everything of one run: the arena, the loaded .ckpt and .proto files
 * (each loaded once, keyed by canonical path), and the tables that make name look-ups O(1).
 * compiler_load parses a file, loads its imports depth-first (reporting cycles), then
 * resolves its names and types and enforces every rule of the schema language. */
#ifndef CKPTGEN_RESOLVE_H
#define CKPTGEN_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "ast.h"
#include "diag.h"
#include "util.h"

typedef struct compiler {
  arena a;
  diag *d;
  const char **incdirs; /* -I, in order */
  size_t n_incdirs;
  const char *datadir;  /* the installed schemas, searched last (may be NULL) */
  strmap files;         /* canonical path → ast_file */
  strmap protos;        /* canonical path → proto_file */
  strmap packages;      /* package name → ast_file */
  strmap decls;         /* full name → ast_decl, every loaded file */
  strmap typestrs;      /* typestr → handler ast_decl */
  strmap entry_names;   /* C name of each map entry type → ast_field (collision check) */
  strmap scalars, dtypes, reserved; /* fixed name tables, hashed once */
  ast_file **stack;     /* files being loaded, for import-cycle messages */
  size_t depth, stack_cap;
  ast_file **all_files; /* every file that was loaded, in load order */
  size_t n_files, files_cap;
  char **texts;         /* file contents (heap), freed by compiler_free */
  size_t n_texts, texts_cap;
} compiler;

void compiler_init(compiler *c, diag *d, const char **incdirs, size_t n_incdirs,
                   const char *datadir);
void compiler_free(compiler *c);

/* Loads, parses and resolves path (and, recursively, its imports). Returns the file (owned by
 * c) or NULL when it could not be read; check file->ok for errors. */
ast_file *compiler_load(compiler *c, const char *path);

/* Every .ckpt and .proto file f depends on, transitively (for --depfile), as the paths they
 * were opened with; *out is heap (free it), its strings are owned by c. */
size_t compiler_deps(compiler *c, ast_file *f, const char ***out);

/* True when a field of f's records uses a bare `proto` (the header then needs protobuf-c). */
bool file_uses_bare_proto(const ast_file *f);

#endif
