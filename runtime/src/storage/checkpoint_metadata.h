/* storage/checkpoint_metadata.h — the step-level _CHECKPOINT_METADATA file (private).
 *
 * Orbax's StepMetadata serialised as one JSON object with exactly the keys item_handlers,
 * metrics, performance_metrics, init_timestamp_nsecs, commit_timestamp_nsecs, custom_metadata
 * (docs/format.md, "_CHECKPOINT_METADATA"). Its lifecycle during a save: written at tmp-dir
 * creation with only the init timestamp set, rewritten after the handler save with
 * item_handlers and custom_metadata, rewritten at finalize with the commit timestamp.
 *
 * The text is text/json.h's compact layout (separators "," and ":", as ckpt has always
 * written it), exact: custom_metadata keeps NaN, every digit of a double and integers beyond
 * 2^53. Timestamps are written as exact JSON integers (Python reads them as int) and read back
 * exactly (ckpt_json_get_int64); ckpt_step_metadata_to_json(raw_ints=false) hands them out as
 * cJSON numbers, exact to within a double (256 ns at today's epoch values). */
#ifndef CKPT_SRC_STORAGE_CHECKPOINT_METADATA_H
#define CKPT_SRC_STORAGE_CHECKPOINT_METADATA_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/io.h"
#include "util/crc32c.h"

/* Largest _CHECKPOINT_METADATA accepted on read (custom_metadata may be sizeable). */
#define CKPT_STEP_METADATA_MAX_BYTES (64u << 20)

typedef struct ckpt_step_metadata {
  cJSON *item_handlers;       /* owned: a string, an object {item: typestr|null}, or NULL=null */
  cJSON *metrics;             /* owned object, or NULL for {} */
  cJSON *performance_metrics; /* owned object of float fields, or NULL for {} */
  bool has_init_timestamp;
  int64_t init_timestamp_nsecs;
  bool has_commit_timestamp;
  int64_t commit_timestamp_nsecs;
  cJSON *custom_metadata; /* owned object, or NULL for {} */
} ckpt_step_metadata;

/* Releases what *m owns and zeroes it. */
void ckpt_step_metadata_clear(ckpt_step_metadata *m);

/* Nanoseconds since the epoch (CLOCK_REALTIME), as Python's time.time_ns(). */
int64_t ckpt_now_nsecs(void);

/* The JSON object of *m with all six keys; *out owned by the caller (cJSON_Delete). When
 * raw_ints, timestamps are raw integer text (exact, for writing); otherwise cJSON numbers. */
ckpt_status ckpt_step_metadata_to_json(const ckpt_step_metadata *m, bool raw_ints, cJSON **out,
                                       ckpt_error *err);

/* Writes <dir>/_CHECKPOINT_METADATA. Not fsync'd: the commit (storage/commit.c) syncs every
 * file of the checkpoint before declaring it committed, so an earlier fsync would be wasted. */
ckpt_status ckpt_step_metadata_write(ckpt_io *io, const char *dir, const ckpt_step_metadata *m,
                                     ckpt_error *err);
/* As ckpt_step_metadata_write, also giving the CRC-32C and size of the text written (for the
 * checkpoint's manifest). */
ckpt_status ckpt_step_metadata_write_sum(ckpt_io *io, const char *dir, const ckpt_step_metadata *m,
                                         ckpt_file_sum *sum, ckpt_error *err);

/* Reads and validates <dir>/_CHECKPOINT_METADATA into *m (cleared first; caller clears it
 * afterwards). A missing file → CKPT_ENOENT; malformed JSON or a key of the wrong type →
 * CKPT_ECORRUPT naming the file and key. As in Orbax, unknown keys (and the legacy "custom")
 * move into custom_metadata unless custom_metadata is already non-empty (then ECORRUPT). */
ckpt_status ckpt_step_metadata_read(ckpt_io *io, const char *dir, ckpt_step_metadata *m,
                                    ckpt_error *err);

#endif
