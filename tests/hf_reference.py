"""transformers' SegGPT as the reference implementation, built to the same config and weights as ours."""

from __future__ import annotations

import pytest
import torch

from seggpt_core.checkpoint import to_official_keys
from seggpt_core.model import SegGPT, SegGPTConfig

transformers = pytest.importorskip("transformers")


def hf_config(cfg: SegGPTConfig):
    return transformers.SegGptConfig(
        hidden_size=cfg.embed_dim, num_hidden_layers=cfg.depth, num_attention_heads=cfg.num_heads,
        image_size=list(cfg.image_size), patch_size=cfg.patch_size, mlp_dim=int(cfg.embed_dim * cfg.mlp_ratio),
        merge_index=cfg.merge_index, intermediate_hidden_state_indices=list(cfg.tap_indices),
        decoder_hidden_size=cfg.decoder_dim, pretrain_image_size=cfg.pretrain_image_size,
        layer_norm_eps=cfg.layer_norm_eps, drop_path_rate=0.0,
    )


def random_pair(cfg: SegGPTConfig, seed: int = 0):
    """An HF model with every parameter random (HF zero-initialises the tokens) and ours with the same weights."""
    torch.manual_seed(seed)
    hf = transformers.SegGptForImageSegmentation(hf_config(cfg)).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0, 0.05 if p.ndim > 1 else 0.5)
        for name, p in hf.named_parameters():
            if "layernorm" in name and name.endswith("weight"):
                p.add_(1.0)
    ours = SegGPT(cfg).eval()
    ours.load_state_dict(to_official_keys(hf.state_dict()), strict=True)
    return hf, ours


def random_inputs(cfg: SegGPTConfig, prompts: int, seed: int = 1):
    """ImageNet-normalised-like prompt images/masks and one query, each (P or 1, 3, h, w)."""
    g = torch.Generator().manual_seed(seed)
    h, w = cfg.half_size
    prompt_images = torch.randn(prompts, 3, h, w, generator=g)
    prompt_masks = torch.randn(prompts, 3, h, w, generator=g)
    query = torch.randn(1, 3, h, w, generator=g)
    return prompt_images, prompt_masks, query
