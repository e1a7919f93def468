/* ckpt/dtype.h — element types of arrays and scalars, with their Orbax/NumPy/zarr names. */
#ifndef CKPT_DTYPE_H
#define CKPT_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(enum suffix, schema/jnp name, zarr v2 dtype string as TensorStore writes it, size) */
#define CKPT_DTYPE_LIST(X)                   \
  X(BOOL, "bool", "|b1", 1)                  \
  X(INT8, "int8", "|i1", 1)                  \
  X(INT16, "int16", "<i2", 2)                \
  X(INT32, "int32", "<i4", 4)                \
  X(INT64, "int64", "<i8", 8)                \
  X(UINT8, "uint8", "|u1", 1)                \
  X(UINT16, "uint16", "<u2", 2)              \
  X(UINT32, "uint32", "<u4", 4)              \
  X(UINT64, "uint64", "<u8", 8)              \
  X(FLOAT16, "float16", "<f2", 2)            \
  X(BFLOAT16, "bfloat16", "bfloat16", 2)     \
  X(FLOAT32, "float32", "<f4", 4)            \
  X(FLOAT64, "float64", "<f8", 8)            \
  X(COMPLEX64, "complex64", "<c8", 8)        \
  X(COMPLEX128, "complex128", "<c16", 16)

typedef enum ckpt_dtype {
#define CKPT_DTYPE_ENUM_(id, name, zarr, size) CKPT_DTYPE_##id,
  CKPT_DTYPE_LIST(CKPT_DTYPE_ENUM_)
#undef CKPT_DTYPE_ENUM_
  CKPT_DTYPE_COUNT_
} ckpt_dtype;

/* Bytes per element; 0 for an invalid dtype. */
CKPT_API size_t ckpt_dtype_size(ckpt_dtype dt);
/* "float32", "bfloat16", ...; NULL for an invalid dtype. */
CKPT_API const char *ckpt_dtype_name(ckpt_dtype dt);
/* "<f4", "bfloat16", ... as in a zarr v2 .zarray; NULL for an invalid dtype. */
CKPT_API const char *ckpt_dtype_zarr(ckpt_dtype dt);
/* Parses a name ("float32") or a zarr/NumPy typestr ("<f4", "|b1", "bfloat16"). */
CKPT_API bool ckpt_dtype_parse(const char *text, ckpt_dtype *out);
CKPT_API bool ckpt_dtype_valid(ckpt_dtype dt);

/* ---- Conversions (added by the array/tree implementation; runtime/src/core/dtype.c) ---- */

/* The family a dtype belongs to, which decides how casts between dtypes behave. */
typedef enum ckpt_dtype_class {
  CKPT_DTYPE_CLASS_BOOL,
  CKPT_DTYPE_CLASS_SIGNED,
  CKPT_DTYPE_CLASS_UNSIGNED,
  CKPT_DTYPE_CLASS_FLOAT,  /* float16, bfloat16, float32, float64 */
  CKPT_DTYPE_CLASS_COMPLEX
} ckpt_dtype_class;

CKPT_API ckpt_dtype_class ckpt_dtype_class_of(ckpt_dtype dt);

/* Casts n elements of dtype `from` at src into dtype `to` at dst (little-endian, C order;
 * src and dst are either the same pointer — an in-place cast, widening or narrowing — or do
 * not overlap). The rules follow NumPy's astype where NumPy defines them:
 *  - to float16 / bfloat16 / float32: rounded to nearest, ties to even (also from int64);
 *  - float to integer: truncated toward zero; NaN becomes 0 and out-of-range values saturate
 *    (NumPy leaves these undefined);
 *  - integer to integer: wraps modulo 2^bits, as NumPy does;
 *  - to bool: non-zero (NaN included) is true; complex to real: the real part. */
CKPT_API void ckpt_dtype_convert(ckpt_dtype to, void *dst, ckpt_dtype from, const void *src,
                                 size_t n);

/* Single-value conversions of the 16-bit float formats, rounding to nearest even. */
CKPT_API uint16_t ckpt_float_to_bfloat16(float value);
CKPT_API float ckpt_bfloat16_to_float(uint16_t bits);
CKPT_API uint16_t ckpt_double_to_bfloat16(double value);
CKPT_API uint16_t ckpt_double_to_float16(double value);
CKPT_API double ckpt_float16_to_double(uint16_t bits);

#ifdef __cplusplus
}
#endif
#endif
