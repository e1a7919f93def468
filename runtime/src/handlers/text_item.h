/* handlers/text_item.h — how the JSON and proto handlers write and read their single file.
 *
 * Save: the handler renders its file in the caller's thread (that text is the snapshot, so the
 * caller may change its data as soon as save returns) and queues the durable write with
 * ckpt_op_defer, so an async checkpointer writes it in the background. Restore reads the file
 * through the op's I/O layer with a size bound. A NULL op means "no checkpointer": the default
 * I/O layer, written synchronously. */
#ifndef CKPT_TEXTFMT_TEXT_FILE_H
#define CKPT_TEXTFMT_TEXT_FILE_H

#include <stddef.h>

#include "ckpt/error.h"
#include "ckpt/handler.h"

/* Largest file the JSON and proto handlers read back (a bound against hostile or corrupt
 * checkpoints, far above any real metadata or config file). */
#define CKPT_TEXT_FILE_MAX_BYTES ((size_t)1 << 30)

/* Takes ownership of text (malloc'ed; freed here whatever happens) and writes it to
 * dir/name, durably (fsync), now or as deferred work of op. */
ckpt_status ckpt_tf_save_text(ckpt_op *op, const char *dir, const char *name, char *text,
                              size_t len, ckpt_error *err);

/* Reads dir/name. On success *text (malloc'ed, NUL-terminated, caller frees) and *path
 * (malloc'ed "dir/name" for messages, caller frees). A missing file is CKPT_ENOENT naming the
 * path. */
ckpt_status ckpt_tf_load_text(ckpt_op *op, const char *dir, const char *name, char **text,
                              size_t *len, char **path, ckpt_error *err);

#endif
