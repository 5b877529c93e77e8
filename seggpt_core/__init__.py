"""SegGPT (arXiv 2304.03284) for in-context segmentation: model, checkpoints, predictor, training.

Exports load lazily (PEP 562) so that light users such as the CLI's error handling import no torch.
"""

from importlib import import_module

_EXPORTS = {
    "SegGPT": "model", "SegGPTConfig": "model", "PRESETS": "model",
    "SegGPTPredictor": "predictor", "Prompt": "predictor",
    "InputError": "errors",
    "label_colours": "colours",
    "DEFAULT_MODEL": "checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
