"""Vessel lumen detection: dark (anechoic) regions, relative to the local tissue level, of vessel size and shape.

Classical pipeline at the working resolution (see :mod:`echosclero.guidance.preprocess`):

1. ``ratio = small / background``: the grey level relative to the surrounding tissue (blood is anechoic,
   about 30-40 dB below soft tissue, so its ratio is far below 1 whatever the gain);
2. lumen mask ``ratio < LUMEN_RATIO``, opened with a ~0.4 mm disk (speckle holes) and hole-filled;
3. connected components, gated on size and shape in millimetres: transverse lumens are compact ellipses,
   longitudinal ones long bands; acoustic shadows (dark columns reaching the bottom of the image) are refused.

A second detector finds *echogenic* lumens (a thrombosed vein is filled with grey thrombus, not black blood)
as regions enclosed by a bright vessel wall ring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from echosclero.guidance._quantile import median, percentile
from echosclero.guidance.preprocess import Prepared

__all__ = ["Lumen", "detect_learned_lumens", "detect_lumens", "detect_walled_lumens", "half_way_edges", "is_round",
           "lumen_from_mask", "lumen_mask", "merge_lumens"]

#: Grey / local tissue level below which a pixel is lumen (anechoic blood is ~0.1-0.35 at 60 dB display).
LUMEN_RATIO = 0.6
#: Edge refinement: the lumen edge is where the grey crosses lumen level + EDGE_FRACTION x (rim - lumen).
#: Log compression makes the bright wall bleed into the anechoic lumen, so the edge sits above the midpoint.
EDGE_FRACTION = 0.7
#: Largest lumen level / rim level: blood is far darker than the wall around it; a shadow is not.
MAX_CONTRAST = 0.5
#: Lumens less contrasted than that, up to SOFT_MAX_CONTRAST (blood not fully anechoic: clutter, noise at
#: depth, another scanner's physics), are kept only when compact, round (solidity >= SOFT_SOLIDITY), at least
#: SOFT_MIN_DIAMETER_MM across and not a slice of a shadow column.
SOFT_MAX_CONTRAST = 0.8
SOFT_SOLIDITY = 0.9
SOFT_MIN_DIAMETER_MM = 2.5
#: Smallest and largest equivalent diameters reported (mm): tributaries ~1.5 mm to the common femoral vein.
MIN_DIAMETER_MM = 1.3
MAX_DIAMETER_MM = 16.0
#: A band whose length is this many times its width is a vessel seen in long axis.
LONGITUDINAL_ELONGATION = 3.0
#: Minimum solidity (area / convex hull area) of a transverse lumen.
MIN_SOLIDITY = 0.82
#: Touching lumens are split only where the neck between them is narrower than this fraction of the
#: smaller lumen's radius (a bean-shaped single lumen has a wide waist).
NECK_FRACTION = 0.7
#: Strongest distance-transform maxima examined when splitting (plateaus give many equal maxima).
MAX_SPLIT_PEAKS = 64
#: Touching lumens whose cores differ this much in colour-flow fraction are split even across a wide neck.
FLOW_SPLIT = 0.5
#: A component less solid than this (area / convex hull area) is tested for touching lumens.
SPLIT_SOLIDITY = 0.95
#: A needle (shaft, cross-section echo and their reverberations) cutting a lumen: gaps up to twice this
#: radius (mm) are bridged inside the needle's mask.
BRIDGE_MM = 1.0
#: Bright wall ring around an echogenic lumen: ring grey / local tissue level.
WALL_RATIO = 1.25
#: ... or a ridge standing this much (ratio units) above its surroundings (white top-hat over a square of
#: half-side WALL_TOPHAT_MM): a thin wall blurred at the working pitch.
WALL_TOPHAT = 0.2
WALL_TOPHAT_MM = 1.0
#: A weakly contrasted long-axis lumen is kept when a wall-bright pixel lies within this distance (mm) of its
#: upper and of its lower edge in at least BAND_WALL_SHARE of its columns (two parallel walls).
BAND_WALL_MM = 0.8
BAND_WALL_SHARE = 0.7
#: Smallest echogenic (wall-ringed) lumen (mm): smaller closed rings are crossings of fascial lines and speckle.
WALLED_MIN_DIAMETER_MM = 3.0
#: A wall-ringed hole is a vessel when it fits an ellipse this well (intersection over union).
RING_ELLIPSE_IOU = 0.9
#: Two long-axis vessels one above the other over at least this length (mm) are split at their junction.
MIN_BRANCH_MM = 3.0
#: Long-axis pieces on either side of an in-plane needle are joined across gaps up to twice this (mm), inside
#: the needle's mask only.
JOIN_MM = 2.5
#: Shadow-column test of a new candidate: tissue straight below it (depth window, mm) darker than this fraction
#: of the tissue at the same depths beside it means the candidate is a slice of an acoustic shadow between two
#: bright layers (a blood-filled lumen has tissue at its normal level, often enhanced, below it).
BELOW_MM = (1.0, 10.0)
SHADOW_BELOW_RATIO = 0.75
#: ... or when the tissue straight below is lumen-dark over this fraction of the window, the flanks lit.
SHADOW_DARK_ROWS = 0.8
#: ... and over this fraction of the depth from there to the bottom of the image.
SHADOW_DEEP_ROWS = 0.6


@dataclass(eq=False)
class Lumen:
    """One detected lumen (working-resolution mask plus physical measures).

    ``mask`` is a boolean crop at ``(row0, col0)`` of the working image. ``contour_mm`` (N, 2) is its outline
    in ``(x_mm, z_mm)``. ``diameter_mm``: equivalent-circle diameter (transverse) or mean tube width
    (longitudinal). ``echogenic``: found by its wall ring, not by anechoic blood (possible thrombus).
    """

    mask: np.ndarray
    row0: int
    col0: int
    area_mm2: float
    center_mm: tuple[float, float]
    diameter_mm: float
    longitudinal: bool
    contour_mm: np.ndarray
    mean_ratio: float
    echogenic: bool = False
    contrast: float = 0.0
    #: Part of the lumen lies in an acoustic shadow: its outline and size are not fully seen.
    occluded: bool = False
    #: How sure the detector is that this is a vessel lumen (0-1): the network's mean probability over the
    #: lumen, or for a lumen found by contrast alone, how far below the wall its grey lies.
    confidence: float = 1.0
    #: Found by the lumen network (:mod:`.lumen_net`) rather than by contrast alone.
    learned: bool = False
    #: Lateral and axial extent through the centre (mm), sub-pixel, where the grey crosses half-way between lumen
    #: and wall (transverse lumens whose edge was placed that way; else None).
    width_mm: float | None = None
    depth_mm: float | None = None

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(row0, col0, row1, col1), exclusive end, in working pixels."""
        return self.row0, self.col0, self.row0 + self.mask.shape[0], self.col0 + self.mask.shape[1]


def _disk(radius_px: float) -> np.ndarray:
    return _disk_of(max(1, int(round(radius_px))))


@lru_cache(maxsize=64)
def _disk_of(r: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    k.setflags(write=False)
    return k


def lumen_mask(prep: Prepared, *, ratio: float = LUMEN_RATIO) -> np.ndarray:
    """Binary (uint8 0/1) anechoic-lumen mask at working resolution."""
    dark = prep.small < prep.background * np.float32(ratio)
    if prep.imaged is not None:
        dark &= prep.imaged  # the black around the footprint is not lumen
    m = dark.astype(np.uint8)
    k = _disk(0.3 / prep.mm_per_px_x)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
    return m


def _label_type(m: np.ndarray) -> int:
    """Label type for ``cv2.connectedComponentsWithStats`` of ``m``: 16-bit whenever the labels cannot overflow
    (the same labelling, several times faster than 32-bit with OpenCV's default algorithm)."""
    return cv2.CV_16U if m.size < 65535 or cv2.countNonZero(m) < 65535 else cv2.CV_32S


def _fill_holes(m: np.ndarray) -> np.ndarray:
    h, w = m.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = m
    ff = pad.copy()
    cv2.floodFill(ff, None, (0, 0), 1)
    holes = (ff == 0)[1:-1, 1:-1]
    return (m.astype(bool) | holes).astype(np.uint8)


def _measure(prep: Prepared, comp: np.ndarray, row0: int, col0: int, ratio: np.ndarray, *,
             echogenic: bool, branch: bool = False) -> Lumen | None:
    mmx, mmz = prep.mm_per_px_x, prep.mm_per_px_z
    rows, cols = prep.shape
    n = int(np.count_nonzero(comp))
    area = n * mmx * mmz
    eq_d = 2.0 * math.sqrt(area / math.pi)
    if eq_d < MIN_DIAMETER_MM:
        return None
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    cnt = max(contours, key=cv2.contourArea)
    (_, (rw, rh), _) = cv2.minAreaRect(cnt)
    rw_mm, rh_mm = max(rw, rh) * mmx, max(min(rw, rh), 1) * mmz
    h, w = comp.shape
    touches_lr = col0 <= 1 and col0 + w >= cols - 1
    touches_bottom = row0 + h >= rows - 1
    elong = rw_mm / max(rh_mm, 1e-6)
    longitudinal = touches_lr or elong >= LONGITUDINAL_ELONGATION or branch
    if touches_bottom and h * mmz > 0.3 * rows * mmz:
        return None  # an acoustic shadow column, not a lumen
    if longitudinal:
        # tube width: twice the distance-transform value along the ridge of the band
        # padded: OpenCV counts pixels beyond the crop as foreground, and a straight band fills its crop
        dt = cv2.distanceTransform(cv2.copyMakeBorder(comp, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0),
                                   cv2.DIST_L2, 3)[1:-1, 1:-1]
        ridge = (dt >= cv2.dilate(dt, np.ones((3, 3), np.uint8))) & (dt > 1.5)
        if ridge.sum() < 3:
            return None
        width_mm = 2.0 * float(median(dt[ridge].astype(np.float64))) * math.sqrt(mmx * mmz)
        length_mm = area / max(width_mm, 1e-6)
        if width_mm < MIN_DIAMETER_MM or width_mm > MAX_DIAMETER_MM or length_mm < 6.0:
            return None
        diameter = width_mm
        # centre: on the band's mid-line at the middle of its lateral extent
        cc = w // 2
        rr = np.flatnonzero(comp[:, cc])
        if rr.size == 0:
            ys, xs = np.nonzero(comp)
            cy, cx = float(ys.mean()), float(xs.mean())
        else:
            cy, cx = float(rr.mean()), float(cc)
    else:
        if eq_d > MAX_DIAMETER_MM:
            return None
        hull = cv2.convexHull(cnt)
        solidity = cv2.contourArea(cnt) / max(cv2.contourArea(hull), 1e-6)
        if solidity < MIN_SOLIDITY or elong > LONGITUDINAL_ELONGATION:
            return None
        diameter = eq_d
        m = cv2.moments(comp, binaryImage=True)
        cy, cx = m["m01"] / m["m00"], m["m10"] / m["m00"]
    x_mm, z_mm = prep.to_mm(cy + row0, cx + col0)
    pts = cnt.reshape(-1, 2).astype(np.float64)
    contour_mm = np.stack([(pts[:, 0] + col0 + 0.5) * mmx, (pts[:, 1] + row0 + 0.5) * mmz], 1)
    sub_ratio = ratio[row0:row0 + h, col0:col0 + w]
    mean_ratio = float(sub_ratio[comp.astype(bool)].mean())
    return Lumen(mask=comp.astype(bool), row0=row0, col0=col0, area_mm2=area, center_mm=(float(x_mm), float(z_mm)),
                 diameter_mm=diameter, longitudinal=longitudinal, contour_mm=contour_mm, mean_ratio=mean_ratio,
                 echogenic=echogenic)


def detect_walled_lumens(prep: Prepared, *, taken: np.ndarray | None = None) -> list[Lumen]:
    """Echogenic lumens (a vein filled with thrombus) found as round holes enclosed by a bright wall ring.

    Thrombus echoes like soft tissue, so the lumen is not dark; what remains is the vessel wall, a closed
    bright ring (grey / tissue level >= :data:`WALL_RATIO`). Holes in the bright mask are kept when they are
    vessel-sized, fit an ellipse (intersection over union >= :data:`RING_ELLIPSE_IOU`, axis ratio <= 2.2:
    fascial compartments are wider and pointed) and hold echoes (not anechoic: those are found by
    :func:`detect_lumens`). ``taken`` marks pixels of lumens already found.
    """
    if not prep.usable:
        return []
    ratio = prep.ratio
    # a thin wall is blurred at the working pitch and may not reach WALL_RATIO everywhere: a wall pixel is
    # also one standing out of its surroundings (white top-hat, square of half-side ~1 mm: separable, cheap)
    # at tissue level or above
    k = 2 * max(1, int(round(WALL_TOPHAT_MM / prep.mm_per_px_x))) + 1
    ridge = ratio - cv2.morphologyEx(ratio, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    wall = ((ratio >= WALL_RATIO) | ((ridge >= WALL_TOPHAT) & (ratio >= 0.95))).astype(np.uint8)
    wall = cv2.morphologyEx(wall, cv2.MORPH_CLOSE, _disk(0.3 / prep.mm_per_px_x))
    contours, hier = cv2.findContours(wall, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hier is None:
        return []
    mmx, mmz = prep.mm_per_px_x, prep.mm_per_px_z
    out: list[Lumen] = []
    for cnt, h in zip(contours, hier[0], strict=True):
        if h[3] < 0 or len(cnt) < 8:  # only holes (contours with a parent)
            continue
        x, y, w, hh = cv2.boundingRect(cnt)
        eq_d = 2.0 * math.sqrt(max(cv2.contourArea(cnt), 0.0) * mmx * mmz / math.pi)
        if not (WALLED_MIN_DIAMETER_MM <= eq_d <= MAX_DIAMETER_MM):
            continue
        hole = np.zeros((hh, w), np.uint8)
        cv2.drawContours(hole, [cnt - np.array([x, y])], -1, 1, thickness=-1)
        (ex, ey), (ea, eb), ang = cv2.fitEllipse(cnt)
        (_, (rw, rh), _) = cv2.minAreaRect(cnt)
        if min(ea, eb) <= 1 or max(ea, eb) > 2.2 * min(ea, eb) or max(rw, rh) > 2.2 * max(min(rw, rh), 1.0):
            continue
        ell = np.zeros_like(hole)
        cv2.ellipse(ell, ((ex - x, ey - y), (ea, eb), ang), 1, -1)
        inter = np.count_nonzero(hole & ell)
        if inter / max(1, np.count_nonzero(hole | ell)) < RING_ELLIPSE_IOU:
            continue
        inside = ratio[y:y + hh, x:x + w][hole.astype(bool)]
        if inside.size == 0 or float(median(inside)) < LUMEN_RATIO:
            continue  # anechoic: the ordinary detector's job
        if taken is not None and np.count_nonzero(taken[y:y + hh, x:x + w] & hole.astype(bool)) > 0.3 * inside.size:
            continue
        lum = _measure(prep, hole, y, x, ratio, echogenic=True)
        if lum is not None and not lum.longitudinal:
            out.append(lum)
    return out


def lumen_from_mask(prep: Prepared, part: np.ndarray, row0: int, col0: int) -> Lumen | None:
    """Measure a lumen given as a uint8 mask whose top-left working pixel is ``(row0, col0)``."""
    ys, xs = np.nonzero(part)
    if ys.size == 0:
        return None
    crop = np.ascontiguousarray(part[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    return _measure(prep, crop, row0 + int(ys.min()), col0 + int(xs.min()), prep.ratio,
                    echogenic=False)



def _bridge_needle(prep: Prepared, m: np.ndarray, ignore: np.ndarray | None) -> np.ndarray:
    """A needle crossing a lumen: bridge the gap inside the needle's mask, only where lumen lies on both sides."""
    if ignore is None:
        return m
    bridge = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _disk(BRIDGE_MM / prep.mm_per_px_x))
    return np.where(ignore, bridge, m).astype(np.uint8)


def _components(prep: Prepared, m: np.ndarray):
    """``(mask crop, row0, col0)`` of each connected component of ``m`` at least a lumen of MIN_DIAMETER_MM."""
    min_px = math.pi * (MIN_DIAMETER_MM / 2) ** 2 / (prep.mm_per_px_x * prep.mm_per_px_z)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8, ltype=_label_type(m))
    for i in range(1, n):
        x, y, w, h, a = (int(v) for v in stats[i])
        if a >= min_px:
            yield (labels[y:y + h, x:x + w] == i).astype(np.uint8), y, x

def _refine(comp: np.ndarray, row0: int, col0: int, ratio: np.ndarray, prep: Prepared, *,
            max_contrast: float = MAX_CONTRAST) -> tuple[np.ndarray | None, int, int, float]:
    """Re-threshold one component at its own edge level: lumen level + EDGE_FRACTION x (rim - lumen)."""
    rows, cols = ratio.shape
    pad = max(2, int(round(1.0 / prep.mm_per_px_x)))
    r0, c0 = max(0, row0 - pad), max(0, col0 - pad)
    r1, c1 = min(rows, row0 + comp.shape[0] + pad), min(cols, col0 + comp.shape[1] + pad)
    win = ratio[r0:r1, c0:c1]
    m = np.zeros(win.shape, np.uint8)
    m[row0 - r0:row0 - r0 + comp.shape[0], col0 - c0:col0 - c0 + comp.shape[1]] = comp
    k = _disk(0.5 / prep.mm_per_px_x)
    ring = cv2.dilate(m, k).astype(bool) & ~m.astype(bool)
    if ring.sum() < 4:
        return None, row0, col0, 1.0
    lum_level = float(median(win[m.astype(bool)]))
    rim_level = float(percentile(win[ring], 60))
    contrast = lum_level / max(rim_level, 1e-6)
    if contrast > max_contrast:
        return None, row0, col0, contrast
    thr = lum_level + EDGE_FRACTION * (rim_level - lum_level)
    grown = (win < thr).astype(np.uint8)
    grown &= cv2.dilate(m, k)  # grow by at most the ring width
    grown |= m
    grown = cv2.morphologyEx(grown, cv2.MORPH_OPEN, _disk(0.3 / prep.mm_per_px_x))
    grown = _fill_holes(grown)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8, ltype=_label_type(grown))
    if n <= 1:
        return None, row0, col0, contrast
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, _ = (int(v) for v in stats[best])
    return (labels[y:y + h, x:x + w] == best).astype(np.uint8), r0 + y, c0 + x, contrast


def split_touching(comp: np.ndarray, mm_per_px: float, *, colour: np.ndarray | None = None) -> list[np.ndarray]:
    """Split a blob of touching round lumens (a vein pair beside its artery) at the necks between them.

    Markers are the maxima of the distance transform that are at least :data:`MIN_DIAMETER_MM` / 2 deep and
    farther apart than the larger of their two radii (one round lumen has one maximum); each pixel then goes
    to the nearest centre relative to that centre's radius. A blob with one marker comes back unchanged.
    ``colour`` (the colour-flow fraction over the crop, optional): two lumens whose cores differ in flow (an
    artery between systoles beside veins filled with steady flow) are split even across a wide neck (their
    walls are seen only top and bottom).
    """
    dt = cv2.distanceTransform(comp, cv2.DIST_L2, 5)
    r_min = 0.5 * MIN_DIAMETER_MM / mm_per_px
    peaks = (dt >= cv2.dilate(dt, np.ones((5, 5), np.uint8))) & (dt >= r_min)
    ys, xs = np.nonzero(peaks)
    if ys.size < 2:
        return [comp]
    order = np.argsort(-dt[ys, xs])[:MAX_SPLIT_PEAKS]
    centres: list[tuple[int, int, float]] = []
    for k in order:
        y, x, r = int(ys[k]), int(xs[k]), float(dt[ys[k], xs[k]])
        if all(math.hypot(y - cy, x - cx) > max(r, cr) for cy, cx, cr in centres):
            centres.append((y, x, r))
    if not 2 <= len(centres) <= 4:
        return [comp]  # one lumen, or a tangle that is no cluster of a few round vessels
    # each pixel goes to the lumen whose centre is nearest relative to its radius (a weighted Voronoi split,
    # which for touching discs cuts along the neck between them)
    ys, xs = np.nonzero(comp)
    cy = np.array([c[0] for c in centres], dtype=np.float32)
    cx = np.array([c[1] for c in centres], dtype=np.float32)
    cr = np.array([c[2] for c in centres], dtype=np.float32)
    d = np.hypot(ys[:, None] - cy[None, :], xs[:, None] - cx[None, :]) / cr[None, :]
    owner = np.argmin(d, axis=1)
    # a real contact has a narrow neck: along the cut the lumen is much thinner than either vessel
    two = np.argsort(d, axis=1)[:, :2]
    d0, d1 = np.take_along_axis(d, two, axis=1).T
    cut = (d1 - d0) < 0.08
    if cut.any() and float(dt[ys[cut], xs[cut]].max()) > NECK_FRACTION * float(cr.min()):
        if colour is None:
            return [comp]
        # every wide neck must part lumens of different flow
        inner = [(owner == i) & (d[:, i] < 0.6) for i in range(len(centres))]
        flow = np.array([float(colour[ys[k], xs[k]].mean()) if k.any() else np.nan for k in inner])
        wide = cut & (dt[ys, xs] > NECK_FRACTION * np.minimum(cr[two[:, 0]], cr[two[:, 1]]))
        if not np.all(np.abs(flow[two[wide, 0]] - flow[two[wide, 1]]) >= FLOW_SPLIT):
            return [comp]
    parts = []
    for i in range(len(centres)):
        part = np.zeros(comp.shape, np.uint8)
        part[ys[owner == i], xs[owner == i]] = 1
        if part.any():
            parts.append(part)
    return parts or [comp]


def _column_runs(comp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertical runs of a binary crop: ``(col, start_row, end_row)`` arrays (end exclusive), by column then depth."""
    pad = np.zeros((comp.shape[0] + 2, comp.shape[1]), np.int8)
    pad[1:-1] = comp
    d = np.diff(pad, axis=0)
    cols, starts = np.nonzero(d.T == 1)  # transposed: ordered by column, then row
    _, ends = np.nonzero(d.T == -1)
    return cols, starts, ends


def split_branches(comp: np.ndarray, mm_per_px_x: float, mm_per_px_z: float, *,
                   needle: np.ndarray | None = None) -> list[np.ndarray]:
    """Split a long-axis blob where two vessels run one above the other and join (a junction: the great
    saphenous vein diving into the common femoral vein), by its vertical runs.

    Where a column crosses the blob twice, the upper run is one vessel and the lower run the other. Where it
    crosses once, next to such columns, the run is the lower vessel continued, plus the part above the lower
    vessel's top edge (carried over from the nearest two-run column), which is the upper vessel entering the
    junction. A blob with too few two-run columns (less than :data:`MIN_BRANCH_MM` wide) comes back unchanged.
    ``needle`` (the crop of the needle's mask): runs separated by the needle (a shaft inside a long-axis lumen)
    are one run.
    """
    if needle is not None and needle.any():
        filled = comp.copy()
        col, start, end = _column_runs(comp)
        for k in range(col.size - 1):
            if col[k + 1] == col[k]:
                g0, g1 = end[k], start[k + 1]
                if np.count_nonzero(needle[g0:g1, col[k]]) >= 0.6 * (g1 - g0):
                    filled[g0:g1, col[k]] = 1
        comp_runs = filled
    else:
        comp_runs = comp
    col, start, end = _column_runs(comp_runs)
    w = comp.shape[1]
    nruns = np.bincount(col, minlength=w)
    two = nruns >= 2
    if np.count_nonzero(two) * mm_per_px_x < MIN_BRANCH_MM or np.any(nruns > 3):
        return [comp]
    first = np.searchsorted(col, np.arange(w))  # index of each column's first run
    last = first + nruns - 1
    upper = np.zeros_like(comp)
    lower = np.zeros_like(comp)
    # top edge of the lower vessel per column: known in two-run columns, carried to the nearest one elsewhere
    idx = np.flatnonzero(two)
    low_top = np.full(w, -1, np.int64)
    low_top[idx] = start[last[idx]]
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(w)), 0, idx.size - 1)]
    prev = idx[np.clip(np.searchsorted(idx, np.arange(w)) - 1, 0, idx.size - 1)]
    pick = np.where(np.abs(prev - np.arange(w)) < np.abs(nearest - np.arange(w)), prev, nearest)
    margin = max(1, int(round(0.4 / mm_per_px_z)))
    for c in range(w):
        if nruns[c] == 0:
            continue
        if two[c]:
            upper[start[first[c]]:end[first[c]], c] = 1
            lower[start[first[c] + 1]:end[last[c]], c] = 1
            continue
        s0, e0 = start[first[c]], end[first[c]]
        cut = int(low_top[pick[c]])
        if cut - s0 > margin:
            upper[s0:min(cut, e0), c] = 1
            lower[min(cut, e0):e0, c] = 1
        else:
            lower[s0:e0, c] = 1
    parts = []
    min_px = math.pi * (MIN_DIAMETER_MM / 2) ** 2 / (mm_per_px_x * mm_per_px_z)
    for part in (upper, lower):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
        if n <= 1:
            return [comp]
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[best, cv2.CC_STAT_AREA] < min_px:
            return [comp]
        parts.append((labels == best).astype(np.uint8))
    return parts


def _touches(lum: Lumen, region: np.ndarray) -> bool:
    """Whether ``region`` (full working-image mask) touches the lumen or its one-pixel rim."""
    r0, c0, r1, c1 = lum.bbox
    rows, cols = region.shape
    a0, b0, a1, b1 = max(0, r0 - 1), max(0, c0 - 1), min(rows, r1 + 1), min(cols, c1 + 1)
    m = np.zeros((a1 - a0, b1 - b0), np.uint8)
    m[r0 - a0:r1 - a0, c0 - b0:c1 - b0] = lum.mask
    m = cv2.dilate(m, np.ones((3, 3), np.uint8))
    return bool((m.astype(bool) & region[a0:a1, b0:b1]).any())


def _spans_width(comp: np.ndarray, col0: int, cols: int) -> bool:
    return col0 <= 1 and col0 + comp.shape[1] >= cols - 1


def is_round(part: np.ndarray) -> bool:
    """A compact, nearly elliptical part (a transverse lumen): solid and not elongated."""
    contours, _ = cv2.findContours(part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return False
    cnt = max(contours, key=cv2.contourArea)
    if len(cnt) < 5:
        return False
    (_, (w, h), _) = cv2.minAreaRect(cnt)
    return _solidity(part) >= MIN_SOLIDITY and max(w, h) <= 2.0 * max(min(w, h), 1.0)


def _solidity(comp: np.ndarray) -> float:
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 0.0
    cnt = max(contours, key=cv2.contourArea)
    return cv2.contourArea(cnt) / max(cv2.contourArea(cv2.convexHull(cnt)), 1e-6)


def _in_shadow_column(prep: Prepared, lum: Lumen, shadow: np.ndarray | None = None) -> bool:
    """Whether the tissue below ``lum`` is darker than the tissue beside it at the same depths (a slice of an
    acoustic shadow, not a lumen). Lumens at the bottom of the image or as wide as it are not tested.
    ``shadow``: the acoustic-shadow mask; dark pixels in it are shadowed tissue, not another lumen below."""
    rows, cols = prep.shape
    r0, c0, r1, c1 = lum.bbox
    a = r1 + int(round(BELOW_MM[0] / prep.mm_per_px_z))
    b = min(rows, r1 + int(round(BELOW_MM[1] / prep.mm_per_px_z)))
    if b - a < max(3, int(round(1.5 / prep.mm_per_px_z))):
        return False
    # the central part of the lumen's columns (its rounded sides see the flanking tissue)
    w = c1 - c0
    cc0, cc1 = c0 + w // 4, c1 - w // 4
    fw = max(3, int(round(2.0 / prep.mm_per_px_x)))
    gap = max(1, int(round(0.6 / prep.mm_per_px_x)))
    s = prep.small
    cc1 = max(cc1, cc0 + 1)
    # pixels of another lumen below this one (a vein lying on a deeper vein) are not shadowed tissue
    valid = prep.ratio[a:b, cc0:cc1] >= LUMEN_RATIO
    if shadow is not None:
        valid |= shadow[a:b, cc0:cc1]
    below = (s[a:b, cc0:cc1] * valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    flanks = []
    if c0 - gap - fw >= 0:
        flanks.append(s[a:b, c0 - gap - fw:c0 - gap].mean(axis=1))
    if c1 + gap + fw <= cols:
        flanks.append(s[a:b, c1 + gap:c1 + gap + fw].mean(axis=1))
    if not flanks:
        return False
    flank = np.max(flanks, axis=0)
    # rows where the flank is itself dark (another lumen crossing below, e.g. a long-axis vein) say nothing
    level = LUMEN_RATIO * prep.background[a:b, min(cols - 1, (c0 + c1) // 2)]
    lit = flank >= level
    tissue = lit & (valid.mean(axis=1) >= 0.5)
    # dark straight below over nearly the whole window beside lit tissue, and on down to the bottom of the image:
    # a shadow column (a lumen below ends, with tissue under it)
    if np.count_nonzero(lit & (valid.mean(axis=1) < 0.5)) >= SHADOW_DARK_ROWS * (b - a) and float(np.mean(
            (prep.ratio[b:, cc0:cc1] < LUMEN_RATIO).mean(axis=1) >= 0.5)) >= SHADOW_DEEP_ROWS:
        return True
    if np.count_nonzero(tissue) < 3:
        return False
    return float(median(below[tissue] / flank[tissue])) < SHADOW_BELOW_RATIO


def _between_walls(prep: Prepared, lum: Lumen) -> bool:
    """Whether a long-axis lumen runs between two bright walls: in most of its columns a wall-bright pixel
    (:data:`WALL_RATIO`) lies within :data:`BAND_WALL_MM` above its top edge, and one below its bottom edge.

    A deep vessel's blood is lifted towards the tissue level by noise (weak contrast), but its specular walls
    stay bright; a dark band between two tissue layers without walls of its own (a slice of shadow, a gap
    between fascial planes) has no such pair of parallel walls."""
    m = lum.mask
    present = m.any(axis=0)
    if present.sum() < 10:
        return False
    rows = prep.shape[0]
    top = lum.row0 + np.argmax(m, axis=0)
    bottom = lum.row0 + m.shape[0] - 1 - np.argmax(m[::-1], axis=0)
    k = max(2, int(round(BAND_WALL_MM / prep.mm_per_px_z)))
    cols = lum.col0 + np.flatnonzero(present)
    top, bottom = top[present], bottom[present]
    offs = np.arange(1, k + 1)
    above = np.clip(top[None, :] - offs[:, None], 0, rows - 1)
    below = np.clip(bottom[None, :] + offs[:, None], 0, rows - 1)
    r = prep.ratio
    lit_above = (r[above, cols[None, :]] >= WALL_RATIO).any(axis=0) & (top > 0)
    lit_below = (r[below, cols[None, :]] >= WALL_RATIO).any(axis=0) & (bottom < rows - 1)
    return bool(lit_above.mean() >= BAND_WALL_SHARE and lit_below.mean() >= BAND_WALL_SHARE)


def _join_across_needle(prep: Prepared, lumens: list[Lumen], ignore: np.ndarray) -> list[Lumen]:
    """Join long-axis lumens cut in two by an in-plane needle (the shaft, its echo and reverberations run
    across the tube): two long-axis pieces touching the needle mask, overlapping in depth, of similar width,
    whose union bridged inside the needle mask is one band."""
    grown = cv2.dilate(ignore.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    cand = [lu for lu in lumens if lu.longitudinal and _touches(lu, grown)]
    if len(cand) < 2:
        return lumens
    k = _disk(JOIN_MM / prep.mm_per_px_x)
    for i in range(len(cand)):
        for j in range(i + 1, len(cand)):
            a, b = cand[i], cand[j]
            ra0, _, ra1, _ = a.bbox
            rb0, _, rb1, _ = b.bbox
            if min(ra1, rb1) - max(ra0, rb0) < 0.5 * min(ra1 - ra0, rb1 - rb0):
                continue
            if max(a.diameter_mm, b.diameter_mm) > 1.6 * min(a.diameter_mm, b.diameter_mm):
                continue
            r0, c0 = min(a.row0, b.row0), min(a.col0, b.col0)
            r1, c1 = max(a.bbox[2], b.bbox[2]), max(a.bbox[3], b.bbox[3])
            u = np.zeros((r1 - r0, c1 - c0), np.uint8)
            for lu in (a, b):
                u[lu.row0 - r0:lu.bbox[2] - r0, lu.col0 - c0:lu.bbox[3] - c0] |= lu.mask.astype(np.uint8)
            closed = cv2.morphologyEx(u, cv2.MORPH_CLOSE, k)
            u |= closed & grown[r0:r1, c0:c1].astype(np.uint8)
            if cv2.connectedComponents(u, connectivity=8)[0] != 2:
                continue
            lum = _measure(prep, u, r0, c0, prep.ratio, echogenic=False, branch=True)
            if lum is None:
                continue
            lum.contrast = max(a.contrast, b.contrast)
            lum.occluded = a.occluded or b.occluded
            rest = [lu for lu in lumens if lu is not a and lu is not b]
            return _join_across_needle(prep, rest + [lum], ignore)
    return lumens


def detect_lumens(prep: Prepared, *, ignore: np.ndarray | None = None, shadow: np.ndarray | None = None,
                  keep: np.ndarray | None = None) -> list[Lumen]:
    """Anechoic lumens of one prepared frame.

    Parameters
    ----------
    prep
        The prepared frame.
    ignore : (r, c) bool, optional
        Working pixels to leave out (e.g. the needle's shaft), treated as lumen-compatible so the shaft
        does not cut a lumen in two.
    shadow : (r, c) bool, optional
        Acoustic shadow (:func:`echosclero.guidance.shadows.acoustic_shadow`): dark but not lumen, except
        where ``keep`` says a known lumen lies.
    keep : (r, c) bool, optional
        Where lumens are already known (the outlines of tracked vessels); kept even inside a shadow.
    """
    if not prep.usable:
        return []
    ratio = prep.ratio
    m = lumen_mask(prep)
    m = _bridge_needle(prep, m, ignore)
    hidden = None
    if shadow is not None and shadow.any():
        hidden = shadow if keep is None else shadow & ~keep
        m[hidden] = 0
        hidden = cv2.dilate(hidden.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    out: list[Lumen] = []
    for comp, y, x in _components(prep, _fill_holes(m)):
        comp, y, x, contrast = _refine(comp, y, x, ratio, prep, max_contrast=SOFT_MAX_CONTRAST)
        if comp is None:
            continue
        if contrast > MAX_CONTRAST and not (_solidity(comp) >= SOFT_SOLIDITY and (
                is_round(comp) or comp.shape[1] * prep.mm_per_px_x >= LONGITUDINAL_ELONGATION * comp.shape[0]
                * prep.mm_per_px_z)):
            continue  # a weakly contrasted lumen must at least be a compact round one, or a straight band
        if hidden is not None:
            comp &= ~hidden[y:y + comp.shape[0], x:x + comp.shape[1]]
        parts = [comp]
        branched = False
        if _solidity(comp) < SPLIT_SOLIDITY:
            if not _spans_width(comp, x, prep.shape[1]):
                parts = split_touching(comp, prep.mm_per_px_x, colour=None if prep.colour_small is None else
                                       prep.colour_small[y:y + comp.shape[0], x:x + comp.shape[1]])
                if not all(is_round(part) for part in parts):
                    parts = [comp]  # not a cluster of round lumens (a bent long-axis vessel, a junction)
            if len(parts) == 1 and comp.shape[1] * prep.mm_per_px_x >= LONGITUDINAL_ELONGATION * MIN_BRANCH_MM:
                parts = split_branches(comp, prep.mm_per_px_x, prep.mm_per_px_z, needle=None if ignore is None else
                                       ignore[y:y + comp.shape[0], x:x + comp.shape[1]])
                branched = len(parts) > 1
        for part in parts:
            py, px = y, x
            if len(parts) > 1:
                ys, xs = np.nonzero(part)
                py, px = y + int(ys.min()), x + int(xs.min())
                part = part[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            lum = _measure(prep, part, py, px, ratio, echogenic=False, branch=branched)
            if lum is None:
                continue
            lum.contrast = contrast
            if contrast > MAX_CONTRAST and (lum.diameter_mm < SOFT_MIN_DIAMETER_MM or (
                    lum.longitudinal and not _between_walls(prep, lum))):
                continue
            # (a known lumen is kept: one the candidate mostly lies in, not one whose outline it touches)
            if not lum.longitudinal and (
                    keep is None or keep[lum.bbox[0]:lum.bbox[2], lum.bbox[1]:lum.bbox[3]][lum.mask].mean() < 0.3
            ) and _in_shadow_column(prep, lum, shadow):
                continue
            if hidden is not None:
                lum.occluded = _touches(lum, hidden)
            out.append(lum)
    if ignore is not None and len(out) > 1:
        out = _join_across_needle(prep, out, ignore)
    return out


#: A pixel is lumen where the network's probability reaches one half (the mask's own edge: trained on outlines
#: drawn on the wall, so the blur of the point-spread function does not shrink it).
NET_LUMEN_PROB = 0.5
#: A learned lumen is reported when its mean probability reaches this.
NET_MIN_CONFIDENCE = 0.6
#: A learned and a contrast-found lumen are the same vessel when this share of the smaller one overlaps.
SAME_LUMEN_OVERLAP = 0.3
#: A lumen only the network found, at less than this confidence, is not taken inside the needle's acoustic shadow:
#: dark there is no evidence of blood (on simulator seeds 3, 11 and 17, the network's false lumens at 0.6-0.8
#: were patches of the shadow beside the artery the needle nears; true lumens were mostly above 0.8).
NET_SURE_CONFIDENCE = 0.8


def detect_learned_lumens(prep: Prepared, prob: np.ndarray, *, ignore: np.ndarray | None = None,
                          half_way: bool = True) -> list[Lumen]:
    """Lumens from the lumen network's probability map (working resolution), gated on size and shape.

    ``ignore`` (the needle's mask) is bridged as in :func:`detect_lumens`: a shaft crossing a lumen does not cut it.
    ``half_way``: re-outline each transverse lumen on its half-way edge (:func:`half_way_edges`) here; the engine
    passes False and lets :func:`merge_lumens` re-outline only those no contrast-found lumen covers.
    """
    if not prep.usable:
        return []
    m = _bridge_needle(prep, (prob >= np.float32(NET_LUMEN_PROB)).astype(np.uint8), ignore)
    mmx = prep.mm_per_px_x
    out: list[Lumen] = []
    for comp, y, x in _components(prep, _fill_holes(m)):
        h, w = comp.shape
        parts = [comp]
        if _solidity(comp) < SPLIT_SOLIDITY and not _spans_width(comp, x, prep.shape[1]):
            split = split_touching(comp, mmx, colour=None if prep.colour_small is None else
                                   prep.colour_small[y:y + h, x:x + w])
            if all(is_round(part) for part in split):
                parts = split
        for part in parts:
            py, px = y, x
            if len(parts) > 1:
                ys, xs = np.nonzero(part)
                py, px = y + int(ys.min()), x + int(xs.min())
                part = np.ascontiguousarray(part[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
            lum = _measure(prep, part, py, px, prep.ratio, echogenic=False)
            if lum is None:
                continue
            r0, c0, r1, c1 = lum.bbox
            conf = float(prob[r0:r1, c0:c1][lum.mask].mean())
            if conf < NET_MIN_CONFIDENCE:
                continue
            if half_way and not lum.longitudinal:
                lum = _half_way_edge(prep, lum) or lum
            lum.confidence = conf
            lum.learned = True
            lum.contrast = float(lum.mean_ratio)
            out.append(lum)
    return out


def half_way_edges(prep: Prepared, lumens: list[Lumen]) -> list[Lumen]:
    """``lumens`` with each transverse lumen of the network re-outlined on its half-way edge (the others as they
    are); the network's outline stands where no edge is found."""
    out = []
    for lum in lumens:
        if lum.learned and not lum.longitudinal:
            edged = _half_way_edge(prep, lum)
            if edged is not None:
                edged.confidence, edged.learned, edged.contrast = lum.confidence, True, float(edged.mean_ratio)
                lum = edged
        out.append(lum)
    return out


#: Half-way edge: searched within this distance (mm) of the network's outline, inside and out.
EDGE_BAND_MM = 1.0
#: ... and kept only while it changes the area by no more than these factors (else the contrast is too weak
#: or the surroundings too mixed for a level to mean anything: the network's outline stands).
EDGE_AREA_RANGE = (0.35, 1.6)


def _half_way_edge(prep: Prepared, lum: Lumen) -> Lumen | None:
    """The lumen re-outlined where the grey crosses half-way between the lumen's level and its wall's.

    The point-spread function blurs the step from blood to wall symmetrically, so the half-way level is where the
    wall is (full width at half maximum); a fixed threshold or an annotator's line sits inside or outside it.
    Lumen level: median grey of the inner part (distance to the edge >= 40 % of the largest); wall level: the 60th
    percentile of a ring 0.2-1.0 mm outside the network's outline.
    """
    rows, cols = prep.shape
    band = max(2, int(round(EDGE_BAND_MM / prep.mm_per_px_x)))
    r0, c0, r1, c1 = lum.bbox
    a0, b0, a1, b1 = max(0, r0 - band - 1), max(0, c0 - band - 1), min(rows, r1 + band + 1), min(cols, c1 + band + 1)
    m = np.zeros((a1 - a0, b1 - b0), np.uint8)
    m[r0 - a0:r1 - a0, c0 - b0:c1 - b0] = lum.mask
    win = prep.small[a0:a1, b0:b1]
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dt = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    core = dt >= 0.4 * float(dt.max())
    outer = cv2.dilate(m, _disk(band)).astype(bool)
    ring = outer & ~cv2.dilate(m, _disk(1)).astype(bool)
    if prep.imaged is not None:
        ring &= prep.imaged[a0:a1, b0:b1]
    if core.sum() < 3 or ring.sum() < 8:
        return None
    lo = float(median(win[core]))
    hi = float(percentile(win[ring], 60))
    if hi <= lo * 1.15:
        return None  # no wall to speak of
    grown = ((win < np.float32(0.5 * (lo + hi))) & outer).astype(np.uint8)
    grown |= core.astype(np.uint8)
    grown = cv2.morphologyEx(grown, cv2.MORPH_OPEN, _disk(0.3 / prep.mm_per_px_x)) | core.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=4)
    keep = np.unique(labels[core])
    keep = keep[keep > 0]
    if keep.size == 0:
        return None
    lut = np.zeros(n, np.uint8)
    lut[keep] = 1
    new = _fill_holes(lut[labels])
    ratio = new.sum() / max(1, m.sum())
    if not (EDGE_AREA_RANGE[0] <= ratio <= EDGE_AREA_RANGE[1]):
        return None
    out = lumen_from_mask(prep, new, a0, b0)
    if out is None or out.longitudinal:
        return None
    thr = 0.5 * (lo + hi)
    r, c = prep.to_px(*out.center_mm)
    out.width_mm = _crossing_extent(prep.small, float(r), float(c), thr, axis=1, limit=outer.shape[1] + 4) \
        * prep.mm_per_px_x
    out.depth_mm = _crossing_extent(prep.small, float(r), float(c), thr, axis=0, limit=outer.shape[0] + 4) \
        * prep.mm_per_px_z
    if not (out.width_mm > 0 and out.depth_mm > 0):
        out.width_mm = out.depth_mm = None
    return out


def _crossing_extent(img: np.ndarray, r: float, c: float, thr: float, *, axis: int, limit: int) -> float:
    """Distance (working px) between the two points where the profile through ``(r, c)`` along ``axis`` first
    rises through ``thr`` on either side, by linear interpolation between pixels; the profile is the mean of the
    three lines through the centre. 0 when a side never crosses."""
    rows, cols = img.shape
    ri, ci = int(round(r)), int(round(c))
    if axis == 1:
        prof = img[max(0, ri - 1):ri + 2, :].mean(axis=0)
        centre, n = c, cols
    else:
        prof = img[:, max(0, ci - 1):ci + 2].mean(axis=1)
        centre, n = r, rows
    k0 = int(round(centre))
    if not (0 <= k0 < n) or prof[k0] >= thr:
        return 0.0
    ends = []
    for step in (-1, 1):
        k = k0
        while 0 <= k + step < n and abs(k + step - k0) <= limit and prof[k + step] < thr:
            k += step
        j = k + step
        if not (0 <= j < n) or abs(j - k0) > limit:
            return 0.0
        frac = (thr - prof[k]) / max(1e-9, prof[j] - prof[k])
        ends.append(k + step * frac)
    return float(abs(ends[1] - ends[0]))


def _centre_in(lum: Lumen, mask: np.ndarray) -> bool:
    ys, xs = np.nonzero(lum.mask)
    r, c = int(round(ys.mean())) + lum.row0, int(round(xs.mean())) + lum.col0
    return 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and bool(mask[r, c])


def _any_in(lum: Lumen, mask: np.ndarray) -> bool:
    r0, c0, r1, c1 = lum.bbox
    return bool((lum.mask & mask[r0:r1, c0:c1]).any())


def _overlap_share(a: Lumen, b: Lumen) -> float:
    """Share of the smaller lumen's pixels that the other covers."""
    r0, c0 = max(a.row0, b.row0), max(a.col0, b.col0)
    r1, c1 = min(a.bbox[2], b.bbox[2]), min(a.bbox[3], b.bbox[3])
    if r0 >= r1 or c0 >= c1:
        return 0.0
    ma = a.mask[r0 - a.row0:r1 - a.row0, c0 - a.col0:c1 - a.col0]
    mb = b.mask[r0 - b.row0:r1 - b.row0, c0 - b.col0:c1 - b.col0]
    inter = int(np.count_nonzero(ma & mb))
    return inter / max(1, min(int(a.mask.sum()), int(b.mask.sum())))


#: A new lumen found by contrast alone is kept only where the network's mean probability over it reaches this:
#: dark and walled by bright echoes is also what hypoechoic muscle between fasciae, fat lobules, the gel layer
#: under the probe and slices of shadow look like on real frames. Measured on the usgra tuning frames
#: (0040-0119) and simulator seeds 1-2 (every scenario, every 6th frame): of the contrast-found lumens the
#: network gives less than 0.2, 3 were labelled vessels and 93 were not (real), 0 and 50 (simulator); no shape or
#: contrast rule kept those 3 without keeping tens of the others. A lumen of a tracked vessel is kept whatever the
#: network says (compressed, filled with foam or in spasm, it no longer looks like the lumens it was trained on).
NET_AGREE_PROB = 0.2
#: ... unless it is as dark as flowing blood against its wall (lumen / rim at most this, -20 dB): muscle, fat and
#: the gel layer are hypoechoic, not anechoic (of those 93 regions one was this dark). The network, trained on
#: short-axis views, misses the long-axis brachial artery of the FloWave cine (lumen / rim 0.03-0.06).
BLOOD_CONTRAST = 0.1


def merge_lumens(learned: list[Lumen], found: list[Lumen], *, shadow: np.ndarray | None = None,
                 known: np.ndarray | None = None, prob: np.ndarray | None = None,
                 prep: Prepared | None = None) -> list[Lumen]:
    """One lumen per vessel from the network's lumens and those found by contrast (:func:`detect_lumens`).

    A plainly anechoic lumen found by contrast (lumen / rim <= :data:`MAX_CONTRAST`) is kept as found: its edge is
    measured on a strong step, and where the needle, a junction or two touching vessels split it, its parts are
    right; the network's lumen over it is dropped. Elsewhere the network decides: its lumens are kept, and a weakly
    contrasted dark region it did not take for a lumen (a nerve, a tendon, fat) is dropped, and so is a lumen of
    the network's own whose centre lies in ``shadow`` (while injecting: the acoustic shadow of the needle and what
    lies under foam; working resolution) when it is below :data:`NET_SURE_CONFIDENCE` or new: dark there is no
    evidence of blood, and a vessel already tracked (``known``, the tracked outlines) that passes under the shadow
    goes on being tracked, while no new vessel is born there (nor is a dark region found by contrast there).
    ``prob`` (the network's probability map): a new lumen found by contrast where the network sees no lumen at all
    (mean probability below :data:`NET_AGREE_PROB`) is dropped, unless it is as dark as blood
    (:data:`BLOOD_CONTRAST`). ``prep``: the network's transverse lumens that are kept are re-outlined on their
    half-way edge (:func:`half_way_edges`) before the hidden-region test (pass ``half_way=False`` to
    :func:`detect_learned_lumens`).
    """
    def hidden(lum: Lumen) -> bool:
        return shadow is not None and _centre_in(lum, shadow)

    def new(lum: Lumen) -> bool:
        return known is None or not _any_in(lum, known)

    # no new vessel is born in the hidden region (needle shadow, under foam), however dark it is there
    def unseen(lum: Lumen) -> bool:
        if prob is None or lum.contrast <= BLOOD_CONTRAST:
            return False
        r0, c0, r1, c1 = lum.bbox
        return float(prob[r0:r1, c0:c1][lum.mask].mean()) < NET_AGREE_PROB

    anechoic = [lum for lum in found if lum.contrast <= MAX_CONTRAST
                and not (new(lum) and (hidden(lum) or unseen(lum)))]
    out = []
    for lum in anechoic:
        lum.confidence = float(np.clip(1.0 - lum.contrast, 0.0, 1.0))
        out.append(lum)
    for lum in learned:
        if any(_overlap_share(lum, o) >= SAME_LUMEN_OVERLAP for o in anechoic):
            continue
        if prep is not None:
            lum = half_way_edges(prep, [lum])[0]  # (only here: most network lumens give way to anechoic ones)
        if hidden(lum) and (lum.confidence < NET_SURE_CONFIDENCE or new(lum)):
            continue
        out.append(lum)
    return out
