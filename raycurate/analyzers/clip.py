"""CLIP (open_clip): the image embedding as a vector column, and zero-shot scores from the prompt
sets in ``configs/prompts.yaml`` (clothing, accessories, shot, angle, lighting, tattoos).

Tattoos, stated plainly: CLIP zero-shot on the whole image, "a photo of a person with tattoos"
against "... without tattoos"; no detector, no localisation.

Weights: an open_clip model in the models directory (``open_clip-ViT-B-32-laion2b_s34b_b79k``
by default, or one declared in ``raycurate-models.extra.json``), checked before loading.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import yaml

from .base import Analyzer, package_version

EMBED_DIM = 512
PROMPTS_FILE = Path(__file__).resolve().parents[2] / "configs" / "prompts.yaml"
SETS = ("clothing", "accessories", "shot", "angle", "lighting", "tattoos")


def load_prompts(path: Path = PROMPTS_FILE) -> dict[str, dict[str, Any]]:
    prompts = yaml.safe_load(path.read_text())
    missing = [s for s in SETS if s not in prompts]
    if missing:
        raise ValueError(f"{path} lacks the prompt sets {missing}")
    return prompts


class ClipAnalyzer(Analyzer):
    name = "clip"
    supports_gpu = True
    model_id = "open_clip"

    def __init__(self, *, weights: str = "open_clip-ViT-B-32-laion2b_s34b_b79k", multi_threshold: float = 0.5,
                 batch_size: int = 32, num_cpus: float = 0.5, device: str = "cpu",
                 models_dir: str | None = None) -> None:
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.weights = weights
        self.model_id = weights
        self.multi_threshold = multi_threshold
        self.models_dir = models_dir
        self.prompts = load_prompts()

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        fields = [pa.field("clip_embedding", pa.list_(pa.float32(), EMBED_DIM))]   # L2-normalised
        for s in SETS:
            fields.append(pa.field(f"clip_{s}", pa.list_(pa.string())))          # best label, or labels kept
            fields.append(pa.field(f"clip_{s}_scores", pa.list_(pa.float32())))  # in the prompt file's order
        return fields

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        return {"gpu_model_mb": 1200.0, "gpu_item_mb": 30.0}   # ViT-B-32 fp32 plus the CUDA context

    def load(self) -> None:
        import open_clip
        import torch

        from .. import models

        root = models.models_dir(self.models_dir)
        spec = models.find_spec(self.weights, root)
        models.require(self.weights, root)
        configs = root / "open_clip" / "configs"
        if configs.is_dir():
            open_clip.add_model_config(str(configs))   # architectures of your own models
        self._torch = torch
        device = self.resources.device
        if device != "cpu" and not torch.cuda.is_available():
            warnings.warn("CLIP: device is cuda but torch sees no GPU: CLIP RUNS ON THE CPU", RuntimeWarning,
                          stacklevel=2)
            device = "cpu"
        self._device = torch.device(device)
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.arch, pretrained=str(root / spec.files[0].path), device=self._device)
        model.eval()
        self._model, self._preprocess = model, preprocess
        tokenizer = open_clip.get_tokenizer(spec.arch)
        self._text: dict[str, tuple[Any, Any]] = {}
        with torch.no_grad():
            for s in SETS:
                p = self.prompts[s]
                pos = self._encode_text(tokenizer, [p["template"].format(label) for label in p["labels"]])
                neg = (self._encode_text(tokenizer, [p["negative"].format(label) for label in p["labels"]])
                       if p["kind"] == "multi" else None)
                self._text[s] = (pos, neg)
        dim = next(iter(self._text.values()))[0].shape[1]
        if dim != EMBED_DIM:
            raise ValueError(f"{self.weights} embeds in {dim} dimensions; the clip_embedding column holds {EMBED_DIM}")
        self._scale = float(model.logit_scale.exp()) if hasattr(model, "logit_scale") else 100.0

    def _encode_text(self, tokenizer: Any, texts: list[str]) -> Any:
        t = self._model.encode_text(tokenizer(texts).to(self._device))
        return t / t.norm(dim=-1, keepdim=True)

    def model_version(self) -> str:
        return package_version("open_clip_torch", "open_clip")

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        from PIL import Image

        torch = self._torch
        with torch.no_grad():
            batch = torch.stack([self._preprocess(Image.fromarray(np.asarray(img))) for img in images])
            emb = self._model.encode_image(batch.to(self._device))
            emb = emb / emb.norm(dim=-1, keepdim=True)
            out = [{"clip_embedding": e} for e in emb.cpu().numpy().astype(np.float32)]
            for s in SETS:
                labels = self.prompts[s]["labels"]
                pos, neg = self._text[s]
                if neg is None:
                    probs = (self._scale * emb @ pos.T).softmax(dim=-1).cpu().numpy()
                    for o, p in zip(out, probs):
                        o[f"clip_{s}"] = [labels[int(np.argmax(p))]]
                        o[f"clip_{s}_scores"] = p.tolist()
                else:   # each label against its negative prompt
                    logits = torch.stack([emb @ pos.T, emb @ neg.T], dim=-1) * self._scale
                    probs = logits.softmax(dim=-1)[..., 0].cpu().numpy()
                    for o, p in zip(out, probs):
                        o[f"clip_{s}"] = [lab for lab, v in zip(labels, p) if v >= self.multi_threshold]
                        o[f"clip_{s}_scores"] = p.tolist()
        return out
