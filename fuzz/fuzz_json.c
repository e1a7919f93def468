/* fuzz/fuzz_json.c — text/json_read.c (ckpt_json_load), the reader of every JSON file ckpt
 * reads, and its writer on what it read.
 *
 * Properties: no crash, leak or UB on any input; a failure carries a message; what the reader
 * accepts the writer writes in each of its three layouts, and reading that text back and writing
 * it again gives the same text (json.h: values are "written back unchanged"). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "text/json.h"

static void round_trip(const cJSON *doc, unsigned style) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *text = NULL;
  size_t len = 0;
  ckpt_status st = ckpt_json_dumps(doc, style, &text, &len, &err);
  fuzz_require_error(st, &err, "ckpt_json_dumps");
  fuzz_require(st == CKPT_OK, "a document the reader accepted cannot be written");
  cJSON *again = NULL;
  st = ckpt_json_load(text, len, "dumped", &again, &err);
  fuzz_require(st == CKPT_OK, "the writer's text is not read back");
  char *text2 = NULL;
  size_t len2 = 0;
  st = ckpt_json_dumps(again, style, &text2, &len2, &err);
  fuzz_require(st == CKPT_OK && len2 == len && memcmp(text, text2, len) == 0,
               "write(read(write(doc))) differs from write(doc)");
  free(text2);
  cJSON_Delete(again);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ckpt_error err = CKPT_ERROR_INIT;
  cJSON *doc = NULL;
  ckpt_status st = ckpt_json_load((const char *)data, size, "fuzz.json", &doc, &err);
  fuzz_require_error(st, &err, "ckpt_json_load");
  fuzz_require((st == CKPT_OK) == (doc != NULL), "ckpt_json_load: status and document disagree");
  if (doc != NULL) {
    round_trip(doc, CKPT_JSON_STYLE_PYTHON);
    round_trip(doc, CKPT_JSON_STYLE_TIGHT);
    round_trip(doc, CKPT_JSON_STYLE_NLOHMANN);
    int64_t i64;
    uint64_t u64;
    (void)ckpt_json_get_int64(doc, &i64);
    (void)ckpt_json_get_uint64(doc, &u64);
    cJSON_Delete(doc);
  }
  ckpt_error err2 = CKPT_ERROR_INIT;
  cJSON *uniq = NULL;
  st = ckpt_json_load_opts((const char *)data, size, "fuzz.json", CKPT_JSON_UNIQUE_KEYS, &uniq,
                           &err2);
  fuzz_require_error(st, &err2, "ckpt_json_load_opts");
  cJSON_Delete(uniq);
  return 0;
}
