"""Video object segmentation with SegGPT: the runtime, flat in this package, plus three sub-packages.

- runtime: ``readers`` (frames in) -> ``prompts`` (prompt buffer) -> ``modes`` (the model, one pass object per mode;
  ``windows``) -> ``session`` (keyframes, directions, the result ``store``) -> ``writers`` and the editor formats
  (``sequences``, ``alpha_video``, ``exr``, after ``mattes`` clean-up) -> files, each stage on its own thread
  (``threads``); ``motion`` (optical flow prior); ``edges`` (outlines onto the frame's edges); ``masks`` (ids <->
  model slots), ``pipeline`` (one video), ``datasets`` and ``runner`` (many videos), ``config`` and ``frame_folders``
  (torch-free settings and frame listing);
- ``vos.cli``: the ``seggpt-vos`` command line, a thin layer over this API;
- ``vos.app``: the local web app and its HTTP API, another thin layer;
- ``vos.training``: synthetic videos and training-pair samplers (used by ``scripts/train.py`` and the demo only).

Public API (imported lazily, PEP 562, so that the command line starts without torch)::

    VideoSession(predictor, video, PropagationConfig(...)) .add_mask / .propagate(direction) -> Prediction
    run_video(predictor, video, masks, OutputSpec(...), config) -> VideoStats
    list_davis(root) / list_youtube_vos(split) -> [VideoTask]; run_tasks(predictor, tasks, out, config)
"""

from seggpt_core.lazy import lazy_exports

_EXPORTS = {
    "VideoSession": "session", "Prediction": "session",
    "PropagationConfig": "config", "WindowConfig": "config", "Mode": "config", "Direction": "config",
    "Motion": "config", "MotionConfig": "config", "EdgeConfig": "config",
    "run_video": "pipeline", "OutputSpec": "pipeline", "VideoStats": "pipeline",
    "MatteCleanup": "mattes",
    "list_davis": "datasets", "list_youtube_vos": "datasets", "VideoTask": "datasets", "DavisLayout": "datasets",
    "run_tasks": "runner", "Worker": "runner",
    "load_mask": "masks", "ObjectIds": "masks",
    "open_source": "readers",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
