/* cli/progress.c — the progress bar `ckpt verify` draws on stderr while it reads chunks.
 *
 * Only drawn when stderr is a terminal (the caller decides with isatty), so logs and pipes get
 * no carriage-return noise. Workers of the parallel chunk check report progress concurrently;
 * a mutex serialises the counter and the drawing, and the bar is redrawn only when the shown
 * percentage changes, so drawing costs nothing measurable. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define BAR_WIDTH 30

struct cli_progress {
  bool enabled;
  char *label;
  uint64_t total, done;
  int shown; /* percentage last drawn, -1 before the first */
  pthread_mutex_t mu;
};

static void draw(cli_progress *p) {
  int pct = p->total ? (int)(p->done * 100 / p->total) : 100;
  if (pct == p->shown)
    return;
  p->shown = pct;
  int fill = pct * BAR_WIDTH / 100;
  char bar[BAR_WIDTH + 1];
  for (int i = 0; i < BAR_WIDTH; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[BAR_WIDTH] = '\0';
  fprintf(stderr, "\r\033[K%s [%s] %3d%% (%llu/%llu)", p->label, bar, pct,
          (unsigned long long)p->done, (unsigned long long)p->total);
  fflush(stderr);
}

cli_progress *cli_progress_new(bool enabled, const char *label, uint64_t total) {
  cli_progress *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->label = cli_strdup(label ? label : "");
  if (p->label == NULL || pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p->label);
    free(p);
    return NULL;
  }
  p->enabled = enabled;
  p->total = total;
  p->shown = -1;
  if (enabled)
    draw(p);
  return p;
}

void cli_progress_add(cli_progress *p, uint64_t units) {
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->mu);
  p->done += units;
  if (p->done > p->total)
    p->done = p->total;
  if (p->enabled)
    draw(p);
  pthread_mutex_unlock(&p->mu);
}

void cli_progress_done(cli_progress *p) {
  if (p == NULL)
    return;
  if (p->enabled) {
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
  }
  pthread_mutex_destroy(&p->mu);
  free(p->label);
  free(p);
}
