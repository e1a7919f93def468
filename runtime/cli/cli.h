/* cli/cli.h — what the files of the `ckpt` command-line tool share (private to runtime/cli).
 *
 * The tool inspects checkpoints from the outside, through the same private readers the runtime
 * uses (storage/zarr_io.h, storage/pytree_meta.h, storage/checkpoint_metadata.h), so what it
 * reports is what a restore would see. Files:
 *   main.c           dispatch, --help, --version
 *   util.c           exit codes, error printing, sizes, times, shapes, sticky-OOM JSON builders
 *   table.c          aligned text tables
 *   layout.c         what a path is: checkpoint, item directory, or manager (step) directory
 *   item_files.c     the files behind an item: loading, one-line summaries, exact timestamps
 *   steps.c          step names, the scan of a manager directory, PATH [--step] → checkpoint
 *   pytree_view.c    a PyTree item's leaves with their zarr metadata and stored bytes
 *   array_read.c     reading boxes of a stored array (checksummed), slab iteration
 *   numfmt.c         numpy-style printing of arrays and scalars
 *   stats.c          summary statistics of an array, streamed slab by slab
 *   progress.c       the progress bar of `ckpt verify` (only on a terminal)
 *   task_engine.c    the one I/O engine the command's chunk tasks run on
 *   cmd_ls.c         `ckpt ls`
 *   cmd_verify.c     `ckpt verify`, with verify_check.c and verify_report.c (verify.h)
 *   cmd_cat.c        `ckpt cat`, with cat_array.c (cat.h)
 *   cmd_diff.c       `ckpt diff`, with diff_values.c (diff.h)
 *   cmd_gc.c         `ckpt gc`
 *   cmd_convert.c    `ckpt convert` (and its alias `ckpt unpack`)
 *
 * Exit status everywhere: 0 success; 1 the checkpoint is damaged (or, for diff, different);
 * 2 usage error, missing path or key, I/O error. */
#ifndef CKPT_CLI_H
#define CKPT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "ckpt/ckpt.h"
#include "inspect/inspect.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_DAMAGED 1
#define CLI_EXIT_DIFFERENT 1
#define CLI_EXIT_ERROR 2

/* ================================================================ util.c */

/* The exit status a failed operation maps to: damage (ECORRUPT, EINCOMPLETE, EUNSAFE) → 1,
 * everything else → 2. */
int cli_exit_for(ckpt_status st);
/* Prints "ckpt: <message>" on stderr and returns cli_exit_for(err->code). */
int cli_report(const ckpt_error *err);
/* Prints "ckpt: <cmd>: <message>" and a hint to use --help on stderr; returns 2. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int cli_usage_error(const char *cmd, const char *fmt, ...);

/* malloc'ed copies (caller frees); NULL only when memory runs out. */
char *cli_strdup(const char *s);
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
char *
cli_asprintf(const char *fmt, ...);

/* "48 B", "1.5 KiB", "12.0 MiB" into buf (at least 32 bytes); returns buf. */
char *cli_format_bytes(uint64_t bytes, char *buf);
/* "2025-11-28 10:56:00 UTC" into buf (at least 64 bytes); returns buf. */
char *cli_format_time(int64_t nsecs, char *buf);
/* "[4, 3]" ("[]" for 0-d); malloc'ed, NULL when memory runs out. */
char *cli_format_shape(int ndim, const int64_t *shape);

/* The class name at the end of a handler typestr
 * ("...json_checkpoint_handler.JsonCheckpointHandler" → "JsonCheckpointHandler"); "?" for NULL. */
const char *cli_handler_short(const char *typestr);

/* Parses a non-negative decimal int64 (whole string); false otherwise. */
bool cli_parse_i64(const char *s, int64_t *out);
/* Parses a finite, non-negative double (whole string, "C" locale); false otherwise. */
bool cli_parse_tolerance(const char *s, double *out);

/* ---- JSON building with a sticky out-of-memory flag: every helper accepts NULL items (a
 * failed constructor) and sets *oom instead of failing, so documents are built in straight
 * lines and checked once. */
void cli_jadd(cJSON *obj, const char *key, cJSON *item, bool *oom);
void cli_jpush(cJSON *arr, cJSON *item, bool *oom);
/* An exact integer (raw JSON text, so values beyond 2^53 stay exact). */
cJSON *cli_jint(int64_t v);
cJSON *cli_juint(uint64_t v);
/* A double: a number when finite, else the string "nan", "inf" or "-inf" (strict JSON). */
cJSON *cli_jdouble(double v);
cJSON *cli_jshape(int ndim, const int64_t *shape);
/* NULL-safe string: null for NULL. */
cJSON *cli_jstr(const char *s);
/* Writes doc (one line, Python-style separators) and a newline to stdout; 2 and a message when
 * it cannot (or when oom is set). Takes ownership of doc. */
int cli_json_emit(cJSON *doc, bool oom);

/* ================================================================ table.c */

/* Rows of cells printed with aligned columns (two spaces between columns, the last column not
 * padded). Cells are copied; allocation failure is sticky and reported by cli_table_print. */
typedef struct cli_table {
  size_t ncols;
  size_t nrows, cap;
  char **cells; /* nrows * ncols */
  bool oom;
} cli_table;

void cli_table_init(cli_table *t, size_t ncols);
/* Adds one row of ncols cells (NULL cells print as "-"). */
void cli_table_row(cli_table *t, const char *const *cells);
/* Prints every row with indent spaces in front; false when memory ran out while building. */
bool cli_table_print(const cli_table *t, FILE *out, int indent);
void cli_table_free(cli_table *t);

/* ================================================================ layout.c */

/* The kind of dir/name (name NULL: of dir itself), not following a final symlink; MISSING also
 * when it cannot be stat'ed (callers that must tell I/O errors apart stat themselves). */
ckpt_io_kind cli_kind_of(ckpt_io *io, const char *dir, const char *name);

typedef enum cli_item_kind {
  CLI_ITEM_PYTREE,    /* _METADATA + zarr arrays (Standard/PyTree/Array handlers, records) */
  CLI_ITEM_JSON,      /* a `metadata` file (JsonCheckpointHandler) */
  CLI_ITEM_PROTO,     /* proto.pbtxt (ProtoCheckpointHandler) */
  CLI_ITEM_COMPOSITE, /* nested items in subdirectories (random-key handlers) */
  CLI_ITEM_MISSING,   /* named in _CHECKPOINT_METADATA, but no directory */
  CLI_ITEM_UNKNOWN    /* a directory whose contents ckpt does not recognise */
} cli_item_kind;

const char *cli_item_kind_name(cli_item_kind kind);

typedef struct cli_item {
  char *name;    /* directory name; NULL for the single item of a non-composite checkpoint */
  char *label;   /* for messages and keys: "params", "rng/np_random_key", "" for single */
  char *dir;     /* its directory */
  char *typestr; /* handler typestr from _CHECKPOINT_METADATA, or NULL */
  char *file;    /* JSON items saved under another file name (ckpt_json_handler_new): its name */
  cli_item_kind kind;
  bool listed; /* named in item_handlers */
  bool top;    /* a top-level item of a composite (Orbax/ckpt write a commit file in it) */
  size_t n_children;
  struct cli_item *children; /* CLI_ITEM_COMPOSITE */
} cli_item;

typedef struct cli_ckpt {
  char *path;           /* normalised */
  bool tmp;             /* the directory's name carries the tmp marker */
  bool finalized;       /* by the library's rule (storage/step_dirs.h) */
  bool commit_pending;  /* an interrupted commit-file save's pending marker, no commit file */
  bool has_commit_file; /* commit_success.txt is a regular file */
  bool has_meta_file;   /* _CHECKPOINT_METADATA exists */
  bool meta_ok;         /* ... and was read */
  ckpt_step_metadata meta;
  ckpt_error meta_err; /* why it could not be read (meta_ok false, has_meta_file true) */
  char init_text[32];  /* the timestamps' exact digits as written ("" when absent) */
  char commit_text[32];
  bool bare_item;  /* path is an item directory (no _CHECKPOINT_METADATA of its own):
                      it holds an item's files, or an ancestor is a checkpoint */
  char *enclosing; /* bare items: the enclosing checkpoint found above, or NULL */
  bool composite;  /* items live in subdirectories */
  size_t n_items;
  cli_item *items; /* sorted by name */
  size_t n_tmp_items;
  char **tmp_items; /* names of leftover item tmp directories inside */
  bool orbax_descriptor; /* item_handlers names Orbax v1's descriptor item (no user data) */
} cli_ckpt;

/* Reads what path holds as a checkpoint (or a bare item directory). Fails (ENOENT) when path
 * does not exist, (EINVAL) when it is no directory or holds nothing ckpt recognises. *out is
 * owned by the caller (cli_ckpt_free), also after a failure. */
ckpt_status cli_ckpt_open(ckpt_io *io, const char *path, cli_ckpt *out, ckpt_error *err);
void cli_ckpt_free(cli_ckpt *c);
/* The item reached by '/'-separated names from the checkpoint (nested items included);
 * NULL when none. For a single-item checkpoint "" names its item. */
cli_item *cli_ckpt_find_item(cli_ckpt *c, const char *label);
/* True when the finalized-ness of c holds: not a tmp name, and a commit file or a commit
 * timestamp. */
bool cli_ckpt_finalized(const cli_ckpt *c);
/* The exact digits of init_timestamp_nsecs / commit_timestamp_nsecs in dir's
 * _CHECKPOINT_METADATA (the runtime's reader goes through double and may be off by a few
 * hundred nanoseconds); "" for a timestamp that is absent or unreadable. Buffers of 32. */
void cli_read_timestamps(ckpt_io *io, const char *dir, char *init, char *commit);
/* The timestamp text as a JSON number, or null for "". */
cJSON *cli_jtimestamp(const char *text);
/* True when dir holds one of the item marker files (_METADATA, metadata, proto.pbtxt). */
bool cli_dir_is_item(ckpt_io *io, const char *dir);
/* The file an item's handler wrote (_METADATA, metadata or metrics, proto.pbtxt) as a
 * malloc'ed path; NULL for other kinds or when memory runs out. */
char *cli_item_file(ckpt_io *io, const cli_item *it);
/* The JSON value of a JSON item; *out owned by the caller (cJSON_Delete). */
ckpt_status cli_item_load_json(ckpt_io *io, const cli_item *it, cJSON **out, ckpt_error *err);
/* The bytes of an item's file (proto.pbtxt for proto items); *out malloc'ed, NUL-terminated,
 * owned by the caller. */
ckpt_status cli_item_load_text(ckpt_io *io, const cli_item *it, char **out, size_t *len,
                               ckpt_error *err);
/* A one-line description of a JSON value or a text file for listings ("object, 2 keys: {...}"),
 * at most about 100 bytes; malloc'ed (NULL on OOM). */
char *cli_json_summary(const cJSON *v);
char *cli_text_summary(const char *text, size_t len);

typedef enum cli_path_kind {
  CLI_PATH_CHECKPOINT, /* a checkpoint or item directory (cli_ckpt_open) */
  CLI_PATH_MANAGER     /* a directory of steps (cli_mgr_scan) */
} cli_path_kind;

/* Decides what path is. ENOENT when missing, EINVAL when not a directory. A directory that is
 * neither a checkpoint nor holds step directories is a manager directory with no steps only
 * when it is empty; otherwise EINVAL ("not a checkpoint"). */
ckpt_status cli_classify(ckpt_io *io, const char *path, cli_path_kind *kind, ckpt_error *err);

/* ================================================================ steps.c */

typedef struct cli_step {
  int64_t step;
  char *name; /* directory name, "step_0003" or "3.orbax-checkpoint-tmp" */
  char *path;
  bool tmp;            /* tmp marker: a leftover or an in-flight save, never a checkpoint */
  bool finalized;      /* by the library's rule (storage/step_dirs.h, CKPT_FINALIZED_ANY) */
  bool commit_pending; /* an interrupted commit-file save (pending marker, no commit file) */
  bool has_commit_time;
  int64_t commit_nsecs;
  char commit_text[32]; /* exact digits, "" when absent */
  cJSON *metrics;       /* <step>/metrics/metrics, else non-empty _CHECKPOINT_METADATA.metrics */
  size_t n_items;
  char **items; /* item directory names (tmp ones excluded) */
} cli_step;

typedef struct cli_mgr {
  char *path;
  size_t n;
  cli_step *steps; /* ascending by step; for equal steps finalized first */
} cli_mgr;

/* True when name is "[<prefix>_]<digits>" (an optional tmp marker after it); *step and *tmp
 * set then. Leading zeros are accepted (step_format_fixed_length). */
bool cli_parse_step_name(const char *name, int64_t *step, bool *tmp);
/* Lists the step directories of path (real directories only). *out owned by the caller
 * (cli_mgr_free), also after a failure. */
ckpt_status cli_mgr_scan(ckpt_io *io, const char *path, cli_mgr *out, ckpt_error *err);
void cli_mgr_free(cli_mgr *m);
/* The finalized step `step` (or the latest finalized one when step < 0); NULL when none. */
const cli_step *cli_mgr_pick(const cli_mgr *m, int64_t step);

/* What a command does with the one checkpoint it was pointed at; returns an exit status. */
typedef int (*cli_ckpt_fn)(void *ctx, const char *ckpt_path);
/* Runs fn on the checkpoint that PATH (of the given kind, from cli_classify) and an optional
 * --step name, for command cmd: PATH itself when it is a checkpoint (a --step is then a usage
 * error), else step `step` of the directory of steps, or its latest finalized step without
 * --step. Returns fn's exit status, or that of the error it reported on stderr. */
int cli_run_on_checkpoint(ckpt_io *io, const char *cmd, const char *path, cli_path_kind kind,
                          bool has_step, int64_t step, cli_ckpt_fn fn, void *ctx);

/* ================================================================ pytree_view.c */

typedef struct cli_leaf {
  const ckpt_meta_entry *entry; /* borrowed from the view's metadata */
  const char *param;
  const char *value_type;
  bool is_array; /* stored as a zarr array (arrays and scalars) */
  bool is_string;
  bool is_empty;                          /* an empty container or None (nothing stored) */
  bool zarr_ok;                           /* .zarray read (or, packed, taken from _PACKED) */
  const struct ckpt_packed_array *packed; /* stored in the packed data file, or NULL */
  struct ckpt_ocdbt *ocdbt;               /* stored in the item's OCDBT database, or NULL */
  ckpt_zarr_meta zarr;
  ckpt_error zarr_err;      /* why not (zarr_ok false) */
  uint64_t n_chunks;        /* of the grid */
  uint64_t chunks_present;  /* chunk files found (when stat'ed) */
  uint64_t stored_bytes;    /* their sizes */
  const char *string_value; /* strings: from _strings.json (borrowed), or NULL */
  const ckpt_tree *aggregated; /* the value, when the legacy aggregate file holds it (borrowed
                                  from the view; is_array and is_string are then false) */
} cli_leaf;

typedef struct cli_pytree {
  char *dir;
  ckpt_pytree_meta meta;
  cJSON *strings;                   /* _strings.json or NULL */
  struct ckpt_checksums *checksums; /* _CHECKSUMS or NULL (Orbax writes none) */
  struct ckpt_packed_index *packed; /* _PACKED (heap, so leaves may point into it; empty when
                                     * the item has none) */
  ckpt_tree *aggregate;             /* the legacy aggregate file `checkpoint`, or NULL */
  ckpt_meta_source source;          /* where the tree came from (_METADATA or a fallback) */
  struct ckpt_ocdbt *ocdbt;         /* the OCDBT database (use_ocdbt) when it could be read */
  size_t n;
  cli_leaf *leaves;        /* in _METADATA order */
  bool check_ok;           /* the restore's cross-checks passed: _CHECKSUMS agrees with
                            * _METADATA, _PACKED and _strings.json */
  ckpt_error check_err;    /* why not */
  bool readable_ok;        /* the restore's other check: with use_ocdbt, the OCDBT database
                            * reads */
  ckpt_error readable_err; /* why not */
} cli_pytree;

/* Reads _METADATA, _strings.json and _CHECKSUMS of dir and every array's .zarray (a .zarray
 * that cannot be read is recorded in the leaf, not an error); with stat_chunks also the
 * stored size of every chunk. Fails when _METADATA (or _strings.json, _CHECKSUMS) is missing
 * or malformed. *out owned by the caller (cli_pytree_free), also after a failure. */
ckpt_status cli_pytree_open(ckpt_io *io, const char *dir, bool stat_chunks, cli_pytree *out,
                            ckpt_error *err);
void cli_pytree_free(cli_pytree *p);
/* Where a view's tree came from, for listings ("_METADATA", "the legacy aggregate file ..."). */
const char *cli_meta_source_name(ckpt_meta_source s);
cli_leaf *cli_pytree_find(const cli_pytree *p, const char *param);

/* ================================================================ array_read.c */

typedef struct cli_array {
  ckpt_io *io;
  char *dir;        /* the array directory */
  const char *name; /* parameter name (borrowed) */
  ckpt_zarr_meta meta;
  const cJSON *sums;                      /* the array's _CHECKSUMS entry (borrowed) or NULL */
  const struct ckpt_packed_array *packed; /* packed arrays: where its chunks are (borrowed) */
  struct ckpt_ocdbt *ocdbt;               /* OCDBT arrays: the item's database (borrowed) */
  bool require_sums;                      /* the item has _CHECKSUMS: every chunk must be listed */
  bool missing_is_error;
} cli_array;

/* Opens leaf (an array leaf whose .zarray was read) of p for reading; *a owned by the caller
 * (cli_array_close). */
ckpt_status cli_array_open(ckpt_io *io, const cli_pytree *p, const cli_leaf *leaf, cli_array *a,
                           ckpt_error *err);
void cli_array_close(cli_array *a);
/* Reads the box [off, off+shape) converted to dtype into dst (C order), verifying every chunk
 * it touches. */
ckpt_status cli_array_read(cli_array *a, const int64_t *off, const int64_t *shape, ckpt_dtype dtype,
                           void *dst, ckpt_error *err);

/* Calls fn for consecutive boxes of an array of the given shape, in C order, each holding at
 * most max_elems elements (at least one row of the innermost axes that fit). 0-d: one box. */
typedef ckpt_status (*cli_box_fn)(void *ctx, const int64_t *off, const int64_t *shape,
                                  uint64_t n_elems, ckpt_error *err);
ckpt_status cli_for_each_box(int ndim, const int64_t *shape, uint64_t max_elems, cli_box_fn fn,
                             void *ctx, ckpt_error *err);

/* Elements read per slab by cat/diff/stats (bounds their memory). */
#define CLI_SLAB_ELEMS ((uint64_t)1 << 22)

/* ================================================================ numfmt.c */

/* numpy's print threshold and edge items (np.get_printoptions()). */
#define CLI_NP_THRESHOLD 1000
#define CLI_NP_EDGEITEMS 3
#define CLI_NP_LINEWIDTH 75

/* The text numpy's str(a) prints for an array (print(a)), e.g. "[[0.  0.5]\n [1.  1.5]]".
 * data holds the elements in C order, shape the extents; summarized[k] (or NULL) says axis k
 * is shown as its 3 leading and 3 trailing entries with "..." between (then data holds 6
 * entries along k: numpy's summarised form). malloc'ed (caller frees) or NULL on OOM. */
char *cli_np_array_str(const void *data, ckpt_dtype dtype, int ndim, const int64_t *shape,
                       const bool *summarized);
/* Real and imaginary parts of element i of data as doubles (imaginary 0 for real dtypes). */
void cli_complex_parts(const void *data, ckpt_dtype dt, uint64_t i, double *re, double *im);
/* str() of a numpy scalar of dtype at elem ("0.5", "7", "True", "(1+2j)"); malloc'ed. */
char *cli_np_scalar_str(const void *elem, ckpt_dtype dtype);
/* The shortest decimal text that reads back as the same value of dtype (a float dtype),
 * Python-repr style ("0.1", "1e-05", "inf", "nan"); out at least 48 bytes. */
void cli_float_repr(double v, ckpt_dtype dtype, char *out);

/* ================================================================ stats.c */

typedef struct cli_stats {
  ckpt_dtype dtype;
  uint64_t count; /* elements seen */
  uint64_t n_nan, n_inf, n_zero, n_finite;
  double min, max;     /* over finite elements (|z| for complex) */
  double mean, m2;     /* Welford over finite elements */
  bool is_int;         /* integer/bool dtype: min/max kept exactly below */
  int64_t imin, imax;  /* signed/bool */
  uint64_t umin, umax; /* unsigned */
} cli_stats;

void cli_stats_init(cli_stats *s, ckpt_dtype dtype);
/* Adds n elements of s->dtype at data. */
void cli_stats_add(cli_stats *s, const void *data, uint64_t n);
double cli_stats_std(const cli_stats *s); /* population std (numpy's ddof=0) */

/* ================================================================ progress.c */

typedef struct cli_progress cli_progress;
/* A progress bar on stderr for total units, drawn only when enabled (a terminal). NULL on OOM
 * (then callers simply have no bar). */
cli_progress *cli_progress_new(bool enabled, const char *label, uint64_t total);
/* Thread-safe; redraws when the shown percentage changes. NULL-safe. */
void cli_progress_add(cli_progress *p, uint64_t units);
/* Clears the bar's line and frees p. NULL-safe. */
void cli_progress_done(cli_progress *p);

/* ================================================================ commands */

int cli_cmd_ls(int argc, char **argv);
int cli_cmd_verify(int argc, char **argv);
int cli_cmd_cat(int argc, char **argv);
int cli_cmd_diff(int argc, char **argv);
int cli_cmd_gc(int argc, char **argv);
int cli_cmd_convert(int argc, char **argv);
int cli_cmd_unpack(int argc, char **argv); /* convert --to zarr2 */

/* True when argv holds -h/--help before a "--" (commands answer it before anything else). */
bool cli_wants_help(int argc, char **argv);

/* The engine chunk reads and checks run on (ckpt_task_run), created on first use and kept
 * for the command; NULL when it cannot be created (ckpt_task_run then uses a short-lived
 * one per call). main frees it with cli_task_engine_free. */
struct ckpt_engine *cli_task_engine(void);
void cli_task_engine_free(void);

#endif
