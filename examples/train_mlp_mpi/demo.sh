#!/bin/sh
# examples/train_mlp_mpi/demo.sh BUILD_DIR — the multi-process kill-and-resume demo, run by
# `make demo` (and, shortened, by tests/mpi). Exits non-zero if any check fails.
#
#   1. reference: an uninterrupted run on 4 ranks (STEPS steps, an async checkpoint every
#      SAVE_EVERY, the KEEP latest kept), dumping its final state
#   2. the same run on 4 ranks; rank 2 sends itself SIGKILL right after step KILL_AT (a save
#      step: its commit is usually still in flight) and mpirun ends the whole job
#   3. resumed on 3 ranks from the latest committed step, to STEPS: its final state and every
#      loss it logs are bit-identical to the reference's
#   4. the reference's final checkpoint, saved by 4 ranks, restored on 1, 2 and 3: identical
#   5. `ckpt verify` and zarr-python read that checkpoint
# STEPS, SAVE_EVERY, KEEP and KILL_AT may be set in the environment (tests use short runs).
set -eu

build=${1:-build}
here=$(cd "$(dirname "$0")/../.." && pwd)
case $build in /*) ;; *) build=$here/$build ;; esac
prog=$build/bin/examples/train_mlp_mpi
ckpt_tool=$build/bin/ckpt
python=${CKPT_PYTHON:-/usr/bin/python3}
STEPS=${STEPS:-200}
SAVE_EVERY=${SAVE_EVERY:-25}
KEEP=${KEEP:-3}
KILL_AT=${KILL_AT:-125}

# Open MPI refuses to run as root without these two (containers, CI); harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=$(command -v mpirun || true)
if [ -z "$mpirun" ]; then
  echo "demo.sh: mpirun is missing (scripts/install-deps installs openmpi-bin); skipped"
  exit 0
fi
if [ ! -x "$prog" ]; then
  echo "demo.sh: $prog is missing; run 'make BUILD=${1:-build} all' first" >&2
  exit 2
fi
# 4 ranks on however many cores: --oversubscribe; no binding, so ranks share cores fairly.
ranks() {
  n=$1
  shift
  timeout -k 5 120 "$mpirun" --oversubscribe --bind-to none -np "$n" "$prog" "$@"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/train-mlp-mpi-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
say() { printf '\n-- %s\n' "$*"; }
ref=$work/reference
run=$work/run
args="--steps $STEPS --save-every $SAVE_EVERY --keep $KEEP"

say "1. reference: $STEPS steps on 4 ranks, rows of every tensor split over the ranks, an async checkpoint every $SAVE_EVERY"
# shellcheck disable=SC2086
ranks 4 --dir "$ref" $args --log "$work/reference.log" --dump "$work/reference.bin"
echo "steps kept: $(ls "$ref" | tr '\n' ' ')"

say "2. the same run on 4 ranks; rank 2 is killed with SIGKILL after step $KILL_AT"
# shellcheck disable=SC2086
if ranks 4 --dir "$run" $args --kill-rank 2 --kill-at "$KILL_AT" --log "$work/killed.log" \
  >"$work/killed.out" 2>&1; then
  cat "$work/killed.out"
  echo "demo.sh: the job survived the SIGKILL of its rank 2" >&2
  exit 1
fi
grep -E 'SIGKILL|checkpoint queued|signal 9' "$work/killed.out" || true
echo "left on disk: $(ls "$run" | tr '\n' ' ')(a *.orbax-checkpoint-tmp is a save that never committed)"

say "3. resumed on 3 ranks"
# shellcheck disable=SC2086
ranks 3 --dir "$run" $args --log "$work/resumed.log" --dump "$work/resumed.bin"
if ! cmp -s "$work/reference.bin" "$work/resumed.bin"; then
  echo "demo.sh: the resumed run's final state differs from the reference's" >&2
  exit 1
fi
if grep -vxFf "$work/reference.log" "$work/resumed.log" >"$work/differ.log"; then
  echo "demo.sh: losses differ after resuming:" >&2
  head -n 5 "$work/differ.log" >&2
  exit 1
fi
echo "final state (step, generator, 12 tensors) identical to the reference; the $(wc -l <"$work/resumed.log") losses logged after the resume identical too"

say "4. the reference's step $STEPS (saved by 4 ranks) restored on 1, 2 and 3 ranks"
for n in 1 2 3; do
  ranks "$n" --dir "$ref" $args --dump "$work/restored$n.bin" >/dev/null
  if ! cmp -s "$work/reference.bin" "$work/restored$n.bin"; then
    echo "demo.sh: restored on $n ranks, the state differs" >&2
    exit 1
  fi
  echo "$n rank(s): identical"
done

say "5. the checkpoint read by other readers"
if [ -x "$ckpt_tool" ]; then
  echo "\$ ckpt verify REF/$STEPS"
  "$ckpt_tool" verify "$ref/$STEPS"
fi
if "$python" -c 'import zarr' 2>/dev/null; then
  "$python" "$here/examples/train_mlp_mpi/check_zarr.py" "$ref/$STEPS" "$work/reference.bin"
else
  echo "($python has no zarr module; skipped)"
fi
