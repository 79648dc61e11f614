"""A DB's health: is every table's latest version readable, and going back to the last readable one.

:func:`check_db` runs before every command that opens a DB. It reads each table's newest version file
(``T.lance/_versions/*.manifest``, a few KB) and lists the table's ``data/``, ``_deletions/`` and
``_indices/`` folders: it never reads the data, so its time grows with the number of files, not of rows.
A version is *readable* when its version file parses (:mod:`raycurate.store.manifest`), every file it
references is there with the size it records, and LanceDB opens it with its schema and index list (Lance's
own decoding of the version file; no data read).

:func:`recover` makes a damaged table's newest readable version its latest again, through LanceDB's own
``restore`` (a new version equal to the old one; no data is copied or deleted). Version files that do not
parse and are newer than that version are moved aside to ``T.lance/_damaged/_versions/``: Lance reads the
newest version file before every commit, so it cannot restore while one is garbled. Invariants: nothing
under ``data/``, ``_deletions/`` or ``_indices/`` is deleted or changed; a table without a readable
version is left as it is (the line says to move its folder aside: the next run starts it again).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from .indexes import indexes
from .manifest import ManifestError, VersionFiles, parse_manifest, version_of

DAMAGED = "_damaged"   # inside T.lance: where unreadable version files are moved


class DamagedDB(Exception):
    """A DB with a table whose latest version cannot be read; the message is one line saying which table,
    which version, what is wrong, and the command that recovers it."""


@dataclass(frozen=True)
class TableHealth:
    """One table's state: ``problem`` is None when its latest version is readable. For a damaged table
    inspected with ``deep``, ``readable`` is its newest readable version (None: none is) and ``garbled`` the
    newer versions whose file does not parse."""

    table: str
    latest: int | None
    rows: int | None
    problem: str | None = None
    readable: int | None = None
    readable_rows: int | None = None
    garbled: tuple[int, ...] = ()


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` did (or, with ``dry_run``, would do) to one damaged table: ``to_version`` None
    when no version is readable; ``new_version``: the version the restore wrote (None when the readable
    version became the latest by moving the unreadable files aside, or on a dry run)."""

    table: str
    from_version: int | None
    to_version: int | None
    rows_before: int | None
    rows_after: int | None
    problem: str
    new_version: int | None = None
    moved: tuple[str, ...] = ()
    dry_run: bool = False
    folder: str = ""   # the table's folder (URI), named when it has to be moved aside


    def line(self) -> str:
        before = self.problem if self.rows_before is None else f"{self.rows_before} rows; {self.problem}"
        if self.to_version is None:
            return (f"{self.table}: no readable version (version {self.from_version}: {self.problem}); nothing "
                    f"recovered: move {self.folder or self.table + '.lance'} aside and the next run starts the table "
                    "again")
        verb = "would go" if self.dry_run else "went"
        text = (f"{self.table}: {verb} back from version {self.from_version} ({before}) to version "
                f"{self.to_version} ({self.rows_after} rows)")
        if self.new_version is not None:
            text += f", written as version {self.new_version}"
        if self.moved:
            text += (f"; {'would move' if self.dry_run else 'moved'} {len(self.moved)} unreadable version file(s) "
                     f"to {self.table}.lance/{DAMAGED}/_versions/")
        return text + ": rows added after it are analysed again by the next run"


def check_db(db_uri: str) -> None:
    """Raise :class:`DamagedDB` (one line) when a table of the DB at ``db_uri`` cannot be read at its latest
    version. A DB that does not exist (yet) has no table: it passes."""
    damaged = [h for h in inspect_db(db_uri, deep=True) if h.problem]
    if damaged:
        raise DamagedDB(_message(db_uri, damaged[0], len(damaged) - 1))


def inspect_db(db_uri: str, *, deep: bool = False) -> list[TableHealth]:
    """Every table of the DB, in name order; ``deep``: for a damaged one, find its newest readable version
    too (reads older version files, only then)."""
    fs, root = _filesystem(db_uri)
    try:
        names = _table_names(fs, root)
        return [_inspect(_Table(db_uri, fs, root, name), deep) for name in names]
    except OSError as exc:
        from ..storage import SourceError, describe_error

        if "://" not in db_uri:
            raise DamagedDB(f"the DB at {db_uri} cannot be read: {exc}") from None
        raise SourceError(describe_error(db_uri, exc)) from None


def recover(db_uri: str, *, dry_run: bool = False) -> list[Recovery]:
    """Bring every damaged table of the DB at ``db_uri`` back to its newest readable version (see the module
    docstring); one :class:`Recovery` per damaged table, none for a healthy DB. A dry run changes nothing and
    names the version the version files point to (Lance itself cannot open an older version while the
    newest file is garbled: that one is checked once the garbled file is aside)."""
    fs, root = _filesystem(db_uri)
    done = []
    for health in inspect_db(db_uri, deep=True):
        if not health.problem:
            continue
        table = _Table(db_uri, fs, root, health.table)
        names = table.versions()
        result = Recovery(table=health.table, from_version=health.latest, to_version=health.readable,
                          rows_before=health.rows, rows_after=health.readable_rows, problem=health.problem,
                          moved=tuple(f"_versions/{names[v]}" for v in health.garbled), dry_run=dry_run,
                          folder=_join(db_uri, f"{health.table}.lance"))
        if health.readable is not None and not dry_run:
            result = _recover_table(db_uri, fs, root, health, result)
        done.append(result)
    return done


# -- one table ------------------------------------------------------------------------------------

class _Table:
    """A table folder: its version files and, listed once per top folder, the files under it."""

    def __init__(self, db_uri: str, fs: pafs.FileSystem, root: str, name: str) -> None:
        self.db_uri, self.fs, self.root, self.name = db_uri, fs, f"{root}/{name}.lance", name
        self._listed: dict[str, dict[str, int]] = {}
        self._db: Any = None

    def lance_error(self, version: int | None) -> str | None:
        """Why LanceDB cannot open this table at ``version`` (None: the latest) with its schema and index
        list (the manifest and index section, decoded by Lance itself; no data read); None when it can."""
        try:
            if self._db is None:
                from .table import _connect

                self._db = _connect(self.db_uri)
            handle = self._db.open_table(self.name, version=version)
            handle.schema, indexes(handle)   # noqa: B018 (decoded lazily)
        except Exception as exc:   # lance raises RuntimeError / OSError / ValueError with its own text
            return _first_line(exc)
        return None

    def versions(self) -> dict[int, str]:
        infos = self.fs.get_file_info(pafs.FileSelector(f"{self.root}/_versions", allow_not_found=True))
        found = {version_of(i.base_name): i.base_name for i in infos if i.type == pafs.FileType.File}
        found.pop(None, None)
        return found  # type: ignore[return-value]

    def read(self, version: int, names: dict[int, str]) -> VersionFiles:
        with self.fs.open_input_stream(f"{self.root}/_versions/{names[version]}") as f:
            files = parse_manifest(f.read())
        if files.version != version:
            raise ManifestError(f"it says it is version {files.version}")
        return files

    def problem(self, files: VersionFiles) -> str | None:
        """What is wrong with the files ``files`` references (None: all there, with their sizes)."""
        wrong = []
        for path, size in files.files.items():
            got = self._present(path).get(path)
            if got is None:
                wrong.append(f"{_kind(path)} {path} is missing")
            elif size and got != size:
                wrong.append(f"{_kind(path)} {path} has {got} bytes, the version records {size}")
        for folder in files.folders:
            if not any(p.startswith(folder + "/") for p in self._present(folder)):
                wrong.append(f"index folder {folder} is missing")
        if not wrong:
            return None
        return wrong[0] + (f" (and {len(wrong) - 1} more files)" if len(wrong) > 1 else "")

    def _present(self, path: str) -> dict[str, int]:
        top = path.split("/", 1)[0]
        if top not in self._listed:
            infos = self.fs.get_file_info(pafs.FileSelector(f"{self.root}/{top}", recursive=True,
                                                             allow_not_found=True))
            cut = len(self.root) + 1
            self._listed[top] = {i.path[cut:]: i.size for i in infos if i.type == pafs.FileType.File}
        return self._listed[top]


def _inspect(table: _Table, deep: bool) -> TableHealth:
    names = table.versions()
    if not names:
        return TableHealth(table.name, None, None, problem="it has no version file (_versions/ is empty)")
    latest = max(names)
    rows, problem = _state(table, latest, names, lance=True)
    if problem is None:
        return TableHealth(table.name, latest, rows)
    if not deep:
        return TableHealth(table.name, latest, rows, problem=problem)
    garbled = [latest] if rows is None else []
    for version in sorted(names, reverse=True)[1:]:
        # Lance reads the newest version file even to open an older version: with that one garbled, an
        # older version is judged by its version file and its files alone
        older_rows, older_problem = _state(table, version, names, lance=rows is not None)
        if older_problem is None:
            return TableHealth(table.name, latest, rows, problem, version, older_rows, tuple(garbled))
        if older_rows is None:
            garbled.append(version)
    return TableHealth(table.name, latest, rows, problem, garbled=tuple(garbled))


def _state(table: _Table, version: int, names: dict[int, str], *, lance: bool) -> tuple[int | None, str | None]:
    """(rows, problem) of one version: rows None when its file does not parse (here, or in Lance when
    ``lance``)."""
    try:
        files = table.read(version, names)
    except ManifestError as exc:
        if lance and table.lance_error(None if version == max(names) else version) is None:
            return None, None   # Lance reads it: a version file newer than this parser knows is not damage
        return None, f"its version file _versions/{names[version]} is unreadable ({exc})"
    except FileNotFoundError:
        return None, f"its version file _versions/{names[version]} is gone"
    problem = table.problem(files)
    if problem is None and lance:
        error = table.lance_error(None if version == max(names) else version)
        if error:
            return None, f"LanceDB cannot open it ({error})"
    return files.rows, problem


MAX_STEPS = 8   # rounds of "move garbled files aside, restore" per table before giving up


def _recover_table(db_uri: str, fs: pafs.FileSystem, root: str, health: TableHealth, first: Recovery) -> Recovery:
    """Move the unreadable version files newer than the readable version aside, restore that version when
    it is not the latest, and check again (a version that only Lance finds unreadable shows then: the next
    round goes further back); the table must end readable."""
    moved: list[str] = []
    new_version = None
    for _ in range(MAX_STEPS):
        table = _Table(db_uri, fs, root, health.table)
        names = table.versions()
        if health.garbled:
            fs.create_dir(f"{table.root}/{DAMAGED}/_versions", recursive=True)
        for version in health.garbled:
            fs.move(f"{table.root}/_versions/{names[version]}", f"{table.root}/{DAMAGED}/_versions/{names[version]}")
            moved.append(f"_versions/{names[version]}")
        target = health
        if max(table.versions()) != health.readable:
            from .table import _connect

            handle = _connect(db_uri).open_table(table.name, version=health.readable)
            handle.restore()
            new_version = int(handle.version)
        health = _inspect(_Table(db_uri, fs, root, health.table), deep=True)
        if not health.problem:
            return Recovery(**{**first.__dict__, "to_version": target.readable, "rows_after": target.readable_rows,
                               "new_version": new_version, "moved": tuple(moved)})
        if health.readable is None:
            break
    return Recovery(**{**first.__dict__, "to_version": None, "rows_after": None, "moved": tuple(moved),
                       "problem": f"{first.problem}; after going back: version {health.latest}: {health.problem}"})


# -- helpers --------------------------------------------------------------------------------------

def _filesystem(db_uri: str) -> tuple[pafs.FileSystem, str]:
    from ..storage import filesystem

    fs, root = filesystem(db_uri)
    return fs, root.rstrip("/")


def _table_names(fs: pafs.FileSystem, root: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return sorted(i.base_name[:-len(".lance")] for i in infos
                  if i.type == pafs.FileType.Directory and i.base_name.endswith(".lance"))


def _join(db_uri: str, name: str) -> str:
    from ..storage import join

    return join(db_uri, name)


def _first_line(exc: BaseException) -> str:
    """Lance's message without its prefixes and source locations."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r",\s*/\S+\.rs:\d+:\d+", "", text)
    return re.sub(r"^(lance error: )?(LanceError\(\w+\): )?", "", text).strip()


def _kind(path: str) -> str:
    return {"data": "data file", "_deletions": "deletion file", "_indices": "index file"}.get(
        path.split("/", 1)[0], "file")


def _message(db_uri: str, health: TableHealth, others: int) -> str:
    at = f"version {health.latest}" if health.latest is not None else "its folder"
    text = f"table {health.table} of the DB at {db_uri} is damaged: {at}: {health.problem}; "
    if health.readable is None:
        text += (f"no older version is readable: move {_join(db_uri, health.table + '.lance')} aside and the next "
                 "run starts the table again")
    else:
        text += (f"run `raycurate db recover {shlex.quote(db_uri)}`: it goes back to version {health.readable} of "
                 f"table {health.table}, the last readable one ({health.readable_rows} rows): rows added after it "
                 "are analysed again by the next run")
    if others:
        text += f" ({others} more damaged table{'s' if others > 1 else ''}: the same command recovers them)"
    return text


__all__ = ["DAMAGED", "DamagedDB", "Recovery", "TableHealth", "check_db", "inspect_db", "recover"]
