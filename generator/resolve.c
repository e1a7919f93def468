/* resolve.c — imports, names, types and the semantic rules of the schema language.
 *
 * Every rule of docs/schema-language.md that is not pure syntax lives here, each with a
 * diagnostic that names the construct and points at it. Errors never stop the walk early
 * (several errors per run); the emitters only run when the whole run is error-free. */
#include "resolve.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"
#include "protoscan.h"

/* ------------------------------------------------------------------ tables of names */

/* C11 (and C23) keywords, C++ keywords and a few macros every C file sees: a schema name that
 * becomes a C identifier must be none of them, so generated headers compile as C and C++. */
static const char *const reserved_words[] = {
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break",
    "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class", "co_await",
    "co_return", "co_yield", "compl", "concept", "const", "const_cast", "consteval",
    "constexpr", "constinit", "continue", "decltype", "default", "delete", "do", "double",
    "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
    "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept",
    "not", "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected", "public",
    "register", "reinterpret_cast", "requires", "restrict", "return", "short", "signed",
    "sizeof", "static", "static_assert", "static_cast", "struct", "switch", "template", "this",
    "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "typeof",
    "typeof_unqual", "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t",
    "while", "xor", "xor_eq", "_Alignas", "_Alignof", "_Atomic", "_BitInt", "_Bool",
    "_Complex", "_Decimal128", "_Decimal32", "_Decimal64", "_Generic", "_Imaginary",
    "_Noreturn", "_Static_assert", "_Thread_local", "NULL", "errno", "assert", "offsetof",
};

static const char *const reserved_suffixes[] = {
    "_desc", "_init",  "_free",     "_equal",    "_new",   "_cast",   "_save",
    "_restore", "_register", "_entry", "_vtable", "_metadata", "_finalize", "_close",
};

typedef struct scalar_name {
  const char *name;
  ckpt_kind kind;
} scalar_name;

static const scalar_name scalar_names[] = {
    {"bool", CKPT_KIND_BOOL},       {"int8", CKPT_KIND_INT8},
    {"int16", CKPT_KIND_INT16},     {"int32", CKPT_KIND_INT32},
    {"int64", CKPT_KIND_INT64},     {"uint8", CKPT_KIND_UINT8},
    {"uint16", CKPT_KIND_UINT16},   {"uint32", CKPT_KIND_UINT32},
    {"uint64", CKPT_KIND_UINT64},   {"float32", CKPT_KIND_FLOAT32},
    {"float64", CKPT_KIND_FLOAT64}, {"string", CKPT_KIND_STRING},
    {"bytes", CKPT_KIND_BYTES},     {"json", CKPT_KIND_JSON},
    {"tree", CKPT_KIND_TREE},       {"jax_random_key", CKPT_KIND_JAX_KEY},
    {"numpy_random_key", CKPT_KIND_NUMPY_RNG},
};

static const char *const dtype_names[] = {
#define DT_NAME_(id, name, zarr, size) name,
    CKPT_DTYPE_LIST(DT_NAME_)
#undef DT_NAME_
};

/* The fixed name tables are looked up for every identifier of a schema, so they are hashed
 * once per run (compiler_init) instead of scanned. Values are index + 1. */
static void fill_names(compiler *c) {
  for (size_t i = 0; i < sizeof scalar_names / sizeof scalar_names[0]; i++)
    strmap_put(&c->scalars, scalar_names[i].name, (void *)(uintptr_t)(i + 1));
  for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
    strmap_put(&c->dtypes, dtype_names[i], (void *)(uintptr_t)(i + 1));
  for (size_t i = 0; i < sizeof reserved_words / sizeof reserved_words[0]; i++)
    strmap_put(&c->reserved, reserved_words[i], (void *)(uintptr_t)(i + 1));
}

static bool lookup_scalar(const compiler *c, const char *name, ckpt_kind *kind) {
  uintptr_t i = (uintptr_t)strmap_get(&c->scalars, name);
  if (i == 0) return false;
  *kind = scalar_names[i - 1].kind;
  return true;
}

static bool lookup_dtype(const compiler *c, const char *name, ckpt_dtype *dt) {
  uintptr_t i = (uintptr_t)strmap_get(&c->dtypes, name);
  if (i == 0) return false;
  *dt = (ckpt_dtype)(i - 1);
  return true;
}

static bool is_reserved_word(const compiler *c, const char *s) {
  return strmap_get(&c->reserved, s) != NULL;
}

/* ------------------------------------------------------------------ helpers */

static void err(compiler *c, ast_file *f, src_loc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void err(compiler *c, ast_file *f, src_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(c->d, &f->src, loc, fmt, ap);
  va_end(ap);
  f->ok = false;
}

static const char *decl_kind_text(decl_kind k) {
  return k == D_RECORD ? "record" : k == D_ARGS ? "args" : "handler";
}

static void push_file(compiler *c, ast_file *f) {
  if (c->n_files == c->files_cap) {
    c->files_cap = c->files_cap ? c->files_cap * 2 : 8;
    c->all_files = xrealloc(c->all_files, c->files_cap * sizeof *c->all_files);
  }
  c->all_files[c->n_files++] = f;
}

static void keep_text(compiler *c, char *text) {
  if (c->n_texts == c->texts_cap) {
    c->texts_cap = c->texts_cap ? c->texts_cap * 2 : 8;
    c->texts = xrealloc(c->texts, c->texts_cap * sizeof *c->texts);
  }
  c->texts[c->n_texts++] = text;
}

void compiler_init(compiler *c, diag *d, const char **incdirs, size_t n_incdirs,
                   const char *datadir) {
  memset(c, 0, sizeof *c);
  arena_init(&c->a);
  c->d = d;
  c->incdirs = incdirs;
  c->n_incdirs = n_incdirs;
  c->datadir = datadir;
  strmap_init(&c->files);
  strmap_init(&c->protos);
  strmap_init(&c->packages);
  strmap_init(&c->decls);
  strmap_init(&c->typestrs);
  strmap_init(&c->entry_names);
  strmap_init(&c->scalars);
  strmap_init(&c->dtypes);
  strmap_init(&c->reserved);
  fill_names(c);
}

void compiler_free(compiler *c) {
  for (size_t i = 0; i < c->n_files; i++) src_file_release(&c->all_files[i]->src);
  for (size_t i = 0; i < c->n_texts; i++) free(c->texts[i]);
  free(c->texts);
  free(c->all_files);
  free(c->stack);
  strmap_free(&c->files);
  for (size_t i = 0; i < c->protos.cap; i++)
    if (c->protos.slots[i].key != NULL) {
      proto_file *pf = c->protos.slots[i].value;
      strmap_free(&pf->msgs);
      strmap_free(&pf->enums);
    }
  strmap_free(&c->protos);
  strmap_free(&c->packages);
  strmap_free(&c->decls);
  strmap_free(&c->typestrs);
  strmap_free(&c->entry_names);
  strmap_free(&c->scalars);
  strmap_free(&c->dtypes);
  strmap_free(&c->reserved);
  arena_free(&c->a);
}

/* Reads a whole file; *text is heap and NUL-terminated. Returns an errno value or 0. */
static int read_all(const char *path, char **text, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return errno;
  struct stat st;
  if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(fp);
    return EISDIR;
  }
  buf b;
  buf_init(&b);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
    buf_putn(&b, chunk, n);
    if (b.len > (size_t)INT_MAX - 16) { /* the scanner indexes with int */
      fclose(fp);
      buf_free(&b);
      return EFBIG;
    }
  }
  int e = ferror(fp) ? EIO : 0;
  fclose(fp);
  if (e != 0) {
    buf_free(&b);
    return e;
  }
  if (b.data == NULL) buf_putn(&b, "", 0);
  *text = b.data;
  *len = b.len;
  return 0;
}

static bool is_regular_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *dir_of(arena *a, const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return ".";
  if (slash == path) return "/";
  return arena_strndup(a, path, (size_t)(slash - path));
}

static const char *join_path(arena *a, const char *dir, const char *rel) {
  if (strcmp(dir, ".") == 0) return arena_strdup(a, rel);
  size_t n = strlen(dir);
  return arena_printf(a, "%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", rel);
}

/* Finds an import: the importing file's directory, then -I dirs in order, then the
 * installed schemas. Returns the path to open, or NULL (tried[] lists the directories). */
static const char *find_import(compiler *c, ast_file *from, const char *rel, buf *tried) {
  if (rel[0] == '/') return is_regular_file(rel) ? rel : NULL;
  const char *dirs[3];
  size_t nd = 0;
  dirs[nd++] = dir_of(&c->a, from->path);
  for (size_t i = 0; i < c->n_incdirs + 1 + (c->datadir != NULL); i++) {
    const char *dir = i == 0 ? dirs[0] : i <= c->n_incdirs ? c->incdirs[i - 1] : c->datadir;
    const char *p = join_path(&c->a, dir, rel);
    if (is_regular_file(p)) return p;
    buf_printf(tried, "%s%s", tried->len ? ", " : "", dir);
  }
  return NULL;
}

/* ------------------------------------------------------------------ identifiers */

static bool check_ident(compiler *c, ast_file *f, const char *name, src_loc loc,
                        const char *what) {
  if (is_reserved_word(c, name)) {
    err(c, f, loc, "%s name '%s' is a C or C++ keyword; rename it", what, name);
    return false;
  }
  size_t n = strlen(name);
  if (name[0] == '_' || name[n - 1] == '_' || strstr(name, "__") != NULL) {
    err(c, f, loc,
        "%s name '%s' must not start or end with '_' or contain '__' (such C names are reserved)",
        what, name);
    return false;
  }
  return true;
}

static bool check_decl_name(compiler *c, ast_file *f, const char *name, src_loc loc,
                            const char *what) {
  if (!check_ident(c, f, name, loc, what)) return false;
  size_t n = strlen(name);
  for (size_t i = 0; i < sizeof reserved_suffixes / sizeof reserved_suffixes[0]; i++) {
    size_t k = strlen(reserved_suffixes[i]);
    if (n > k && strcmp(name + n - k, reserved_suffixes[i]) == 0) {
      err(c, f, loc,
          "%s name '%s' ends in '%s', which ckptgen reserves for generated functions and types",
          what, name, reserved_suffixes[i]);
      return false;
    }
  }
  ckpt_kind k;
  ckpt_dtype dt;
  if (lookup_scalar(c, name, &k) || lookup_dtype(c, name, &dt)) {
    err(c, f, loc, "%s name '%s' is a built-in type name", what, name);
    return false;
  }
  return true;
}

/* ------------------------------------------------------------------ name look-up */

static bool visible_from(const ast_file *f, const ast_file *target) {
  if (f == target) return true;
  for (ast_import *im = f->imports; im != NULL; im = im->next)
    if (!im->is_proto && im->file == target) return true;
  return false;
}

/* Resolves a (possibly dotted) declaration name as seen from file f: the file's own names
 * first, then each directly imported schema's. Reports and returns NULL when it fails. */
static ast_decl *lookup_decl(compiler *c, ast_file *f, const char *name, src_loc loc,
                             const char *what) {
  ast_decl *d = NULL;
  if (f->package != NULL) {
    const char *full = arena_printf(&c->a, "%s.%s", f->package, name);
    d = strmap_get(&c->decls, full);
    if (d != NULL && d->file == f) return d;
  }
  d = strmap_get(&c->decls, name);
  if (d != NULL) {
    if (visible_from(f, d->file)) return d;
    err(c, f, loc, "%s '%s' is declared in %s, which this file does not import", what, name,
        d->file->src.display);
    return NULL;
  }
  if (strchr(name, '.') == NULL) {
    ast_decl *found = NULL;
    for (ast_import *im = f->imports; im != NULL; im = im->next) {
      if (im->is_proto || im->file == NULL || im->file->package == NULL) continue;
      const char *full = arena_printf(&c->a, "%s.%s", im->file->package, name);
      ast_decl *cand = strmap_get(&c->decls, full);
      if (cand == NULL || cand == found) continue;
      if (found != NULL) {
        err(c, f, loc, "%s '%s' is ambiguous: both '%s' and '%s' are imported; qualify it", what,
            name, found->full_name, cand->full_name);
        return NULL;
      }
      found = cand;
    }
    if (found != NULL) return found;
  }
  err(c, f, loc, "unknown %s '%s'", what, name);
  return NULL;
}

static const proto_msg *lookup_proto(compiler *c, ast_file *f, const char *name, src_loc loc) {
  size_t n_protos = 0;
  for (ast_import *im = f->imports; im != NULL; im = im->next) {
    if (!im->is_proto || im->proto == NULL) continue;
    n_protos++;
    const proto_msg *m = strmap_get(&im->proto->msgs, name);
    if (m != NULL) return m;
  }
  if (n_protos == 0) {
    err(c, f, loc,
        "unknown proto message '%s': this file imports no .proto file (add `import proto \"file.proto\";`)",
        name);
    return NULL;
  }
  for (ast_import *im = f->imports; im != NULL; im = im->next)
    if (im->is_proto && im->proto != NULL && strmap_get(&im->proto->enums, name) != NULL) {
      err(c, f, loc, "'%s' is a proto enum, not a message; a proto field needs a message type",
          name);
      return NULL;
    }
  buf known;
  buf_init(&known);
  size_t shown = 0;
  for (ast_import *im = f->imports; im != NULL; im = im->next) {
    if (!im->is_proto || im->proto == NULL) continue;
    for (size_t i = 0; i < im->proto->n_msgs && shown < 8; i++, shown++)
      buf_printf(&known, "%s%s", known.len ? ", " : "", im->proto->list[i]->full_name);
  }
  err(c, f, loc, "unknown proto message '%s' (the imported .proto files declare: %s)", name,
      known.len ? known.data : "no messages");
  buf_free(&known);
  return NULL;
}

/* ------------------------------------------------------------------ types */

static bool is_container(const ast_type *t) { return t->tag == T_LIST || t->tag == T_MAP; }

static void resolve_type(compiler *c, ast_file *f, ast_type *t) {
  switch (t->tag) {
  case T_ARGS:
    t->kind = CKPT_KIND_ARGS;
    return;
  case T_PROTO:
    t->kind = CKPT_KIND_PROTO;
    if (t->name != NULL) t->proto = lookup_proto(c, f, t->name, t->name_loc);
    return;
  case T_LIST:
  case T_MAP:
    t->kind = t->tag == T_LIST ? CKPT_KIND_LIST : CKPT_KIND_MAP;
    if (is_container(t->elem)) {
      err(c, f, t->elem->loc,
          "%s<%s<...>> is not allowed: lists and maps do not nest directly; wrap the inner %s in a record",
          t->tag == T_LIST ? "list" : "map", t->elem->tag == T_LIST ? "list" : "map",
          t->elem->tag == T_LIST ? "list" : "map");
      return;
    }
    resolve_type(c, f, t->elem);
    return;
  case T_ARRAY: {
    t->kind = CKPT_KIND_ARRAY;
    if (t->name != NULL && !lookup_dtype(c, t->name, &t->dtype)) {
      buf all;
      buf_init(&all);
      for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        buf_printf(&all, "%s%s", i ? ", " : "", dtype_names[i]);
      err(c, f, t->name_loc, "unknown dtype '%s' (expected one of %s)", t->name, all.data);
      buf_free(&all);
    }
    if (t->has_dims && t->n_dims == 0)
      err(c, f, t->dims_loc,
          "bad dimensions: '[]' declares no dimension; give at least one (a size, '?' or a name) or leave the brackets out for any rank");
    if (t->n_dims > 32)
      err(c, f, t->dims_loc, "bad dimensions: %u dimensions, the limit is 32", t->n_dims);
    for (ast_dim *d = t->dims; d != NULL; d = d->next) {
      if (d->tag == DIM_BAD)
        err(c, f, d->loc, "bad dimension (%s): expected a size, '?' or a name", d->name);
      else if (d->tag == DIM_NAMED)
        check_ident(c, f, d->name, d->loc, "dimension");
    }
    return;
  }
  case T_NAMED: {
    if (lookup_scalar(c, t->name, &t->kind)) return;
    ckpt_dtype dt;
    if (lookup_dtype(c, t->name, &dt)) {
      err(c, f, t->name_loc, "'%s' is only available as an array dtype (array<%s>[...])",
          t->name, t->name);
      t->kind = CKPT_KIND_ARRAY;
      return;
    }
    ast_decl *d = lookup_decl(c, f, t->name, t->name_loc, "type");
    t->kind = CKPT_KIND_RECORD;
    if (d == NULL) return;
    if (d->kind == D_ARGS) {
      err(c, f, t->name_loc,
          "args type '%s' cannot be a field type; use 'args' (any CheckpointArgs) instead",
          t->name);
      return;
    }
    if (d->kind == D_HANDLER) {
      err(c, f, t->name_loc, "'%s' is a handler, not a type", t->name);
      return;
    }
    t->record = d;
    return;
  }
  }
}

static void type_text(buf *b, const ast_type *t) {
  switch (t->tag) {
  case T_NAMED: buf_puts(b, t->name); return;
  case T_ARGS: buf_puts(b, "args"); return;
  case T_PROTO: buf_printf(b, "proto%s%s", t->name ? " " : "", t->name ? t->name : ""); return;
  case T_ARRAY: buf_printf(b, "array%s%s%s", t->name ? "<" : "", t->name ? t->name : "", t->name ? ">" : ""); return;
  case T_LIST:
  case T_MAP:
    buf_puts(b, t->tag == T_LIST ? "list<" : "map<");
    type_text(b, t->elem);
    buf_putc(b, '>');
    return;
  }
}

static bool kind_has_presence(ckpt_kind k) {
  return (k >= CKPT_KIND_BOOL && k <= CKPT_KIND_FLOAT64) || k == CKPT_KIND_BYTES ||
         k == CKPT_KIND_RECORD || k == CKPT_KIND_LIST || k == CKPT_KIND_MAP;
}

/* ------------------------------------------------------------------ defaults */

/* Binary size units after an integer: 64 MiB. 0 for an unknown unit. */
static uint64_t unit_multiplier(const char *u) {
  return strcmp(u, "KiB") == 0   ? 1024ull
         : strcmp(u, "MiB") == 0 ? 1024ull * 1024
         : strcmp(u, "GiB") == 0 ? 1024ull * 1024 * 1024
                                 : 0;
}

static void check_default(compiler *c, ast_file *f, ast_field *fl) {
  ast_value *v = fl->def;
  ckpt_kind k = fl->type->kind;
  buf tt;
  buf_init(&tt);
  type_text(&tt, fl->type);
  if (fl->optional) {
    err(c, f, v->loc,
        "optional field '%s' cannot have a default (an absent optional field has no value)",
        fl->name);
    goto out;
  }
  if (v->tag == V_INT && v->suffix != NULL) {
    /* `int64 size = 64 MiB;`: units scale integer defaults, as in @chunk_bytes */
    uint64_t mult = unit_multiplier(v->suffix);
    if (!(k >= CKPT_KIND_INT8 && k <= CKPT_KIND_UINT64)) {
      err(c, f, v->suffix_loc, "a size unit ('%s') applies only to integer defaults; field '%s' is %s",
          v->suffix, fl->name, tt.data);
      goto out;
    }
    if (mult == 0) {
      err(c, f, v->suffix_loc, "unknown size unit '%s' (expected KiB, MiB or GiB)", v->suffix);
      goto out;
    }
    if (v->u > UINT64_MAX / mult) {
      err(c, f, v->loc, "default of field '%s' is too large", fl->name);
      goto out;
    }
    v->u *= mult;
    v->suffix = NULL;
  }
  static const char *const vdesc[] = {"an integer", "a number", "a string", "a boolean", "a name"};
  if (k == CKPT_KIND_BOOL) {
    if (v->tag != V_BOOL)
      err(c, f, v->loc, "wrong default for field '%s' of type bool: expected true or false, got %s",
          fl->name, vdesc[v->tag]);
  } else if (k >= CKPT_KIND_INT8 && k <= CKPT_KIND_UINT64) {
    if (v->tag != V_INT) {
      err(c, f, v->loc, "wrong default for field '%s' of type %s: expected an integer, got %s",
          fl->name, tt.data, vdesc[v->tag]);
      goto out;
    }
    static const struct {
      int64_t lo;
      uint64_t hi;
    } range[] = {
        {INT8_MIN, INT8_MAX},   {INT16_MIN, INT16_MAX}, {INT32_MIN, INT32_MAX},
        {INT64_MIN, INT64_MAX}, {0, UINT8_MAX},         {0, UINT16_MAX},
        {0, UINT32_MAX},        {0, UINT64_MAX},
    };
    size_t i = (size_t)(k - CKPT_KIND_INT8);
    bool ok = v->neg ? (v->u == 0 || (range[i].lo < 0 && v->u - 1 <= (uint64_t)(-(range[i].lo + 1))))
                     : v->u <= range[i].hi;
    if (!ok)
      err(c, f, v->loc, "default %s%llu is out of range for field '%s' of type %s (%lld..%llu)",
          v->neg ? "-" : "", (unsigned long long)v->u, fl->name, tt.data,
          (long long)range[i].lo, (unsigned long long)range[i].hi);
  } else if (k == CKPT_KIND_FLOAT32 || k == CKPT_KIND_FLOAT64) {
    if (v->tag == V_INT) {
      v->f = (double)v->u;
      if (v->neg) v->f = -v->f;
      v->tag = V_FLOAT;
    } else if (v->tag != V_FLOAT) {
      err(c, f, v->loc, "wrong default for field '%s' of type %s: expected a number, got %s",
          fl->name, tt.data, vdesc[v->tag]);
      goto out;
    }
    if (k == CKPT_KIND_FLOAT32 && fabs(v->f) > 3.4028234663852886e38)
      err(c, f, v->loc, "default %g is out of range for field '%s' of type float32", v->f,
          fl->name);
  } else if (k == CKPT_KIND_STRING || k == CKPT_KIND_BYTES) {
    if (v->tag != V_STRING) {
      err(c, f, v->loc, "wrong default for field '%s' of type %s: expected a string, got %s",
          fl->name, tt.data, vdesc[v->tag]);
    } else if (k == CKPT_KIND_STRING && strlen(v->s) != v->slen) {
      err(c, f, v->loc,
          "default of string field '%s' contains a NUL byte (use bytes for binary data)",
          fl->name);
    }
  } else {
    err(c, f, v->loc, "field '%s' of type %s cannot have a default", fl->name, tt.data);
  }
out:
  buf_free(&tt);
}

/* ------------------------------------------------------------------ annotations */

static bool annot_is(const ast_annot *an, const char *name) { return strcmp(an->name, name) == 0; }

static const char *const field_annots[] = {"chunk_bytes", "compress", "save_dtype"};
static const char *const decl_annots[] = {"register_with_handler", "hooks"};

static bool known_in(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], name) == 0) return true;
  return false;
}

static int count_args(const ast_annot *an) {
  int n = 0;
  for (ast_annot_arg *a = an->args; a != NULL; a = a->next) n++;
  return n;
}

static bool leaf_target(const ast_type *t) {
  if (t->kind == CKPT_KIND_ARRAY || t->kind == CKPT_KIND_TREE) return true;
  return (t->kind == CKPT_KIND_LIST || t->kind == CKPT_KIND_MAP) && t->elem != NULL &&
         t->elem->kind == CKPT_KIND_ARRAY;
}

static void field_annotations(compiler *c, ast_file *f, ast_field *fl) {
  unsigned seen = 0;
  for (ast_annot *an = fl->annots; an != NULL; an = an->next) {
    if (!known_in(an->name, field_annots, 3)) {
      if (known_in(an->name, decl_annots, 2))
        err(c, f, an->loc, "@%s cannot be applied to a field", an->name);
      else
        err(c, f, an->loc,
            "unknown annotation '@%s' (fields accept @chunk_bytes, @compress and @save_dtype)",
            an->name);
      continue;
    }
    unsigned bit = annot_is(an, "chunk_bytes") ? 1u : annot_is(an, "compress") ? 2u : 4u;
    if (seen & bit) {
      err(c, f, an->loc, "duplicate annotation '@%s' on field '%s'", an->name, fl->name);
      continue;
    }
    seen |= bit;
    if (!leaf_target(fl->type)) {
      buf tt;
      buf_init(&tt);
      type_text(&tt, fl->type);
      err(c, f, an->loc,
          "@%s applies to arrays, lists and maps of arrays, and trees; field '%s' is %s",
          an->name, fl->name, tt.data);
      buf_free(&tt);
      continue;
    }
    ast_annot_arg *a0 = an->args;
    int n = count_args(an);
    if (bit == 1) { /* @chunk_bytes(N [KiB|MiB|GiB]) */
      if (n != 1 || a0->key != NULL || a0->value.tag != V_INT || a0->value.neg) {
        err(c, f, an->loc, "@chunk_bytes expects one size in bytes, e.g. @chunk_bytes(64 MiB)");
        continue;
      }
      uint64_t mult = 1;
      if (a0->value.suffix != NULL) {
        const char *u = a0->value.suffix;
        mult = unit_multiplier(u);
        if (mult == 0) {
          err(c, f, a0->value.suffix_loc, "unknown size unit '%s' (expected KiB, MiB or GiB)", u);
          continue;
        }
      }
      uint64_t v = a0->value.u;
      if (v == 0) {
        err(c, f, a0->value.loc, "@chunk_bytes must be positive");
        continue;
      }
      if (v > (uint64_t)INT64_MAX / mult) {
        err(c, f, a0->value.loc, "@chunk_bytes is too large (the limit is 2^63 - 1 bytes)");
        continue;
      }
      fl->leaf.chunk_bytes = (int64_t)(v * mult);
    } else if (bit == 2) { /* @compress(zstd[, level]) | @compress(none) */
      if (n < 1 || n > 2 || a0->key != NULL || a0->value.tag != V_NAME ||
          (strcmp(a0->value.s, "zstd") != 0 && strcmp(a0->value.s, "none") != 0)) {
        err(c, f, an->loc, "@compress expects zstd, zstd and a level, or none: @compress(zstd, 3)");
        continue;
      }
      bool zstd = strcmp(a0->value.s, "zstd") == 0;
      fl->leaf.compression = zstd ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE;
      if (n == 2) {
        ast_annot_arg *a1 = a0->next;
        if (!zstd) {
          err(c, f, a1->value.loc, "@compress(none) takes no level");
          continue;
        }
        if (a1->key != NULL || a1->value.tag != V_INT || a1->value.suffix != NULL) {
          err(c, f, a1->value.loc, "the zstd level must be an integer from 1 to 22");
          continue;
        }
        if (a1->value.neg || a1->value.u < 1 || a1->value.u > 22) {
          err(c, f, a1->value.loc, "zstd level %s%llu is out of range (1 to 22)",
              a1->value.neg ? "-" : "", (unsigned long long)a1->value.u);
          continue;
        }
        fl->leaf.compression_level = (int)a1->value.u;
      }
    } else { /* @save_dtype(DT) */
      if (n != 1 || a0->key != NULL || a0->value.tag != V_NAME) {
        err(c, f, an->loc, "@save_dtype expects one dtype, e.g. @save_dtype(bfloat16)");
        continue;
      }
      ckpt_dtype dt;
      if (!lookup_dtype(c, a0->value.s, &dt)) {
        err(c, f, a0->value.loc, "unknown dtype '%s' in @save_dtype", a0->value.s);
        continue;
      }
      fl->leaf.has_save_dtype = true;
      fl->leaf.save_dtype = dt;
    }
  }
}

static void register_annotation(compiler *c, ast_file *f, ast_decl *d, ast_annot *an) {
  ast_annot_arg *a = an->args;
  if (a == NULL || a->key != NULL || a->value.tag != V_NAME) {
    err(c, f, an->loc,
        "@register_with_handler expects a handler first: @register_with_handler(H, for_save = true)");
    return;
  }
  ast_decl *h = lookup_decl(c, f, a->value.s, a->value.loc, "handler");
  if (h != NULL && h->kind != D_HANDLER) {
    err(c, f, a->value.loc, "'%s' is %s %s, not a handler", a->value.s,
        h->kind == D_ARGS ? "an" : "a", decl_kind_text(h->kind));
    h = NULL;
  }
  bool fs = false, fr = false, seen_s = false, seen_r = false, bad = false;
  for (ast_annot_arg *p = a->next; p != NULL; p = p->next) {
    if (p->key == NULL) {
      err(c, f, p->value.loc,
          "unexpected argument: @register_with_handler takes a handler, then for_save = and for_restore =");
      bad = true;
      continue;
    }
    bool is_s = strcmp(p->key, "for_save") == 0;
    if (!is_s && strcmp(p->key, "for_restore") != 0) {
      err(c, f, p->key_loc,
          "unknown parameter '%s' of @register_with_handler (expected for_save or for_restore)",
          p->key);
      bad = true;
      continue;
    }
    if ((is_s && seen_s) || (!is_s && seen_r)) {
      err(c, f, p->key_loc, "duplicate parameter '%s'", p->key);
      bad = true;
      continue;
    }
    if (p->value.tag != V_BOOL) {
      err(c, f, p->value.loc, "%s must be true or false", p->key);
      bad = true;
      continue;
    }
    if (is_s) {
      seen_s = true;
      fs = p->value.b;
    } else {
      seen_r = true;
      fr = p->value.b;
    }
  }
  if (bad) return;
  if (!fs && !fr) {
    err(c, f, an->loc,
        "for_save and for_restore cannot both be false: the registration of '%s' would have no effect",
        d->name);
    return;
  }
  if (h == NULL) return;
  if (h->for_record != NULL || h->for_name != NULL) {
    /* allowed: extra args for a record handler are registered after the generated ones */
  }
  ast_reg *r = arena_alloc(&c->a, sizeof *r);
  r->handler = h;
  r->for_save = fs;
  r->for_restore = fr;
  ast_reg **tail = &d->regs;
  while (*tail != NULL) tail = &(*tail)->next;
  *tail = r;
}

static void hooks_annotation(compiler *c, ast_file *f, ast_decl *d, ast_annot *an) {
  if (d->for_name != NULL) {
    err(c, f, an->loc,
        "@hooks cannot be applied to a record handler ('handler %s for %s' uses the runtime's vtable)",
        d->name, d->for_name);
    return;
  }
  if (an->args == NULL) {
    err(c, f, an->loc, "@hooks expects hook names: init, close, metadata, finalize");
    return;
  }
  for (ast_annot_arg *a = an->args; a != NULL; a = a->next) {
    if (a->key != NULL || a->value.tag != V_NAME) {
      err(c, f, a->key ? a->key_loc : a->value.loc,
          "@hooks expects hook names: init, close, metadata, finalize");
      continue;
    }
    const char *h = a->value.s;
    unsigned bit = strcmp(h, "init") == 0       ? HOOK_INIT
                   : strcmp(h, "close") == 0    ? HOOK_CLOSE
                   : strcmp(h, "metadata") == 0 ? HOOK_METADATA
                   : strcmp(h, "finalize") == 0 ? HOOK_FINALIZE
                                                : 0;
    if (bit == 0) {
      err(c, f, a->value.loc, "unknown hook '%s' (expected init, close, metadata or finalize)", h);
    } else if (d->hooks & bit) {
      err(c, f, a->value.loc, "duplicate hook '%s'", h);
    } else {
      d->hooks |= bit;
    }
  }
}

static void decl_annotations(compiler *c, ast_file *f, ast_decl *d) {
  bool seen_hooks = false;
  for (ast_annot *an = d->annots; an != NULL; an = an->next) {
    if (annot_is(an, "register_with_handler")) {
      if (d->kind != D_ARGS)
        err(c, f, an->loc, "@register_with_handler applies only to args declarations, not to %s '%s'",
            decl_kind_text(d->kind), d->name);
      else
        register_annotation(c, f, d, an);
    } else if (annot_is(an, "hooks")) {
      if (d->kind != D_HANDLER) {
        err(c, f, an->loc, "@hooks applies only to handlers, not to %s '%s'",
            decl_kind_text(d->kind), d->name);
      } else if (seen_hooks) {
        err(c, f, an->loc, "duplicate annotation '@hooks' on handler '%s'", d->name);
      } else {
        seen_hooks = true;
        hooks_annotation(c, f, d, an);
      }
    } else if (known_in(an->name, field_annots, 3)) {
      err(c, f, an->loc, "@%s applies to fields, not to %s declarations", an->name,
          decl_kind_text(d->kind));
    } else {
      err(c, f, an->loc, "unknown annotation '@%s'", an->name);
    }
  }
}

/* ------------------------------------------------------------------ records and args */

typedef struct member_owner {
  ast_field *field;
  const char *what; /* NULL: the field itself; else "presence flag" / "count" */
} member_owner;

static void claim_member(compiler *c, ast_file *f, strmap *members, ast_decl *d, ast_field *fl,
                         const char *name, const char *what) {
  member_owner *o = arena_alloc(&c->a, sizeof *o);
  o->field = fl;
  o->what = what;
  member_owner *prev = strmap_put(members, name, o);
  if (prev == NULL) return;
  if (prev->field == NULL) {
    err(c, f, fl->loc,
        "field '%s' collides with the 'ckpt_args base' member every args struct starts with",
        fl->name);
  } else if (what == NULL && prev->what == NULL) {
    err(c, f, fl->loc, "duplicate field '%s' in %s '%s' (first declared at line %d)", name,
        decl_kind_text(d->kind), d->name, prev->field->loc.line);
  } else if (what == NULL) {
    err(c, f, fl->loc, "field '%s' collides with the %s '%s' generated for field '%s'", name,
        prev->what, name, prev->field->name);
  } else {
    err(c, f, fl->loc, "the %s '%s' generated for field '%s' collides with field '%s'", what, name,
        fl->name, prev->field->name);
  }
}

static void resolve_fields(compiler *c, ast_file *f, ast_decl *d) {
  strmap members;
  strmap_init(&members);
  if (d->kind == D_ARGS) {
    member_owner *base = arena_alloc(&c->a, sizeof *base);
    strmap_put(&members, "base", base);
  }
  d->n_fields = 0;
  for (ast_field *fl = d->fields; fl != NULL; fl = fl->next) {
    d->n_fields++;
    bool name_ok = check_ident(c, f, fl->name, fl->loc, "field");
    resolve_type(c, f, fl->type);
    fl->has_presence = fl->optional && kind_has_presence(fl->type->kind);
    if (name_ok) {
      if (fl->has_presence)
        claim_member(c, f, &members, d, fl, arena_printf(&c->a, "has_%s", fl->name), "presence flag");
      if (fl->type->kind == CKPT_KIND_LIST || fl->type->kind == CKPT_KIND_MAP)
        claim_member(c, f, &members, d, fl, arena_printf(&c->a, "n_%s", fl->name), "count");
      claim_member(c, f, &members, d, fl, fl->name, NULL);
    }
    if (fl->def != NULL) check_default(c, f, fl);
    field_annotations(c, f, fl);
    if (fl->type->kind == CKPT_KIND_MAP && name_ok) {
      const char *entry = arena_printf(&c->a, "%s_%s_entry", d->c_name, fl->name);
      ast_field *prev = strmap_get(&c->entry_names, entry);
      if (prev != NULL && prev != fl)
        err(c, f, fl->loc,
            "map field '%s.%s' needs the C type '%s', which another map field already uses; rename one",
            d->name, fl->name, entry);
      else
        strmap_put(&c->entry_names, entry, fl);
    }
  }
  strmap_free(&members);
}

/* A record may not contain itself by value (directly, through other records, or through an
 * optional record, which is embedded too); lists and maps hold pointers and break cycles. */
static bool find_cycle(compiler *c, ast_file *f, ast_decl *d, ast_decl **path, ast_field **via,
                       size_t depth, size_t max) {
  if (d->visit == 2) return false;
  if (d->visit == 1) {
    size_t start = 0;
    while (start < depth && path[start] != d) start++;
    buf chain;
    buf_init(&chain);
    for (size_t i = start; i < depth; i++) buf_printf(&chain, "%s.%s -> ", path[i]->name, via[i]->name);
    buf_puts(&chain, d->name);
    ast_field *closing = via[depth - 1];
    err(c, f, closing->loc,
        "record '%s' contains itself by value (%s); use list<%s> or map<%s> to refer to it (optional records are embedded too)",
        d->name, chain.data, d->name, d->name);
    buf_free(&chain);
    return true;
  }
  if (depth >= max) return false;
  d->visit = 1;
  path[depth] = d;
  bool found = false;
  for (ast_field *fl = d->fields; fl != NULL && !found; fl = fl->next) {
    if (fl->type->kind != CKPT_KIND_RECORD || fl->type->record == NULL ||
        fl->type->record->file != f)
      continue;
    via[depth] = fl;
    found = find_cycle(c, f, fl->type->record, path, via, depth + 1, max);
  }
  d->visit = 2;
  return found;
}

/* ------------------------------------------------------------------ handlers */

static ast_field *gen_field(compiler *c, const char *name, ckpt_kind kind, ast_decl *rec,
                            src_loc loc) {
  ast_field *fl = arena_alloc(&c->a, sizeof *fl);
  fl->name = name;
  fl->loc = loc;
  fl->type = ast_type_new(&c->a, T_NAMED, loc);
  fl->type->name = kind == CKPT_KIND_BOOL ? "bool" : rec->name;
  fl->type->kind = kind;
  fl->type->record = rec;
  return fl;
}

/* `handler H for R;` declares two args types as if written in the schema:
 *   @register_with_handler(H, for_save = true)    args RSave    { const R *item; }
 *   @register_with_handler(H, for_restore = true) args RRestore { optional R target; bool strict = true; } */
static void declare_generated_args(compiler *c, ast_file *f, ast_decl *h, strmap *local) {
  const char *rec = strrchr(h->for_name, '.');
  rec = rec != NULL ? rec + 1 : h->for_name;
  ast_decl *after = h; /* RSave goes right after the handler, RRestore after RSave */
  for (int i = 0; i < 2; i++) {
    ast_decl *a = arena_alloc(&c->a, sizeof *a);
    a->kind = D_ARGS;
    a->name = arena_printf(&c->a, "%s%s", rec, i == 0 ? "Save" : "Restore");
    a->loc = h->for_loc;
    a->start = h->for_loc;
    a->file = f;
    a->gen_for = h;
    a->doc = arena_printf(&c->a, "Generated for `handler %s for %s;`: the %s args of %s.", h->name,
                          h->for_name, i == 0 ? "save" : "restore", h->for_name);
    a->full_name = arena_printf(&c->a, "%s.%s", f->package, a->name);
    a->c_name = arena_printf(&c->a, "%s_%s", f->c_prefix, a->name);
    ast_decl *prev = strmap_put(local, a->name, a);
    if (prev != NULL) {
      err(c, f, h->for_loc,
          "'handler %s for %s' generates args '%s', which collides with the %s '%s' declared at line %d",
          h->name, h->for_name, a->name, decl_kind_text(prev->kind), prev->name, prev->loc.line);
      continue;
    }
    strmap_put(&c->decls, a->full_name, a);
    if (i == 0) h->gen_save = a;
    else h->gen_restore = a;
    /* registration follows declaration order */
    a->next = after->next;
    after->next = a;
    after = a;
  }
}

static void finish_generated_args(compiler *c, ast_decl *h) {
  ast_decl *r = h->for_record;
  if (h->gen_save != NULL) {
    ast_decl *a = h->gen_save;
    a->fields = gen_field(c, "item", CKPT_KIND_RECORD_REF, r, h->for_loc);
    a->n_fields = 1;
    a->regs = arena_alloc(&c->a, sizeof *a->regs);
    a->regs->handler = h;
    a->regs->for_save = true;
  }
  if (h->gen_restore != NULL) {
    ast_decl *a = h->gen_restore;
    a->fields = gen_field(c, "target", CKPT_KIND_RECORD_REF, r, h->for_loc);
    a->fields->optional = true;
    ast_field *strict = gen_field(c, "strict", CKPT_KIND_BOOL, r, h->for_loc);
    strict->def = arena_alloc(&c->a, sizeof *strict->def);
    strict->def->tag = V_BOOL;
    strict->def->b = true;
    a->fields->next = strict;
    a->n_fields = 2;
    a->regs = arena_alloc(&c->a, sizeof *a->regs);
    a->regs->handler = h;
    a->regs->for_restore = true;
  }
}

static void resolve_handler(compiler *c, ast_file *f, ast_decl *h) {
  if (h->for_name != NULL) {
    ast_decl *r = lookup_decl(c, f, h->for_name, h->for_loc, "record");
    if (r != NULL && r->kind != D_RECORD) {
      err(c, f, h->for_loc, "'handler %s for %s': '%s' is %s %s; a record handler needs a record",
          h->name, h->for_name, h->for_name, r->kind == D_ARGS ? "an" : "a",
          decl_kind_text(r->kind));
      r = NULL;
    }
    h->for_record = r;
    if (r != NULL) finish_generated_args(c, h);
  }
  h->typestr_final = h->typestr != NULL ? h->typestr : h->full_name;
  if (h->typestr != NULL && h->typestr[0] == '\0')
    err(c, f, h->typestr_loc, "the typestr of handler '%s' is empty", h->name);
  ast_decl *prev = strmap_put(&c->typestrs, h->typestr_final, h);
  if (prev != NULL && prev != h)
    err(c, f, h->typestr != NULL ? h->typestr_loc : h->loc,
        "handler '%s' has typestr \"%s\", which handler '%s' already uses", h->name,
        h->typestr_final, prev->full_name);
}

static void check_handler_args(compiler *c, ast_file *f) {
  /* One pass over the registrations records the first save and restore args of each handler
   * (keyed by its full name; duplicate handlers are skipped below), then one pass over the
   * handlers: linear, where a scan of every declaration per handler was quadratic on schemas
   * with thousands of hand-written handlers. */
  strmap first_save, first_restore;
  strmap_init(&first_save);
  strmap_init(&first_restore);
  for (ast_decl *a = f->decls; a != NULL; a = a->next)
    for (ast_reg *r = a->regs; r != NULL; r = r->next) {
      if (r->handler == NULL || r->handler->full_name == NULL) continue;
      if (r->for_save) strmap_put(&first_save, r->handler->full_name, (void *)a->name);
      if (r->for_restore) strmap_put(&first_restore, r->handler->full_name, (void *)a->name);
    }
  for (ast_decl *h = f->decls; h != NULL; h = h->next) {
    if (h->kind != D_HANDLER || h->for_name != NULL || h->duplicate) continue;
    const char *save = strmap_get(&first_save, h->full_name);
    const char *restore = strmap_get(&first_restore, h->full_name);
    if (save != NULL && restore == NULL)
      err(c, f, h->loc,
          "handler '%s' has save args ('%s') but no restore args: register an args type with @register_with_handler(%s, for_restore = true) (Orbax's get_registered_args_cls needs both)",
          h->name, save, h->name);
    else if (save == NULL && restore != NULL)
      err(c, f, h->loc,
          "handler '%s' has restore args ('%s') but no save args: register an args type with @register_with_handler(%s, for_save = true) (Orbax's get_registered_args_cls needs both)",
          h->name, restore, h->name);
    else if (save == NULL)
      err(c, f, h->loc,
          "handler '%s' has no args registered with it: declare save and restore args with @register_with_handler(%s, for_save = true) and (%s, for_restore = true)",
          h->name, h->name, h->name);
  }
  strmap_free(&first_save);
  strmap_free(&first_restore);
}

/* ------------------------------------------------------------------ one file */

static void resolve_file(compiler *c, ast_file *f) {
  strmap local;
  strmap_init(&local);
  /* pass 1: declare every name (so order of declaration does not matter) */
  for (ast_decl *d = f->decls; d != NULL; d = d->next) {
    if (d->gen_for != NULL) continue;
    bool ok = check_decl_name(c, f, d->name, d->loc, decl_kind_text(d->kind));
    d->full_name = arena_printf(&c->a, "%s.%s", f->package, d->name);
    d->c_name = arena_printf(&c->a, "%s_%s", f->c_prefix, d->name);
    ast_decl *prev = strmap_put(&local, d->name, d);
    if (prev != NULL) {
      err(c, f, d->loc, "duplicate name '%s': %s '%s' is already declared at line %d", d->name,
          decl_kind_text(prev->kind), prev->name, prev->loc.line);
      d->duplicate = true; /* reported once; later passes skip it */
      continue;
    }
    (void)ok; /* declared even when badly named, so uses do not cascade into more errors */
    strmap_put(&c->decls, d->full_name, d);
    if (d->kind == D_HANDLER && d->for_name != NULL) declare_generated_args(c, f, d, &local);
  }
  /* pass 2: annotations, fields, types, handlers */
  for (ast_decl *d = f->decls; d != NULL; d = d->next) {
    if (d->gen_for != NULL || d->duplicate) continue;
    decl_annotations(c, f, d);
    if (d->kind == D_HANDLER)
      resolve_handler(c, f, d);
    else
      resolve_fields(c, f, d);
  }
  /* pass 3: whole-file rules */
  size_t n = 0;
  for (ast_decl *d = f->decls; d != NULL; d = d->next) n++;
  ast_decl **path = xmalloc((n + 1) * sizeof *path);
  ast_field **via = xmalloc((n + 1) * sizeof *via);
  for (ast_decl *d = f->decls; d != NULL; d = d->next)
    if (d->kind == D_RECORD && d->visit == 0) find_cycle(c, f, d, path, via, 0, n + 1);
  free(path);
  free(via);
  check_handler_args(c, f);
  strmap_free(&local);
}

/* ------------------------------------------------------------------ loading */

static proto_file *load_proto(compiler *c, ast_file *from, ast_import *im, const char *path) {
  char *real = realpath(path, NULL);
  const char *key = real != NULL ? arena_strdup(&c->a, real) : arena_strdup(&c->a, path);
  free(real);
  proto_file *pf = strmap_get(&c->protos, key);
  if (pf != NULL) return pf;
  char *text;
  size_t len;
  int e = read_all(path, &text, &len);
  if (e != 0) {
    err(c, from, im->loc, "cannot read '%s': %s", path, strerror(e));
    return NULL;
  }
  keep_text(c, text);
  pf = arena_alloc(&c->a, sizeof *pf);
  pf->path = arena_strdup(&c->a, path);
  pf->real = key;
  strmap_put(&c->protos, key, pf);
  src_file src = {pf->path, text, len, NULL, 0};
  if (!protoscan(pf, &src, &c->a, c->d)) from->ok = false;
  src_file_release(&src);
  return pf;
}

static ast_file *load(compiler *c, const char *path, ast_file *from, ast_import *im);

static void load_imports(compiler *c, ast_file *f) {
  for (ast_import *im = f->imports; im != NULL; im = im->next) {
    if (c->d->stopped) return;
    buf tried;
    buf_init(&tried);
    const char *p = find_import(c, f, im->path, &tried);
    if (p == NULL) {
      err(c, f, im->loc, "cannot find %simport '%s' (searched: %s)", im->is_proto ? "proto " : "",
          im->path, tried.len ? tried.data : "absolute path");
      buf_free(&tried);
      continue;
    }
    buf_free(&tried);
    if (im->is_proto) {
      size_t n = strlen(im->path);
      if (n < 6 || strcmp(im->path + n - 6, ".proto") != 0)
        err(c, f, im->loc, "a proto import must name a .proto file, not '%s'", im->path);
      im->proto = load_proto(c, f, im, p);
      continue;
    }
    size_t n = strlen(im->path);
    if (n < 5 || strcmp(im->path + n - 5, ".ckpt") != 0) {
      err(c, f, im->loc, "an import must name a .ckpt file, not '%s' (use `import proto` for .proto files)",
          im->path);
      continue;
    }
    ast_file *g = load(c, p, f, im);
    if (g == NULL) continue;
    if (g == f) {
      err(c, f, im->loc, "import cycle: %s imports itself", f->src.display);
      continue;
    }
    for (ast_import *o = f->imports; o != im; o = o->next)
      if (!o->is_proto && o->file == g) {
        err(c, f, im->loc, "'%s' is imported twice", im->path);
        break;
      }
    im->file = g;
    if (!g->ok) f->ok = false;
  }
}

static ast_file *load(compiler *c, const char *path, ast_file *from, ast_import *im) {
  char *realp = realpath(path, NULL);
  if (realp == NULL) {
    int e = errno;
    if (from != NULL)
      err(c, from, im->loc, "cannot open '%s': %s", path, strerror(e));
    else
      diag_plain(c->d, "cannot open '%s': %s", path, strerror(e));
    return NULL;
  }
  const char *real = arena_strdup(&c->a, realp);
  free(realp);
  ast_file *f = strmap_get(&c->files, real);
  if (f != NULL) {
    if (f->state == 1 && from != NULL && f != from) {
      buf chain;
      buf_init(&chain);
      size_t i = 0;
      while (i < c->depth && c->stack[i] != f) i++;
      for (; i < c->depth; i++) buf_printf(&chain, "%s -> ", c->stack[i]->src.display);
      buf_puts(&chain, f->src.display);
      err(c, from, im->loc, "import cycle: %s", chain.data);
      buf_free(&chain);
      return NULL;
    }
    return f;
  }
  char *text;
  size_t len;
  int e = read_all(path, &text, &len);
  if (e != 0) {
    if (from != NULL)
      err(c, from, im->loc, "cannot read '%s': %s", path, strerror(e));
    else
      diag_plain(c->d, "cannot read '%s': %s", path, strerror(e));
    return NULL;
  }
  keep_text(c, text);
  f = arena_alloc(&c->a, sizeof *f);
  f->path = arena_strdup(&c->a, path);
  f->real = real;
  f->src.display = f->path;
  f->src.text = text;
  f->src.len = len;
  f->state = 1;
  f->ok = true;
  strmap_put(&c->files, real, f);
  push_file(c, f);
  if (!parse_file(f, &c->a, c->d)) f->ok = false;
  if (c->d->stopped) {
    f->ok = false;
    f->state = 2;
    return f;
  }
  if (f->package == NULL) {
    src_loc top = {1, 1, 1};
    err(c, f, top, "missing package declaration: a schema starts with `package NAME;`");
    f->package = "unnamed";
  } else {
    bool ok = true;
    const char *p = f->package;
    while (ok && *p) {
      const char *dot = strchr(p, '.');
      size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
      ok = check_ident(c, f, arena_strndup(&c->a, p, n), f->package_loc, "package");
      p += n + (dot != NULL);
    }
    ast_file *other = strmap_get(&c->packages, f->package);
    if (other != NULL && other != f)
      err(c, f, f->package_loc,
          "package '%s' is already declared by %s: a package is one schema file (it gets one %s_register function)",
          f->package, other->src.display, f->package);
    else
      strmap_put(&c->packages, f->package, f);
  }
  char *prefix = arena_strdup(&c->a, f->package);
  for (char *q = prefix; *q; q++)
    if (*q == '.') *q = '_';
  f->c_prefix = prefix;

  if (c->depth == c->stack_cap) {
    c->stack_cap = c->stack_cap ? c->stack_cap * 2 : 8;
    c->stack = xrealloc(c->stack, c->stack_cap * sizeof *c->stack);
  }
  c->stack[c->depth++] = f;
  load_imports(c, f);
  c->depth--;
  if (!c->d->stopped) resolve_file(c, f);
  f->state = 2;
  return f;
}

ast_file *compiler_load(compiler *c, const char *path) { return load(c, path, NULL, NULL); }

/* ------------------------------------------------------------------ queries */

static void collect_deps(compiler *c, ast_file *f, strmap *seen, const char ***out, size_t *n,
                         size_t *cap) {
  for (ast_import *im = f->imports; im != NULL; im = im->next) {
    const char *path = im->is_proto ? (im->proto ? im->proto->path : NULL)
                                    : (im->file ? im->file->path : NULL);
    const char *key = im->is_proto ? (im->proto ? im->proto->real : NULL)
                                   : (im->file ? im->file->real : NULL);
    if (path == NULL || strmap_put(seen, key, (void *)path) != NULL) continue;
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 8;
      *out = xrealloc(*out, *cap * sizeof **out);
    }
    (*out)[(*n)++] = path;
    if (!im->is_proto) collect_deps(c, im->file, seen, out, n, cap);
  }
}

size_t compiler_deps(compiler *c, ast_file *f, const char ***out) {
  strmap seen;
  strmap_init(&seen);
  strmap_put(&seen, f->real, (void *)f->path);
  size_t n = 0, cap = 0;
  *out = NULL;
  collect_deps(c, f, &seen, out, &n, &cap);
  strmap_free(&seen);
  return n;
}

static bool type_uses_bare_proto(const ast_type *t) {
  if (t->tag == T_PROTO) return t->name == NULL;
  if (t->elem != NULL) return type_uses_bare_proto(t->elem);
  return false;
}

bool file_uses_bare_proto(const ast_file *f) {
  for (const ast_decl *d = f->decls; d != NULL; d = d->next)
    for (const ast_field *fl = d->fields; fl != NULL; fl = fl->next)
      if (type_uses_bare_proto(fl->type)) return true;
  return false;
}
