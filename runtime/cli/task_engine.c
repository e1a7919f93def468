/* cli/task_engine.c — one I/O engine for the chunk tasks of a whole `ckpt` command.
 *
 * Why: ckpt_parallel_for starts an engine (threads) per call and frees it after (a fraction of
 * a millisecond each; docs/performance.md, "Figures behind design choices"); `ckpt diff` and `ckpt cat` read every array box by box, one call per box and side,
 * so a checkpoint of 10,000 small arrays paid seconds for thread start-up alone. The tool is a
 * program, so it may keep one engine for its lifetime: created on first use, freed by main. */
#include "cli.h"
#include "inspect/inspect.h"

static ckpt_engine *g_engine;
static bool g_tried;

ckpt_engine *cli_task_engine(void) {
  if (!g_tried) {
    g_tried = true;
    ckpt_engine_options o;
    ckpt_engine_options_init(&o);
    o.backend = CKPT_ENGINE_BACKEND_PWRITE; /* function jobs only: no io_uring rings */
    ckpt_error err = CKPT_ERROR_INIT;
    if (ckpt_engine_new(&o, &g_engine, &err) != CKPT_OK)
      g_engine = NULL; /* ckpt_task_run then falls back to ckpt_parallel_for */
  }
  return g_engine;
}

void cli_task_engine_free(void) {
  ckpt_engine_free(g_engine);
  g_engine = NULL;
  g_tried = false;
}
