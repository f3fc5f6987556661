"""Acoustic shadows: columns darkened below a strong reflector or attenuator (needle shaft, foam, calcium).

A shadow is not a lumen. Both are dark, but a lumen has tissue echoes (often enhanced) below it, while a
shadow darkens everything down its scan lines from the attenuator to the bottom of the image. For a linear
array (parallel vertical scan lines, no steering) that gives a test that needs no knowledge of the cause:

1. the expected tissue level per depth, ``E(z)``: a high percentile of each row (most of a row is tissue, even
   when a shadow or a long-axis lumen crosses it);
2. a column is *shadowed at the bottom* when its deepest :data:`BOTTOM_BAND_MM` stay below
   :data:`SHADOW_LEVEL` x ``E(z)``;
3. in such a column the shadow reaches upward, through short bright interruptions (a fascia still seen
   through the shadow), until the column is back at tissue level over :data:`WINDOW_MM` — the attenuator.

Lumens inside a shadow cannot be seen reliably; the tracker keeps the outline it knew (see
:mod:`echosclero.guidance.tracking`).
"""

from __future__ import annotations

import cv2
import numpy as np

from echosclero.guidance._quantile import percentile_rows
from echosclero.guidance.preprocess import Prepared

__all__ = ["acoustic_shadow"]

#: Depth band at the bottom of the image that decides whether a column is shadowed (mm).
BOTTOM_BAND_MM = 2.5
#: A shadowed column is darker than this fraction of the tissue level at the same depth.
SHADOW_LEVEL = 0.6
#: Vertical averaging window when walking up a shadowed column (mm): thinner bright lines do not stop it.
WINDOW_MM = 3.0
#: Percentile of a row taken as its tissue level.
TISSUE_PERCENTILE = 95
#: Narrowest shadow kept (mm); thinner dark columns are edge or refraction artefacts.
MIN_WIDTH_MM = 0.6


def acoustic_shadow(prep: Prepared) -> np.ndarray:
    """Boolean mask (working resolution) of the pixels that lie in an acoustic shadow.

    Parameters
    ----------
    prep
        The prepared frame (:func:`echosclero.guidance.preprocess.prepare`).

    Returns
    -------
    (r, c) bool ndarray
        ``True`` inside a shadow.
    """
    s = prep.small
    rows, cols = s.shape
    level = percentile_rows(s, TISSUE_PERCENTILE)[:, None].astype(np.float32)
    q = s / np.maximum(level, np.float32(1e-3))
    band = max(2, int(round(BOTTOM_BAND_MM / prep.mm_per_px_z)))
    shadowed = q[-band:].mean(axis=0) < SHADOW_LEVEL
    width = max(1, int(round(MIN_WIDTH_MM / prep.mm_per_px_x)))
    if width > 1:  # drop isolated thin columns
        shadowed = cv2.morphologyEx(shadowed.astype(np.uint8)[None, :], cv2.MORPH_OPEN,
                                    np.ones((1, width), np.uint8))[0].astype(bool)
    mask = np.zeros((rows, cols), bool)
    if not shadowed.any():
        return mask
    win = max(1, int(round(WINDOW_MM / prep.mm_per_px_z)))
    # fraction of dark pixels in a sliding vertical window: a thin bright line (a fascia seen through the
    # shadow) is outvoted, the attenuator above the shadow (tissue at its normal level) is not
    dark = (q[:, shadowed] < SHADOW_LEVEL + 0.1).astype(np.float32)
    bright = cv2.blur(dark, (1, win), borderType=cv2.BORDER_REPLICATE) < 0.5
    # top of the shadow: one row below the deepest window still at tissue level
    any_bright = bright.any(axis=0)
    last_bright = rows - 1 - np.argmax(bright[::-1], axis=0)
    top = np.where(any_bright, last_bright + 1, 0)
    r = np.arange(rows)[:, None]
    mask[:, shadowed] = r >= top[None, :]
    return mask
