"""The tuned-prompt file format: a learned in-context example (in-context tuning, paper §3.3) and its file.

A :class:`TunedPrompt` is one learned example: an image tensor (and, optionally, its target) in the model's normalised
input space. It is two (3, h, w) tensors plus metadata, belongs to one model (configuration and weights) and one label
set, and is used like any other example: alone, or feature-ensembled with real ones
(``SegGPTPredictor.segment(..., tuned=...)``, ``VideoSession.add_prompt``). It is written as safetensors with JSON
metadata, so loading one executes no code. :mod:`seggpt_core.tuning` makes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .atomic import atomic_path
from .colours import MAX_LABELS
from .errors import InputError
from .model import SegGPT, SegGPTConfig

#: ``format`` entry of a prompt file's safetensors metadata.
PROMPT_FORMAT = "seggpt-vos/tuned-prompt"
PROMPT_VERSION = 1


def weights_fingerprint(model: SegGPT) -> str:
    """A short hash of tensors that set_compute_dtype leaves in fp32 (position embedding, tokens): tells two sets of
    weights of the same configuration apart, whatever their compute dtype."""
    digest = hashlib.sha256()
    for t in (model.pos_embed, model.mask_token, model.segment_token_x, model.segment_token_y):
        digest.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TunedPrompt:
    """A learned in-context example for one model and one label set.

    ``label_ids``: what each label 1..K stands for to the user (e.g. the object ids of the masks it was tuned on),
    strictly increasing; label k is drawn with colour k of ``label_colours(K)``.
    """

    image: torch.Tensor  #: (3, h, w) float32, ImageNet-normalised
    target: torch.Tensor  #: (3, h, w) float32, ImageNet-normalised colours (labels 0..K in label colours if fixed)
    label_ids: tuple[int, ...]
    model_config: SegGPTConfig
    model_fingerprint: str  #: :func:`weights_fingerprint` of the model it was tuned with
    info: dict = field(default_factory=dict)  #: provenance: steps, lr, seed, losses, sources (JSON-serialisable)

    def __post_init__(self) -> None:
        size = (3, *self.model_config.half_size)
        if tuple(self.image.shape) != size or tuple(self.target.shape) != size:
            raise InputError(f"tuned prompt tensors {tuple(self.image.shape)}, {tuple(self.target.shape)} do not "
                             f"match the model's half size {size}; tune the prompt again")
        ids = tuple(int(i) for i in self.label_ids)
        if not ids or any(b <= a for a, b in zip(ids, ids[1:])) or not 1 <= ids[0] <= ids[-1] <= MAX_LABELS:
            raise InputError(f"tuned prompt label ids {ids} must be increasing ids within 1..{MAX_LABELS}")
        object.__setattr__(self, "label_ids", ids)

    @property
    def num_labels(self) -> int:
        return len(self.label_ids)

    def check_model(self, model: SegGPT, *, source: str = "tuned prompt") -> None:
        """Refuse a model other than the one the prompt was tuned with (its meaning is tied to those weights)."""
        if model.config != self.model_config:
            mine, theirs = self.model_config.to_dict(), model.config.to_dict()
            diff = ", ".join(f"{k} {mine[k]} vs {theirs[k]}" for k in mine if mine[k] != theirs[k])
            raise InputError(f"{source} was tuned for another model configuration ({diff}); pass the model it was "
                             "tuned with (--model) or tune it again for this one")
        if weights_fingerprint(model) != self.model_fingerprint:
            raise InputError(f"{source} was tuned with other weights of this configuration; pass the model it was "
                             "tuned with (--model) or tune it again for this one")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the prompt as safetensors (tensors) + JSON metadata, atomically; returns the path."""
        path = Path(path)
        meta = {"label_ids": list(self.label_ids), "model_config": self.model_config.to_dict(),
                "model_fingerprint": self.model_fingerprint, "info": self.info}
        with atomic_path(path) as tmp:
            save_file({"image": self.image.detach().float().cpu().contiguous(),
                       "target": self.target.detach().float().cpu().contiguous()}, str(tmp),
                      metadata={"format": PROMPT_FORMAT, "version": str(PROMPT_VERSION), "prompt": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TunedPrompt:
        """Read a file written by :meth:`save` (no code is executed)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: prompt file does not exist; tune one with 'seggpt-vos tune --out {path}'")
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                if header.get("format") != PROMPT_FORMAT:
                    raise ValueError("no tuned-prompt metadata")
                image, target = f.get_tensor("image"), f.get_tensor("target")
            meta = json.loads(header["prompt"])
            config = SegGPTConfig.from_dict(meta["model_config"])
        except Exception as err:  # not ours, truncated or corrupt: one line
            raise InputError(f"{path}: not a tuned prompt file ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:120] if str(err) else 'unreadable'}); write one with "
                             "'seggpt-vos tune'") from None
        if int(header.get("version", 0)) > PROMPT_VERSION:
            raise InputError(f"{path}: prompt file version {header['version']} is newer than this seggpt-vos "
                             f"understands ({PROMPT_VERSION}); upgrade seggpt-vos")
        return cls(image, target, tuple(meta["label_ids"]), config, meta["model_fingerprint"], meta.get("info", {}))
