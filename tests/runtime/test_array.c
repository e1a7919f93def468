/* test_array.c — ckpt_array: construction, shards, validation, clone/equal, sizes beyond
 * 4 GiB (computed without allocating), and overflow rejection. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "ckpt/ckpt.h"

Test(array, new_wrap_and_accessors) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[3] = {2, 3, 4};
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_FLOAT32, 3, shape, &a, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_num_elements(a), 24);
  cr_assert_eq(ckpt_array_nbytes(a), 96);
  float *d = ckpt_array_data(a);
  cr_assert_not_null(d);
  for (int i = 0; i < 24; i++)
    cr_assert_eq(d[i], 0.0f, "new arrays are zero-filled");
  cr_assert(a->shards[0].owns_data);
  float buf[24];
  for (int i = 0; i < 24; i++)
    buf[i] = (float)i;
  ckpt_array *w = NULL;
  cr_assert_eq(ckpt_array_wrap(CKPT_DTYPE_FLOAT32, 3, shape, buf, &w, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_data(w), buf);
  cr_assert(!w->shards[0].owns_data);
  cr_assert(!ckpt_array_equal(a, w));
  memcpy(d, buf, sizeof buf);
  cr_assert(ckpt_array_equal(a, w));
  ckpt_array *c = ckpt_array_clone(w);
  cr_assert_not_null(c);
  cr_assert(ckpt_array_equal(c, w));
  cr_assert_neq(ckpt_array_data(c), buf);
  ckpt_array_free(c);
  ckpt_array_free(w);
  ckpt_array_free(a);
  ckpt_array_free(NULL);
  /* A scalar is a 0-d array of one element. */
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT64, 0, NULL, &a, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_num_elements(a), 1);
  cr_assert_eq(ckpt_array_nbytes(a), 8);
  ckpt_array_free(a);
  /* An empty array has no bytes but is still valid. */
  int64_t empty[2] = {0, 5};
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT8, 2, empty, &a, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_num_elements(a), 0);
  cr_assert_not_null(ckpt_array_data(a));
  ckpt_array_free(a);
}

Test(array, sharded) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {4, 6};
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &a, &err), CKPT_OK);
  cr_assert_eq(a->n_shards, 0);
  cr_assert_null(ckpt_array_data(a), "no shard covers the whole array");
  int64_t o0[2] = {0, 0}, o1[2] = {2, 0}, s[2] = {2, 6};
  int32_t mine[12] = {0};
  cr_assert_eq(ckpt_array_add_shard(a, o0, s, NULL, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(a, o1, s, mine, 0, &err), CKPT_OK);
  cr_assert(a->shards[0].owns_data);
  cr_assert_eq(a->shards[1].data, mine);
  cr_assert_null(ckpt_array_data(a));
  /* Boxes outside the global shape are rejected with a message naming the dimension. */
  int64_t bad[2] = {3, 0};
  cr_assert_eq(ckpt_array_add_shard(a, bad, s, NULL, 0, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "dimension 0") != NULL, "%s", err.message);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_array_add_shard(a, o0, s, NULL, -1, &err), CKPT_EINVAL);
  ckpt_array *c = ckpt_array_clone(a);
  cr_assert(ckpt_array_equal(a, c));
  ((int32_t *)c->shards[1].data)[5] = 7;
  cr_assert(!ckpt_array_equal(a, c));
  ckpt_array_free(c);
  ckpt_array_free(a);
}

Test(array, validation) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_array *a = (ckpt_array *)1;
  int64_t neg[1] = {-1};
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT8, 1, neg, &a, &err), CKPT_EINVAL);
  cr_assert_null(a);
  ckpt_error_clear(&err);
  int64_t huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT8, 2, huge, &a, &err), CKPT_EINVAL,
               "2^80 elements overflow");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT8, CKPT_MAX_RANK + 1, huge, &a, &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_COUNT_, 1, neg, &a, &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_array_wrap(CKPT_DTYPE_INT8, 0, NULL, NULL, &a, &err), CKPT_EINVAL);
}

Test(array, sizes_beyond_4gib) {
  /* 6 GiB described, nothing allocated: sizes are 64-bit all the way. */
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {3, INT64_C(1) << 29};
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, shape, &a, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_num_elements(a), INT64_C(3) << 29);
  cr_assert_eq(ckpt_array_nbytes(a), UINT64_C(6) << 30);
  ckpt_array_free(a);
}
