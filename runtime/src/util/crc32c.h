/* util/crc32c.h — CRC-32C (Castagnoli) of chunk files.
 *
 * Every chunk file ckpt writes has its crc32c recorded in the item's _CHECKSUMS file (see
 * docs/format.md), and restore and `ckpt verify` recompute it. CRC-32C because it is what
 * TensorStore, OCDBT and zarr v3 use, and because CPUs compute it at memory speed: ISA-L's
 * crc32_iscsi does the work (see crc32c.c). */
#ifndef CKPT_STORAGE_CHECKSUM_H
#define CKPT_STORAGE_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Continues a CRC-32C: crc is the value returned for the preceding bytes (0 to start), so
 * ckpt_crc32c(ckpt_crc32c(0, a, n), b, m) is the crc of a followed by b. Any length. */
uint32_t ckpt_crc32c(uint32_t crc, const void *data, size_t n);
/* ckpt_crc32c(crc, zeros, n) without the zeros: O(log n), so holes and all-zero blocks are
 * checksummed without touching memory. */
uint32_t ckpt_crc32c_zeros(uint32_t crc, uint64_t n);

/* The CRC-32C and size of a whole (small) file's bytes: what the checksum manifests record
 * for metadata files, taken from memory when a file is written or read. */
typedef struct ckpt_file_sum {
  bool present; /* the file exists (false: crc and bytes are meaningless) */
  uint32_t crc;
  uint64_t bytes;
} ckpt_file_sum;
void ckpt_file_sum_of(ckpt_file_sum *sum, const void *data, size_t n);

#endif
