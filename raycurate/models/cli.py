"""The ``raycurate models`` command."""
from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    """``raycurate models list|path|verify|pull [ID ...]``: the weights registry and the files on this machine."""
    from .. import models as m

    root = m.models_dir(args.models_dir)
    try:
        specs = ([m.find_spec(i, root) for i in args.ids] if args.ids
                 else list(m.REGISTRY.values()) + m.extra_specs(root))
    except m.ModelError as exc:
        print(f"raycurate: error: {exc} (see `raycurate models list`)", file=sys.stderr)
        return 2
    if args.action == "path":
        print(root)
        for key, value in m.library_env(root).items():
            print(f"{key}={value}")
        for key, value in m.library_paths(root).items():
            print(f"{key}: {value}")
        return 0
    if args.action == "list":
        print(f"models directory: {root}")
        print(f"{'id':<40} {'library':<12} {'analyser':<13} {'status':<11} {'ships in':<24} licence")
        for spec in specs:
            print(f"{spec.id:<40} {spec.library:<12} {spec.analyzer:<13} {m.status(spec, root):<11} "
                  f"{spec.shipped_in or '-':<24} {spec.licence}")
        return 0
    failed = False
    for spec in specs:
        try:
            if args.action == "pull":
                m.pull(spec.id, root, offline=args.offline)
            elif args.record and not spec.shipped_in:
                m.record(spec.id, root)
        except m.ModelError as exc:
            print(f"raycurate: error: {exc}", file=sys.stderr)
            failed = True
            continue
        states = m.file_status(spec, root)
        for _, path, state in states:
            print(f"{spec.id:<40} {state:<11} {path}")
        if any(state != "ok" for _, _, state in states):
            failed = True
            print(f"raycurate: {spec.id}: {m.fix_hint(spec, root)}", file=sys.stderr)
    return 1 if failed else 0
