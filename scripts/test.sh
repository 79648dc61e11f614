#!/usr/bin/env bash
# Set up (idempotent) and run the test suite, tier by tier. This is the command README.md and .ci/run give.
#
#   unit  pytest -m "not slow and not gpu"   no run on Ray; a few minutes on 2 cores
#   slow  pytest -m "slow and not gpu"       end to end: runs on local Ray, subprocess runs, long measures
#   gpu   pytest -m gpu                      only where a CUDA device is read (nvml, torch)
#
# Every tier runs, even after one failed (all the failures in one go); each tier's wall time is printed, and
# the exit status is non-zero if any tier failed. A tier that collects no test (pytest's exit 5) has failed.
# Extra arguments go to pytest in every tier, e.g. scripts/test.sh -x -ra; TIERS picks the tiers:
#   TIERS=unit scripts/test.sh -k decode
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh" || exit 1
PY="${VENV:-$ROOT/.venv}/bin/python"

TIERS="${TIERS:-unit slow gpu}"
failed=()
summary=()
for tier in $TIERS; do
  case "$tier" in
    unit) marks="not slow and not gpu" ;;
    slow) marks="slow and not gpu" ;;
    gpu)
      marks="gpu"
      if ! "$PY" -c 'import sys; from raycurate.gpu_sizing import read_local_gpus; sys.exit(0 if read_local_gpus()[0] else 1)' \
          2>/dev/null; then
        summary+=("gpu: not run (no CUDA device)")
        continue
      fi ;;
    *) echo "scripts/test.sh: unknown tier '$tier' (unit, slow, gpu)" >&2; exit 2 ;;
  esac
  echo "=== tier $tier: pytest -m \"$marks\" $*"
  start=$(date +%s)
  "$PY" -m pytest -m "$marks" "$@"
  rc=$?
  took=$(( $(date +%s) - start ))
  if [ "$rc" -eq 5 ]; then
    echo "scripts/test.sh: tier $tier collected no tests: that is a failure" >&2
  fi
  if [ "$rc" -ne 0 ]; then
    failed+=("$tier")
    summary+=("$tier: FAILED (pytest exit $rc) in ${took} s")
  else
    summary+=("$tier: passed in ${took} s")
  fi
  echo "=== tier $tier: exit $rc, ${took} s"
done
echo "=== tiers"
printf '  %s\n' "${summary[@]}"
[ "${#failed[@]}" -eq 0 ]
