/* inspect/inspect.h — the inspection interface: what the `ckpt` tool (runtime/cli/) may use of
 * libckpt beyond the public API, and the only private header it includes
 * (scripts/check-layers enforces it).
 *
 * The tool reads checkpoints without the args a program would pass: it lists steps, parses
 * metadata files, reads arrays box by box, checks checksums and converts layouts. So it sees
 * the storage layer and what storage stands on — file formats, paths, JSON text, the task
 * runner — and never the handlers, the checkpointer's internals or the manager's: a command
 * that needs one of those goes through the public API (ckpt/ckpt.h) like any program.
 * Adding a header here is a decision about what the tool may depend on; make it here, not in
 * the tool's files. */
#ifndef CKPT_INSPECT_INSPECT_H
#define CKPT_INSPECT_INSPECT_H

#include "core/orbax_handlers.h"         /* Orbax's handler typestrs, both APIs */
#include "io/engine.h"                   /* one engine for all chunk tasks of a command */
#include "io/tasks.h"                    /* chunk reads and checks in parallel */
#include "storage/aggregate.h"           /* the legacy msgpack aggregate file */
#include "storage/checkpoint_metadata.h" /* _CHECKPOINT_METADATA */
#include "storage/commit.h"              /* the commit protocol's names and marker file */
#include "storage/ocdbt/ocdbt.h"         /* OCDBT databases (Orbax's default array store) */
#include "storage/ocdbt/ocdbt_write.h"   /* ... and building them (ckpt convert --to ocdbt) */
#include "storage/packed.h"              /* the packed layout (_PACKED, _PACKED.<n>) */
#include "storage/pytree_meta.h"         /* _METADATA and _strings.json */
#include "storage/step_dirs.h"           /* finalized checkpoints, step discovery */
#include "storage/step_name.h"           /* step directory names */
#include "storage/zarr.h"                /* .zarray */
#include "storage/zarr_io.h"             /* chunk files and _CHECKSUMS */
#include "text/json.h"                   /* exact JSON text */
#include "util/crc32c.h"                 /* checksums of converted chunks */
#include "util/path.h"                   /* paths and name safety */
#include "util/text.h"                   /* Python-compatible number text */

#endif
