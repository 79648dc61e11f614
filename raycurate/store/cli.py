"""``raycurate db check DB`` / ``raycurate db recover DB [--dry-run]``: is every table of a DB readable, and
going back to the last readable version of a damaged one (:mod:`raycurate.store.health`). Registered by
:mod:`raycurate.cli`."""
from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from ..config import add_config_options

    p = sub.add_parser("db", help="check a DB's tables, or bring a damaged table back to its last readable "
                       "version", description="check: exit 0 when every table reads, 2 (one line) when one is "
                       "damaged; recover: make each damaged table's newest readable version its latest again "
                       "(LanceDB restore: a new version equal to it; garbled version files are moved to "
                       "T.lance/_damaged/; no data file is deleted); rows added after it are analysed again by "
                       "the next run")
    p.add_argument("action", choices=("check", "recover"))
    p.add_argument("db", metavar="DB", help="LanceDB directory (OUT/db, or OUT) or s3:// / gs:// URI")
    p.add_argument("--dry-run", action="store_true", help="recover: print what it would do, change nothing")
    add_config_options(p, uses=" (storage: for a DB in a bucket)", example="storage.s3.endpoint_url=http://minio:9000")
    return p


def run(args: argparse.Namespace) -> int:
    """The subcommand's handler: 0 healthy / recovered, 2 damaged (check) or not recoverable (recover), or a
    bad DB argument; one line on stderr each."""
    from .. import storage
    from ..config import ConfigError, load_settings, parse_set
    from ..sources import SourceError
    from .health import DamagedDB, check_db, inspect_db, recover
    from .table import resolve_db

    try:
        storage.configure(load_settings(args.config, [parse_set(item) for item in args.overrides]).storage)
        db = resolve_db(args.db)
        if args.action == "check":
            check_db(db)
            tables = inspect_db(db)
            print(f"{db}: {len(tables)} tables readable"
                  + (": " + ", ".join(f"{h.table} v{h.latest} ({h.rows} rows)" for h in tables) if tables else ""))
            return 0
        done = recover(db, dry_run=args.dry_run)
    except (DamagedDB, ValueError, FileNotFoundError, ConfigError, SourceError) as exc:
        print(f"raycurate: error: {exc}", file=sys.stderr)
        return 2
    if not done:
        print(f"{db}: nothing to recover, every table is readable")
    failed = False
    for result in done:
        if result.to_version is None:
            failed = True
            print(f"raycurate: error: {result.line()}", file=sys.stderr)
        else:
            print(result.line())
    return 2 if failed else 0
