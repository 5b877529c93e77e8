"""SegGPT: a plain ViT that paints the segmentation of a query image, given (image, mask) examples in context.

The math is the official BAAI implementation's (``Painter/SegGPT/SegGPT_inference/models_seggpt.py``):

* canvas = prompt half on top of the query half; two streams (images, masks) share the patch embedding and run as
  separate batch items up to and including block ``merge_index``, then are averaged;
* global attention with decomposed relative positions in every block (the windowed attention the official builder
  seems to configure is dead code, see ``shared/reference/model.md`` §1.4);
* the *feature ensemble*: with several prompts, the attention output of the query half is averaged over the prompts
  in every block, per stream up to and including the merge block (the HF port differs at the merge block; its rule
  is available as ``ensemble="hf"`` for parity tests only);
* outputs of the tap blocks, through the shared final LayerNorm, concatenated and decoded to RGB patches.

Two ways to run the same weights:

* :meth:`SegGPT.forward` - the reference path on whole canvases, batch item per prompt, as both public
  implementations do it. Used for training, for parity with transformers, and as the oracle of the fast path.
* :meth:`SegGPT.paint` - the deduplicated inference path: the query half is identical across the prompt batch in every
  block, so its LayerNorms, qkv, MLP, projection and decoding run once per query instead of once per prompt (about
  0.56x the FLOPs at 8 prompts); only the P attentions remain per prompt.

Precision: weights of the matmul layers may be cast to bf16/fp16 (:meth:`SegGPT.set_compute_dtype`); LayerNorms,
the residual stream and the softmax statistics stay in fp32.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .attention import AttentionImpl, attention
from .checkpoint import bad_config, load_weights, resolve, save_weights

Ensemble = Literal["official", "hf", "none"]
SegType = Literal["instance", "semantic"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SegGPTConfig:
    """Architecture of a SegGPT model. The defaults are the published ViT-L/16 on an 896x448 canvas."""

    image_size: tuple[int, int] = (896, 448)  #: canvas (H, W): prompt half on top of the query half
    patch_size: int = 16
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    merge_index: int = 2  #: image and mask streams are averaged after this block
    tap_indices: tuple[int, ...] = (5, 11, 17, 23)  #: blocks whose outputs feed the decoder
    decoder_dim: int = 64
    pretrain_image_size: int = 224  #: grid the absolute position embedding was trained on (+1 CLS slot)
    layer_norm_eps: float = 1e-6
    drop_path_rate: float = 0.1

    def __post_init__(self) -> None:
        h, w = self.image_size
        if h % (2 * self.patch_size) or w % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must split into two halves of whole patches")
        if self.embed_dim % self.num_heads:
            raise ValueError("embed_dim must be divisible by num_heads")
        if not 0 <= self.merge_index < self.depth or any(not 0 <= i < self.depth for i in self.tap_indices):
            raise ValueError("merge_index and tap_indices must name blocks 0..depth-1")
        for name in ("mlp_ratio", "layer_norm_eps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if not 0 <= self.drop_path_rate < 1:
            raise ValueError(f"drop_path_rate must be within [0, 1), got {self.drop_path_rate}")
        object.__setattr__(self, "image_size", tuple(self.image_size))
        object.__setattr__(self, "tap_indices", tuple(self.tap_indices))

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (rows, cols) of the whole canvas."""
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    @property
    def half_size(self) -> tuple[int, int]:
        """Pixel size (H, W) of one half: the size prompts and queries are resized to."""
        return self.image_size[0] // 2, self.image_size[1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SegGPTConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known})


#: Named configurations. ``vit-large`` is the published model; the others are for tests and the shipped small model.
PRESETS: dict[str, SegGPTConfig] = {
    "vit-large": SegGPTConfig(),
    "test-tiny": SegGPTConfig(image_size=(64, 32), patch_size=8, embed_dim=64, depth=6, num_heads=4,
                              tap_indices=(3, 4, 5), decoder_dim=16, pretrain_image_size=32),
    "seggpt-vos-small": SegGPTConfig(image_size=(128, 64), patch_size=8, embed_dim=128, depth=6, num_heads=4,
                                     merge_index=1, tap_indices=(1, 3, 4, 5), decoder_dim=16, pretrain_image_size=64,
                                     drop_path_rate=0.0),
}


def _derived(owner: nn.Module, name: str, params: tuple[torch.Tensor, ...], compute):
    """``compute()``, cached on ``owner`` for inference: tables derived from parameters (the resized position
    embedding, the gathered relative-position tables) are built once, and rebuilt only when a parameter is updated
    in place, moved or cast. With gradients on (training) nothing is cached, so the graph reaches the parameters; under
    ``torch.compile`` neither, the compiler folds the tables itself (and must not see the module's dict mutated)."""
    if torch.is_grad_enabled() or torch.compiler.is_compiling():
        return compute()
    key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
    hit = owner.__dict__.get(name)
    if hit is None or hit[0] != key:
        hit = owner.__dict__[name] = (key, compute())
    return hit[1]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth (training only): drops a sample's residual branch with probability ``p``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Attention(nn.Module):
    """Global multi-head attention with decomposed relative position bias (MViTv2/SAM style).

    ``bias[q, (kh, kw)] = q . Rh[qh, kh] + q . Rw[qw, kw]`` with the unscaled q, added to the scaled logits.
    """

    def __init__(self, dim: int, num_heads: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.grid = grid
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        gh, gw = grid
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * gh - 1, self.head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * gw - 1, self.head_dim))
        # Rh[qh, kh] = rel_pos_h[qh - kh + gh - 1]; gathered per call (cheap) so training sees the parameters.
        self.register_buffer("rel_index_h", _relative_index(gh), persistent=False)
        self.register_buffer("rel_index_w", _relative_index(gw), persistent=False)

    def split_heads(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, N, 3C) -> q, k, v each (B, heads, N, head_dim)."""
        q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        return q, k, v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, impl: AttentionImpl) -> torch.Tensor:
        """Attention over whole canvases. q, k, v: (B, heads, N, d) with N = gh*gw in raster order -> (B, N, C).
        ``impl`` names a variant of :mod:`seggpt_core.attention` (``"auto"``: the fastest for the device/dtype)."""
        gh, gw = self.grid
        b, h, n, d = q.shape
        rq = q.reshape(b, h, gh, gw, d)
        table_h, table_w = self.rel_tables(q.dtype)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", rq, table_h)
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", rq, table_w)
        out = attention(q, k, v, rel_h, rel_w, self.scale, impl)
        return rearrange(out, "b h n d -> b n (h d)")

    def rel_tables(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Rh (gh, gh, d) and Rw (gw, gw, d) gathered from the learned tables."""
        return _derived(self, f"_rel_{str(dtype).removeprefix('torch.')}", (self.rel_pos_h, self.rel_pos_w), lambda: (
            self.rel_pos_h[self.rel_index_h].to(dtype), self.rel_pos_w[self.rel_index_w].to(dtype)))

    def forward(self, x: torch.Tensor, impl: AttentionImpl) -> torch.Tensor:
        """(B, gh, gw, C) -> attention output after ``proj``, (B, gh, gw, C)."""
        b, gh, gw, c = x.shape
        q, k, v = self.split_heads(self.qkv(x.reshape(b, gh * gw, c)))
        return self.proj(self.attend(q, k, v, impl)).reshape(b, gh, gw, c)


def _relative_index(size: int) -> torch.Tensor:
    idx = torch.arange(size)
    return idx[:, None] - idx[None, :] + size - 1


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN ViT block. The residual stream stays fp32; the matmuls run in the weights' dtype."""

    def __init__(self, cfg: SegGPTConfig, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads, cfg.grid)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratio))

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.attn.qkv.weight.dtype

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.mlp(self.norm2(x).to(self.compute_dtype)))

    def forward(self, x: torch.Tensor, ensemble_groups: int, impl: AttentionImpl) -> torch.Tensor:
        """Reference path. x: (B, gh, gw, C). With ``ensemble_groups`` = g > 0, the batch is g groups of equal size
        and the query half of the attention output is averaged within each group (the feature ensemble)."""
        a = self.attn(self.norm1(x).to(self.compute_dtype), impl)
        if ensemble_groups:
            a = _ensemble_query_half(a, ensemble_groups)
        return self.ffn(x + self.drop_path(a))

    def forward_dedup(self, xp: torch.Tensor, xq: torch.Tensor, impl: AttentionImpl
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Deduplicated path: xp (B, P, Np, C) prompt-half tokens of P prompts, xq (B, Nq, C) the query-half tokens
        they all share. Each prompt keeps its own attention (own softmax over its prompt half + the query half); the
        query rows of the P outputs are averaged (the official ensemble) and everything else runs once."""
        b, p, n_p, c = xp.shape
        attn = self.attn
        qkv_p = attn.qkv(self.norm1(xp).to(self.compute_dtype))
        qkv_q = attn.qkv(self.norm1(xq).to(self.compute_dtype))
        seq = torch.cat([qkv_p, qkv_q[:, None].expand(b, p, -1, -1)], 2).flatten(0, 1)
        out = attn.attend(*attn.split_heads(seq), impl).unflatten(0, (b, p))
        xp = xp + attn.proj(out[:, :, :n_p])
        xq = xq + attn.proj(out[:, :, n_p:].mean(1))
        return self.ffn(xp), self.ffn(xq)


def _ensemble_query_half(a: torch.Tensor, groups: int) -> torch.Tensor:
    """Replace the query half (bottom token rows) of a (B, gh, gw, C) tensor by its mean within each batch group."""
    half = a.shape[1] // 2
    prompt, query = a[:, :half], a[:, half:]
    g = query.unflatten(0, (groups, -1))
    query = g.mean(1, keepdim=True).expand_as(g).flatten(0, 1)
    return torch.cat([prompt, query], 1)


class SegGPT(nn.Module):
    """SegGPT painter. Parameter names follow the official checkpoint, so its state dict loads as is."""

    def __init__(self, config: SegGPTConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or SegGPTConfig()
        dim, p = cfg.embed_dim, cfg.patch_size
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, kernel_size=p, stride=p)
        for name in ("mask_token", "segment_token_x", "segment_token_y", "type_token_cls", "type_token_ins"):
            setattr(self, name, nn.Parameter(torch.zeros(1, 1, 1, dim)))
        n_pos = (cfg.pretrain_image_size // p) ** 2 + 1
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, dim))
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth, device="cpu").tolist()  # CPU even under a meta device
        self.blocks = nn.ModuleList(Block(cfg, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.decoder_embed = nn.Linear(dim * len(cfg.tap_indices), p * p * cfg.decoder_dim)
        self.decoder_pred = nn.Sequential(
            nn.Conv2d(cfg.decoder_dim, cfg.decoder_dim, kernel_size=3, padding=1),
            LayerNorm2d(cfg.decoder_dim, eps=cfg.layer_norm_eps),
            nn.GELU(),
            nn.Conv2d(cfg.decoder_dim, 3, kernel_size=1),
        )
        self.attn_impl: AttentionImpl = "auto"
        self.reset_parameters()

    # ----------------------------------------------------------------------------------------------- set-up
    def reset_parameters(self, std: float = 0.02) -> None:
        """Random initialisation for training from scratch (truncated normal, zero biases, unit LayerNorms)."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for name, prm in self.named_parameters():
            if "token" in name or name == "pos_embed" or "rel_pos" in name:
                nn.init.trunc_normal_(prm, std=std)

    def set_compute_dtype(self, dtype: torch.dtype) -> SegGPT:
        """Cast the matmul/conv weights (and relative-position tables) to ``dtype``; LayerNorms, tokens and position
        embeddings stay fp32, so the residual stream and normalisation statistics stay fp32."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.to(dtype)
            elif isinstance(m, Attention):
                m.rel_pos_h.data = m.rel_pos_h.data.to(dtype)
                m.rel_pos_w.data = m.rel_pos_w.data.to(dtype)
        return self

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.decoder_embed.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.pos_embed.device

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, config: SegGPTConfig | None = None) -> SegGPT:
        """Load the official ``.pth``, a Hugging Face ``BAAI/seggpt-vit-large`` folder/file/hub id, a preset name of a
        shipped model, or a folder written by :meth:`save_pretrained`. See :mod:`seggpt_core.checkpoint`. ``config``
        overrides the one stored with the weights (default without either: the published ViT-L)."""
        path, stored = resolve(name_or_path)
        if config is None and stored is not None:
            try:
                config = SegGPTConfig.from_dict(stored)
            except (ValueError, TypeError) as err:
                raise bad_config(path.with_name("config.json"), err) from None
        config = config or PRESETS["vit-large"]
        with torch.device("meta"):  # shapes only: a configuration that does not fit the file allocates nothing
            expected = cls(config).state_dict()
        state = load_weights(path, expected)
        model = cls(config)
        model.load_state_dict(state, strict=True)
        return model.eval()

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` (fp32) + ``config.json``; returns the directory."""
        return save_weights(self, self.config.to_dict(), directory)

    # ----------------------------------------------------------------------------------------------- embeddings
    def position_grid(self) -> torch.Tensor:
        """The pretrained 2-D position embedding resized (bicubic, align_corners=False) to the canvas: (gh, gw, C)."""
        def compute() -> torch.Tensor:
            n = int((self.pos_embed.shape[1] - 1) ** 0.5)
            grid = self.pos_embed[:, 1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=self.config.grid, mode="bicubic", align_corners=False)
            return grid[0].permute(1, 2, 0)

        return _derived(self, "_position_grid", (self.pos_embed,), compute)

    def type_token(self, seg_type: SegType | torch.Tensor, batch: int) -> torch.Tensor:
        """(batch, 1, 1, C): the instance or semantic token, one choice per call or one per sample (0 = semantic)."""
        if isinstance(seg_type, str):
            if seg_type not in ("instance", "semantic"):
                raise ValueError(f"seg_type must be 'instance' or 'semantic', got {seg_type!r}")
            tok = self.type_token_ins if seg_type == "instance" else self.type_token_cls
            return tok.expand(batch, -1, -1, -1)
        sem = (seg_type.to(self.device) == 0).view(-1, 1, 1, 1)
        return torch.where(sem, self.type_token_cls, self.type_token_ins)

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) -> patch tokens (B, h/p, w/p, C) in fp32."""
        return self.patch_embed.proj(pixels.to(self.compute_dtype)).permute(0, 2, 3, 1).float()

    # ----------------------------------------------------------------------------------------------- decoder
    def decode(self, taps: torch.Tensor, *, halo: bool = False) -> torch.Tensor:
        """(B, th, tw, 4C) normed tap features -> (B, 3, th*p, tw*p) painted RGB (ImageNet-normalised).

        With ``halo``, the first token row only supplies the pixel row above the rest to the 3x3 conv: the output is
        (B, 3, (th-1)*p, tw*p), equal to those rows of the undeduplicated decode.
        """
        p = self.config.patch_size
        x = self.decoder_embed(taps.to(self.compute_dtype))
        x = rearrange(x, "b h w (p q c) -> b c (h p) (w q)", p=p, q=p)
        if halo:
            x = x[:, :, p - 1:]
        conv, norm, act, head = self.decoder_pred
        x = head(act(norm(conv(x).float())).to(self.compute_dtype)).float()
        return x[:, :, 1:] if halo else x

    # ----------------------------------------------------------------------------------------------- reference path
    def forward(self, images: torch.Tensor, targets: torch.Tensor, bool_masked_pos: torch.Tensor | None = None,
                seg_type: SegType | torch.Tensor = "instance", ensemble: Ensemble = "none") -> torch.Tensor:
        """Reference path on whole canvases.

        Args:
            images: (B, 3, H, W) image canvases (prompt image over query image), ImageNet-normalised.
            targets: (B, 3, H, W) mask canvases (prompt mask over anything: masked patches are replaced).
            bool_masked_pos: (B or 1, N) patches of the mask stream to replace by the mask token; default: the
                query half (inference).
            seg_type: "instance" / "semantic", or a (B,) tensor with 0 = semantic, 1 = instance.
            ensemble: "official" - the batch is P prompts of one query, averaged per the official rule (what
                inference does for P > 1); "hf" - transformers' ``feature_ensemble=True`` rule; "none" - independent
                samples (training).
        Returns:
            (B, 3, H, W) painted canvases, ImageNet-normalised.
        """
        cfg = self.config
        b = images.shape[0]
        gh, gw = cfg.grid
        if bool_masked_pos is None:
            bool_masked_pos = torch.zeros(1, gh * gw, dtype=torch.bool, device=images.device)
            bool_masked_pos[:, gh * gw // 2:] = True
        w = bool_masked_pos.reshape(-1, gh, gw, 1).float()
        x_img = self.embed(images) + self.segment_token_x
        x_tgt = self.embed(targets) * (1 - w) + self.mask_token * w + self.segment_token_y
        x = torch.cat([x_img, x_tgt]) + self.position_grid() + self.type_token(seg_type, b).repeat(2, 1, 1, 1)

        taps = []
        for i, blk in enumerate(self.blocks):
            x = blk(x, self._ensemble_groups(i, b, ensemble), self.attn_impl)
            if i == cfg.merge_index:
                x = (x[:b] + x[b:]) * 0.5
            if i in cfg.tap_indices:
                taps.append(self.norm(x))
        return self.decode(torch.cat(taps, -1))

    def _ensemble_groups(self, block: int, batch: int, ensemble: Ensemble) -> int:
        merge = self.config.merge_index
        if ensemble == "official":
            if batch == 1:
                return 0
            return 2 if block <= merge else 1
        if ensemble == "hf":  # transformers: per stream only strictly before the merge block; fires even at P = 1
            return 2 if block < merge else 1
        return 0

    # ----------------------------------------------------------------------------------------------- fast path
    def paint(self, prompt_images: torch.Tensor, prompt_targets: torch.Tensor, query_images: torch.Tensor,
              seg_type: SegType = "instance") -> torch.Tensor:
        """Deduplicated inference: every query is painted with all P prompts, feature-ensembled (official rule).

        Args:
            prompt_images: (P, 3, h, w) prompt images, ImageNet-normalised (h, w = ``config.half_size``).
            prompt_targets: (P, 3, h, w) their masks drawn in label colours, ImageNet-normalised.
            query_images: (Q, 3, h, w) query images; each is painted independently.
        Returns:
            (Q, 3, h, w) the painted query halves, ImageNet-normalised, equal to ``forward(...)[0, :, h:]`` of the
            corresponding P-prompt canvas batch.
        """
        cfg = self.config
        gh, gw = cfg.grid
        half = gh // 2
        n_queries = query_images.shape[0]
        pos = self.position_grid()
        type_tok = self.type_token(seg_type, 1)[0]
        # Streams stacked on a leading axis S (image, mask) until the merge; prompts of every query start identical.
        prompt_img = self.embed(prompt_images) + self.segment_token_x[0]
        prompt_tgt = self.embed(prompt_targets) + self.segment_token_y[0]
        xp = torch.stack([prompt_img, prompt_tgt]) + pos[:half] + type_tok  # (S, P, half, gw, C)
        xp = xp.flatten(2, 3)[:, None].expand(-1, n_queries, -1, -1, -1).flatten(0, 1)  # (S*Q, P, Np, C)
        query_img = self.embed(query_images) + self.segment_token_x[0]
        query_tgt = (self.mask_token[0] + self.segment_token_y[0]).expand_as(query_img)
        xq = (torch.stack([query_img, query_tgt]) + pos[half:] + type_tok).flatten(2, 3).flatten(0, 1)  # (S*Q, Nq, C)

        taps = []
        for i, blk in enumerate(self.blocks):
            xp, xq = blk.forward_dedup(xp, xq, self.attn_impl)
            if i == cfg.merge_index:
                xp = (xp[:n_queries] + xp[n_queries:]) * 0.5
                xq = (xq[:n_queries] + xq[n_queries:]) * 0.5
            if i in cfg.tap_indices:
                # The decoder's 3x3 conv at the first query pixel row reads the last prompt row: take prompt 0's
                # last token row as a halo (official decodes batch item 0).
                halo = xp[:, 0, -gw:]
                taps.append(self.norm(torch.cat([halo, xq], 1)))
        return self.decode(torch.cat(taps, -1).reshape(n_queries, half + 1, gw, -1), halo=True)
