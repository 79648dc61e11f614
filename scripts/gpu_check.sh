#!/usr/bin/env bash
# The GPU checks, in one short run on a machine with an NVIDIA GPU (scripts/setup.sh done first):
#   1. every analyser whose model loads, on cuda, at batch sizes 1, 8 and 32 (scripts/bench_analyzers.py);
#   2. the video benchmark with decord's NVDEC decoder, where this decord was built with it
#      (scripts/bench_video.py --set video.decord_device=gpu), else one line saying it was not;
#   3. the batch sizes and GPU fractions a run chose (a run of the tests/data photos with the full-gpu
#      profile: its manifest's gpu_sizing section).
# Each part prints its own output; a part that fails is reported and the next one still runs.
#     scripts/gpu_check.sh [--seconds 20]     # length of the generated 1080p clip for part 2
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
SECONDS_CLIP=20
[ "${1:-}" = "--seconds" ] && SECONDS_CLIP="${2:-20}"
cd "$ROOT"
status=0

echo "== GPU"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L; then
  echo "gpu_check: no NVIDIA GPU visible (nvidia-smi): nothing to check" >&2
  exit 2
fi
"$PY" -c "import onnxruntime as o, torch; print('onnxruntime providers:', o.get_available_providers()); print('torch cuda:', torch.cuda.is_available())"

echo; echo "== 1. analysers on cuda (scripts/bench_analyzers.py --device cuda --cuda-only)"
"$PY" scripts/bench_analyzers.py --device cuda --cuda-only --n 64 || { echo "part 1 failed (exit $?)"; status=1; }

echo; echo "== 2. video with decord's NVDEC decoder"
clip="$ROOT/tests/data/videos/testvideo.mp4"
if "$PY" -c "import decord, sys; decord.VideoReader(sys.argv[1], ctx=decord.gpu(0)).next()" "$clip" 2>/dev/null; then
  "$PY" scripts/bench_video.py --seconds "$SECONDS_CLIP" --set video.decord_device=gpu \
    || { echo "part 2 failed (exit $?)"; status=1; }
else
  echo "decord here has no NVDEC (built without CUDA, or no decoder on this card): part 2 not run"
fi

echo; echo "== 3. the batch sizes a run chose (full-gpu profile, tests/data photos)"
work="$(mktemp -d)"
mkdir -p "$work/in"
cp "$ROOT"/tests/data/images/faces/* "$ROOT"/tests/data/images/face_recognition/*.jpg "$work/in/"
if "$PY" -m raycurate.cli run "$work/in" --out "$work/out" --profile full-gpu --set video.enabled=false; then
  "$PY" - "$work/out/manifest.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
sizing = m.get("gpu_sizing") or {}
print("GPU memory read:", sizing.get("gpu_memory_gb"))
for pool, r in (sizing.get("pools") or {}).items():
    print(f"  {pool:<24} batch {r.get('batch_size')}  GPU fraction {r.get('gpu_fraction')}")
if not sizing:
    print("the manifest has no gpu_sizing section: the run sized no GPU pool")
EOF
else
  echo "part 3 failed: the run did not finish"; status=1
fi
rm -rf "$work"
exit "$status"
