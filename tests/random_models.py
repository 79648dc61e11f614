"""Real model architectures with random weights, built by the tests themselves.

Never shipped, never used by a real run: they only prove that raycurate drives
the libraries' real loading and inference code end to end, offline.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class TinySCRFD(nn.Module):
    """SCRFD's ONNX signature: input ``input.1`` (B x 3 x H x W); for strides 8, 16, 32 (two anchors
    each) score maps (B, N, 1), box distances (B, N, 4) and keypoints (B, N, 10), in that order."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.heads = nn.ModuleList(nn.Conv2d(3, 2 * 15, kernel_size=s, stride=s) for s in (8, 16, 32))

    def forward(self, x: torch.Tensor):
        scores, boxes, kps = [], [], []
        for head in self.heads:
            y = head(x)
            y = y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, 15)
            scores.append(torch.sigmoid(y[..., :1] + 2.0))   # confident enough to give detections
            boxes.append(torch.relu(y[..., 1:5]) + 1.0)        # positive distances, in stride units
            kps.append(y[..., 5:15])
        return (*scores, *boxes, *kps)


class TinyArcFace(nn.Module):
    """ArcFace's signature: B x 3 x 112 x 112 -> B x 512."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 8, 8, stride=8)   # 112 -> 14
        self.fc = nn.Linear(8 * 7 * 7, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.avg_pool2d(torch.relu(self.conv(x)), 2)   # 14 -> 7
        return self.fc(y.flatten(1))


class TinyHead(nn.Module):
    """A square input of ``side`` pixels -> ``outputs`` numbers (landmark and gender/age signatures)."""

    def __init__(self, side: int, outputs: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.side = side
        self.conv = nn.Conv2d(3, 4, 8, stride=8)
        self.fc = nn.Linear(4 * (side // 16) ** 2, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.avg_pool2d(torch.relu(self.conv(x)), 2)
        return torch.tanh(self.fc(y.flatten(1)))


def _export(module: nn.Module, example: torch.Tensor, path: Path, dynamic: dict) -> None:
    torch.onnx.export(module.eval(), example, str(path), input_names=["input.1"], opset_version=17,
                      dynamic_axes=dynamic, dynamo=False)


def write_insightface_pack(folder: Path) -> Path:
    """A buffalo_l-shaped folder (detector + recognition ONNX) with random weights."""
    folder.mkdir(parents=True, exist_ok=True)
    _export(TinySCRFD(), torch.zeros(1, 3, 640, 640), folder / "det_10g.onnx",
            {"input.1": {0: "batch", 2: "height", 3: "width"}})
    _export(TinyArcFace(), torch.zeros(1, 3, 112, 112), folder / "w600k_r50.onnx", {"input.1": {0: "batch"}})
    # 2d106det: 192 -> 212 (106 points), 1k3d68: 192 -> 3309 (68 x 3 + pose), genderage: 96 -> 3
    for name, side, outputs, seed in (("2d106det.onnx", 192, 212, 2), ("1k3d68.onnx", 192, 3309, 3),
                                      ("genderage.onnx", 96, 3, 4)):
        _export(TinyHead(side, outputs, seed), torch.zeros(1, 3, side, side), folder / name,
                {"input.1": {0: "batch"}})
    return folder


def write_deepface_emotion(root: Path) -> Path:
    """DeepFace's own emotion architecture (pytorch backend) with random weights, saved where
    DeepFace looks for it under ``$DEEPFACE_HOME``."""
    from deepface.models.demography.pytorch.Emotion import EmotionModel

    torch.manual_seed(5)
    path = root / "deepface" / ".deepface" / "weights" / "facial_expression_model_weights.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(EmotionModel().state_dict(), path)
    return path


def write_yolo_pose(root: Path) -> Path:
    """An ultralytics YOLOv8n-pose network built from its yaml (random weights), saved as a checkpoint."""
    from ultralytics import YOLO

    path = root / "ultralytics" / "yolo11n-pose.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(6)
    YOLO("yolov8n-pose.yaml").save(str(path))
    return path


TINY_CLIP = {"embed_dim": 512,
             "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


def write_tiny_clip(root: Path, model_id: str = "test-tiny-clip", seed: int = 7) -> str:
    """A tiny open_clip architecture (registered from the models directory) with random weights,
    declared in ``raycurate-models.extra.json``; returns its model id."""
    import json

    import open_clip

    configs = root / "open_clip" / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "rc-tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(str(configs))
    torch.manual_seed(seed)
    model = open_clip.create_model("rc-tiny-clip", pretrained=None)
    weights = root / "open_clip" / "rc-tiny-clip" / f"{model_id}.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), weights)
    add_extra(root, {"id": model_id, "library": "open_clip", "analyzer": "clip", "source": "built by the tests",
                     "licence": "test only", "arch": "rc-tiny-clip",
                     "files": [{"path": f"open_clip/rc-tiny-clip/{model_id}.pt"}]})
    return model_id


def add_extra(root: Path, entry: dict) -> None:
    """Declare a model in ``root/raycurate-models.extra.json`` (replacing one with the same id)."""
    import json

    extra = root / "raycurate-models.extra.json"
    entries = [e for e in (json.loads(extra.read_text()) if extra.is_file() else []) if e["id"] != entry["id"]]
    extra.write_text(json.dumps(entries + [entry]))


def write_aesthetic_head(root: Path, pairs_with: str, model_id: str = "test-aesthetic") -> str:
    """A linear aesthetic head (the LAION predictor's shape: 512 -> 1) with random weights, trained on
    nothing, paired with the CLIP model ``pairs_with``; returns its model id."""
    torch.manual_seed(8)
    head = nn.Linear(512, 1)
    path = root / "aesthetic" / f"{model_id}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), path)
    add_extra(root, {"id": model_id, "library": "torch", "analyzer": "clip", "source": "built by the tests",
                     "licence": "test only", "pairs_with": pairs_with,
                     "files": [{"path": f"aesthetic/{model_id}.pth"}]})
    return model_id
