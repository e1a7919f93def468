/* fuzz/fuzz_step_metadata.c — storage/checkpoint_metadata.c's reader of _CHECKPOINT_METADATA
 * (ckpt_step_metadata_read), which the manager, restore and `ckpt ls/verify` run on every step.
 *
 * The reader takes a checkpoint directory, so the input is written as a file into a private
 * temporary directory and read from there: the fuzzer exercises the function restore calls,
 * file size limit included, rather than a parser split out for it.
 *
 * Properties: no crash, leak or UB; a failure carries a message and leaves nothing to free; an
 * accepted file, written back by ckpt_step_metadata_write and read again, gives the same
 * document. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/checkpoint_metadata.h"
#include "text/json.h"

static char *dump(const ckpt_step_metadata *m) {
  ckpt_error err = CKPT_ERROR_INIT;
  cJSON *j = NULL;
  ckpt_status st = ckpt_step_metadata_to_json(m, true, &j, &err);
  fuzz_require_error(st, &err, "ckpt_step_metadata_to_json");
  fuzz_require(st == CKPT_OK, "accepted metadata cannot be converted to JSON");
  char *text = NULL;
  size_t len = 0;
  st = ckpt_json_dumps(j, CKPT_JSON_STYLE_TIGHT, &text, &len, &err);
  fuzz_require(st == CKPT_OK, "accepted metadata cannot be written as JSON");
  cJSON_Delete(j);
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write_input("_CHECKPOINT_METADATA", data, size);
  const char *dir = fuzz_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_step_metadata m;
  ckpt_status st = ckpt_step_metadata_read(NULL, dir, &m, &err);
  fuzz_require_error(st, &err, "ckpt_step_metadata_read");
  if (st != CKPT_OK)
    return 0;
  char *first = dump(&m);
  st = ckpt_step_metadata_write(NULL, dir, &m, &err);
  fuzz_require_error(st, &err, "ckpt_step_metadata_write");
  fuzz_require(st == CKPT_OK, "accepted metadata cannot be written");
  ckpt_step_metadata back;
  st = ckpt_step_metadata_read(NULL, dir, &back, &err);
  fuzz_require(st == CKPT_OK, "written metadata is not read back");
  char *second = dump(&back);
  fuzz_require(strcmp(first, second) == 0, "read(write(metadata)) differs from metadata");
  free(first);
  free(second);
  ckpt_step_metadata_clear(&back);
  ckpt_step_metadata_clear(&m);
  return 0;
}
