"""Video object segmentation with SegGPT: the runtime, flat in this package, plus two sub-packages.

- runtime: ``readers`` (frames in) -> ``prompts`` (prompt buffer) -> ``session`` (the model, per mode; ``windows``)
  -> ``writers`` (files out); ``masks`` (ids <-> model slots), ``pipeline`` (one video), ``datasets`` and ``runner``
  (many videos), ``config`` and ``frame_folders`` (torch-free settings and frame listing);
- ``vos.cli``: the ``seggpt-vos`` command line, a thin layer over this API;
- ``vos.training``: synthetic videos and training-pair samplers (used by ``scripts/train.py`` and the demo only).

Public API (imported lazily, PEP 562, so that the command line starts without torch)::

    VideoSession(predictor, video, PropagationConfig(...)) .add_mask / .add_prompt / .propagate -> Prediction
    run_video(predictor, video, masks, OutputSpec(...), config) -> VideoStats
    list_davis(root) / list_youtube_vos(split) -> [VideoTask]; run_tasks(predictor, tasks, out, config)
"""

from seggpt_core.lazy import lazy_exports

_EXPORTS = {
    "VideoSession": "session", "PropagationConfig": "session", "Prediction": "session",
    "Mode": "config", "WindowConfig": "windows",
    "run_video": "pipeline", "OutputSpec": "pipeline", "VideoStats": "pipeline",
    "list_davis": "datasets", "list_youtube_vos": "datasets", "VideoTask": "datasets", "DavisLayout": "datasets",
    "run_tasks": "runner", "Worker": "runner",
    "load_mask": "masks", "ObjectIds": "masks",
    "open_source": "readers",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
