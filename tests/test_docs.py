"""The documentation: the site builds with ``mkdocs build --strict`` (a broken link, a missing anchor or a page
left out of the navigation fails it: mkdocs.yml's ``validation``), its generated reference pages hold what the
code declares, and README.md stays short with every relative link pointing at a file that exists."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raycurate.cli import parser
from raycurate.cli_docs import subcommands
from raycurate.models.registry import REGISTRY
from raycurate.schemas import images_schema
from raycurate.settings import Settings
from raycurate.settings.schema import keys

ROOT = Path(__file__).resolve().parents[1]
README_MAX_BYTES = 12_000


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}   # two upstream notices
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _text(page: Path) -> str:
    return re.sub(r"<[^>]+>", " ", page.read_text()).replace("&lt;", "<").replace("&gt;", ">")


def test_the_site_builds_strict_with_every_nav_page(site):
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert len(nav) >= 25
    for page in nav:
        built = site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
        assert built.is_file(), page


def test_generated_reference_pages_hold_what_the_code_declares(site):
    settings = _text(site / "reference/settings/index.html")
    assert [k.path for k in keys(Settings) if k.path not in settings] == []
    cli = _text(site / "reference/cli/index.html")
    commands = subcommands(parser())
    assert [f"raycurate {name}" for name in commands if f"raycurate {name}" not in cli] == []
    usages = " ".join(sub.format_usage() for _, sub in commands.values())
    options = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usages)) - {"-h"}   # --help is left out of the page
    assert {"--person", "--strict-models", "--identity", "--max-upload-mb", "-k"} <= options
    cells = (site / "reference/cli/index.html").read_text()   # each option opens a table cell: <td><code>--x ...
    assert sorted(o for o in options if f"<td><code>{o}" not in cells) == []
    tables = _text(site / "reference/tables/index.html")
    assert [c for c in images_schema().names if c not in tables] == []
    models = _text(site / "reference/models/index.html")
    assert [m for m in REGISTRY if m not in models] == []


def test_readme_is_short():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/"


def test_readme_relative_links_point_at_files():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:|#", t)]
    assert len(local) >= 10
    assert [t for t in local if not (ROOT / t).exists()] == []
