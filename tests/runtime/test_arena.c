/* test_arena.c — util/arena.h (the restore's bump allocator) and util/sort.h (ckpt_sort):
 * alignment, blocks larger than the default, copies of strings, reuse after a free; sorting of
 * input in order, out of order and with equal elements. */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "util/arena.h"
#include "util/sort.h"

Test(arena, allocations_are_aligned_distinct_and_survive_growth) {
  ckpt_arena a = CKPT_ARENA_INIT;
  unsigned char *prev[2000];
  for (size_t i = 0; i < 2000; i++) {
    size_t n = 1 + i % 97;
    unsigned char *p = ckpt_arena_alloc(&a, n);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % alignof(max_align_t), 0);
    memset(p, (int)(i & 0xff), n);
    prev[i] = p;
  }
  /* a request larger than any block gets its own */
  unsigned char *big = ckpt_arena_calloc(&a, (size_t)3 << 20);
  cr_assert_not_null(big);
  cr_assert_eq(big[0], 0);
  cr_assert_eq(big[((size_t)3 << 20) - 1], 0);
  for (size_t i = 0; i < 2000; i++)
    for (size_t k = 0; k < 1 + i % 97; k++)
      cr_assert_eq(prev[i][k], (unsigned char)(i & 0xff), "allocation %zu overwritten", i);
  cr_assert_null(ckpt_arena_alloc(&a, SIZE_MAX), "an absurd size fails, it does not wrap");
  ckpt_arena_free(&a);
  cr_assert_null(a.head);
  /* empty again, and reusable */
  char *s = ckpt_arena_strndup(&a, "abcdef", 3);
  cr_assert_str_eq(s, "abc");
  cr_assert_str_eq(ckpt_arena_strdup(&a, ""), "");
  ckpt_arena_free(&a);
  ckpt_arena_free(&a); /* twice: still fine */
}

static int cmp_int(const void *x, const void *y) {
  int a = *(const int *)x, b = *(const int *)y;
  return (a > b) - (a < b);
}

Test(arena, ckpt_sort_sorts_and_leaves_sorted_input_alone) {
  int in_order[] = {1, 2, 2, 3, 9};
  ckpt_sort(in_order, 5, sizeof *in_order, cmp_int);
  int want1[] = {1, 2, 2, 3, 9};
  cr_assert_arr_eq(in_order, want1, sizeof want1);
  int mixed[] = {5, 1, 4, 1, 3, 9, 2};
  ckpt_sort(mixed, 7, sizeof *mixed, cmp_int);
  int want2[] = {1, 1, 2, 3, 4, 5, 9};
  cr_assert_arr_eq(mixed, want2, sizeof want2);
  int last[] = {1, 2, 3, 0};
  ckpt_sort(last, 4, sizeof *last, cmp_int);
  int want3[] = {0, 1, 2, 3};
  cr_assert_arr_eq(last, want3, sizeof want3);
  ckpt_sort(NULL, 0, sizeof(int), cmp_int);
  int one = 7;
  ckpt_sort(&one, 1, sizeof one, cmp_int);
  cr_assert_eq(one, 7);
}
