"""SegGPT (arXiv 2304.03284) for in-context segmentation: model, checkpoints, predictor, training.

Exports load lazily (PEP 562) so that light users such as the CLI's error handling import no torch.
"""

from .lazy import lazy_exports

_EXPORTS = {
    "SegGPT": "model", "SegGPTConfig": "model", "PRESETS": "model",
    "SegGPTPredictor": "predictor", "Prompt": "predictor",
    "TunedPrompt": "tuned_prompt",
    "InputError": "errors",
    "label_colours": "colours",
    "DEFAULT_MODEL": "checkpoint",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
