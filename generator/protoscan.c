/* protoscan.c — a small, forgiving scanner of .proto files (see protoscan.h).
 *
 * It does not parse protobuf: it tokenises (skipping comments, strings and options) and
 * follows braces, noticing `package X;`, `message Name {` and proto2 `group Name = N {`.
 * Everything else — fields, enums, services, options with aggregate values — is skipped by
 * brace matching, which is all the naming needs. */
#include "protoscan.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef enum { PT_EOF, PT_IDENT, PT_STRING, PT_NUMBER, PT_PUNCT } ptok_kind;

typedef struct ptok {
  ptok_kind kind;
  const char *text;
  size_t len;
  int line, col;
} ptok;

typedef struct pscan {
  src_file *src;
  diag *d;
  size_t pos;
  int line, col;
  bool ok;
} pscan;

static void padvance(pscan *s, size_t n) {
  for (size_t i = 0; i < n && s->pos < s->src->len; i++, s->pos++) {
    if (s->src->text[s->pos] == '\n') {
      s->line++;
      s->col = 1;
    } else {
      s->col++;
    }
  }
}

static void perr(pscan *s, int line, int col, const char *msg) {
  src_loc loc = {line, col, 1};
  diag_error(s->d, s->src, loc, "%s", msg);
  s->ok = false;
}

static ptok pnext(pscan *s) {
  const char *t = s->src->text;
  size_t n = s->src->len;
  for (;;) {
    while (s->pos < n && isspace((unsigned char)t[s->pos])) padvance(s, 1);
    if (s->pos + 1 < n && t[s->pos] == '/' && t[s->pos + 1] == '/') {
      while (s->pos < n && t[s->pos] != '\n') padvance(s, 1);
      continue;
    }
    if (s->pos + 1 < n && t[s->pos] == '/' && t[s->pos + 1] == '*') {
      int line = s->line, col = s->col;
      padvance(s, 2);
      while (s->pos + 1 < n && !(t[s->pos] == '*' && t[s->pos + 1] == '/')) padvance(s, 1);
      if (s->pos + 1 >= n) {
        perr(s, line, col, "unterminated comment in proto file");
        s->pos = n;
        return (ptok){PT_EOF, t + n, 0, s->line, s->col};
      }
      padvance(s, 2);
      continue;
    }
    break;
  }
  ptok k = {PT_EOF, t + s->pos, 0, s->line, s->col};
  if (s->pos >= n) return k;
  unsigned char c = (unsigned char)t[s->pos];
  size_t start = s->pos;
  if (isalpha(c) || c == '_') {
    size_t e = start;
    while (e < n && (isalnum((unsigned char)t[e]) || t[e] == '_')) e++;
    k.kind = PT_IDENT;
    k.len = e - start;
  } else if (isdigit(c)) {
    size_t e = start;
    while (e < n && (isalnum((unsigned char)t[e]) || t[e] == '.' || t[e] == '_')) e++;
    k.kind = PT_NUMBER;
    k.len = e - start;
  } else if (c == '"' || c == '\'') {
    size_t e = start + 1;
    while (e < n && t[e] != (char)c && t[e] != '\n') e += (t[e] == '\\' && e + 1 < n) ? 2 : 1;
    if (e >= n || t[e] != (char)c) {
      perr(s, s->line, s->col, "unterminated string in proto file");
      k.kind = PT_STRING;
      k.len = (e < n ? e : n) - start;
    } else {
      k.kind = PT_STRING;
      k.len = e + 1 - start;
    }
  } else {
    k.kind = PT_PUNCT;
    k.len = 1;
  }
  padvance(s, k.len);
  return k;
}

static bool is_word(const ptok *k, const char *w) {
  return k->kind == PT_IDENT && k->len == strlen(w) && memcmp(k->text, w, k->len) == 0;
}

static bool is_punct(const ptok *k, char c) {
  return k->kind == PT_PUNCT && k->text[0] == c;
}

/* One open brace: the message it opens (full name), or NULL for any other block. */
typedef struct scope {
  const char *msg;
} scope;

static void add_msg(proto_file *pf, arena *a, const char *full) {
  if (strmap_get(&pf->msgs, full) != NULL) return; /* protoc rejects duplicates itself */
  proto_msg *m = arena_alloc(a, sizeof *m);
  m->full_name = full;
  m->c_type = protoc_c_type_name(a, full);
  m->c_desc = protoc_c_descriptor_name(a, full);
  strmap_put(&pf->msgs, full, m);
  if ((pf->n_msgs & (pf->n_msgs + 1)) == 0) { /* grow at 0, 1, 3, 7, ... */
    proto_msg **nl = arena_alloc(a, (pf->n_msgs * 2 + 2) * sizeof *nl);
    if (pf->n_msgs) memcpy(nl, pf->list, pf->n_msgs * sizeof *nl);
    pf->list = nl;
  }
  pf->list[pf->n_msgs++] = m;
}

bool protoscan(proto_file *pf, src_file *src, arena *a, diag *d) {
  pscan s = {src, d, 0, 1, 1, true};
  strmap_init(&pf->msgs);
  strmap_init(&pf->enums);
  const char *pending_enum = NULL;
  pf->package = "";
  scope *stack = NULL;
  size_t depth = 0, cap = 0;
  const char *pending = NULL; /* message name seen, waiting for its '{' */
  ptok prev = {PT_EOF, "", 0, 0, 0};
  for (;;) {
    ptok k = pnext(&s);
    if (k.kind == PT_EOF) break;
    if (depth == 0 && is_word(&k, "package") && prev.kind != PT_IDENT) {
      buf name;
      buf_init(&name);
      ptok t;
      while ((t = pnext(&s)).kind == PT_IDENT || is_punct(&t, '.')) buf_putn(&name, t.text, t.len);
      pf->package = arena_strndup(a, name.data ? name.data : "", name.len);
      buf_free(&name);
      k = t;
      if (k.kind == PT_EOF) break;
    }
    if (k.kind == PT_IDENT && (is_word(&prev, "message") || is_word(&prev, "group"))) {
      /* `message Name {` or proto2 `group Name = N {`: a (nested) message type */
      pending = arena_strndup(a, k.text, k.len);
    } else if (k.kind == PT_IDENT && is_word(&prev, "enum")) {
      pending_enum = arena_strndup(a, k.text, k.len);
    } else if (is_punct(&k, '{')) {
      if (depth == cap) {
        cap = cap ? cap * 2 : 16;
        stack = xrealloc(stack, cap * sizeof *stack);
      }
      const char *full = NULL;
      const char *name = pending != NULL ? pending : pending_enum;
      if (name != NULL) {
        const char *outer = NULL;
        for (size_t i = depth; i > 0; i--)
          if (stack[i - 1].msg != NULL) {
            outer = stack[i - 1].msg;
            break;
          }
        if (outer != NULL)
          full = arena_printf(a, "%s.%s", outer, name);
        else if (pf->package[0] != '\0')
          full = arena_printf(a, "%s.%s", pf->package, name);
        else
          full = name;
        if (pending != NULL) {
          add_msg(pf, a, full);
        } else {
          strmap_put(&pf->enums, full, (void *)full);
          full = NULL; /* an enum's braces are not a message scope */
        }
        pending = pending_enum = NULL;
      }
      stack[depth++].msg = full;
    } else if (is_punct(&k, '}')) {
      if (depth == 0) {
        perr(&s, k.line, k.col, "unbalanced '}' in proto file");
      } else {
        depth--;
      }
      pending = pending_enum = NULL;
    } else if (is_punct(&k, ';')) {
      pending = pending_enum = NULL;
    }
    prev = k;
  }
  if (depth > 0 && s.ok) perr(&s, s.line, s.col, "unbalanced '{' in proto file (missing '}' at end of file)");
  free(stack);
  return s.ok;
}

/* protoc-c: each dotted component ToCamel'd ("foo_bar" → "FooBar"), joined with "__". */
const char *protoc_c_type_name(arena *a, const char *full_name) {
  buf b;
  buf_init(&b);
  bool upper = true;
  for (const char *p = full_name; *p; p++) {
    if (*p == '.') {
      buf_puts(&b, "__");
      upper = true;
    } else if (*p == '_') {
      upper = true;
    } else if (upper) {
      buf_putc(&b, (char)toupper((unsigned char)*p));
      upper = false;
    } else {
      buf_putc(&b, *p);
    }
  }
  const char *r = arena_strndup(a, b.data ? b.data : "", b.len);
  buf_free(&b);
  return r;
}

/* protoc-c: each component CamelToLower'd (an '_' before an upper-case letter that follows a
 * non-upper-case character: "RunInfo" → "run_info", "HTTPRequest" → "httprequest"), joined
 * with "__", then "__descriptor". */
const char *protoc_c_descriptor_name(arena *a, const char *full_name) {
  buf b;
  buf_init(&b);
  const char *seg = full_name;
  for (const char *p = full_name;; p++) {
    if (*p == '.' || *p == '\0') {
      for (const char *q = seg; q < p; q++) {
        bool up = isupper((unsigned char)*q) != 0;
        bool was_up = q == seg || isupper((unsigned char)q[-1]);
        if (up && !was_up) buf_putc(&b, '_');
        buf_putc(&b, (char)tolower((unsigned char)*q));
      }
      if (*p == '\0') break;
      buf_puts(&b, "__");
      seg = p + 1;
    }
  }
  buf_puts(&b, "__descriptor");
  const char *r = arena_strndup(a, b.data, b.len);
  buf_free(&b);
  return r;
}
