/* storage/step_name.c — parsing and formatting step directory names (see step_name.h). */
#include "storage/step_name.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/layout.h"

bool ckpt_step_name_parse(const char *name, ckpt_step_name *out) {
  size_t end = strlen(name);
  bool tmp = false;
  const char *mark = strstr(name, CKPT_TMP_SUFFIX);
  if (mark != NULL) {
    const char *rest = mark + strlen(CKPT_TMP_SUFFIX);
    if (*rest != '\0' && *rest != '-')
      return false;
    tmp = true;
    end = (size_t)(mark - name);
  }
  size_t start = end;
  while (start > 0 && name[start - 1] >= '0' && name[start - 1] <= '9')
    start--;
  if (start == end)
    return false;
  /* A prefix is followed by '_' and is not empty. */
  if (start > 0 && (name[start - 1] != '_' || start == 1))
    return false;
  int64_t v = 0;
  for (size_t i = start; i < end; i++) {
    int d = name[i] - '0';
    if (v > (INT64_MAX - d) / 10)
      return false; /* not a step any manager could write */
    v = v * 10 + d;
  }
  out->step = v;
  out->prefix_len = start > 0 ? start - 1 : 0;
  out->n_digits = end - start;
  out->tmp = tmp;
  return true;
}

bool ckpt_step_name_match(const char *name, const char *prefix, int fixed_len, int64_t *step) {
  ckpt_step_name s;
  if (!ckpt_step_name_parse(name, &s) || s.tmp)
    return false;
  size_t np = prefix != NULL ? strlen(prefix) : 0;
  if (s.prefix_len != np || (np > 0 && memcmp(name, prefix, np) != 0))
    return false;
  /* What "%0*d" writes: at least fixed_len digits, and a leading zero only as padding (or for
   * step 0 itself). */
  const char *digits = name + (np > 0 ? np + 1 : 0);
  size_t want = fixed_len > 0 ? (size_t)fixed_len : 1;
  if (s.n_digits < want || (s.n_digits > want && digits[0] == '0'))
    return false;
  *step = s.step;
  return true;
}

char *ckpt_step_name_format(const char *prefix, int fixed_len, int64_t step) {
  int n = prefix != NULL ? snprintf(NULL, 0, "%s_%0*" PRId64, prefix, fixed_len, step)
                         : snprintf(NULL, 0, "%0*" PRId64, fixed_len, step);
  if (n < 0)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (s == NULL)
    return NULL;
  if (prefix != NULL)
    snprintf(s, (size_t)n + 1, "%s_%0*" PRId64, prefix, fixed_len, step);
  else
    snprintf(s, (size_t)n + 1, "%0*" PRId64, fixed_len, step);
  return s;
}
