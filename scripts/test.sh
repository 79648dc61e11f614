#!/usr/bin/env bash
# Set up (idempotent) and run the test suite. This is the command README.md and .ci/run give.
# Extra arguments go to pytest, e.g. scripts/test.sh -k decode
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh" || exit 1
"$ROOT/.venv/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
