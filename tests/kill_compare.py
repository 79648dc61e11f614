"""The kill test's comparison (tests/test_kill.py, scripts/kill_test.py): what a DB holds, and an OUT left by
killed and resumed runs against the OUT of one uninterrupted run: rows per table, keys held by two rows, rows
lost or extra, duplicate marks, the exported set (metadata.jsonl ids, OUT/images names and bytes), the names
recorded in the ``files`` table."""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

# table -> the key that names one row: no two rows may share it
KEYS = {"images": ("id",), "frames": ("video_id", "frame_index"), "stage3": ("video_id", "frame_index"),
        "videos": ("video_id", "segment"), "videos_done": ("video_id",), "files": ("uri",), "faces": ("face_id",)}


def _table(db: str, name: str) -> Any:
    from raycurate.store.table import open_table

    try:
        return open_table(db, name)
    except FileNotFoundError:
        return None


def db_counts(db: str) -> dict[str, int]:
    """Rows per table (absent tables: 0)."""
    out = {}
    for name in KEYS:
        t = _table(db, name) if os.path.isdir(db) else None
        out[name] = 0 if t is None else t.count_rows()
    return out


def keys(db: str, name: str, extra: Sequence[str] = ()) -> list[tuple]:
    """Every row's key in table ``name`` (none when absent), followed by the ``extra`` columns."""
    t = _table(db, name) if os.path.isdir(db) else None
    if t is None:
        return []
    columns = [*KEYS[name], *extra]
    data = t.search().select(columns).limit(None).to_arrow()
    return list(zip(*(data.column(c).to_pylist() for c in columns)))


def duplicated_keys(db: str) -> dict[str, int]:
    """Per table, the keys that more than one row holds."""
    return {name: sum(1 for c in Counter(keys(db, name)).values() if c > 1) for name in KEYS}


def exported(out: str) -> tuple[list[str], dict[str, str]]:
    """The ids in OUT/metadata.jsonl, and OUT/images/ as name -> sha256 of the bytes."""
    meta = Path(out) / "metadata.jsonl"
    ids = [json.loads(line)["id"] for line in meta.read_text().splitlines() if line.strip()] if meta.exists() else []
    files = {str(p.relative_to(Path(out) / "images")): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((Path(out) / "images").rglob("*")) if p.is_file()}
    return ids, files


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def _diff(name: str, clean: Sequence, killed: Sequence, show: int = 5) -> Check:
    a, b = set(clean), set(killed)
    lost, extra = sorted(a - b, key=str), sorted(b - a, key=str)
    return Check(name, not lost and not extra, f"lost {len(lost)}, extra {len(extra)}"
                 + (f" (lost {lost[:show]}, extra {extra[:show]})" if lost or extra else ""),
                 {"lost": [list(x) if isinstance(x, tuple) else x for x in lost],
                  "extra": [list(x) if isinstance(x, tuple) else x for x in extra]})


def compare(clean_out: str, killed_out: str) -> list[Check]:
    """The killed OUT against the clean one: each check passes only when they agree (module docstring)."""
    from raycurate.ingest import names_of

    dbs = {"clean": os.path.join(clean_out, "db"), "killed": os.path.join(killed_out, "db")}
    checks = []
    counts = {k: db_counts(db) for k, db in dbs.items()}
    for name in KEYS:
        a, b = counts["clean"][name], counts["killed"][name]
        checks.append(Check(f"rows {name}", a == b, f"clean {a}, killed {b}"))
    for k, db in dbs.items():
        dup = duplicated_keys(db)
        checks.append(Check(f"duplicated keys ({k})", not any(dup.values()),
                            ", ".join(f"{n} {c}" for n, c in dup.items()), dup))
    checks.append(_diff("images ids", keys(dbs["clean"], "images"), keys(dbs["killed"], "images")))
    checks.append(_diff("frames (video_id, frame_index)", keys(dbs["clean"], "frames"), keys(dbs["killed"], "frames")))
    checks.append(_diff("faces face_id", keys(dbs["clean"], "faces"), keys(dbs["killed"], "faces")))
    for name in ("images", "frames"):   # the content each row is a duplicate of: the same groups and keepers
        marks = [{k[:-1]: k[-1] for k in keys(dbs[x], name, ["duplicate_of"])} for x in ("clean", "killed")]
        differ = sorted((k for k in marks[0] if k in marks[1] and marks[0][k] != marks[1][k]), key=str)
        checks.append(Check(f"duplicate marks ({name})", not differ,
                            f"marked clean {sum(v is not None for v in marks[0].values())}, killed "
                            f"{sum(v is not None for v in marks[1].values())}, rows whose mark differs {len(differ)}",
                            {"differing": [[list(k), marks[0][k], marks[1][k]] for k in differ]}))
    (ids_a, files_a), (ids_b, files_b) = exported(clean_out), exported(killed_out)
    check = _diff("exported ids (metadata.jsonl)", ids_a, ids_b)
    check.ok = check.ok and len(ids_a) == len(set(ids_a)) and len(ids_b) == len(set(ids_b))
    check.detail = f"clean {len(ids_a)}, killed {len(ids_b)}: " + check.detail
    checks.append(check)
    same = sorted(n for n in files_a if files_b.get(n) == files_a[n])
    other = sorted(n for n in files_a if n in files_b and files_b[n] != files_a[n])
    check = _diff("exported files (OUT/images)", list(files_a), list(files_b))
    check.ok = check.ok and not other
    check.detail = f"clean {len(files_a)}, killed {len(files_b)}, same bytes {len(same)}, other bytes " \
                   f"{len(other)}: " + check.detail
    check.data["other_bytes"] = other
    checks.append(check)
    names_a, names_b = names_of(dbs["clean"]), names_of(dbs["killed"])
    diff = sorted(k for k in set(names_a) | set(names_b) if names_a.get(k) != names_b.get(k))
    checks.append(Check("names (files table)", not diff, f"contents clean {len(names_a)}, killed {len(names_b)}, "
                        f"differing {len(diff)}", {"differing": diff}))
    return checks


def format_kill(k: Any) -> str:
    """One line of the kill table (:class:`tests.kill_runs.Kill`)."""
    rows = " ".join(f"{k.rows.get(n, 0):>6}" for n in KEYS)
    return (f"{k.n:>3} {k.kind:<6} {k.at_s:>6.1f}s  {k.outcome:<26} {str(k.rc):>4}  {rows}  "
            f"{sum(k.duplicates.values()):>4}" + (f"  {k.victim}" if k.victim else ""))


def kill_header() -> str:
    names = {"videos_done": "v_done"}
    return (f"{'#':>3} {'kill':<6} {'at':>7}  {'outcome':<26} {'exit':>4}  "
            + " ".join(f"{names.get(n, n)[:6]:>6}" for n in KEYS) + "  dupl  victim")


def as_json(**parts: Any) -> dict[str, Any]:
    """``parts`` for a JSON file: dataclasses (and lists of them) as dicts."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return asdict(v) if hasattr(v, "__dataclass_fields__") else v

    return {k: plain(v) for k, v in parts.items()}
