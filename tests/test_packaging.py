"""The package carries its configuration: a wheel built from the repository installs apart from the checkout
and runs; the top-level configs/ (the copy users read and edit) equals the packaged one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import IMAGES

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "raycurate" / "configs"
TOP = ROOT / "configs"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_top_level_configs_equal_the_packaged_ones():
    packaged, top = _files(PACKAGED), _files(TOP)
    assert set(packaged) == set(top), f"configs/ and raycurate/configs/ hold different files: " \
                                      f"{sorted(set(packaged) ^ set(top))}"
    differ = [name for name in packaged if packaged[name] != top[name]]
    assert not differ, f"configs/ differs from raycurate/configs/ (the packaged source): {differ}; copy it over"


@pytest.mark.slow   # a wheel built, installed and run (18 s)
def test_a_wheel_installed_apart_from_the_checkout_runs(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True, text=True)
    (wheel,) = wheels.glob("raycurate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("default.yaml", "prompts.yaml", "captions.yaml", "presets/youtube.yaml", "profiles/fast-cpu.yaml"):
        assert f"raycurate/configs/{name}" in names, name
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)

    inp = tmp_path / "in"
    inp.mkdir()
    for src in (IMAGES / "faces" / "skimage_astronaut.png", IMAGES / "face_recognition" / "obama.jpg",
                IMAGES / "negatives" / "grass.jpg"):
        (inp / src.name).write_bytes(src.read_bytes())
    elsewhere = tmp_path / "elsewhere"   # not the checkout: nothing there to import or read configs from
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import raycurate, raycurate.config as c; "
                            "print(raycurate.__file__); print(c.DEFAULT_CONFIG)"],
                           cwd=elsewhere, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert all(p.startswith(str(target)) for p in where), where
    run = subprocess.run([sys.executable, "-m", "raycurate.cli", "run", str(inp), "--out", str(tmp_path / "out"),
                          "--set", "ray.num_cpus=2", "--set", "dedup.enabled=false"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=400)
    print(run.stdout[-2000:], run.stderr[-3000:])
    assert run.returncode == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["rows_written"] == 3 and manifest["counts"]["kept"] == 2
    assert (tmp_path / "out" / "metadata.jsonl").read_text().count("\n") == 2
