"""``raycurate identities DB``: list the identities of a curated DB (and how many faces are unknown: in no
identity); ``--unknown`` lists those faces; ``--rename ID NAME``, ``--merge KEEP OTHER``,
``--split FACE_ID[,FACE_ID...] [--name NAME]``. Registered by :mod:`raycurate.cli`."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("identities", help="people found across runs: list, rename, merge, split identities")
    p.add_argument("db", metavar="DB", help="LanceDB directory (OUT/db, or OUT)")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--rename", nargs=2, metavar=("ID", "NAME"), help="name an identity (\"\" clears the name)")
    act.add_argument("--merge", nargs=2, metavar=("KEEP", "OTHER"), help="move OTHER's faces to KEEP; OTHER goes")
    act.add_argument("--split", metavar="FACE_ID[,FACE_ID...]", help="these faces (grouped or unknown) become a new "
                     "identity")
    act.add_argument("--unknown", action="store_true", help="list the unknown faces: a vector but no identity (not "
                     "clearly nearer one identity than another), sharpest first")
    p.add_argument("--name", help="--split: the new identity's name")
    p.add_argument("--family", choices=("arcface", "dlib"), help="list, --unknown: only this embedding family")
    p.add_argument("--json", action="store_true", help="list, --unknown: one JSON object per identity or face")
    p.add_argument("--config", metavar="FILE", help="YAML file overriding configs/default.yaml (storage: for a DB "
                   "in a bucket)")
    return p


def _print_list(rows: list[dict[str, Any]], unknown: int, as_json: bool) -> None:
    if as_json:
        for r in rows:
            print(json.dumps(r, default=str))
        return
    print(f"{'identity':<11} {'family':<7} {'faces':>6} {'images':>6}  {'name':<20} best face's image")
    for r in rows:
        print(f"{r['identity_id']:<11} {r['family']:<7} {r['face_count'] or 0:>6} {r['image_count'] or 0:>6}  "
              f"{(r['name'] or '-'):<20} {r['best_uri'] or '-'}")
    print(f"{len(rows)} identities; {unknown} faces unknown (in no identity: --unknown lists them)")


def _print_unknown(rows: list[dict[str, Any]], as_json: bool) -> None:
    for r in rows:
        if as_json:
            print(json.dumps(r, default=str))
        else:
            frame = "" if r["frame_index"] is None else f" @ frame {r['frame_index']}"
            print(f"{r['face_id']:<24} {r['family']:<7} {r['uri'] or '-'}{frame}")
    if not as_json:
        print(f"{len(rows)} faces unknown")


def run(args: argparse.Namespace) -> int:
    """The subcommand's handler: 0 done, 2 a bad id or DB (one line on stderr)."""
    from .. import storage
    from ..config import ConfigError, load_settings
    from ..sources import SourceError
    from ..store.health import DamagedDB, check_db
    from ..store.table import resolve_db
    from . import identities

    try:
        storage.configure(load_settings(args.config).storage)
        db = resolve_db(args.db)
        check_db(db)
        if args.rename:
            identities.rename(db, args.rename[0], args.rename[1])
            print(f"{args.rename[0]}: named {args.rename[1]!r}")
        elif args.merge:
            moved = identities.merge(db, *args.merge)
            print(f"{args.merge[1]} merged into {args.merge[0]}: {moved} faces moved")
        elif args.split:
            face_ids = [f.strip() for f in args.split.split(",") if f.strip()]
            new_id = identities.split(db, face_ids, args.name)
            print(f"{len(face_ids)} faces split into {new_id}")
        elif args.unknown:
            _print_unknown(identities.unknown_faces(db, args.family), args.json)
        else:
            _print_list(identities.list_identities(db, args.family), len(identities.unknown_faces(db, args.family)),
                        args.json)
    except KeyError as exc:
        print(f"raycurate: error: {exc.args[0]}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, ConfigError, SourceError, DamagedDB) as exc:
        print(f"raycurate: error: {exc}", file=sys.stderr)
        return 2
    return 0
