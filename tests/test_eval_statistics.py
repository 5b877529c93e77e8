"""Mean, Recall and Decay: the toolkit's definitions, its uint8 Decay quirk, and the corrected default."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from eval.statistics import decay_bins, summarize


def _toolkit_decay(values: np.ndarray) -> float:
    """The toolkit's expression (metrics.md section 5) run literally: uint8 bounds, NumPy >= 2 uint8 arithmetic."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = np.round(np.linspace(1, len(values), 5) + 1e-10) - 1
        ids = ids.astype(np.uint8)
        bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
        return float(np.nanmean(bins[0]) - np.nanmean(bins[3]))


def _uint8_cast_wraps() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return int(np.array([299.0]).astype(np.uint8)[0]) == 43


@pytest.mark.parametrize("n, first, last", [(1, (0, 1), (0, 1)), (2, (0, 1), (1, 2)), (48, (0, 13), (35, 48)),
                                            (98, (0, 25), (73, 98))])
def test_decay_bins_table(n, first, last):
    for compat in (False, True):
        bins = decay_bins(n, davis_compat=compat)
        assert bins[0] == first and bins[3] == last


def test_neighbouring_bins_share_an_endpoint():
    bins = decay_bins(48)
    assert [b[0] for b in bins[1:]] == [b[1] - 1 for b in bins[:-1]]


def test_recall_is_strictly_above_half_and_mean_is_plain():
    values = np.array([0.5, 0.5000001, 0.2, 1.0])
    stats = summarize(values)
    assert stats.recall == 0.5
    assert stats.mean == np.mean(values)


def test_decay_two_frames_is_first_minus_last():
    assert summarize(np.array([0.9, 0.3])).decay == pytest.approx(0.6)
    assert summarize(np.array([0.7])).decay == 0.0


@pytest.mark.parametrize("n", [*range(1, 60), 97, 98, 104, 200, 254, 255])
def test_both_modes_equal_the_toolkit_up_to_255_frames(n):
    values = np.random.default_rng(n).random(n)
    expected = _toolkit_decay(values)
    assert summarize(values).decay == expected
    assert summarize(values, davis_compat=True).decay == expected


@pytest.mark.skipif(not _uint8_cast_wraps(), reason="this CPU saturates out-of-range float->uint8 casts")
@pytest.mark.parametrize("n", [256, 257, 299, 400, 600])
def test_davis_compat_reproduces_the_uint8_wrap_and_default_is_correct(n):
    values = np.random.default_rng(n).random(n)
    compat = summarize(values, davis_compat=True).decay
    toolkit = _toolkit_decay(values)
    assert compat == toolkit or (math.isnan(compat) and math.isnan(toolkit))
    ids = [int(i) for i in np.round(np.linspace(1, n, 5) + 1e-10) - 1]
    intended = np.mean(values[ids[0]:ids[1] + 1]) - np.mean(values[ids[3]:ids[4] + 1])
    assert summarize(values).decay == intended


def test_256_frames_is_nan_in_compat_mode():
    assert math.isnan(summarize(np.linspace(1, 0, 256), davis_compat=True).decay)
    assert summarize(np.linspace(1, 0, 256)).decay > 0.7
