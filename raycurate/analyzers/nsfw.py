"""NSFW detection with NudeNet's shipped detector (``nudenet/320n.onnx``).

NudeNet returns boxes of body-part classes; raycurate keeps every detection,
turns classes at or above ``threshold`` into labels, and sums the explicit ones
into one score: the highest confidence among the *exposed* explicit classes.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .base import Analyzer, package_version
from .onnx import providers_for, session_options

EXPLICIT_CLASSES = frozenset({
    "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "ANUS_EXPOSED", "BUTTOCKS_EXPOSED",
})

DETECTION_TYPE = pa.struct([
    pa.field("label", pa.string()),
    pa.field("score", pa.float32()),
    pa.field("box", pa.list_(pa.float32(), 4)),  # x1, y1, x2, y2 as fractions of width/height
])


MODEL_ID = "nudenet-320n"
INPUT_SIDE = 320   # the 320n model's square input (NudeDetector's inference_resolution)
CPU_BATCH = 2      # images per run on the CPU (see analyze)


class NsfwAnalyzer(Analyzer):
    name = "nsfw"
    size_free = True
    model_id = MODEL_ID
    supports_gpu = True

    def __init__(self, *, threshold: float = 0.5, intra_op_threads: int = 1, batch_size: int = 16,
                 num_cpus: float = 0.2, device: str = "cpu") -> None:
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.threshold = threshold
        self.intra_op_threads = intra_op_threads
        self._detector = None

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        return [
            pa.field("nsfw_score", pa.float32()),
            pa.field("nsfw_labels", pa.list_(pa.string())),
            pa.field("nsfw_detections", pa.list_(DETECTION_TYPE)),
        ]

    def load(self) -> None:
        import onnxruntime as ort
        from nudenet import NudeDetector

        from ..models import models_dir, require

        # the file inside the nudenet wheel, checked against its known sha256
        model_path = str(require(MODEL_ID, models_dir()) / "320n.onnx")
        # NudeDetector's constructor builds a session with onnxruntime's defaults (all cores, the CPU arena,
        # default providers), which would only be replaced: set up its fields here instead, from a session
        # made with the threads and device asked for.
        detector = NudeDetector.__new__(NudeDetector)
        options = session_options(self.intra_op_threads, self.resources.device)
        providers = providers_for(self.resources.device, "NSFW analyser")
        detector.onnx_session = ort.InferenceSession(model_path, sess_options=options, providers=providers)
        detector.input_width = detector.input_height = INPUT_SIDE
        detector.input_name = detector.onnx_session.get_inputs()[0].name
        self._detector = detector

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        # 12 MB of weights; onnxruntime's CUDA context and arena dominate. 320x320 inputs.
        return {"gpu_model_mb": 400.0, "gpu_item_mb": 25.0}

    def model_version(self) -> str:
        return package_version("nudenet")

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        assert self._detector is not None
        # NudeNet's own file path reads BGR with cv2.imread; give it the same.
        bgr = [np.ascontiguousarray(img[:, :, ::-1]) for img in images]
        # on the CPU in runs of CPU_BATCH: 16 at once took 29 ms an image, 2 at once 24 (one thread)
        gpu = self.resources.device.startswith("cuda")
        results = self._detector.detect_batch(bgr, batch_size=len(bgr) if gpu else CPU_BATCH)
        out = []
        for img, dets in zip(images, results):
            h, w = img.shape[:2]
            detections = [{
                "label": d["class"],
                "score": float(d["score"]),
                "box": [d["box"][0] / w, d["box"][1] / h, (d["box"][0] + d["box"][2]) / w,
                        (d["box"][1] + d["box"][3]) / h],
            } for d in dets]
            labels = sorted({d["label"] for d in detections if d["score"] >= self.threshold})
            explicit = [d["score"] for d in detections if d["label"] in EXPLICIT_CLASSES]
            out.append({
                "nsfw_score": max(explicit) if explicit else 0.0,
                "nsfw_labels": labels,
                "nsfw_detections": detections,
            })
        return out
