/* test_crc32c.c — CRC-32C (util/crc32c.c, ISA-L underneath): published check values, agreement
 * with a reference implementation at every alignment and around ISA-L's block sizes, chaining
 * (the "continue from the previous crc" convention ckpt_crc32c adds to crc32_iscsi's raw
 * register), lengths beyond INT_MAX, and zero extension. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/crc32c.h"

/* The reference the tests compare against: the textbook byte-at-a-time table CRC-32C
 * (reflected polynomial 0x82f63b78, initial value and final xor 0xffffffff), continued from a
 * previous crc like ckpt_crc32c. Slow and obviously right; libckpt itself never uses it. */
static uint32_t crc32c_reference(uint32_t crc, const void *data, size_t n) {
  static uint32_t table[256];
  if (table[1] == 0) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      table[i] = c;
    }
  }
  const unsigned char *p = data;
  crc = ~crc;
  while (n-- > 0)
    crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

Test(crc32c, check_values) {
  cr_assert_eq(ckpt_crc32c(0, "123456789", 9), 0xe3069283u);
  cr_assert_eq(crc32c_reference(0, "123456789", 9), 0xe3069283u);
  cr_assert_eq(ckpt_crc32c(0, "", 0), 0);
  cr_assert_eq(ckpt_crc32c(0x12345678u, NULL, 0), 0x12345678u, "no bytes: crc unchanged");
  /* RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of ones, ascending, descending. */
  unsigned char b[32];
  memset(b, 0, sizeof b);
  cr_assert_eq(ckpt_crc32c(0, b, 32), 0x8a9136aau);
  memset(b, 0xff, sizeof b);
  cr_assert_eq(ckpt_crc32c(0, b, 32), 0x62a8ab43u);
  for (int i = 0; i < 32; i++)
    b[i] = (unsigned char)i;
  cr_assert_eq(ckpt_crc32c(0, b, 32), 0x46dd794eu);
  for (int i = 0; i < 32; i++)
    b[i] = (unsigned char)(31 - i);
  cr_assert_eq(ckpt_crc32c(0, b, 32), 0x113fdb5cu);
}

Test(crc32c, matches_reference_and_chains) {
  unsigned char buf[4096 + 7];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)(i * 31 + 7);
  /* Unaligned starts, odd lengths, and chaining at any split agree with the reference. */
  for (size_t off = 0; off < 8; off++) {
    for (size_t n = 0; n < 300; n += 37) {
      uint32_t a = ckpt_crc32c(0, buf + off, n);
      cr_assert_eq(a, crc32c_reference(0, buf + off, n), "off=%zu n=%zu", off, n);
      uint32_t chained =
          ckpt_crc32c(ckpt_crc32c(0, buf + off, n / 3), buf + off + n / 3, n - n / 3);
      cr_assert_eq(chained, a);
    }
  }
  /* Long buffers take ISA-L's wide folding loops: lengths around small powers of two and
   * around the 8 KiB and 256-byte lanes of the former hand-written loop, at every alignment,
   * from a non-zero crc, whole and cut in two. */
  size_t big_n = 3 * 8192 * 2 + 3 * 256 * 3 + 64;
  unsigned char *big = malloc(big_n + 8);
  cr_assert_not_null(big);
  for (size_t i = 0; i < big_n + 8; i++)
    big[i] = (unsigned char)((i * 2654435761u) >> 13);
  size_t lens[] = {15,    16,    17,    63,    64,    65,    255,   256,   257,   767,
                   768,   769,   1023,  1024,  1025,  3 * 256 + 8, 24575, 24576, 24577,
                   24576 + 768 + 5, big_n};
  for (size_t off = 0; off < 8; off++) {
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
      uint32_t a = ckpt_crc32c(7, big + off, lens[k]);
      cr_assert_eq(a, crc32c_reference(7, big + off, lens[k]), "off=%zu n=%zu", off, lens[k]);
      size_t cut = lens[k] / 2 + 1;
      cr_assert_eq(ckpt_crc32c(ckpt_crc32c(7, big + off, cut), big + off + cut, lens[k] - cut), a,
                   "off=%zu n=%zu cut=%zu", off, lens[k], cut);
    }
  }
  free(big);
}

Test(crc32c, zeros) {
  /* Appending zeros arithmetically equals checksumming them. */
  unsigned char buf[100];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)(i * 7 + 3);
  static unsigned char zeros[70000];
  uint32_t base = ckpt_crc32c(0, buf, sizeof buf);
  for (size_t n = 0; n < sizeof zeros; n = n * 3 + 1) {
    cr_assert_eq(ckpt_crc32c_zeros(base, n), ckpt_crc32c(base, zeros, n), "n=%zu", n);
    cr_assert_eq(ckpt_crc32c_zeros(0, n), ckpt_crc32c(0, zeros, n), "n=%zu", n);
  }
}

Test(crc32c, beyond_int_max) {
  /* crc32_iscsi takes an int length, so ckpt_crc32c feeds it pieces: a buffer longer than
   * INT_MAX must checksum like its zero extension. Untouched anonymous memory reads as zeros
   * (the kernel maps its one zero page), so this costs page-table walks, not 2 GiB of RAM. */
  size_t n = ((size_t)1 << 31) + 4099;
  void *z = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  cr_assert_neq(z, MAP_FAILED);
  cr_assert_eq(ckpt_crc32c(5, z, n), ckpt_crc32c_zeros(5, n));
  munmap(z, n);
}
