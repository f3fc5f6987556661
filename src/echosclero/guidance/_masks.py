"""Small helpers on binary masks for the per-frame hot paths."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["mask_bbox"]


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int, int] | None:
    """``(row0, row1, col0, col1, count)`` of the set pixels of a 2-D bool or uint8 mask (ends exclusive), or
    ``None`` when none is set. The same box as the extremes of ``np.nonzero(mask)``, about ten times faster."""
    m = mask.view(np.uint8) if mask.dtype == bool else mask
    n = cv2.countNonZero(m)
    if n == 0:
        return None
    x, y, w, h = cv2.boundingRect(m)
    return y, y + h, x, x + w, n
