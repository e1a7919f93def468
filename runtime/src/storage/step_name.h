/* storage/step_name.h — the names of step directories in a manager's directory: the one parser
 * and formatter, shared by the CheckpointManager and the `ckpt` tool.
 *
 * Orbax's step naming (docs/manager.md, "Discovery") writes "<digits>" or "<prefix>_<digits>",
 * zero-padded to step_format_fixed_length digits or not. A save in flight (or interrupted) adds
 * the tmp marker CKPT_TMP_SUFFIX, possibly followed by "-<more>" (a replaced or doomed step).
 * The manager trusts only names it would write itself (ckpt_step_name_match); the tool, which
 * does not know the manager's options, accepts every name that naming can produce
 * (ckpt_step_name_parse). */
#ifndef CKPT_STORAGE_STEP_NAME_H
#define CKPT_STORAGE_STEP_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ckpt_step_name {
  int64_t step;
  size_t prefix_len; /* bytes before "_<digits>"; 0 when the name is digits only */
  size_t n_digits;   /* leading zeros included */
  bool tmp;          /* the tmp marker follows the digits */
} ckpt_step_name;

/* True when name is "<digits>" or "<prefix>_<digits>" (prefix not empty), optionally followed by
 * the tmp marker and then nothing or "-...", and the number fits an int64. */
bool ckpt_step_name_parse(const char *name, ckpt_step_name *out);

/* True when name is exactly what ckpt_step_name_format(prefix, fixed_len, step) writes for some
 * step >= 0: the same prefix (NULL: none), no tmp marker, at least fixed_len digits (0: 1) and a
 * leading zero only as padding. */
bool ckpt_step_name_match(const char *name, const char *prefix, int fixed_len, int64_t *step);

/* "<prefix>_<step>" (prefix NULL: just the digits), zero-padded to fixed_len digits (0: none).
 * malloc'ed; NULL when memory runs out. */
char *ckpt_step_name_format(const char *prefix, int fixed_len, int64_t step);

#endif
