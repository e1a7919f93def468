/* io/read_copy.c — see read_copy.h. */
#include "io/read_copy.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>

void ckpt_stream_copy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  /* Stores need 16-byte alignment; loads take any. */
  size_t head = (16u - ((uintptr_t)d & 15u)) & 15u;
  if (head > n)
    head = n;
  memcpy(d, s, head);
  d += head;
  s += head;
  n -= head;
  for (; n >= 64; d += 64, s += 64, n -= 64) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + 32));
    __m128i e = _mm_loadu_si128((const __m128i *)(const void *)(s + 48));
    _mm_stream_si128((__m128i *)(void *)d, a);
    _mm_stream_si128((__m128i *)(void *)(d + 16), b);
    _mm_stream_si128((__m128i *)(void *)(d + 32), c);
    _mm_stream_si128((__m128i *)(void *)(d + 48), e);
  }
  /* Non-temporal stores are weakly ordered: fence before anyone else may read dst. */
  _mm_sfence();
  memcpy(d, s, n);
}
#else
void ckpt_stream_copy(void *dst, const void *src, size_t n) {
  memcpy(dst, src, n);
}
#endif
