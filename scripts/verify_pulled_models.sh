#!/usr/bin/env bash
# Run the real-weight expression and body-pose tests against the models `raycurate models pull` fetched.
#
#   .venv/bin/raycurate models pull deepface-emotion ultralytics-yolo11n-pose   # once, with internet
#   scripts/verify_pulled_models.sh [MODELS_DIR]     # default: $RAYCURATE_MODELS, else ~/.cache/raycurate/models
#
# For users on a networked machine. It has NOT been run where raycurate is developed: no model hub or release
# download is reachable there, so DeepFace's and YOLO pose's real weights have never been on that machine (their
# wiring is tested with random weights, tests/test_model_backends.py). The same tests run on every install with
# the shipped fallbacks (FER, BlazePose): `scripts/test.sh tests/test_expression_pose_real.py`.
#
# What it does: checks the pulled files against the lock file (`raycurate models verify`), says which model
# `model: auto` picks for the emotion and pose analysers in that directory, then runs
# tests/test_expression_pose_real.py with RAYCURATE_REAL_MODELS pointing there (smiling faces read happy,
# relaxed portraits neutral, one body per portrait in anatomical order, nothing on the negatives).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
DIR="${1:-${RAYCURATE_MODELS:-$HOME/.cache/raycurate/models}}"
cd "$ROOT"

echo "[verify] models directory: $DIR"
status=0
for id in deepface-emotion ultralytics-yolo11n-pose; do
  "$PY" -m raycurate.cli models verify "$id" --models-dir "$DIR" || status=1
done
if [ "$status" -ne 0 ]; then
  echo "[verify] some pulled weights are missing or unverified (above): the tests below would use the shipped" \
       "fallbacks for them; pull them first (raycurate models pull ... --models-dir $DIR)" >&2
  exit 1
fi
"$PY" - "$DIR" <<'PYCHOICE'
import sys
from raycurate.analyzers import emotion, pose
for mod in (emotion, pose):
    chosen, why = mod.choose_model("auto", models_dir=sys.argv[1])
    print(f"[verify] {mod.__name__.rsplit('.', 1)[-1]}: {mod.MODEL_IDS[chosen]} ({why})")
PYCHOICE
RAYCURATE_REAL_MODELS="$DIR" exec "$PY" -m pytest -q tests/test_expression_pose_real.py "${@:2}"
