"""Reducing one object's per-frame J or F to the DAVIS statistics: Mean, Recall and Decay.

Decay compares the first and last quarters of the sequence through four bins whose bounds come from
``round(linspace(1, N, 5) + 1e-10) - 1``; neighbouring bins share an endpoint frame. The official toolkit casts those
bounds to uint8, so for N >= 256 frames they wrap modulo 256 and Decay becomes NaN or reads the wrong frames. Both
modes give the same value for N <= 255 (every DAVIS sequence); ``davis_compat=True`` reproduces the wrap (toolkit
under NumPy >= 2), the default computes the intended bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Longest per-object frame count for which the toolkit's uint8 Decay bins are correct.
DAVIS_COMPAT_MAX_FRAMES = 255


@dataclass(frozen=True)
class MetricStats:
    """Mean, Recall (fraction of frames scoring strictly above 0.5) and Decay of one metric."""

    mean: float
    recall: float
    decay: float


def decay_bins(num_frames: int, davis_compat: bool = False) -> list[tuple[int, int]]:
    """The four (start, stop) slices Decay averages; with ``davis_compat`` the bounds wrap modulo 256 like uint8."""
    bounds = [int(b) for b in np.round(np.linspace(1, num_frames, 5) + 1e-10) - 1]
    if davis_compat:
        bounds = [b % 256 for b in bounds]
    return [(bounds[i], (bounds[i + 1] + 1) % 256 if davis_compat else bounds[i + 1] + 1) for i in range(4)]


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else math.nan


def summarize(values: np.ndarray, davis_compat: bool = False) -> MetricStats:
    """Mean, Recall and Decay of one object's (N,) per-frame scores, N >= 1."""
    values = np.asarray(values, dtype=np.float64)
    bins = [values[start:stop] for start, stop in decay_bins(len(values), davis_compat)]
    return MetricStats(mean=_mean(values), recall=_mean(values > 0.5), decay=_mean(bins[0]) - _mean(bins[3]))


def decay_differs_from_toolkit(num_frames: int) -> bool:
    """Whether the default (correct) Decay can differ from the official toolkit's for this many frames."""
    return num_frames > DAVIS_COMPAT_MAX_FRAMES
