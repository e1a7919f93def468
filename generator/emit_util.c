/* emit_util.c — escaping, C type names and atomic output files for the emitters. */
#include "emit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void emit_c_string(buf *out, const char *s, size_t n) {
  buf_putc(out, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '"': buf_puts(out, "\\\""); break;
    case '\\': buf_puts(out, "\\\\"); break;
    case '\n': buf_puts(out, "\\n"); break;
    case '\t': buf_puts(out, "\\t"); break;
    case '?':
      /* "??x" would be a trigraph under -std=c11 */
      buf_puts(out, i > 0 && s[i - 1] == '?' ? "\\?" : "?");
      break;
    default:
      if (c < 0x20 || c >= 0x7f)
        buf_printf(out, "\\%03o", c); /* always three digits: a following digit stays a digit */
      else
        buf_putc(out, (char)c);
    }
  }
  buf_putc(out, '"');
}

/* Copies one doc line into a comment, defusing what would end the comment early, open a
 * nested one (-Wcomment), form a trigraph or splice lines. */
static void doc_line(buf *out, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '/' && i > 0 && p[i - 1] == '*') buf_puts(out, " /");
    else if (c == '*' && i > 0 && p[i - 1] == '/') buf_puts(out, " *");
    else if (c == '?' && i > 0 && p[i - 1] == '?') buf_puts(out, " ?");
    else if (c == '\\' && i + 1 == n) buf_puts(out, "\\ ");
    else if ((c < 0x20 && c != '\t') || c == 0x7f) buf_putc(out, ' ');
    else buf_putc(out, (char)c);
  }
}

void emit_doc_comment(buf *out, const char *indent, const char *doc) {
  if (doc == NULL) return;
  if (strchr(doc, '\n') == NULL) {
    buf_printf(out, "%s/** ", indent);
    doc_line(out, doc, strlen(doc));
    buf_puts(out, " */\n");
    return;
  }
  buf_printf(out, "%s/**\n", indent);
  const char *p = doc;
  for (;;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    buf_printf(out, "%s *%s", indent, n ? " " : "");
    doc_line(out, p, n);
    buf_putc(out, '\n');
    if (nl == NULL) break;
    p = nl + 1;
  }
  buf_printf(out, "%s */\n", indent);
}

const char *emit_c_type(arena *a, const ast_type *t, const char *map_entry) {
  switch (t->kind) {
  case CKPT_KIND_BOOL: return "bool";
  case CKPT_KIND_INT8: return "int8_t";
  case CKPT_KIND_INT16: return "int16_t";
  case CKPT_KIND_INT32: return "int32_t";
  case CKPT_KIND_INT64: return "int64_t";
  case CKPT_KIND_UINT8: return "uint8_t";
  case CKPT_KIND_UINT16: return "uint16_t";
  case CKPT_KIND_UINT32: return "uint32_t";
  case CKPT_KIND_UINT64: return "uint64_t";
  case CKPT_KIND_FLOAT32: return "float";
  case CKPT_KIND_FLOAT64: return "double";
  case CKPT_KIND_STRING: return "char *";
  case CKPT_KIND_BYTES: return "ckpt_bytes";
  case CKPT_KIND_ARRAY: return "ckpt_array *";
  case CKPT_KIND_RECORD: return t->record->c_name;
  case CKPT_KIND_LIST: {
    const char *et = emit_c_type(a, t->elem, NULL); /* items: T *NAME, so T* here */
    return arena_printf(a, "%s%s*", et, et[strlen(et) - 1] == '*' ? "" : " ");
  }
  case CKPT_KIND_MAP: return arena_printf(a, "%s *", map_entry);
  case CKPT_KIND_JSON: return "cJSON *";
  case CKPT_KIND_PROTO: return t->proto != NULL ? arena_printf(a, "%s *", t->proto->c_type) : "ProtobufCMessage *";
  case CKPT_KIND_JAX_KEY: return "ckpt_jax_key *";
  case CKPT_KIND_NUMPY_RNG: return "ckpt_numpy_rng *";
  case CKPT_KIND_TREE: return "ckpt_tree *";
  case CKPT_KIND_ARGS: return "ckpt_args *";
  case CKPT_KIND_RECORD_REF: return arena_printf(a, "const %s *", t->record->c_name);
  }
  return "void *";
}

void emit_declarator(buf *out, const char *type, const char *name) {
  size_t n = strlen(type);
  buf_printf(out, "%s%s%s", type, n > 0 && type[n - 1] == '*' ? "" : " ", name);
}

const char *emit_entry_name(arena *a, const ast_decl *d, const ast_field *fl) {
  return arena_printf(a, "%s_%s_entry", d->c_name, fl->name);
}

static bool mkdirs_for(const char *path, diag *d) {
  char *p = strdup(path);
  if (p == NULL) {
    diag_plain(d, "out of memory");
    return false;
  }
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      diag_plain(d, "cannot create directory '%s': %s", p, strerror(errno));
      free(p);
      return false;
    }
    *s = '/';
  }
  free(p);
  return true;
}

bool write_file_atomic(const char *path, const char *data, size_t len, diag *d) {
  if (!mkdirs_for(path, d)) return false;
  buf tmp;
  buf_init(&tmp);
  buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    diag_plain(d, "cannot create '%s': %s", tmp.data, strerror(errno));
    buf_free(&tmp);
    return false;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      diag_plain(d, "cannot write '%s': %s", tmp.data, strerror(errno));
      close(fd);
      unlink(tmp.data);
      buf_free(&tmp);
      return false;
    }
    off += (size_t)w;
  }
  if (close(fd) != 0) {
    diag_plain(d, "cannot write '%s': %s", tmp.data, strerror(errno));
    unlink(tmp.data);
    buf_free(&tmp);
    return false;
  }
  if (rename(tmp.data, path) != 0) {
    diag_plain(d, "cannot rename '%s' to '%s': %s", tmp.data, path, strerror(errno));
    unlink(tmp.data);
    buf_free(&tmp);
    return false;
  }
  buf_free(&tmp);
  return true;
}
