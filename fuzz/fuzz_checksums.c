/* fuzz/fuzz_checksums.c — storage/zarr_io.c's reader of _CHECKSUMS (ckpt_checksums_read), run by
 * every restore and `ckpt verify` of a checkpoint ckpt wrote.
 *
 * The reader takes a directory: the input is written as dir/_CHECKSUMS of a private temporary
 * directory (see fuzz_step_metadata.c for why).
 *
 * Properties: no crash, leak or UB; a failure carries a message and returns no table; every
 * array of an accepted file is found by its name (the binary search over the sorted index), and
 * a name it does not list is not. */
#include <string.h>

#include "fuzz.h"
#include "storage/zarr_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write_input("_CHECKSUMS", data, size);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checksums *s = NULL;
  ckpt_status st = ckpt_checksums_read(NULL, fuzz_tmpdir(), &s, &err);
  fuzz_require_error(st, &err, "ckpt_checksums_read");
  fuzz_require((st == CKPT_OK) == (s != NULL), "ckpt_checksums_read: status and table disagree");
  if (s == NULL)
    return 0;
  const cJSON *arrays = cJSON_GetObjectItemCaseSensitive(ckpt_checksums_doc(s), "arrays");
  const cJSON *a;
  cJSON_ArrayForEach(a, arrays) {
    const cJSON *hit = ckpt_checksums_array(s, a->string);
    fuzz_require(hit == (cJSON_IsObject(a) ? a : NULL), "an array of _CHECKSUMS is not found");
  }
  fuzz_require(ckpt_checksums_array(s, "\x01no such array") == NULL ||
                   cJSON_GetObjectItemCaseSensitive(arrays, "\x01no such array") != NULL,
               "_CHECKSUMS finds an array it does not list");
  ckpt_checksums_free(s);
  return 0;
}
