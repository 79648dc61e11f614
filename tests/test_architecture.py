"""The package's import rules (README "Architecture"): who may import what, read from the source."""
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


# -- one form of the settings (README "Settings"): the mapping is read where it is made, typed settings below --

# the mapping is made, checked and typed here (config.py, with the schema it hands the mapping to), and cli.py
# reads it for --set and for what a command prints
RAW_READERS = ("raycurate/config.py", "raycurate/cli.py", "raycurate/settings/")
# where a command starts: the only modules that build typed settings (typed(), or the loaders that call it),
# once per command, and hand them down
COMMAND_STARTS = ("raycurate/config.py", "raycurate/cli.py", "raycurate/store/cli.py", "raycurate/people/cli.py",
                  "raycurate/ui/params.py", "raycurate/settings/")
LOADERS = {"typed", "load_config", "load_settings", "recorded_settings", "settings_of"}
# search is being rebuilt as one package (issue 23, part 4) in another branch; until it lands, its two modules
# still load the default config themselves. The branch that lands it removes them from here.
SEARCH_REWORK = ("raycurate/search.py", "raycurate/face_search.py")
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
    readers = {_name(p): r for p in _files() if not _name(p).startswith(RAW_READERS + SEARCH_REWORK)
               and (r := _raw_reads(p))}
    assert not readers, readers
    assert _raw_reads(PKG / "config.py") and _raw_reads(PKG / "cli.py")   # the check sees the reads it allows


def test_typed_settings_are_built_only_where_a_command_starts():
    calls = {_name(p): c for p in _files() if not _name(p).startswith(COMMAND_STARTS + SEARCH_REWORK)
             and (c := _loader_calls(p))}
    assert not calls, calls
    assert _loader_calls(PKG / "cli.py") and _loader_calls(PKG / "ui" / "params.py")
