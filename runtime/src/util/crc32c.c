/* util/crc32c.c — CRC-32C through ISA-L, and the arithmetic that appends zeros.
 *
 * ISA-L (Debian's libisal) computes it: crc32_iscsi picks the fastest kernel for the CPU at run
 * time (carry-less multiplication folding on x86-64 and arm64), about twice as fast as the
 * three-lane SSE4.2 loop this file used to hold (docs/performance.md, "Figures behind design
 * choices"). Its convention is the raw CRC register, with no inversion on entry or
 * exit: the CRC-32C of a buffer is ~crc32_iscsi(buf, len, ~0u), and continuing from the crc c
 * of the preceding bytes is ~crc32_iscsi(buf, len, ~c), which is what ckpt_crc32c(c, ...)
 * returns. Its length is an int, so longer buffers go in 1 GiB pieces. */
#include "util/crc32c.h"

#include <isa-l/crc.h>
#include <pthread.h>

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli polynomial */
#define ISAL_PIECE ((size_t)1 << 30) /* below INT_MAX, crc32_iscsi's length limit */

static uint32_t g_x2n[67]; /* x^(2^k) mod P, reflected (k < 3 + 64 covers every uint64 n) */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

uint32_t ckpt_crc32c(uint32_t crc, const void *data, size_t n) {
  /* crc32_iscsi reads the buffer through a non-const pointer but never writes it. */
  unsigned char *p = (unsigned char *)(uintptr_t)data;
  uint32_t reg = ~crc;
  while (n > 0) {
    size_t piece = n < ISAL_PIECE ? n : ISAL_PIECE;
    reg = crc32_iscsi(p, (int)piece, reg);
    p += piece;
    n -= piece;
  }
  return ~reg;
}

/* a * b mod P in the reflected representation (bit 31 is x^0). */
static uint32_t multmodp(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0)
        break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
  }
  return p;
}

static void init_x2n(void) {
  /* Powers of x for appending zeros (the method of zlib's crc32_combine). */
  uint32_t p = 1u << 30; /* x^1 */
  g_x2n[0] = p;
  for (int k = 1; k < 67; k++)
    g_x2n[k] = p = multmodp(p, p);
}

/* x^(8n) mod P, reflected: the factor that appends n zero bytes to a raw CRC register. */
static uint32_t x8n(uint64_t n) {
  uint32_t xp = 1u << 31; /* x^0 */
  int k = 3;              /* 8n = n * 2^3 */
  while (n != 0) {
    if (n & 1)
      xp = multmodp(g_x2n[k], xp);
    n >>= 1;
    k++;
  }
  return xp;
}

uint32_t ckpt_crc32c_zeros(uint32_t crc, uint64_t n) {
  pthread_once(&g_once, init_x2n);
  /* Appending a zero byte multiplies the CRC register by x^8: n bytes by x^(8n). */
  return ~multmodp(x8n(n), ~crc);
}

void ckpt_file_sum_of(ckpt_file_sum *sum, const void *data, size_t n) {
  sum->present = true;
  sum->crc = ckpt_crc32c(0, data, n);
  sum->bytes = n;
}
