/* util/sort.h — qsort for input that is usually in order already.
 *
 * Orbax's large documents come sorted (_METADATA's tree_metadata, _CHECKSUMS' arrays, an OCDBT
 * node's keys), and the indexes built from them were sorted with qsort all the same: n log n
 * comparisons of long, common-prefixed names per index, several indexes per restore. One
 * linear pass finds input already in order. */
#ifndef CKPT_UTIL_SORT_H
#define CKPT_UTIL_SORT_H

#include <stddef.h>

/* qsort(base, n, size, cmp), or nothing when every element already compares <= its successor
 * (so equal elements may stay in either order, as qsort leaves them). */
void ckpt_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif
