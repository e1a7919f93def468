/* storage/checksum.c — CRC-32C with the SSE4.2 crc32 instruction when the CPU has it (chosen
 * once at run time, so one binary runs everywhere) and a slicing-by-8 table otherwise. */
#include "storage/checksum.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static uint32_t g_table[8][256];
static uint32_t g_x2n[67]; /* x^(2^k) mod P, reflected (k < 3 + 64 covers every uint64 n) */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_hw;

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

static void init_tables(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
    g_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = g_table[0][i];
    for (int t = 1; t < 8; t++) {
      c = g_table[0][c & 0xff] ^ (c >> 8);
      g_table[t][i] = c;
    }
  }
  /* Powers of x for appending zeros (the method of zlib's crc32_combine). */
  uint32_t p = 1u << 30; /* x^1 */
  g_x2n[0] = p;
  for (int k = 1; k < 67; k++)
    g_x2n[k] = p = multmodp(p, p);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  g_hw = __builtin_cpu_supports("sse4.2");
#else
  g_hw = false;
#endif
}

uint32_t ckpt_crc32c_portable(uint32_t crc, const void *data, size_t n) {
  pthread_once(&g_once, init_tables);
  const unsigned char *p = data;
  crc = ~crc;
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    crc = g_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    n--;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8); /* little-endian host (see dtype.c) */
    uint32_t lo = (uint32_t)w ^ crc, hi = (uint32_t)(w >> 32);
    crc = g_table[7][lo & 0xff] ^ g_table[6][(lo >> 8) & 0xff] ^ g_table[5][(lo >> 16) & 0xff] ^
          g_table[4][lo >> 24] ^ g_table[3][hi & 0xff] ^ g_table[2][(hi >> 8) & 0xff] ^
          g_table[1][(hi >> 16) & 0xff] ^ g_table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0)
    crc = g_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* One dependency chain of 8-byte crc32 instructions: several GB/s, already faster than the
 * disk, so the interleaved three-stream variant (and its merge tables) is not worth it. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data,
                                                            size_t n) {
  const unsigned char *p = data;
  uint64_t c = ~crc;
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    n--;
  }
  while (n >= 32) {
    uint64_t w0, w1, w2, w3;
    memcpy(&w0, p, 8);
    memcpy(&w1, p + 8, 8);
    memcpy(&w2, p + 16, 8);
    memcpy(&w3, p + 24, 8);
    c = __builtin_ia32_crc32di(c, w0);
    c = __builtin_ia32_crc32di(c, w1);
    c = __builtin_ia32_crc32di(c, w2);
    c = __builtin_ia32_crc32di(c, w3);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
    p += 8;
    n -= 8;
  }
  while (n-- > 0)
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
  return ~(uint32_t)c;
}
#endif

uint32_t ckpt_crc32c(uint32_t crc, const void *data, size_t n) {
  pthread_once(&g_once, init_tables);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (g_hw)
    return crc32c_hw(crc, data, n);
#endif
  return ckpt_crc32c_portable(crc, data, n);
}

uint32_t ckpt_crc32c_zeros(uint32_t crc, uint64_t n) {
  pthread_once(&g_once, init_tables);
  /* Appending a zero byte multiplies the CRC register by x^8: n bytes by x^(8n). */
  uint32_t xp = 1u << 31; /* x^0 */
  int k = 3;              /* 8n = n * 2^3 */
  while (n != 0) {
    if (n & 1)
      xp = multmodp(g_x2n[k], xp);
    n >>= 1;
    k++;
  }
  return ~multmodp(xp, ~crc);
}

bool ckpt_crc32c_accelerated(void) {
  pthread_once(&g_once, init_tables);
  return g_hw;
}
