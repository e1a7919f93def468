/* io/path_set.c — a set of path strings (see path_set.h). */
#include "io/path_set.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a: good enough to spread paths over the slots. */
static size_t hash_str(const char *s) {
  size_t h = (size_t)1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * (size_t)1099511628211ull;
  return h;
}

/* Places an owned string in a table known to have room and not to hold it. */
static void place(char **slots, size_t cap, char *s) {
  size_t j = hash_str(s) & (cap - 1);
  while (slots[j] != NULL)
    j = (j + 1) & (cap - 1);
  slots[j] = s;
}

int ckpt_path_set_add(ckpt_path_set *ps, const char *s) {
  if (ckpt_path_set_contains(ps, s))
    return 0;
  if ((ps->count + 1) * 2 > ps->cap) {
    size_t ncap = ps->cap ? ps->cap * 2 : 16;
    char **ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
      return -1;
    for (size_t i = 0; i < ps->cap; i++)
      if (ps->slots[i] != NULL)
        place(ns, ncap, ps->slots[i]);
    free(ps->slots);
    ps->slots = ns;
    ps->cap = ncap;
  }
  char *copy = strdup(s);
  if (copy == NULL)
    return -1;
  place(ps->slots, ps->cap, copy);
  ps->count++;
  return 0;
}

bool ckpt_path_set_contains(const ckpt_path_set *ps, const char *s) {
  if (ps == NULL || ps->cap == 0)
    return false;
  size_t j = hash_str(s) & (ps->cap - 1);
  while (ps->slots[j] != NULL) {
    if (strcmp(ps->slots[j], s) == 0)
      return true;
    j = (j + 1) & (ps->cap - 1);
  }
  return false;
}

int ckpt_path_set_rename(ckpt_path_set *ps, const char *from, const char *to) {
  size_t nf = strlen(from), nt = strlen(to);
  /* Take the members out (a rename changes their hash), rename, and put them back. */
  char **old = ps->slots;
  size_t cap = ps->cap;
  ps->slots = NULL;
  ps->cap = ps->count = 0;
  int rc = 0;
  for (size_t i = 0; i < cap; i++) {
    char *s = old[i];
    if (s == NULL)
      continue;
    if (strncmp(s, from, nf) == 0 && (s[nf] == '\0' || s[nf] == '/')) {
      size_t rest = strlen(s + nf);
      char *r = malloc(nt + rest + 1);
      if (r != NULL) {
        memcpy(r, to, nt);
        memcpy(r + nt, s + nf, rest + 1);
      }
      free(s);
      s = r;
    }
    if (s != NULL && rc == 0 && ckpt_path_set_add(ps, s) != 0)
      rc = -1;
    if (s == NULL)
      rc = -1;
    free(s);
  }
  free(old);
  return rc;
}

void ckpt_path_set_clear(ckpt_path_set *ps) {
  for (size_t i = 0; i < ps->cap; i++)
    free(ps->slots[i]);
  free(ps->slots);
  ps->slots = NULL;
  ps->cap = ps->count = 0;
}
