"""CLIP (open_clip): the image embedding as a vector column, and zero-shot scores from the prompt
sets in ``configs/prompts.yaml`` (clothing, accessories, shot, angle, lighting, tattoos).

Tattoos, stated plainly: CLIP zero-shot on the whole image, "a photo of a person with tattoos"
against "... without tattoos"; no detector, no localisation.

Weights: an open_clip model in the models directory (``open_clip-ViT-B-32-laion2b_s34b_b79k``
by default, or one declared in ``raycurate-models.extra.json``), checked before loading.

Aesthetic score: a predictor head (``laion-aesthetic-vit-b-32-linear`` by default: LAION's linear
head, ~1-10) applied to the L2-normalised image embedding of the CLIP model it was trained on
(its registry ``pairs_with``). When that is not ``weights``, the paired CLIP model is loaded too
(a second forward pass per image). No head, or its weights absent: ``clip_aesthetic`` is null and
the manifest says why (``models.profile: strict`` fails instead).
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..config import PROMPT_SETS as SETS
from ..config import PROMPTS_FILE, load_prompts
from .base import Analyzer, package_version

EMBED_DIM = 512
__all__ = ["ClipAnalyzer", "EMBED_DIM", "PROMPTS_FILE", "SETS", "load_prompts"]


class ClipAnalyzer(Analyzer):
    name = "clip"
    size_free = True
    supports_gpu = True
    model_id = "open_clip"

    def __init__(self, *, weights: str = "open_clip-ViT-B-32-laion2b_s34b_b79k", multi_threshold: float = 0.5,
                 aesthetic: str | None = "laion-aesthetic-vit-b-32-linear", batch_size: int = 32,
                 num_cpus: float = 0.2, device: str = "cpu", models_dir: str | None = None,
                 strict_models: bool = False) -> None:
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.weights = weights
        self.model_id = weights
        self.multi_threshold = multi_threshold
        self.models_dir = models_dir
        self.prompts = load_prompts()
        self.aesthetic, self.aesthetic_clip, self.fallback_reason = resolve_aesthetic(
            aesthetic, weights, models_dir=models_dir, strict_models=strict_models)

    def required_models(self) -> list[str]:
        ids = [self.weights]
        if self.aesthetic is not None:
            ids += [self.aesthetic, self.aesthetic_clip]
        return list(dict.fromkeys(ids))

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        fields = [pa.field("clip_embedding", pa.list_(pa.float32(), EMBED_DIM)),   # L2-normalised
                  pa.field("clip_aesthetic", pa.float32())]                        # predictor head, ~1-10
        for s in SETS:
            fields.append(pa.field(f"clip_{s}", pa.list_(pa.string())))          # best label, or labels kept
            fields.append(pa.field(f"clip_{s}_scores", pa.list_(pa.float32())))  # in the prompt file's order
        return fields

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        return {"gpu_model_mb": 1200.0, "gpu_item_mb": 30.0}   # ViT-B-32 fp32 plus the CUDA context

    def _load_clip(self, model_id: str) -> tuple[Any, Any, Any]:
        """(model, preprocess, spec) of an open_clip model from the models directory, checked first."""
        import open_clip

        from .. import models

        root = models.models_dir(self.models_dir)
        spec = models.find_spec(model_id, root)
        models.require(model_id, root)
        configs = root / "open_clip" / "configs"
        if configs.is_dir():
            open_clip.add_model_config(str(configs))   # architectures of your own models
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.arch, pretrained=str(root / spec.files[0].path), device=self._device)
        model.eval()
        return model, preprocess, spec

    def load(self) -> None:
        import open_clip
        import torch

        from .. import models

        self._torch = torch
        device = self.resources.device
        if device != "cpu" and not torch.cuda.is_available():
            warnings.warn("CLIP: device is cuda but torch sees no GPU: CLIP RUNS ON THE CPU", RuntimeWarning,
                          stacklevel=2)
            device = "cpu"
        self._device = torch.device(device)
        self._model, self._preprocess, spec = self._load_clip(self.weights)
        self._aes_head = None
        if self.aesthetic is not None:
            root = models.models_dir(self.models_dir)
            head_path = models.require(self.aesthetic, root) / models.find_spec(self.aesthetic, root).files[0].path
            state = torch.load(head_path, map_location="cpu", weights_only=True)
            head = torch.nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
            head.load_state_dict(state)
            self._aes_head = head.to(self._device).eval()
            self._aes_clip = (None if self.aesthetic_clip == self.weights
                              else self._load_clip(self.aesthetic_clip)[:2])
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
        self._scale = float(self._model.logit_scale.detach().exp()) if hasattr(self._model, "logit_scale") else 100.0

    def _encode_text(self, tokenizer: Any, texts: list[str]) -> Any:
        t = self._model.encode_text(tokenizer(texts).to(self._device))
        return t / t.norm(dim=-1, keepdim=True)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings (len(texts) x 512, float32) from the loaded model, comparable
        with ``clip_embedding``: the query side of text search. Loads the model on first use."""
        import open_clip

        from .. import models

        self.setup()
        arch = models.find_spec(self.weights, models.models_dir(self.models_dir)).arch
        with self._torch.no_grad():
            emb = self._encode_text(open_clip.get_tokenizer(arch), list(texts))
        return emb.cpu().numpy().astype(np.float32)

    def model_version(self) -> str:
        version = package_version("open_clip_torch", "open_clip")
        if self.aesthetic is not None:
            version += f"+{self.aesthetic}" + ("" if self.aesthetic_clip == self.weights
                                              else f"@{self.aesthetic_clip}")
        return version

    def _aesthetic(self, images: list[Any], emb: Any) -> list[float | None]:
        if self._aes_head is None:
            return [None] * len(images)
        torch = self._torch
        if self._aes_clip is not None:   # the head's own CLIP model
            model, preprocess = self._aes_clip
            batch = torch.stack([preprocess(im) for im in images]).to(self._device)
            emb = model.encode_image(batch)
            emb = emb / emb.norm(dim=-1, keepdim=True)
        return [float(v) for v in self._aes_head(emb.float()).squeeze(-1).cpu().numpy()]

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        from PIL import Image

        torch = self._torch
        with torch.no_grad():
            pil = [Image.fromarray(np.asarray(img)) for img in images]
            batch = torch.stack([self._preprocess(im) for im in pil])
            emb = self._model.encode_image(batch.to(self._device))
            emb = emb / emb.norm(dim=-1, keepdim=True)
            out = [{"clip_embedding": e, "clip_aesthetic": a}
                   for e, a in zip(emb.cpu().numpy().astype(np.float32), self._aesthetic(pil, emb))]
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


def resolve_aesthetic(aesthetic: str | None, weights: str, *, models_dir: str | None, strict_models: bool
                      ) -> tuple[str | None, str | None, str | None]:
    """(head id, the CLIP model id whose embeddings it reads, why there is no aesthetic score)."""
    if aesthetic is None:
        return None, None, None
    from .. import models

    root = models.models_dir(models_dir)
    spec = models.find_spec(aesthetic, root)
    paired = spec.pairs_with or weights
    for model_id in dict.fromkeys((aesthetic, paired)):
        state = models.status(models.find_spec(model_id, root), root)
        if state != "ok":
            if strict_models:
                models.require(model_id, root)   # raises the error that says how to fix it
            return None, None, f"no aesthetic score: {model_id} is {state} in {root}"
    return aesthetic, paired, None
