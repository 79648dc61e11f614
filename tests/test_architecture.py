"""The package's import rules (docs/contributing.md, docs/concepts/architecture.md): who may import what, read
from the source."""
import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "raycurate"


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(PKG.parent).parts[:-1])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _files(under: str = "") -> list[Path]:
    return sorted((PKG / under).rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(PKG.parent))


def test_only_the_engine_imports_ray():
    importers = [_name(p) for p in _files() if any(m == "ray" or m.startswith("ray.") for m in _imports(p))]
    assert importers and all(p.startswith("raycurate/engine/") for p in importers), importers


def test_settings_import_nothing_of_raycurate():
    for p in _files("settings"):
        bad = [m for m in _imports(p) if m.startswith("raycurate") and not m.startswith("raycurate.settings")]
        assert not bad, (_name(p), bad)


@pytest.mark.parametrize("layer", ["analyzers", "video", "store", "export", "settings", "people"])
def test_lower_layers_do_not_reach_up(layer):
    """Analysers, the video path's plain parts, the store and the export writer know nothing of the engine,
    the run, the CLI or the UI."""
    above = ("raycurate.engine", "raycurate.run", "raycurate.cli", "raycurate.ui")
    for p in _files(layer):
        bad = [m for m in _imports(p) if m.startswith(above)]
        assert not bad, (_name(p), bad)


def test_only_config_reads_yaml():
    readers = [_name(p) for p in _files() if "yaml.safe_load" in p.read_text() or "yaml.load(" in p.read_text()]
    assert readers == ["raycurate/config.py"], readers   # others may write YAML (a job's config), never read it


def test_modules_stay_small():
    big = {_name(p): n for p in _files() if (n := len(p.read_text().splitlines())) > 420}
    assert not big, big


def test_functions_stay_short():
    long = []
    for p in _files():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 90:
                long.append(f"{_name(p)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


# What the store may import of raycurate: its own modules, where a DB lives (storage, sources) and the settings
# its ``db`` command reads. It composes its tables from the column declarations it is given
# (raycurate.schemas gathers the analysers' and the stages' declarations and hands them over).
STORE_MAY_IMPORT = ("raycurate.store", "raycurate.storage", "raycurate.sources", "raycurate.config",
                    "raycurate.settings")


def test_the_store_imports_nothing_of_the_analysers():
    """No module under raycurate/store imports the analysers, the stages or the engine (inside functions
    included): storage apart from compute."""
    for p in _files("store"):
        ours = [m for m in _imports(p) if m.startswith("raycurate.")]   # ``from .. import x``: raycurate.x
        bad = [m for m in ours if not m.startswith(STORE_MAY_IMPORT)]
        assert not bad, (_name(p), bad)


def test_importing_the_store_loads_no_analyser():
    """The same rule at run time: ``import raycurate.store`` (schemas and tables) loads no analyser and no stage."""
    import subprocess
    import sys

    code = ("import sys, raycurate.store, raycurate.store.people_schema, raycurate.store.dedup; "
            "print(sorted(m for m in sys.modules if m.startswith(('raycurate.analyzers', 'raycurate.stages'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PKG.parent).stdout.strip()
    assert out == "[]", out


def test_the_schemas_module_sits_above_analysers_stages_and_store():
    """raycurate.schemas imports the analysers, the stages and the store: none of them imports it back."""
    below = [*_files("analyzers"), *_files("store"), PKG / "stages.py"]
    bad = [_name(p) for p in below if any(m == "raycurate.schemas" or m.startswith("raycurate.schemas.")
                                          for m in _imports(p))]
    assert not bad, bad


def _module_of(name: str, known: set[str]) -> str | None:
    """The longest module of ``known`` that ``name`` (a module, or a name imported from one) is or lies in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` (module -> the modules it imports), or [] when there is none."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_search_modules_import_one_another_without_a_circle():
    """Every import counts, those inside functions too (search.py and face_search.py once imported each other
    that way). A module importing the package itself (``from . import x``, ``from raycurate.search import x``)
    closes a circle through ``__init__``, which imports every module."""
    files = _files("search")
    names = {".".join(p.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): p for p in files}
    assert {"raycurate.search", "raycurate.search.images", "raycurate.search.faces",
            "raycurate.search.index"} <= set(names)
    known = set(names)
    graph = {name: {m for imp in _imports(p) if (m := _module_of(imp, known)) and m != name}
             for name, p in names.items()}
    assert not _cycle(graph), " -> ".join(_cycle(graph))


def _private_uses(path: Path) -> list[str]:
    """``obj._name`` where ``obj`` is not ``self`` / ``cls`` (another object's private member), and private
    names imported from another module."""
    found, where = [], _name(path) if path.is_relative_to(PKG) else path.name
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{where}:{node.lineno} imports {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_private_use_finder_sees_a_call_across_classes(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from .x import _helper\nclass A:\n    def f(self):\n        self._ok()\n"
                     "        return self.cur._config()\n")
    assert [u.split(" ", 1)[1] for u in _private_uses(probe)] == ["imports _helper", "self.cur._config"]


def test_search_calls_no_private_member_of_another_object():
    """FaceSearch once called Curation's private methods: a shared helper is a public function of a lower
    module instead, and what a class needs is handed to it."""
    used = [u for p in _files("search") for u in _private_uses(p)]
    assert not used, used
    assert not [u for p in _files() for u in _private_uses(p) if "search" in u.split(" ", 1)[1]]


def test_only_store_indexes_asks_lancedb_for_indexes():
    """Index introspection (``list_indices``, ``index_stats``) is written once, in raycurate/store/indexes.py;
    search, dedup, maintenance and the health check read it there."""
    scripts = sorted((PKG.parent / "scripts").glob("*.py"))
    askers = sorted({_name(p) if p.is_relative_to(PKG) else str(p.relative_to(PKG.parent))
                     for p in _files() + scripts for node in ast.walk(ast.parse(p.read_text()))
                     if isinstance(node, ast.Attribute) and node.attr in ("list_indices", "index_stats")})
    assert askers == ["raycurate/store/indexes.py"], askers


def test_store_does_not_import_search():
    """Search reads the store (tables, indexes); the store knows nothing of search."""
    for p in _files("store"):
        bad = [m for m in _imports(p) if m.startswith("raycurate.search")]
        assert not bad, (_name(p), bad)


# -- one form of the settings (docs/guides/configuration.md): the mapping is read where it is made, typed below --

# the mapping is made, checked and typed here (config.py, with the schema it hands the mapping to), and cli.py
# reads it for --set and for what a command prints
RAW_READERS = ("raycurate/config.py", "raycurate/cli.py", "raycurate/settings/")
# where a command starts: the only modules that build typed settings (typed(), or the loaders that call it),
# once per command, and hand them down
COMMAND_STARTS = ("raycurate/config.py", "raycurate/cli.py", "raycurate/__init__.py", "raycurate/store/cli.py",
                  "raycurate/people/cli.py", "raycurate/ui/params.py", "raycurate/settings/")
LOADERS = {"typed", "load_config", "load_settings", "recorded_settings", "settings_of"}
RAW_NAME = re.compile(r"^(cfg|config)$|^cfg_|_cfg$|_config$")


def _callee(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _raw_reads(path: Path) -> list[str]:
    """Where a module reads a config mapping: ``cfg[...]``, ``x_cfg.get(...)``, ``load_config()[...]``, the
    manifest's recorded ``["config"]``, or takes one as a parameter named so."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [f"{node.lineno}: parameter {a.arg}" for a in node.args.args + node.args.kwonlyargs
                      if RAW_NAME.search(a.arg)]
            continue
        if isinstance(node, ast.Subscript):
            obj, key = node.value, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            obj, key = node.func.value, (node.args[0] if node.args else None)
        else:
            continue
        name = (obj.id if isinstance(obj, ast.Name) else obj.attr if isinstance(obj, ast.Attribute)
                else _callee(obj) if isinstance(obj, ast.Call) else None)
        if name and (RAW_NAME.search(name) or name in LOADERS):
            found.append(f"{node.lineno}: {ast.unparse(node)[:60]}")
        elif isinstance(key, ast.Constant) and key.value == "config":
            found.append(f"{node.lineno}: {ast.unparse(node)[:60]} (the manifest's recorded config)")
    return found


def _loader_calls(path: Path) -> list[str]:
    return [f"{node.lineno}: {_callee(node)}()" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and _callee(node) in LOADERS]


def test_only_config_and_the_cli_read_the_config_mapping():
    """Below config.py and cli.py every module takes the typed settings (raycurate/settings/): no
    ``cfg[...]`` / ``cfg.get(...)``, whatever the mapping is called, and no parameter that carries one."""
    readers = {_name(p): r for p in _files() if not _name(p).startswith(RAW_READERS)
               and (r := _raw_reads(p))}
    assert not readers, readers
    assert _raw_reads(PKG / "config.py") and _raw_reads(PKG / "cli.py")   # the check sees the reads it allows


def test_typed_settings_are_built_only_where_a_command_starts():
    calls = {_name(p): c for p in _files() if not _name(p).startswith(COMMAND_STARTS)
             and (c := _loader_calls(p))}
    assert not calls, calls
    assert _loader_calls(PKG / "cli.py") and _loader_calls(PKG / "ui" / "params.py")
