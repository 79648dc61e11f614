"""onnxruntime sessions the way every ONNX model of raycurate wants them: the provider chosen from the
device (CUDA when asked for and present, else the CPU with a loud warning), bounded threads, quiet logs."""
from __future__ import annotations

import warnings
from typing import Any


def providers_for(device: str, who: str) -> list[str]:
    """onnxruntime providers for ``device`` (``cpu`` or ``cuda[:n]``); ``who`` names the model in the
    warning printed when cuda is asked for and this onnxruntime cannot use it."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            warnings.warn(f"{who}: device is cuda but this onnxruntime has no CUDAExecutionProvider (install "
                          "onnxruntime-gpu with a matching CUDA): RUNNING ON THE CPU", RuntimeWarning, stacklevel=3)
    return providers


def session_options(threads: int | None, device: str = "cpu") -> Any:
    """Session options: ``threads`` intra-op threads (None: onnxruntime's default, one per core) and one
    inter-op thread, warnings off (errors still raise). On the CPU without onnxruntime's memory arena and
    memory patterns: the arena keeps the largest activations a session ever needed for the life of the
    process, and a pattern (the activations' layout, planned for each input shape) keeps more for every new
    shape, for a small gain in speed; without them a worker gives the memory back after each run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not device.startswith("cuda"):
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
    return options


def provider_label(providers: list[str]) -> str:
    """``cpu`` / ``cuda``: the provider that serves first, for version strings."""
    return providers[0].replace("ExecutionProvider", "").lower()
