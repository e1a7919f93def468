/* fuzz/fuzz_checksums.c — storage/zarr_io.c's reader of _CHECKSUMS (ckpt_checksums_read), run by
 * every restore and `ckpt verify` of a checkpoint ckpt wrote.
 *
 * The reader takes a directory: the input is written as dir/_CHECKSUMS of a private temporary
 * directory (see fuzz_step_metadata.c for why).
 *
 * Properties: no crash, leak or UB; a failure carries a message and returns no table; every
 * array of an accepted file is found by its name (the binary search over the sorted index), and
 * a name it does not list is not. Each array's entry is then checked the way a restore or
 * `ckpt verify` checks it against a stored chunk: against a 4-byte uint8 array whose one chunk
 * "0" exists (ckpt_zarr_verify_chunk), so the fuzzer reaches the validation of [crc, bytes]
 * entries too. */
#include <stdio.h>
#include <string.h>

#include "io/tasks.h"

#include "fuzz.h"
#include "storage/zarr_io.h"

/* The array directory "arr" of the temporary directory, with .zarray and chunk "0". */
static const char *array_dir(ckpt_zarr_meta *m) {
  static char dir[4200];
  memset(m, 0, sizeof *m);
  m->dtype = CKPT_DTYPE_UINT8;
  m->ndim = 1;
  m->shape[0] = m->chunks[0] = 4;
  m->separator = '.';
  m->fill_is_null = true;
  if (dir[0] == '\0') {
    snprintf(dir, sizeof dir, "%s/arr", fuzz_tmpdir());
    ckpt_error err = CKPT_ERROR_INIT;
    fuzz_require(ckpt_io_mkdirs(NULL, dir, &err) == CKPT_OK, "cannot create the array directory");
    char chunk[4300];
    snprintf(chunk, sizeof chunk, "%s/0", dir);
    fuzz_require(ckpt_io_write_file(NULL, chunk, "\1\2\3\4", 4, false, &err) == CKPT_OK,
                 "cannot write the chunk");
  }
  return dir;
}

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
    ckpt_zarr_meta m;
    const char *dir = array_dir(&m);
    ckpt_scratch scratch = {0};
    ckpt_error verr = CKPT_ERROR_INIT;
    st = ckpt_zarr_verify_chunk(NULL, dir, NULL, NULL, a->string, &m, 0, hit, true, true, &scratch,
                                &verr);
    fuzz_require_error(st, &verr, "ckpt_zarr_verify_chunk");
    ckpt_scratch_free(&scratch);
  }
  fuzz_require(ckpt_checksums_array(s, "\x01no such array") == NULL ||
                   cJSON_GetObjectItemCaseSensitive(arrays, "\x01no such array") != NULL,
               "_CHECKSUMS finds an array it does not list");
  ckpt_checksums_free(s);
  return 0;
}
