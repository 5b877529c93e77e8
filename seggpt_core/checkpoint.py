"""SegGPT weight files: finding, reading and writing them without executing code.

This module knows files, key names and configuration dicts, not the model: ``seggpt_core.model`` imports it
(``SegGPT.from_pretrained`` / ``save_pretrained``), never the other way round. Accepted sources (:func:`resolve`):

* the official ``seggpt_vit_large.pth`` (``{"model": state_dict}`` or a bare state dict), read with
  ``torch.load(weights_only=True)``;
* the Hugging Face format (``BAAI/seggpt-vit-large``: ``config.json`` + ``model.safetensors``), keys with or without
  the ``model.`` prefix and with either MLP naming (``mlp.lin1`` / ``mlp.fc1``);
* a folder written by :func:`save_weights` (safetensors + our ``config.json``);
* the name of a model shipped inside the package (see :data:`SHIPPED`);
* a hub id, downloaded with ``huggingface_hub`` when installed and online.

Keys are checked strictly: a missing or unexpected key or a wrong shape is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_path, atomic_write
from .errors import InputError

WEIGHTS_DIR = Path(__file__).with_name("weights")

#: Models shipped inside the package: name -> folder under ``seggpt_core/weights``.
SHIPPED = {"seggpt-vos-small": WEIGHTS_DIR / "seggpt-vos-small"}
DEFAULT_MODEL = "seggpt-vos-small"

#: Hub ids of the published weights and the file each provides.
HUB_FILES = {
    "BAAI/seggpt-vit-large": "model.safetensors",
    "BAAI/SegGPT": "seggpt_vit_large.pth",
}

# HF name -> official name, applied in order after the optional "model." prefix is removed.
_HF_TO_OFFICIAL = [
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^embeddings\.mask_token$", "mask_token"),
    (r"^embeddings\.segment_token_input$", "segment_token_x"),
    (r"^embeddings\.segment_token_prompt$", "segment_token_y"),
    (r"^embeddings\.type_token_semantic$", "type_token_cls"),
    (r"^embeddings\.type_token_instance$", "type_token_ins"),
    (r"^embeddings\.position_embeddings$", "pos_embed"),
    (r"^encoder\.layers\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"^encoder\.layers\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"^encoder\.layers\.(\d+)\.attention\.", r"blocks.\1.attn."),
    (r"^encoder\.layers\.(\d+)\.mlp\.(?:lin1|fc1)\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layers\.(\d+)\.mlp\.(?:lin2|fc2)\.", r"blocks.\1.mlp.fc2."),
    (r"^encoder\.layernorm\.", "norm."),
    (r"^decoder\.decoder_embed\.", "decoder_embed."),
    (r"^decoder\.decoder_pred\.conv\.", "decoder_pred.0."),
    (r"^decoder\.decoder_pred\.layernorm\.", "decoder_pred.1."),
    (r"^decoder\.decoder_pred\.head\.", "decoder_pred.3."),
]


def to_official_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename Hugging Face keys to the official (and our) names; official keys pass through unchanged."""
    out = {}
    for key, value in state_dict.items():
        name = key[len("model."):] if key.startswith("model.") else key
        for pattern, repl in _HF_TO_OFFICIAL:
            name, n = re.subn(pattern, repl, name)
            if n:
                break
        out[name] = value
    return out


def config_fields(d: dict) -> dict:
    """Our ``config.json`` or a Hugging Face ``SegGptConfig`` dict -> ``SegGPTConfig`` field values (a field the
    file leaves out takes its default; values are not checked here, see :func:`read_config`)."""
    if d.get("model_type") == "seggpt":  # Hugging Face naming
        return {
            "image_size": tuple(d.get("image_size", (896, 448))),
            "patch_size": d.get("patch_size", 16),
            "embed_dim": d.get("hidden_size", 1024),
            "depth": d.get("num_hidden_layers", 24),
            "num_heads": d.get("num_attention_heads", 16),
            "mlp_ratio": d.get("mlp_dim", 4096) / d.get("hidden_size", 1024),
            "merge_index": d.get("merge_index", 2),
            "tap_indices": tuple(d.get("intermediate_hidden_state_indices", (5, 11, 17, 23))),
            "decoder_dim": d.get("decoder_hidden_size", 64),
            "pretrain_image_size": d.get("pretrain_image_size", 224),
            "layer_norm_eps": d.get("layer_norm_eps", 1e-6),
            "drop_path_rate": d.get("drop_path_rate", 0.1),
        }
    return {k: v for k, v in d.items() if k != "model_type"}


_POSITIVE_INTS = ("patch_size", "embed_dim", "depth", "num_heads", "decoder_dim", "pretrain_image_size")


def _check_config_values(d: dict) -> None:
    """Raise ValueError unless the ``SegGPTConfig`` field values in ``d`` (those present) are of possible types and
    values; the configuration's structural checks (halves of whole patches, blocks that exist) are its own."""
    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def real(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    bad = [k for k in _POSITIVE_INTS if k in d and not (whole(d[k]) and d[k] >= 1)]
    size, taps = d.get("image_size", (1, 1)), d.get("tap_indices", (0,))
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(whole(v) and v >= 1 for v in size)):
        bad.append("image_size")
    if not (isinstance(taps, (list, tuple)) and taps and all(whole(v) and v >= 0 for v in taps)):
        bad.append("tap_indices")
    if "merge_index" in d and (not whole(d["merge_index"]) or d["merge_index"] < 0):
        bad.append("merge_index")
    bad += [k for k in ("mlp_ratio", "layer_norm_eps") if k in d and not (real(d[k]) and d[k] > 0)]
    if "drop_path_rate" in d and not (real(d["drop_path_rate"]) and 0 <= d["drop_path_rate"] < 1):
        bad.append("drop_path_rate")
    if bad:
        raise ValueError(", ".join(f"{k}={d[k]!r}" for k in bad) + " impossible")


def read_config(path: Path) -> dict:
    """The ``SegGPTConfig`` field values in ``path`` (ours or Hugging Face's ``config.json``), checked: unreadable
    JSON or impossible values are an :class:`InputError` naming the file (:func:`bad_config`)."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        fields = config_fields(d)
        _check_config_values(fields)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, ArithmeticError) as err:
        raise bad_config(path, err) from None
    return fields


def bad_config(path: Path, err: Exception) -> InputError:
    """The one-line error for a ``config.json`` at ``path`` that cannot describe a model (``err``: why)."""
    reason = (str(err).splitlines() or ["unreadable"])[0][:160]
    return InputError(f"{path}: not a usable model configuration ({reason}); fix or delete it (the weights' own "
                      "shapes are then assumed to be the published ViT-L)")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``.pth``/``.pt``/``.bin`` file, safely (no pickled code is run)."""
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist; give the path of a .pth or .safetensors file")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or non-weights file: one line, not a traceback
        reason = (str(err).splitlines() or ["empty or unreadable"])[0][:160]
        raise InputError(f"cannot read checkpoint {path} ({type(err).__name__}: {reason}); "
                         "it must be a state dict saved as .pth or .safetensors") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"checkpoint {path} is not a state dict of tensors; expected the official "
                         "seggpt_vit_large.pth or a model.safetensors")
    return obj


def resolve(name_or_path: str | Path) -> tuple[Path, dict | None]:
    """Find the weights file (and its config's field values, when a config.json is there) of a path, a shipped model
    name or a hub id."""
    if str(name_or_path) in SHIPPED:
        folder = SHIPPED[str(name_or_path)]
        if not (folder / "model.safetensors").is_file():
            raise InputError(f"the shipped model {name_or_path} is missing from {folder}; reinstall seggpt-vos")
        return _from_folder(folder)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _from_folder(path)
    if path.exists() or path.suffix in (".pth", ".pt", ".bin", ".safetensors"):
        cfg_file = path.with_name("config.json")
        return path, _read_config(cfg_file)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", str(name_or_path)):
        return _from_folder(_download(str(name_or_path)))
    raise InputError(f"no model at {name_or_path}: give a checkpoint file or folder, a hub id such as "
                     f"BAAI/seggpt-vit-large, or a shipped model ({', '.join(SHIPPED)})")


def _read_config(cfg_file: Path) -> dict | None:
    return read_config(cfg_file) if cfg_file.is_file() else None


def _from_folder(folder: Path) -> tuple[Path, dict | None]:
    for name in ("model.safetensors", "seggpt_vit_large.pth", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name, _read_config(folder / "config.json")
    raise InputError(f"no model.safetensors or seggpt_vit_large.pth in {folder}; put the weights file there")


def _download(repo_id: str) -> Path:
    """Download a published checkpoint into the Hugging Face cache; fail in one line when that is impossible."""
    filename = HUB_FILES.get(repo_id, "model.safetensors")
    hint = (f"download {filename} from https://huggingface.co/{repo_id} on a connected machine and pass its path "
            f"(or its folder) instead of {repo_id}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise InputError(f"huggingface_hub is not installed (pip install 'seggpt-vos[hub]'), or {hint}") from None
    try:
        weights = Path(hf_hub_download(repo_id, filename))
        if filename.endswith(".safetensors"):
            try:
                hf_hub_download(repo_id, "config.json")
            except Exception:
                pass  # the config is optional: the published shapes are the default config
    except Exception as err:
        raise InputError(f"cannot download {repo_id} ({type(err).__name__}); {hint}") from None
    return weights.parent


def load_weights(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of the weights file ``path`` under the official key names, in fp32, checked strictly against
    ``expected`` (a model's state dict; its shapes are all that is read, so a meta-device model will do): a missing or
    unexpected key or a wrong shape is an :class:`InputError` naming the file."""
    state = to_official_keys(read_state_dict(path))
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise InputError(f"checkpoint {path} does not fit the model config ({'; '.join(parts)}); "
                         "pass the matching config or the right checkpoint")
    return {k: v.float() for k, v in state.items()}


def save_weights(model: torch.nn.Module, config: dict, directory: str | Path) -> Path:
    """Write ``model.safetensors`` (fp32, contiguous) and ``config.json`` (``config``, the model's configuration as a
    dict) atomically into ``directory``; returns the directory."""
    directory = Path(directory)
    state = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(directory / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    text = json.dumps({"model_type": "seggpt-vos", **config}, indent=2) + "\n"
    atomic_write(directory / "config.json", lambda f: f.write(text.encode()))
    return directory
