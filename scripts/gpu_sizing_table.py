#!/usr/bin/env python
"""What ``batch_size: auto`` and ``ray.gpu_memory_gb: auto`` choose for faked GPU cards, no GPU needed.

First per model, from each analyser's declared GPU footprint (every analyser, its weights present or not);
then a whole run's pools (``size_pools``, what a run records in its manifest) with every analyser and stage
on ``cuda``, one node with one card per size: analysers whose weights are missing here are skipped or fall
back to the CPU, as in a real run.

    .venv/bin/python scripts/gpu_sizing_table.py              # 4, 8, 16, 24 and 80 GB cards
    .venv/bin/python scripts/gpu_sizing_table.py --cards 12,48
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from raycurate.analyzers import ANALYZERS  # noqa: E402
from raycurate.analyzers.base import Resources  # noqa: E402
from raycurate.config import load_settings, parse_set  # noqa: E402
from raycurate.gpu_sizing import auto_batch_size, size_pools  # noqa: E402
from raycurate.resources import gpu_fraction  # noqa: E402

ON_GPU = ("face", "face_features", "emotion", "nsfw", "pose", "clip")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cards", default="4,8,16,24,80", help="card sizes in GB, comma-separated")
    args = ap.parse_args()
    cards = [float(c) for c in args.cards.split(",")]
    print("per model (declared footprint): batch size / GPU fraction")
    print(f"{'model':<16}" + "".join(f"{f'{gb:g} GB':>14}" for gb in cards))
    for name in ANALYZERS:
        fig = ANALYZERS[name].gpu_memory()
        if not fig.get("gpu_model_mb"):
            continue   # a CPU-only analyser
        res = Resources(0, 1.0, "cuda", fig["gpu_model_mb"], fig["gpu_item_mb"])
        cells = []
        for gb in cards:
            batch = auto_batch_size(res, gb)[0]
            cells.append(f"{batch} / {gpu_fraction(dataclasses.replace(res, batch_size=batch), gb):g}")
        print(f"{name:<16}" + "".join(f"{c:>14}" for c in cells))
    print()
    sets = [f"analyzers.{a}.device=cuda" for a in ON_GPU] + [f"analyzers.{a}.enabled=true" for a in ON_GPU]
    sets += ["cascade.stage1.device=cuda", "cascade.stage2.device=cuda"]
    settings = load_settings(overrides=[parse_set(s) for s in sets])
    reports = {gb: size_pools(settings, {"node": {"gpus_gb": [gb], "source": "faked"}})[1] for gb in cards}
    pools = list(next(iter(reports.values()))["pools"])
    print("a run's pools (size_pools): batch size / GPU fraction")
    print(f"{'pool':<24}" + "".join(f"{f'{gb:g} GB':>14}" for gb in cards))
    for pool in pools:
        cells = []
        for gb in cards:
            r = reports[gb]["pools"][pool]
            cells.append(f"{r['batch_size']} / {r['gpu_fraction']:g}")
        print(f"{pool:<24}" + "".join(f"{c:>14}" for c in cells))
    print("\nwhy (the 8 GB card):")
    for pool, r in reports[8.0 if 8.0 in reports else cards[0]]["pools"].items():
        print(f"  {pool}: {r['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
