"""seggpt-vos: video object segmentation with SegGPT. Public API (imported on first use, so ``vos.config`` stays
free of torch):

    from vos import VideoSession, Prediction, PropagationConfig, WindowConfig, Mode, Direction,
        Motion, MotionConfig
"""

_PUBLIC = {"VideoSession": "session", "Prediction": "session", "PropagationConfig": "config",
           "WindowConfig": "config", "Mode": "config", "Direction": "config", "Motion": "config",
           "MotionConfig": "config"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
