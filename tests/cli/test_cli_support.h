/* test_cli_support.h — what the `ckpt` tool's tests share: temporary directories, running the
 * real binary (CKPT_TOOL_PATH) and the Python peer (CKPT_PYTHON) with their output captured,
 * golden files under tests/fixtures/cli/ (regenerate with CKPT_UPDATE_GOLDEN=1), output
 * normalisation (the temporary directory becomes <DIR>, times <TIME>), and checkpoints built
 * with the library itself (StandardSave trees, Composites with JSON and proto items, manager
 * directories of steps). */
#ifndef CKPT_TESTS_CLI_SUPPORT_H
#define CKPT_TESTS_CLI_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/ckpt.h"

typedef struct tc_run {
  int status; /* exit status, or 128 + signal */
  char *out;  /* stdout, NUL-terminated */
  char *err;  /* stderr */
} tc_run;

/* A fresh directory under /tmp (caller frees the string after tc_rmdir). */
char *tc_mkdtemp(void);
/* rm -rf without following symlinks, then frees dir. */
void tc_rmdir(char *dir);
/* dir + "/" + a (+ "/" + b), malloc'ed. */
char *tc_join(const char *dir, const char *a);
char *tc_join2(const char *dir, const char *a, const char *b);

/* Runs the ckpt tool with args (NULL-terminated) and optional stdin text; fills *r. */
void tc_tool(tc_run *r, const char *const *args);
#define TC_TOOL(r, ...) tc_tool((r), (const char *const[]){__VA_ARGS__, NULL})
/* Runs CKPT_PYTHON tests/cli/cli_peer.py with args. */
void tc_peer(tc_run *r, const char *const *args);
#define TC_PEER(r, ...) tc_peer((r), (const char *const[]){__VA_ARGS__, NULL})
void tc_run_free(tc_run *r);

/* text with every occurrence of dir replaced by <DIR>, "YYYY-MM-DD HH:MM:SS UTC" by <TIME>,
 * and the values of "*_timestamp_nsecs" JSON keys by <NS>; malloc'ed. */
char *tc_normalize(const char *text, const char *dir);
/* Compares text with tests/fixtures/cli/<name> (or writes it when CKPT_UPDATE_GOLDEN is set). */
void tc_golden(const char *name, const char *text);

/* Whole files. */
char *tc_read(const char *path, size_t *len);
void tc_write(const char *path, const void *data, size_t len);
bool tc_exists(const char *path);
/* tc_exists of rel below the checkpoint ck. */
bool tc_has(const char *ck, const char *rel);

/* ---- trees and checkpoints */

/* An array leaf of dtype and shape filled with the doubles in values (converted), or with
 * 0, 0.5, 1.0, ... when values is NULL. */
ckpt_tree *tc_array(ckpt_dtype dtype, int ndim, const int64_t *shape, const double *values);

/* Saves args through a new checkpointer (handler h, or NULL for the registry's choice) at path,
 * asserting that the save and the close succeed. Takes args. The checkpointer saves PyTree
 * items as OCDBT when tc_use_ocdbt is set (false, the default: zarr v2 directories). */
extern bool tc_use_ocdbt;
extern bool tc_use_zarr3; /* and saves arrays as zarr v3 when set (false by default) */
void tc_save_args(const ckpt_handler_desc *h, const char *path, ckpt_args *args);

/* Saves tree with StandardSave through a checkpointer at path (a single-item checkpoint).
 * chunk_param/chunk_bytes (may be NULL/0) set a SaveArgs chunk size for one leaf, compress
 * makes that leaf zstd-compressed. Takes tree. */
void tc_save_standard(const char *path, ckpt_tree *tree, const char *chunk_param,
                      int64_t chunk_bytes, bool compress);

/* The reference composite: items `params` (StandardSave: layer0.w float32[4,3] in two chunks,
 * layer0.b float32[3], layer1.w float64[2,2] zstd, step int64 scalar, lr float32 scalar),
 * `config` (JsonSave {"lr": 0.001, "layers": [4, 3], "name": "mlp"}) and `run` (ProtoSave of a
 * RunInfo {name: "baseline", seed: 1234, hosts: ["w0", "w1"]}). variant != 0 changes values:
 * 1: layer0.b[1] += 0.25 and config.lr = 0.002; 2: an extra leaf `extra` and no `lr`. */
void tc_save_composite(const char *path, int variant);

/* A manager-style directory: steps saved as <prefix>_<step padded to width> (prefix NULL: plain
 * numbers) with items `default` (StandardSave {w, step}) and `metrics` (JSON {"loss": ...}),
 * plus committed custom metrics. */
void tc_save_step(const char *dir, const char *prefix, int width, int64_t step, double loss);

/* Flips one bit of a file at offset. */
void tc_flip_bit(const char *path, uint64_t offset);

#endif
