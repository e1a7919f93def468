/* ckpt/layout.h — the names of a checkpoint's on-disk layout that users and tools may rely on,
 * and the two ways a save is made atomic. Everything that creates, commits or discovers a
 * checkpoint (the checkpointer, the manager, the `ckpt` tool, the storage code) takes these
 * names from here; docs/format.md describes the layout in full. */
#ifndef CKPT_LAYOUT_H
#define CKPT_LAYOUT_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ckpt_atomicity {
  CKPT_ATOMICITY_RENAME = 0, /* write <path>.orbax-checkpoint-tmp, rename at commit (default) */
  CKPT_ATOMICITY_COMMIT_FILE /* write in place; finalized when commit_success.txt exists */
} ckpt_atomicity;

#define CKPT_TMP_SUFFIX ".orbax-checkpoint-tmp"
#define CKPT_COMMIT_FILE "commit_success.txt"
#define CKPT_CHECKPOINT_METADATA_FILE "_CHECKPOINT_METADATA"
/* ckpt's checksum manifest of the checkpoint (docs/format.md, "_CHECKPOINT_CHECKSUMS"). */
#define CKPT_CHECKPOINT_CHECKSUMS_FILE "_CHECKPOINT_CHECKSUMS"
/* Orbax's v1 API: its JsonHandler's file (v0's JsonCheckpointHandler writes `metadata`), read
 * when an item has no `metadata`; and the empty file it puts at a checkpoint's root to mark
 * it, which is neither an item nor damage (docs/format.md, "Orbax's variants"). */
#define CKPT_JSON_V1_FILE "data.json"
#define CKPT_ORBAX_V1_INDICATOR_FILE "orbax.checkpoint"

#ifdef __cplusplus
}
#endif

#endif
