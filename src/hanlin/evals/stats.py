"""The statistics of evaluation results: percentiles and bootstrap confidence intervals (a
run's mean, and the paired difference of two runs), seeded so a report is reproducible."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: bootstrap resamples: the interval's ends move by well under 0.01 between seeds at 2,000
RESAMPLES = 2000
SEED = 0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100, linear interpolation); None without values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def mean_ci(
    values: Sequence[float], *, level: float = 0.95, seed: int = SEED
) -> tuple[float, float, float] | None:
    """The mean and its percentile-bootstrap interval; None without values."""
    if not values:
        return None
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data), size=(RESAMPLES, len(data)))
    means = data[idx].mean(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return mean, float(lo), float(hi)


def paired_delta_ci(
    a: Sequence[float], b: Sequence[float], *, level: float = 0.95, seed: int = SEED
) -> tuple[float, float, float] | None:
    """The mean of ``b - a`` over paired examples and its bootstrap interval (the same
    examples resampled for both runs, so per-example difficulty cancels out)."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    return mean_ci([y - x for x, y in zip(a, b, strict=True)], level=level, seed=seed)


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
