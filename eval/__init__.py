"""Video object segmentation metrics: DAVIS 2017 J&F (identical to the official toolkit) and YouTube-VOS scoring.

Stand-alone: no torch, no model imports. Public API (imported lazily so that ``seggpt-vos`` starts fast)::

    evaluate_davis(davis_root, results_dir, set_name="val", *, protocol, workers, davis_compat) -> Report
    evaluate_ytvos(split_root, results_dir, *, seen, workers, davis_compat) -> Report
    build_submission(split_root, results_dir, zip_path) -> int
    write_csvs(report, out_dir), format_report(report) -> str
"""

from importlib import import_module

_API = {
    "EvalError": "errors",
    "Protocol": "sequence",
    "ObjectResult": "sequence",
    "Report": "report",
    "GlobalScores": "report",
    "MetricStats": "statistics",
    "evaluate_davis": "davis",
    "evaluate_ytvos": "ytvos",
    "build_submission": "ytvos",
    "seen_categories": "ytvos",
    "overall_score": "ytvos",
    "write_csvs": "report",
    "format_report": "report",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
