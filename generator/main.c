/* main.c — the ckptgen command line: options, output names, and writing the outputs.
 *
 *   ckptgen [-I DIR]... [-o OUTDIR] [--depfile FILE] [--header-only] [--version] [--help]
 *           FILE.ckpt...
 *
 * Exit status: 0 success, 1 errors in a schema (or writing outputs), 2 bad usage. Nothing is
 * written unless every input compiled without errors. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "diag.h"
#include "emit.h"
#include "resolve.h"
#include "util.h"

#ifndef CKPTGEN_DATADIR
#define CKPTGEN_DATADIR NULL
#endif

static const char usage[] =
    "usage: ckptgen [-I DIR]... [-o OUTDIR] [--depfile FILE] [--header-only] FILE.ckpt...\n"
    "\n"
    "Compiles .ckpt schemas into C: OUTDIR/NAME.ckpt.h and OUTDIR/NAME.ckpt.c, where NAME is\n"
    "the schema's path below the -I directory that contains it, or else its file name.\n"
    "\n"
    "  -I DIR          search DIR for imports (after the importing file's directory;\n"
    "                  the installed schemas are searched last)\n"
    "  -o OUTDIR       write outputs below OUTDIR (default: .)\n"
    "  --depfile FILE  also write a make rule: outputs depend on the schema and its imports\n"
    "  --header-only   write only the header\n"
    "  --version       print the version and exit\n"
    "  --help          print this help and exit\n";

typedef struct options {
  const char **incdirs;
  size_t n_incdirs;
  const char *outdir;
  const char *depfile;
  bool header_only;
  const char **inputs;
  size_t n_inputs;
} options;

/* Returns -1 to continue, else an exit status. */
static int parse_args(int argc, char **argv, options *o) {
  o->incdirs = xmalloc((size_t)argc * sizeof *o->incdirs);
  o->inputs = xmalloc((size_t)argc * sizeof *o->inputs);
  o->outdir = ".";
  bool only_files = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_files || a[0] != '-' || strcmp(a, "-") == 0) {
      o->inputs[o->n_inputs++] = a;
    } else if (strcmp(a, "--") == 0) {
      only_files = true;
    } else if (strcmp(a, "--version") == 0) {
      printf("ckptgen %s (ckpt ABI %d)\n", CKPT_VERSION_STRING, CKPT_ABI_VERSION);
      return 0;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      return 0;
    } else if (strcmp(a, "--header-only") == 0) {
      o->header_only = true;
    } else if (strncmp(a, "-I", 2) == 0 || strncmp(a, "-o", 2) == 0 ||
               strncmp(a, "--depfile", 9) == 0) {
      bool is_dep = a[1] == '-';
      const char *val = NULL;
      if (is_dep && a[9] == '=') val = a + 10;
      else if (is_dep && a[9] != '\0') goto unknown;
      else if (!is_dep && a[2] != '\0') val = a + 2;
      else if (i + 1 < argc) val = argv[++i];
      if (val == NULL || val[0] == '\0') {
        fprintf(stderr, "ckptgen: error: option '%s' needs a value\n%s", a, usage);
        return 2;
      }
      if (is_dep) o->depfile = val;
      else if (a[1] == 'I') o->incdirs[o->n_incdirs++] = val;
      else o->outdir = val;
    } else {
    unknown:
      fprintf(stderr, "ckptgen: error: unknown option '%s'\n%s", a, usage);
      return 2;
    }
  }
  if (o->n_inputs == 0) {
    fprintf(stderr, "ckptgen: error: no input files\n%s", usage);
    return 2;
  }
  return -1;
}

/* The output name of a schema: its path below the first -I directory that contains it, or
 * its file name. */
static const char *output_rel(arena *a, const options *o, const ast_file *f) {
  for (size_t i = 0; i < o->n_incdirs; i++) {
    char *dir = realpath(o->incdirs[i], NULL);
    if (dir == NULL) continue;
    size_t n = strlen(dir);
    bool under = strncmp(f->real, dir, n) == 0 && (f->real[n] == '/' || (n == 1 && dir[0] == '/'));
    free(dir);
    if (under) return arena_strdup(a, f->real + (n == 1 ? 1 : n + 1));
  }
  const char *slash = strrchr(f->path, '/');
  return arena_strdup(a, slash ? slash + 1 : f->path);
}

static char *upper_ident(arena *a, const char *s, size_t n) {
  char *r = arena_strndup(a, s, n);
  for (char *p = r; *p; p++) *p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
  return r;
}

static void make_info(arena *a, emit_info *info, const char *rel, const ast_file *f) {
  info->rel = rel;
  const char *slash = strrchr(rel, '/');
  const char *base = slash ? slash + 1 : rel;
  info->header_base = arena_printf(a, "%s.h", base);
  info->guard = arena_printf(a, "CKPTGEN_%s_H", upper_ident(a, rel, strlen(rel)));
  size_t bn = strlen(base);
  if (bn > 5 && strcmp(base + bn - 5, ".ckpt") == 0) bn -= 5;
  info->hash_macro = arena_printf(a, "%s_%s_SCHEMA_HASH", upper_ident(a, f->c_prefix, strlen(f->c_prefix)),
                                  upper_ident(a, base, bn));
  info->hash = fnv1a64(f->src.text, f->src.len);
}

int main(int argc, char **argv) {
  options o;
  memset(&o, 0, sizeof o);
  int rc = parse_args(argc, argv, &o);
  if (rc >= 0) {
    free(o.incdirs);
    free(o.inputs);
    return rc;
  }
  diag d;
  diag_init(&d, stderr, 50);
  compiler c;
  compiler_init(&c, &d, o.incdirs, o.n_incdirs, CKPTGEN_DATADIR);
  ast_file **files = xmalloc(o.n_inputs * sizeof *files);
  for (size_t i = 0; i < o.n_inputs && !d.stopped; i++) {
    size_t n = strlen(o.inputs[i]);
    if (n < 5 || strcmp(o.inputs[i] + n - 5, ".ckpt") != 0) {
      diag_plain(&d, "input '%s' is not a .ckpt schema", o.inputs[i]);
      files[i] = NULL;
      continue;
    }
    files[i] = compiler_load(&c, o.inputs[i]);
  }
  arena a;
  arena_init(&a);
  const char **rels = xmalloc(o.n_inputs * sizeof *rels);
  if (d.errors == 0) {
    strmap seen;
    strmap_init(&seen);
    for (size_t i = 0; i < o.n_inputs; i++) {
      rels[i] = output_rel(&a, &o, files[i]);
      const char *prev = strmap_put(&seen, rels[i], (void *)o.inputs[i]);
      if (prev != NULL && strcmp(prev, o.inputs[i]) != 0)
        diag_plain(&d, "'%s' and '%s' would both be written to %s/%s.h; use -I to tell them apart",
                   prev, o.inputs[i], o.outdir, rels[i]);
    }
    strmap_free(&seen);
  }
  buf dep;
  buf_init(&dep);
  for (size_t i = 0; i < o.n_inputs && d.errors == 0; i++) {
    emit_info info;
    make_info(&a, &info, rels[i], files[i]);
    const char *hpath = arena_printf(&a, "%s/%s.h", o.outdir, rels[i]);
    const char *cpath = arena_printf(&a, "%s/%s.c", o.outdir, rels[i]);
    buf out;
    buf_init(&out);
    emit_header(&out, &info, files[i]);
    bool ok = write_file_atomic(hpath, out.data, out.len, &d);
    buf_free(&out);
    if (ok && !o.header_only) {
      emit_source(&out, &info, files[i]);
      write_file_atomic(cpath, out.data, out.len, &d);
      buf_free(&out);
    }
    if (o.depfile != NULL) {
      const char **deps;
      size_t nd = compiler_deps(&c, files[i], &deps);
      const char **pre = xmalloc((nd + 1) * sizeof *pre);
      pre[0] = files[i]->path;
      for (size_t k = 0; k < nd; k++) pre[k + 1] = deps[k];
      const char *targets[2] = {hpath, cpath};
      if (dep.len) buf_putc(&dep, '\n');
      emit_depfile(&dep, targets, o.header_only ? 1 : 2, pre, nd + 1);
      free(pre);
      free(deps);
    }
  }
  if (o.depfile != NULL && d.errors == 0)
    write_file_atomic(o.depfile, dep.data ? dep.data : "", dep.len, &d);
  buf_free(&dep);
  int status = d.errors == 0 ? 0 : 1;
  free(rels);
  free(files);
  arena_free(&a);
  compiler_free(&c);
  free(o.incdirs);
  free(o.inputs);
  return status;
}
