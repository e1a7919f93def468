/* test_read_copy.c — the bounce-buffer helpers of direct reads (io/read_copy.h): the
 * streaming copy matches memcpy at every length and alignment, and the bounce address is
 * aligned like the file offset it is read from. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/read_copy.h"

Test(read_copy, stream_copy_matches_memcpy_at_every_alignment) {
  enum { MAX = 600 };
  unsigned char src[MAX + 64], dst[MAX + 128], want[MAX + 128];
  for (size_t i = 0; i < sizeof src; i++)
    src[i] = (unsigned char)(i * 131u + 7u);
  static const size_t lengths[] = {0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 511, 600};
  for (size_t so = 0; so < 64; so += 3)
    for (size_t dof = 0; dof < 64; dof++)
      for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        size_t n = lengths[li];
        memset(dst, 0xEE, sizeof dst);
        memset(want, 0xEE, sizeof want);
        memcpy(want + dof, src + so, n);
        ckpt_stream_copy(dst + dof, src + so, n);
        cr_assert_eq(memcmp(dst, want, sizeof dst), 0, "src+%zu dst+%zu n %zu", so, dof, n);
      }
}

Test(read_copy, bounce_is_aligned_like_the_file_offset) {
  unsigned char buf[64 + 256 + CKPT_READ_BOUNCE_SLACK];
  static const uint64_t offsets[] = {0, 1, 16, 31, 32, 63, 64, 4096 + 17, (1ull << 40) + 5};
  for (size_t b = 0; b < 64; b++)
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
      unsigned char *p = ckpt_read_bounce(buf + b, offsets[i]);
      uintptr_t lo = (uintptr_t)(buf + b), at = (uintptr_t)p;
      cr_assert(at >= lo && at + 256 <= lo + 256 + CKPT_READ_BOUNCE_SLACK);
      cr_assert_eq(((uintptr_t)p - (uintptr_t)offsets[i]) & 63u, 0u);
      cr_assert(!ckpt_read_misaligned(p, offsets[i]));
    }
  cr_assert(ckpt_read_misaligned((void *)(uintptr_t)0x1010, 0));
  cr_assert(!ckpt_read_misaligned((void *)(uintptr_t)0x1020, 0));
  cr_assert(!ckpt_read_misaligned((void *)(uintptr_t)0x1010, 0x10));
}
