"""Sclerosant foam: helpers of the per-track fill-fraction estimate (see ``Engine._update_geometry``).

Foam is echogenic (microbubbles) inside an anechoic lumen. The lumen detector follows the dark blood, so as foam
spreads the detected lumen shrinks to the part still free of foam: the fill fraction is therefore measured within
the *reference* outline of the lumen as last seen free of foam, and that outline must not follow the detection
while foam appears. All levels are ratios to the frame's own local tissue level (no absolute grey level).
"""

from __future__ import annotations

import cv2
import numpy as np

from echosclero.guidance._masks import mask_bbox
from echosclero.guidance._quantile import median
from echosclero.guidance.preprocess import Prepared

__all__ = ["CONTENT_RATIO", "FOAM_RATIO", "content_ratio", "fill_fraction", "filling_from_top", "foam_width_mm",
           "lost_to_echoes", "needle_shade", "tip_in_mask"]

#: Foam: grey / local tissue level above which a lumen pixel is echogenic content (blood is < 0.5).
FOAM_RATIO = 0.9
#: Share of the reference lumen that must turn echogenic inside it before the outline is frozen.
LOST_SHARE = 0.02
#: Grey / local tissue level from which a lumen pixel holds echogenic content (foam, even shadowed by the foam
#: above it); blood stays well below (the lumen detector takes < 0.6 as lumen).
CONTENT_RATIO = 0.5
#: ... as a share of the way from the lumen's own anechoic level to the tissue level (see :func:`content_ratio`).
CONTENT_SHARE = CONTENT_RATIO
#: A lumen whose free core reads above this (ratio) is not anechoic enough to judge foam against: capped.
MAX_LUMEN_LEVEL = 0.6
#: The foam's width is read inside the outline grown by the first figure (mm: the wall and the blur) against the
#: tissue in the ring between the two figures (mm); only foam this much brighter than that tissue (ratio).
WIDTH_RING_MM = (0.6, 1.2)
MIN_FOAM_OVER_TISSUE = 1.08
#: ... over the rows within this many working pixels (0.2 mm each) of the outline's widest row.
WIDTH_ROWS = 4
#: Rows (working pixels, 0.2 mm) the floor of a lumen may rise while foam fills it from the top (edge jitter).
FLOOR_SLACK_PX = 2

_K3 = np.ones((3, 3), np.uint8)


def content_ratio(lumen_level: float | None) -> float:
    """Grey / local tissue level from which a pixel of a lumen holds echogenic content (foam, thrombus).

    Judged against the lumen's own earlier, anechoic level (``lumen_level``, the median ratio of its core while
    free) and the local tissue (ratio 1): content lies over :data:`CONTENT_SHARE` of the way from one to the
    other. A scanner whose lumens are near black (level ~0) gives :data:`CONTENT_RATIO`; one that fills lumens
    with clutter (real scanners, plane-wave imaging: levels 0.3-0.5) asks for more. Unknown level: as black."""
    level = 0.0 if lumen_level is None else min(max(lumen_level, 0.0), MAX_LUMEN_LEVEL)
    return level + CONTENT_SHARE * (1.0 - level)


def lost_to_echoes(prep: Prepared, ref: np.ndarray, mask: np.ndarray, exclude: np.ndarray | None, *,
                   ratio: float = FOAM_RATIO, from_top: bool = False) -> bool:
    """Has part of the reference lumen ``ref`` dropped out of the detection ``mask`` because it turned echogenic?

    The pixels of the (eroded, to ignore edge jitter) reference outline that the detection no longer covers
    are compared with the local tissue level (echogenic: grey / tissue level above ``ratio``); the needle
    (``exclude``) is not counted. True when at least :data:`LOST_SHARE` of the reference lumen (and a few
    pixels) now reads echogenic: foam filling the lumen, not the lumen moving or narrowing (whose lost pixels
    at the edge the erosion leaves out).

    ``from_top`` (a transverse lumen and no needle to say an injection is on): foam floats, so it takes the
    upper part of the lumen first while the floor of the lumen stays where it was; a lumen squeezed by the
    probe or by a moving neighbour loses its floor too. True only for echoes lost above the middle of the
    reference with the detection still reaching the reference's floor.
    """
    box = mask_bbox(ref)
    if box is None or box[4] < 8:
        return False
    r0, r1 = max(0, box[0] - 1), min(ref.shape[0], box[1] + 1)
    c0, c1 = max(0, box[2] - 1), min(ref.shape[1], box[3] + 1)
    core = cv2.erode(ref[r0:r1, c0:c1].astype(np.uint8), _K3).astype(bool)
    held = mask[r0:r1, c0:c1]
    lost = core & ~cv2.dilate(held.astype(np.uint8), _K3).astype(bool)
    if exclude is not None:
        lost &= ~exclude[r0:r1, c0:c1]
    if not lost.any():
        return False
    echo = prep.ratio[r0:r1, c0:c1] > np.float32(ratio)
    hits = lost & echo
    if from_top:
        rows_ref = np.flatnonzero(core.any(axis=1))
        rows_now = np.flatnonzero(held.any(axis=1))
        if rows_ref.size == 0 or rows_now.size == 0 or rows_now[-1] < rows_ref[-1] - FLOOR_SLACK_PX:
            return False  # the floor of the lumen moved up: squeezed, not filled
        hits[(rows_ref[0] + rows_ref[-1]) // 2 + 1:] = False
    n = int(np.count_nonzero(hits))
    return n >= max(4, LOST_SHARE * box[4])


def filling_from_top(prep: Prepared, ref: np.ndarray, mask: np.ndarray, *, ratio: float) -> bool:
    """Does the detection ``mask`` lack an echogenic top of the reference lumen ``ref``, its floor in place?

    Foam floats: a lumen filling slowly from the top loses a row or so of its upper part per frame to echoes
    while its floor stays. Each frame's loss is too thin for :func:`lost_to_echoes` (which erodes the edges),
    so the reference outline is held while this holds and the loss adds up against it. The lost pixels of the
    upper half must read echogenic on the whole (median above ``ratio``): a lumen whose wall merely moves in the
    dark does not hold its outline."""
    box = mask_bbox(ref)
    if box is None or box[4] < 8:
        return False
    r0, r1, c0, c1, _ = box
    held = mask[r0:r1, c0:c1]
    rows_now = np.flatnonzero(held.any(axis=1))
    if rows_now.size == 0 or rows_now[-1] < (r1 - r0 - 1) - FLOOR_SLACK_PX:
        return False  # the floor moved up (probe pressure, a neighbour): not filling from the top
    half = (r1 - r0) // 2
    lost = ref[r0:r0 + half, c0:c1] & ~held[:half]
    if np.count_nonzero(lost) < 3:
        return False
    return float(median(prep.ratio[r0:r0 + half, c0:c1][lost])) > ratio


def foam_width_mm(prep: Prepared, ref: np.ndarray, hidden: np.ndarray | None = None) -> float | None:
    """Lateral width (mm) of the foam filling a transverse lumen, through the middle of its resting outline.

    The grey / tissue level is averaged over the rows where the resting outline ``ref`` is widest (the fasciae
    that run over and under a saphenous vein, as bright as foam, cross the rows near its top and floor), and
    each side's edge is where that profile falls, going out from the middle, to half-way between the foam's
    level (the middle of the profile) and the tissue's (a ring 0.6-1.2 mm outside the outline). As the vein
    goes into spasm its wall moves in and the foam narrows with it; the width is compared with the width at the
    start (see ``Engine``), so the wall's own thickness and the blur cancel. A side the needle hides
    (``hidden``) is read as the mirror of the other. ``None`` when the foam is not clearly brighter than the
    tissue around it or neither side can be read."""
    box = mask_bbox(ref)
    if box is None or box[4] < 16:
        return None
    pad = max(2, int(round(WIDTH_RING_MM[1] / prep.mm_per_px_x)))
    rows, cols = ref.shape
    r0, r1 = max(0, box[0] - pad), min(rows, box[1] + pad)
    c0, c1 = max(0, box[2] - pad), min(cols, box[3] + pad)
    sub = ref[r0:r1, c0:c1].astype(np.uint8)
    widths = sub.sum(axis=1)
    mid_r = int(np.argmax(widths))
    cols_in = np.flatnonzero(sub[mid_r])
    mid_c = int(0.5 * (cols_in[0] + cols_in[-1]))
    half_w = 0.5 * (cols_in[-1] - cols_in[0] + 1)
    band = slice(max(0, mid_r - WIDTH_ROWS), min(sub.shape[0], mid_r + WIDTH_ROWS + 1))
    ratio = prep.ratio[r0:r1, c0:c1][band]
    free = np.ones(ratio.shape, bool) if hidden is None else ~hidden[r0:r1, c0:c1][band]
    n = free.sum(axis=0)
    prof = np.where(n > 0, (ratio * free).sum(axis=0) / np.maximum(n, 1), np.nan)
    readable = n >= 0.5 * free.shape[0]
    k_in = 2 * max(1, int(round(WIDTH_RING_MM[0] / prep.mm_per_px_x))) + 1
    near = cv2.dilate(sub, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k_in, k_in))).astype(bool)
    ring = cv2.dilate(sub, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1,) * 2)).astype(bool) & ~near
    ring[:max(0, mid_r - 2 * WIDTH_ROWS)] = False  # beside the vein, not the fascia over it
    ring[mid_r + 2 * WIDTH_ROWS + 1:] = False
    if np.count_nonzero(ring) < 8:
        return None
    tissue = float(median(prep.ratio[r0:r1, c0:c1][ring]))
    core = np.zeros(prof.size, bool)
    core[max(0, int(mid_c - 0.6 * half_w)):int(mid_c + 0.6 * half_w) + 1] = True
    core &= readable
    if np.count_nonzero(core) < 4:
        return None
    foam = float(np.median(prof[core]))
    if foam < tissue * MIN_FOAM_OVER_TISSUE:
        return None  # foam as grey as the tissue around it: its edge cannot be read
    level = 0.5 * (foam + tissue)
    radii = []
    for step in (-1, 1):
        c = mid_c
        edge = None
        while 0 <= c + step < prof.size:
            if not readable[c + step]:
                break  # hidden before the edge: this side cannot be read
            if prof[c + step] < level:
                a, b = prof[c], prof[c + step]
                edge = c + step * (a - level) / max(a - b, 1e-6)  # sub-pixel crossing
                break
            c += step
        if edge is not None:
            radii.append(abs(edge - mid_c))
    if not radii:
        return None
    return (sum(radii) if len(radii) == 2 else 2.0 * radii[0]) * prep.mm_per_px_x


def tip_in_mask(prep: Prepared, mask: np.ndarray, tip_mm: tuple[float, float], tol_mm: float = 0.6) -> bool:
    """Is the needle tip within ``tol_mm`` of the lumen ``mask``?"""
    r, c = prep.to_px(*tip_mm)
    r, c = int(round(float(r))), int(round(float(c)))
    dr = int(np.ceil(tol_mm / prep.mm_per_px_z))
    dc = int(np.ceil(tol_mm / prep.mm_per_px_x))
    r0, r1 = max(0, r - dr), min(mask.shape[0], r + dr + 1)
    c0, c1 = max(0, c - dc), min(mask.shape[1], c + dc + 1)
    return r0 < r1 and c0 < c1 and bool(mask[r0:r1, c0:c1].any())


def needle_shade(prep: Prepared, needle_m, exclude: np.ndarray | None) -> np.ndarray:
    """Working-resolution mask of what the needle hides: the shaft (``exclude``) and, down the scan lines
    (vertical for a linear array), everything below it — the shaft's acoustic shadow and reverberations.
    Foam cannot be read there (it is neither seen as bright nor as dark)."""
    rows, cols = prep.shape
    shade = np.zeros((rows, cols), bool) if exclude is None else exclude.copy()
    (ex, ez), (tx, tz) = needle_m.entry_mm, needle_m.tip_mm
    if needle_m.plane == "out":
        rad = max(prep.mm_per_px_x, needle_m.dot_radius_mm)
        ex, ez, tx, tz = tx - rad, tz, tx + rad, tz
    r0, c0 = prep.to_px(ex, ez)
    r1, c1 = prep.to_px(tx, tz)
    c_lo, c_hi = int(np.floor(min(c0, c1))), int(np.ceil(max(c0, c1)))
    c_lo, c_hi = max(0, c_lo), min(cols - 1, c_hi)
    if c_hi < c_lo:
        return shade
    cc = np.arange(c_lo, c_hi + 1, dtype=np.float64)
    z = r0 + (r1 - r0) * (cc - c0) / (c1 - c0) if abs(c1 - c0) > 1e-6 else np.full(cc.size, min(r0, r1))
    top = np.clip(np.floor(z).astype(int), 0, rows)
    shade[:, c_lo:c_hi + 1] |= np.arange(rows)[:, None] >= top[None, :]
    return shade


def _best_split(meas: np.ndarray, full: np.ndarray) -> int:
    """Index ``k`` splitting a 1-D series into foam (``< k``) and blood (``>= k``) with the fewest
    disagreements: dark pixels on the foam side plus echogenic pixels on the blood side."""
    cost = np.concatenate([[0], np.cumsum(meas - full)]) + (full.sum() - np.concatenate([[0], np.cumsum(full)]))
    return int(np.argmin(cost))


def fill_fraction(region: np.ndarray, content: np.ndarray, measurable: np.ndarray, longitudinal: bool) -> float:
    """Fraction of the lumen ``region`` filled with foam, from the echogenic ``content`` of its ``measurable``
    pixels (all boolean arrays of one shape, cropped to the lumen).

    The foam is read as a layer, not pixel by pixel, so that foam darkened by its own shadow (microbubbles
    attenuate strongly) or hidden by the needle still counts where the layer says it is:

    * transverse: foam, lighter than blood, rises to the non-dependent (upper) part of the lumen: the fill is
      the share of the lumen above the level that best separates echogenic rows from dark rows;
    * longitudinal: foam fills the whole cross-section over a length of the vein: each column of the lumen is
      foam or blood (majority of its measurable pixels), a column that cannot be read takes the state of its
      readable neighbours when they agree, and the fill is the share of the lumen in foam columns.
    """
    n = int(region.sum())
    if n == 0:
        return 0.0
    if not longitudinal:
        meas = measurable.sum(axis=1).astype(np.float64)
        full = (content & measurable).sum(axis=1).astype(np.float64)
        k = _best_split(meas, full)
        return float(region[:k].sum()) / n
    meas = measurable.sum(axis=0)
    full = (content & measurable).sum(axis=0)
    size = region.sum(axis=0)
    readable = (meas >= np.maximum(2, 0.3 * size)) & (size > 0)
    foam = readable & (full >= 0.5 * np.maximum(meas, 1))
    if not readable.all():
        idx = np.flatnonzero(readable)
        if idx.size:
            left = np.maximum.accumulate(np.where(readable, np.arange(size.size), -1))
            right = np.minimum.accumulate(np.where(readable, np.arange(size.size), size.size)[::-1])[::-1]
            lf = np.where(left >= 0, foam[np.clip(left, 0, None)], False)
            rf = np.where(right < size.size, foam[np.clip(right, None, size.size - 1)], False)
            # unreadable run: foam when both readable ends are foam, or one is and the run ends the lumen
            lf |= (left < 0) & rf
            rf |= (right >= size.size) & lf
            foam = np.where(readable, foam, lf & rf)
    return float(size[foam].sum()) / n
