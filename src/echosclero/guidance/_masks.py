"""Small helpers on masks and images for the per-frame hot paths."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["mask_bbox", "shrink"]


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int, int] | None:
    """``(row0, row1, col0, col1, count)`` of the set pixels of a 2-D bool or uint8 mask (ends exclusive), or
    ``None`` when none is set. The same box as the extremes of ``np.nonzero(mask)``, about ten times faster."""
    m = mask.view(np.uint8) if mask.dtype == bool else mask
    n = cv2.countNonZero(m)
    if n == 0:
        return None
    x, y, w, h = cv2.boundingRect(m)
    return y, y + h, x, x + w, n


def shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average ``img`` down to ``size`` (width, height): exact 2 x 2 means while the image is at least twice
    the target (OpenCV's fast path), then one area resize for the rest. Within a grey level of a single area
    resize, at half the cost for a 512-pixel frame."""
    w, h = size
    while img.shape[1] >= 2 * w and img.shape[0] >= 2 * h:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
