/* test_pytree_big.c — an array over 4 GiB: 5 GiB of uint8 saved as ONE chunk (so every size,
 * offset and pread/pwrite loop runs past 2^32) and restored. It stays small on disk and in
 * memory because the array is mostly zeros: only three bytes carry data (at 0, just past 4 GiB,
 * and at the end), the save leaves zero blocks as holes of a sparse file, and the restore
 * copies only non-zero blocks into the fresh destination. (Reading 5 GiB of holes still costs
 * the kernel's page-cache zeroing, ~10 s on this VM kind, which bounds the test's time.)
 * Skipped, with a message, when the disk or memory lacks room. */
#include <sys/mman.h>
#include <sys/statvfs.h>

#include "test_pytree_util.h"

#define BIG (UINT64_C(5) << 30)

Test(pytree_big, five_gib_array_in_one_chunk, .timeout = 300) {
  struct statvfs vfs;
  cr_assert_eq(statvfs("/tmp", &vfs), 0);
  uint64_t free_disk = (uint64_t)vfs.f_bavail * vfs.f_frsize;
  long pages = sysconf(_SC_AVPHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  uint64_t free_mem = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
  if (free_disk < BIG + (UINT64_C(1) << 30))
    cr_skip_test(
        "needs 6 GiB free in /tmp (in case the file system cannot store holes); has %llu MiB",
        (unsigned long long)(free_disk >> 20));
  if (free_mem < BIG + (UINT64_C(2) << 30))
    cr_skip_test("needs 7 GiB of free memory for the restored array; has %llu MiB",
                 (unsigned long long)(free_mem >> 20));
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[1] = {(int64_t)BIG};
  /* Source memory the test maps itself: untouched pages read as the (huge) zero page, so the
   * save's scan of 5 GiB costs no page allocation. */
  unsigned char *p =
      mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  cr_assert_neq(p, MAP_FAILED);
#ifdef MADV_HUGEPAGE
  madvise(p, BIG, MADV_HUGEPAGE);
#endif
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_wrap(CKPT_DTYPE_UINT8, 1, shape, p, &a, &err), CKPT_OK, "%s",
               err.message);
  const uint64_t marks[3] = {0, (UINT64_C(1) << 32) + 7, BIG - 1};
  for (int i = 0; i < 3; i++)
    p[marks[i]] = (unsigned char)(0xa0 + i);
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "big", ckpt_tree_new_array(a), &err);
  ckpt_pytree_leaf_save la;
  memset(&la, 0, sizeof la);
  la.param = "big";
  la.chunk_byte_size = (int64_t)(UINT64_C(6) << 30);
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  /* Zero-copy: a copying snapshot would touch (and so allocate) all 5 GiB. */
  cr_assert_eq(ckpt_pytree_save_sync(NULL, true, dir, &spec, &err), CKPT_OK, "%s", err.message);
  char *chunk = pt_fmt("%s/big/0", dir);
  struct stat st;
  cr_assert_eq(stat(chunk, &st), 0);
  cr_assert_eq((uint64_t)st.st_size, BIG, "one chunk file of the full size");
  cr_assert_lt((uint64_t)st.st_blocks * 512, UINT64_C(64) << 20, "stored sparsely");
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  const ckpt_array *b = ckpt_tree_array(ckpt_tree_dict_get(back, "big"));
  cr_assert_eq(ckpt_array_nbytes(b), BIG);
  const unsigned char *q = ckpt_array_data(b);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(q[marks[i]], 0xa0 + i, "mark %d", i);
  cr_assert_eq(q[marks[1] - 1], 0);
  cr_assert_eq(q[(UINT64_C(1) << 32)], 0);
  ckpt_tree_free(back);
  /* A corrupted byte past 4 GiB is caught by the checksum (verify reads the same chunk). */
  pt_flip(chunk, (long)((UINT64_C(1) << 32) + 7));
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_verify(NULL, dir, NULL, &err), CKPT_ECORRUPT, "%s", err.message);
  cr_assert(strstr(err.message, "chunk '0'") != NULL, "%s", err.message);
  free(chunk);
  ckpt_tree_free(t);
  munmap(p, BIG);
  pt_rmtree(dir);
}
