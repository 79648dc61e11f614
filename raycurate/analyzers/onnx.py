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


def session_options(threads: int) -> Any:
    """Session options: ``threads`` intra-op threads, one inter-op thread, warnings off (errors still raise)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def provider_label(providers: list[str]) -> str:
    """``cpu`` / ``cuda``: the provider that serves first, for version strings."""
    return providers[0].replace("ExecutionProvider", "").lower()
