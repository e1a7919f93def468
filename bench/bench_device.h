/* bench/bench_device.h — the device's own limits, measured with fio in the benchmark's process
 * (docs/performance.md, "The device limit").
 *
 * Why: the old limits (one stream of 4 MiB write()s into one file, then one fsync; one read()
 * loop) are what a naive writer gets, not what the device can do: numpy's savez and ckpt's
 * packed save finished in a third of that "limit". fio, run with a few thread counts, queue
 * depths, buffered and O_DIRECT, every run ending with an fsync of each of its files, gives the
 * fastest durable write (and cold read) of the same bytes this device allows; save_vs_device and
 * restore_cold_vs_device compare ckpt with the best of them. The settings are few and each moves
 * the state's bytes once, so the whole measurement takes a few seconds a round. */
#ifndef BENCH_DEVICE_H
#define BENCH_DEVICE_H

#include <stddef.h>

/* Runs each fio setting of bench_device.c on `bytes` bytes (split over its jobs) in files below
 * dir: a durable write, then a cold read of what it wrote (fio drops the files from the page
 * cache before reading; O_DIRECT settings bypass it), then the files are truncated (never
 * deleted: bench_retire_file). Pre-warms `warm` bytes before each run (bench_prewarm).
 * Emits, for prog "device": op "write.<setting>" and "read_cold.<setting>" for each setting
 * (seconds scaled to `bytes` when fio's per-job sizes rounded them up), then "write" and
 * "read_cold", the best of each. When fio is missing or fails, emits a note instead and
 * returns 1; 0 otherwise. */
int bench_device_limits(const char *dir, const char *state, size_t bytes, size_t warm);

#endif
