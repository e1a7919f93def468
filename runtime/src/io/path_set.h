/* io/path_set.h — a set of path strings (private to libckpt).
 *
 * Two users need one: the I/O engine collects the directories a group must fsync once at its
 * end, and a save records the paths its handlers already made durable so that the commit does
 * not fsync them again (op.h, commit.h). Open addressing over copies of the strings; not
 * thread-safe (callers hold their own lock). */
#ifndef CKPT_SRC_IO_PATH_SET_H
#define CKPT_SRC_IO_PATH_SET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ckpt_path_set {
  char **slots; /* cap slots, NULL = empty; cap is 0 or a power of two */
  size_t cap, count;
} ckpt_path_set;

#define CKPT_PATH_SET_INIT \
  { NULL, 0, 0 }

/* Adds a copy of s unless present. 0, or -1 when out of memory (the set is unchanged). */
int ckpt_path_set_add(ckpt_path_set *ps, const char *s);
bool ckpt_path_set_contains(const ckpt_path_set *ps, const char *s);
/* Every member equal to `from` or below it (from + "/...") is renamed to the same path under
 * `to`, as rename(2) would move it. 0, or -1 when out of memory (members not yet renamed are
 * dropped then: the set may forget members, never gain wrong ones). */
int ckpt_path_set_rename(ckpt_path_set *ps, const char *from, const char *to);
/* Iteration: for (size_t i = 0; i < ps->cap; i++) if (ps->slots[i]) ... */
void ckpt_path_set_clear(ckpt_path_set *ps);

#endif
