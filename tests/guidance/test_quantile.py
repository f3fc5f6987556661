"""The fast order statistics of the guidance hot paths equal NumPy's bit for bit (value and dtype)."""

import numpy as np
import pytest

from echosclero.guidance._masks import mask_bbox
from echosclero.guidance._quantile import median, percentile, percentile_rows


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _arrays(seed: int):
    rng = np.random.default_rng(seed)
    for trial in range(300):
        size = int(rng.integers(1, 400)) if trial % 5 else int(rng.integers(1000, 20000))
        kind = trial % 3
        if kind == 2:
            yield rng.integers(0, 256, size).astype(np.uint8)
            continue
        a = (rng.random(size) * rng.choice([1.0, 1e-3, 100.0])).astype(np.float32 if kind == 0 else np.float64)
        if trial % 7 == 0:
            a = np.round(a, 1).astype(a.dtype)  # ties
        if trial % 50 == 1:
            a[rng.integers(0, size)] = np.nan
        yield a


@pytest.mark.parametrize("seed", [0, 1])
def test_equal_to_numpy(seed):
    for a in _arrays(seed):
        for q in (0, 2, 50, 60, 75, 95, 98, 99.7, 100):
            assert _same(percentile(a, q), np.percentile(a, q))
        for qs in ((2, 98), (50, 99.7)):
            assert _same(percentile(a, qs), np.percentile(a, qs))
        assert _same(median(a), np.median(a))
        if a.size >= 8 and a.dtype != np.uint8:
            m = a[: a.size - a.size % 4].reshape(4, -1)
            assert _same(percentile_rows(m, 95), np.percentile(m, 95, axis=1))
        if a.size >= 6:
            assert _same(median(a[:6].reshape(2, 3)), np.median(a[:6].reshape(2, 3)))


def test_mask_bbox():
    m = np.zeros((20, 30), bool)
    assert mask_bbox(m) is None
    m[3:7, 10:12] = True
    m[9, 5] = True
    assert mask_bbox(m) == (3, 10, 5, 12, 9)
