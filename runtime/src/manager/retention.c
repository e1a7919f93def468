/* manager/retention.c — which steps survive a save (docs/manager.md, "Retention").
 *
 * Orbax's default AnyPreservationPolicy: a step is kept when any of these keeps it:
 *   EveryNSteps(keep_period)   step % keep_period == 0;
 *   BestN(max_to_keep)         with best_metric: the max_to_keep best steps by the metric
 *                              (best_mode), plus — unless drop_checkpoints_without_metrics —
 *                              every step without the metric (then those are deleted);
 *   LatestN(max_to_keep)       without best_metric: the max_to_keep largest steps;
 *   LatestN(keep_latest_n)     the keep_latest_n largest steps (Orbax has it as a policy only);
 *   EveryNSeconds(keep_time_interval_secs)
 *                              the first step, then each step saved at least the interval
 *                              after the previous one kept by this rule (a step of unknown
 *                              time is kept and does not move the reference);
 *   should_keep_fn(step)       asked last, only for steps nothing else keeps (as Orbax).
 * max_to_keep 0 (Orbax's None) keeps everything, and so does the whole policy while there are
 * at most max_to_keep steps (as Orbax's, which returns early then). The policy sees every
 * known step, including the one just saved, which can therefore be its own victim when its
 * metric is worse than the best max_to_keep (as in Orbax) — unless keep_latest_n keeps it.
 * Ranking is deterministic: a NaN metric is the worst, and ties go to the larger step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager_internal.h"
#include "storage/checkpoint_metadata.h"

bool mgr_metric_value(const mgr_config *c, const cJSON *metrics, double *value) {
  if (c->best_metric == NULL || !cJSON_IsObject(metrics))
    return false;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(metrics, c->best_metric);
  if (cJSON_IsNumber(v)) {
    *value = v->valuedouble;
    return true;
  }
  /* The JSON reader (text/json.h) keeps integers beyond 2^53 as raw digits so they are not
   * rounded on the way through; for ranking a double is plenty. */
  if (cJSON_IsRaw(v) && v->valuestring != NULL) {
    char *end;
    double d = strtod(v->valuestring, &end);
    if (end != v->valuestring && *end == '\0') {
      *value = d;
      return true;
    }
  }
  return false;
}

typedef struct ranked {
  int64_t step;
  double value;
} ranked;

/* Sorts worst first, best last (so "the last n" are the best n). */
static int cmp_max(const void *a, const void *b) {
  const ranked *x = a, *y = b;
  bool xn = isnan(x->value), yn = isnan(y->value);
  if (xn != yn)
    return xn ? -1 : 1;
  if (!xn && x->value != y->value)
    return x->value < y->value ? -1 : 1;
  return (x->step > y->step) - (x->step < y->step);
}

static int cmp_min(const void *a, const void *b) {
  const ranked *x = a, *y = b;
  bool xn = isnan(x->value), yn = isnan(y->value);
  if (xn != yn)
    return xn ? -1 : 1;
  if (!xn && x->value != y->value)
    return x->value > y->value ? -1 : 1;
  return (x->step > y->step) - (x->step < y->step);
}

/* The steps of s that have the metric, ranked worst first; *out malloc'ed (may be NULL when
 * *n is 0). */
static ckpt_status rank_by_metric(const mgr_config *c, const mgr_steps *s, ranked **out, size_t *n,
                                  ckpt_error *err) {
  *out = NULL;
  *n = 0;
  if (s->n == 0)
    return CKPT_OK;
  ranked *r = malloc(s->n * sizeof *r);
  if (r == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory ranking steps");
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++) {
    double v;
    if (mgr_metric_value(c, s->v[i].metrics, &v))
      r[k++] = (ranked){s->v[i].step, v};
  }
  qsort(r, k, sizeof *r, c->best_mode == CKPT_BEST_MODE_MIN ? cmp_min : cmp_max);
  *out = r;
  *n = k;
  return CKPT_OK;
}

bool mgr_best_step(const mgr_config *c, const mgr_steps *s, int64_t *step) {
  ranked *r;
  size_t n;
  if (rank_by_metric(c, s, &r, &n, NULL) != CKPT_OK) {
    /* Out of memory: fall back to a linear scan with the same order. */
    bool found = false;
    ranked best = {0, 0};
    int (*cmp)(const void *, const void *) = c->best_mode == CKPT_BEST_MODE_MIN ? cmp_min : cmp_max;
    for (size_t i = 0; i < s->n; i++) {
      ranked x = {s->v[i].step, 0};
      if (!mgr_metric_value(c, s->v[i].metrics, &x.value))
        continue;
      if (!found || cmp(&x, &best) > 0)
        best = x;
      found = true;
    }
    if (found)
      *step = best.step;
    return found;
  }
  bool found = n > 0;
  if (found)
    *step = r[n - 1].step;
  free(r);
  return found;
}

int64_t mgr_step_time(const mgr_config *c, const char *step_dir) {
  ckpt_step_metadata meta = {0};
  int64_t t = MGR_TIME_UNKNOWN;
  /* Any failure (no file, a Python checkpoint without timestamps, corruption) leaves the time
   * unknown, which keeps the step: a retention rule must never delete on a guess. */
  if (ckpt_step_metadata_read(c->io, step_dir, &meta, NULL) == CKPT_OK) {
    if (meta.has_commit_timestamp)
      t = meta.commit_timestamp_nsecs;
    else if (meta.has_init_timestamp)
      t = meta.init_timestamp_nsecs;
  }
  ckpt_step_metadata_clear(&meta);
  return t;
}

/* BestN (with best_metric) or LatestN(max_to_keep): marks what it keeps. */
static ckpt_status keep_best_or_latest(const mgr_config *c, const mgr_steps *s, bool *keep,
                                       ckpt_error *err) {
  size_t max = (size_t)c->max_to_keep;
  if (c->best_metric == NULL) {
    for (size_t i = s->n - max; i < s->n; i++)
      keep[i] = true;
    return CKPT_OK;
  }
  ranked *r;
  size_t nr;
  ckpt_status st = rank_by_metric(c, s, &r, &nr, err);
  if (st != CKPT_OK)
    return st;
  size_t first_kept = nr > max ? nr - max : 0;
  for (size_t j = first_kept; j < nr; j++)
    keep[mgr_steps_find(s, r[j].step)] = true;
  free(r);
  for (size_t i = 0; i < s->n; i++) {
    double v;
    if (c->keep_without_metrics && !mgr_metric_value(c, s->v[i].metrics, &v))
      keep[i] = true;
  }
  return CKPT_OK;
}

/* EveryNSeconds: the first step, then every step at least the interval after the last one
 * this rule kept (Orbax's walk over the steps in step order). */
static void keep_every_interval(const mgr_config *c, const mgr_steps *s, bool *keep) {
  bool have_ref = false;
  int64_t ref = 0;
  for (size_t i = 0; i < s->n; i++) {
    int64_t t = s->v[i].time_ns;
    if (t == MGR_TIME_UNKNOWN) {
      keep[i] = true;
      continue;
    }
    /* t - ref >= interval, written so that it cannot overflow. */
    if (!have_ref || (t >= ref && (uint64_t)t - (uint64_t)ref >= (uint64_t)c->keep_interval_ns)) {
      keep[i] = true;
      ref = t;
      have_ref = true;
    }
  }
}

ckpt_status mgr_steps_to_remove(const mgr_config *c, const mgr_steps *s, int64_t **out, size_t *n,
                                ckpt_error *err) {
  *out = NULL;
  *n = 0;
  /* Nothing is deleted while there are at most max_to_keep steps. */
  if (c->max_to_keep == 0 || (uint64_t)c->max_to_keep >= s->n)
    return CKPT_OK;
  bool *keep = calloc(s->n, sizeof *keep);
  if (keep == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory applying retention");

  ckpt_status st = keep_best_or_latest(c, s, keep, err);
  if (st != CKPT_OK) {
    free(keep);
    return st;
  }
  for (size_t i = 0; i < s->n; i++) {
    if (c->keep_period > 0 && s->v[i].step % c->keep_period == 0)
      keep[i] = true;
  }
  if (c->keep_latest_n > 0) {
    size_t latest = (uint64_t)c->keep_latest_n < s->n ? (size_t)c->keep_latest_n : s->n;
    for (size_t i = s->n - latest; i < s->n; i++)
      keep[i] = true;
  }
  if (c->keep_interval_ns > 0)
    keep_every_interval(c, s, keep);
  if (c->should_keep_fn != NULL) {
    for (size_t i = 0; i < s->n; i++) {
      if (!keep[i] && c->should_keep_fn(c->should_keep_arg, s->v[i].step))
        keep[i] = true;
    }
  }

  size_t k = 0;
  for (size_t i = 0; i < s->n; i++)
    k += !keep[i];
  int64_t *v = k != 0 ? malloc(k * sizeof *v) : NULL;
  if (k != 0 && v == NULL) {
    free(keep);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory applying retention");
  }
  k = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (!keep[i])
      v[k++] = s->v[i].step;
  }
  free(keep);
  *out = v;
  *n = k;
  return CKPT_OK;
}
