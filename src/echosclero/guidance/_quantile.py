"""Fast order statistics for the per-frame hot paths, bit-identical to ``np.percentile`` / ``np.median``.

``np.percentile`` and ``np.median`` spend most of their time in Python-level argument handling (tens of
microseconds a call) on the small arrays the guidance stages give them. These helpers do the same selection
(``np.partition`` at the same order statistics) and the same interpolation arithmetic as NumPy's default
``method="linear"`` (``numpy.lib._function_base_impl._lerp``), in the same dtypes, so the results are equal
bit for bit (checked in ``tests/guidance/test_quantile.py``). With a NaN among the values the helpers defer to
NumPy (NaN sorts last: the last order statistic, selected as well, tells).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["median", "percentile", "percentile_rows"]


def _lerp_scalar_q(lo, hi, g: float):
    """NumPy's ``_lerp(lo, hi, g)`` for a Python-float weight (weak promotion: the arrays' dtype)."""
    d = hi - lo
    if g >= 0.5:
        return hi - d * (1 - g)
    return lo + d * g


def _indexes(n: int, q: float) -> tuple[int, int, float]:
    """Order statistics ``(previous, next)`` and weight of quantile ``q`` (0-1) among ``n`` values."""
    vi = (n - 1) * np.float64(q)
    if vi >= n - 1:
        return n - 1, n - 1, float(vi - (n - 1))  # both the maximum: the weight does not matter
    k = math.floor(vi)
    return k, k + 1, float(vi - k)


def _order_stats(flat: np.ndarray, ks: set[int]) -> dict[int, object] | None:
    """The ``k``-th smallest values of a 1-D array for ``k`` in ``ks``; ``None`` when a NaN is among the values.

    One ``np.partition`` per separate ``k`` (on what lies above the previous one: NumPy's partition at several
    indexes at once is several times slower); ``k + 1`` after ``k`` is the smallest value above it.
    """
    if flat.dtype == np.uint8 and flat.size > 1024:  # a histogram: all order statistics at once
        c = np.cumsum(np.bincount(flat, minlength=256))
        return {k: np.uint8(np.searchsorted(c, k, side="right")) for k in ks}
    out: dict[int, object] = {}
    base, arr = 0, flat
    for k in sorted(ks):
        if k in out:
            continue
        part = np.partition(arr, k - base)
        out[k] = part[k - base]
        arr, base = part[k - base + 1:], k + 1
        if k + 1 in ks and arr.size:
            out[k + 1] = arr.min()
    if flat.dtype.kind in "fc" and (np.isnan(arr).any() or np.isnan(np.array(list(out.values()))).any()):
        return None
    return out


def percentile(a: np.ndarray, q):
    """``np.percentile(a, q)`` (all values, linear method) for ``q`` a number or a sequence of numbers."""
    flat = np.ravel(a)
    n = flat.size
    if n == 0:
        return np.percentile(a, q)
    if isinstance(q, (int, float)):
        i, j, g = _indexes(n, np.true_divide(q, 100))
        v = _order_stats(flat, {i, j})
        if v is None:
            return np.percentile(a, q)
        return _lerp_scalar_q(v[i], v[j], g)
    qs = np.true_divide(np.asarray(q), 100)
    idx = [_indexes(n, float(x)) for x in qs.ravel()]
    v = _order_stats(flat, {k for i, j, _ in idx for k in (i, j)})
    if v is None:
        return np.percentile(a, q)
    lo = np.array([v[i] for i, _, _ in idx], dtype=flat.dtype)
    hi = np.array([v[j] for _, j, _ in idx], dtype=flat.dtype)
    g = np.array([w for _, _, w in idx], dtype=np.float64)
    d = hi - lo
    out = lo + d * g
    np.subtract(hi, d * (1 - g), out=out, where=g >= 0.5, casting="unsafe")
    return out.reshape(qs.shape)


def percentile_rows(a: np.ndarray, q: float) -> np.ndarray:
    """``np.percentile(a, q, axis=1)`` of a 2-D array for a number ``q`` (shape ``(rows,)``)."""
    n = a.shape[1]
    if n == 0:
        return np.percentile(a, q, axis=1)
    i, j, g = _indexes(n, np.true_divide(q, 100))
    part = np.partition(a, i, axis=1)
    lo = part[:, i]
    hi = part[:, i + 1:].min(axis=1) if j != i else lo
    if a.dtype.kind in "fc" and (np.isnan(lo).any() or np.isnan(hi).any()):
        return np.percentile(a, q, axis=1)
    return _lerp_scalar_q(lo, hi, g)


def median(a: np.ndarray):
    """``np.median(a)`` (all values)."""
    flat = np.ravel(a)
    n = flat.size
    if n == 0:
        return np.median(a)
    h = n // 2
    lo = h if n % 2 else h - 1
    v = _order_stats(flat, {lo, h})
    if v is None:
        return np.median(a)
    if flat.dtype.kind == "f" and flat.dtype.itemsize >= 4:  # np.mean: the sum in the array's dtype, then / n
        return v[h] if lo == h else (v[lo] + v[h]) / 2
    if flat.dtype.kind in "iub":  # np.mean of integers: in float64
        return np.float64(v[h]) if lo == h else (np.float64(v[lo]) + np.float64(v[h])) / 2
    return np.mean(np.array([v[lo], v[h]] if lo != h else [v[h]], dtype=flat.dtype))
