"""Needle detection and tracking.

In-plane needle: the shaft is the brightest straight line in the image, steeper than the tissue layers
(skin, fascia and septa lie within a few degrees of horizontal); found with a probabilistic Hough transform on
the brightest pixels at full resolution, then the tip is located along the shaft where the echo falls to
half-way between the shaft level and the surrounding tissue. Out-of-plane: a compact saturated dot with a
reverberation tail below it (a "comet tail"), reported only when no shaft is seen.

:class:`NeedleTracker` keeps the tip through short drop-outs with an alpha-beta filter (constant velocity) and
reports the needle as lost after :data:`HOLD_S` seconds without a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from echosclero.guidance._quantile import median, percentile
from echosclero.guidance.preprocess import Prepared

__all__ = ["HOLD_S", "NeedleMeasurement", "NeedleTracker", "detect_needle"]

#: Shaft angles accepted, degrees below horizontal: tissue planes are flatter, vertical lines are artefacts.
MIN_ANGLE_DEG = 8.0
MAX_ANGLE_DEG = 75.0
#: Shortest visible shaft (mm).
MIN_SHAFT_MM = 3.0
#: How long the tracker holds a tip without measurement (s) before declaring the needle lost.
HOLD_S = 0.5
#: How far beyond the end of the Hough segment the tip is searched along the shaft (mm): inside a lumen
#: the last millimetres of the shaft echo weakly and the segment stops short.
TIP_SEARCH_MM = 4.0
#: Bevel echo and PSF: the bright echo extends this far (mm) beyond the geometric tip.
TIP_ECHO_MM = 0.25
#: Fastest plausible needle advance (mm/s); a tip that jumps further is an echo continuing the shaft.
MAX_ADVANCE_MM_S = 25.0
#: The visible shaft of an in-plane needle starts within this distance (mm) of the side edges or the skin.
ENTRY_BORDER_MM = 3.0
#: Size of the echo of a needle crossing the image plane (18-27 G needles are 0.4-1.3 mm wide; the echo is
#: broadened by the point-spread function).
DOT_DIAMETER_MM = (0.3, 2.5)
#: Reverberation tail below an out-of-plane needle: depth examined (mm) and least brightness ratio to the
#: same depths beside it.
TAIL_MM = 2.0
TAIL_RATIO = 1.35
#: ... and the tail stands above its sides by at least this share of the dot's own height above them (a ratio alone
#: is met by a faint shoulder over black). Measured: true tips 0.33-0.57 (our simulator, gsv_out_of_plane seeds
#: 5001-5002) and 0.20-0.39 (PyMUST, both setups, the bevel's dot and its point-spread tail); the FloWave cine's
#: false dot (a fascia ending over the artery's black lumen, beside the image's edge) 0.08-0.09.
TAIL_MIN_SHARE = 0.15
#: Consecutive frames an out-of-plane candidate must persist before it is reported.
OUT_OF_PLANE_CONFIRM = 3
#: A new in-plane shaft below this confidence (the confidence is the visible shaft's length over 10 mm: shorter than
#: 6.5 mm; the fascia segments and lobule edges read as shafts on real stills were 2.7-6.4 mm, 0.3-0.63; 93 % of our
#: simulator's needle readings are longer) is reported only once seen in
#: IN_PLANE_CONFIRM frames running on the same line (angle within IN_PLANE_SAME_DEG, entry within
#: IN_PLANE_SAME_MM): a needle persists and advances along its line; on a single still it is not reported.
IN_PLANE_SURE = 0.65
IN_PLANE_CONFIRM = 2
IN_PLANE_SAME_DEG = 6.0
IN_PLANE_SAME_MM = 2.0
#: A shaft is a continuous bright line: this fraction of its length must reach the bright threshold.
MIN_SUPPORT = 0.7


@dataclass(frozen=True, slots=True)
class NeedleMeasurement:
    """One frame's needle: positions in mm, angle in degrees below horizontal."""

    tip_mm: tuple[float, float]
    entry_mm: tuple[float, float]
    angle_deg: float | None
    confidence: float
    plane: str = "in"  # "in" (shaft) or "out" (cross-section dot)
    shaft_px: tuple[tuple[float, float], tuple[float, float]] | None = None  # (row, col) entry, tip; full res
    dot_radius_mm: float = 0.0  # out-of-plane: half the size of the cross-section echo


def _bright_threshold(full: np.ndarray) -> float:
    sub = full[::4, ::4]
    p = percentile(sub, (50, 99.7))
    return float(max(p[1] * 0.97, p[0] + 0.6 * (255.0 - p[0])))


def detect_needle(prep: Prepared, *, prior: NeedleMeasurement | None = None) -> NeedleMeasurement | None:
    """The needle of one frame: the in-plane shaft and its tip, else an out-of-plane cross-section, or ``None``.

    ``prior`` (the needle of the previous frames) selects, among candidate shafts, the one that continues it.
    """
    if not prep.usable:
        return None
    full = prep.full
    rows, cols = full.shape
    mmx, mmz = prep.full_mm_per_px_x, prep.full_mm_per_px_z
    thr = _bright_threshold(full)
    # Hough on a 2x max-pooled mask (4x fewer votes); the tip is refined at full resolution afterwards
    mask = (full >= thr).astype(np.uint8)
    r2, c2 = rows // 2, cols // 2
    pooled = (cv2.resize(mask[: 2 * r2, : 2 * c2], (c2, r2), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8) * 255
    px2, pz2 = 2 * mmx, 2 * mmz
    # drop near-horizontal bright runs (skin, fascia, septa): they cannot be the shaft and slow the Hough vote
    run = max(5, int(round(2.4 / px2)) | 1)
    flat = cv2.morphologyEx(pooled, cv2.MORPH_OPEN, np.ones((1, run), np.uint8))
    pooled = cv2.subtract(pooled, flat)
    min_len_px = MIN_SHAFT_MM / px2
    lines = cv2.HoughLinesP(pooled, 1, math.pi / 180, threshold=max(8, int(min_len_px * 0.6)),
                            minLineLength=min_len_px, maxLineGap=max(2, int(round(0.8 / px2))))
    if lines is None or len(lines) == 0:
        return _detect_cross_section(full, mask, mmx, mmz, prior)
    lines = (np.asarray(lines).reshape(-1, 4).astype(np.float64) + 0.5) * np.array([px2, pz2, px2, pz2])
    dx_mm = lines[:, 2] - lines[:, 0]
    dz_mm = lines[:, 3] - lines[:, 1]
    length = np.hypot(dx_mm, dz_mm)
    ang = np.degrees(np.arctan2(np.abs(dz_mm), np.abs(dx_mm)))
    ok = (ang >= MIN_ANGLE_DEG) & (ang <= MAX_ANGLE_DEG) & (length >= MIN_SHAFT_MM)
    if not ok.any():
        return _detect_cross_section(full, mask, mmx, mmz, prior)
    cand = lines[ok]
    width_mm = cols * mmx

    def border_dist(p: np.ndarray) -> float:
        return min(p[0], width_mm - p[0], p[1])

    # group collinear segments into shafts; a needle shaft enters from an image edge or the skin
    used = np.zeros(len(cand), bool)
    shafts = []
    for i in np.argsort(-np.hypot(cand[:, 2] - cand[:, 0], cand[:, 3] - cand[:, 1])):
        if used[i]:
            continue
        a0, b0 = cand[i, :2], cand[i, 2:]
        u = (b0 - a0) / max(np.linalg.norm(b0 - a0), 1e-9)
        n = np.array([-u[1], u[0]])
        ca, cb = cand[:, :2], cand[:, 2:]
        ub = (cb - ca) / np.maximum(np.linalg.norm(cb - ca, axis=1, keepdims=True), 1e-9)
        sel = (np.abs((ca - a0) @ n) < 0.6) & (np.abs((cb - a0) @ n) < 0.6) & (np.abs(ub @ u) > 0.98)
        sel[i] = True
        used |= sel
        ends = np.concatenate([(ca[sel] - a0) @ u, (cb[sel] - a0) @ u])
        e_lo, e_hi = a0 + min(ends) * u, a0 + max(ends) * u
        if border_dist(e_lo) <= border_dist(e_hi):
            entry, tip, d = e_lo, e_hi, u
        else:
            entry, tip, d = e_hi, e_lo, -u
        if _support(full, entry, tip, mmx, mmz, thr) < MIN_SUPPORT:
            continue
        shafts.append((float(np.linalg.norm(tip - entry)), border_dist(entry), entry, tip, d))
    shafts = [s_ for s_ in shafts if s_[1] <= ENTRY_BORDER_MM]
    if not shafts:
        return _detect_cross_section(full, mask, mmx, mmz, prior)
    if prior is not None and prior.angle_deg is not None:
        pe = np.array(prior.entry_mm)
        near = [s_ for s_ in shafts if np.linalg.norm(s_[2] - pe) < 3.0
                and abs(math.degrees(math.atan2(abs(s_[4][1]), abs(s_[4][0]))) - prior.angle_deg) < 6.0]
        if near:
            shafts = near
    _, _, entry, tip, d = max(shafts, key=lambda s_: s_[0])
    entry, tip, d = _fit_shaft(full, entry, tip, d, mmx, mmz, thr)
    tip = _refine_tip(full, tip, d, mmx, mmz, thr)
    angle = math.degrees(math.atan2(abs(d[1]), abs(d[0])))
    seg_len = float(np.linalg.norm(tip - entry))
    conf = float(np.clip(seg_len / 10.0, 0.3, 1.0))
    shaft_px = ((entry[1] / mmz, entry[0] / mmx), (tip[1] / mmz, tip[0] / mmx))
    return NeedleMeasurement(tip_mm=(float(tip[0]), float(tip[1])), entry_mm=(float(entry[0]), float(entry[1])),
                             angle_deg=angle, confidence=conf, plane="in", shaft_px=shaft_px)


def _detect_cross_section(full: np.ndarray, bright: np.ndarray, mmx: float, mmz: float,
                          prior: NeedleMeasurement | None) -> NeedleMeasurement | None:
    """An out-of-plane needle: a compact saturated dot with a reverberation ("comet") tail straight below it.

    Candidates are compact components of the bright mask (:data:`DOT_DIAMETER_MM`); the tail is the mean grey
    of the dot's columns over the :data:`TAIL_MM` below it, relative to the same depths 1.5 mm to either side.
    Specular tissue echoes (fascia fragments, vessel walls) are bright too but have no tail.
    """
    rows, cols = full.shape
    # 16-bit labels (same labelling, several times faster here) whenever they cannot overflow
    ltype = cv2.CV_16U if cv2.countNonZero(bright) < 65535 else cv2.CV_32S
    n, labels, stats, cents = cv2.connectedComponentsWithStats(bright, connectivity=8, ltype=ltype)
    best, best_score = None, 0.0
    side = max(2, int(round(1.5 / mmx)))
    tail = max(3, int(round(TAIL_MM / mmz)))
    for i in range(1, n):
        x, y, w, h, a = (int(v) for v in stats[i])
        d_mm = 2.0 * math.sqrt(a * mmx * mmz / math.pi)
        if not (DOT_DIAMETER_MM[0] <= d_mm <= DOT_DIAMETER_MM[1]) or w * mmx > DOT_DIAMETER_MM[1] * 1.5:
            continue
        if y * mmz < 1.5 or y + h + tail >= rows or x - side < 0 or x + w + side >= cols:
            continue  # the skin line, or no room for a tail
        dot = float(full[y:y + h, x:x + w].mean())
        if max(float(full[y:y + h, x - side:x - side + w].mean()),
               float(full[y:y + h, x + side:x + side + w].mean())) > 0.75 * dot:
            continue  # part of a bright line or wall running sideways, not an isolated cross-section
        below = full[y + h:y + h + tail, x:x + w].astype(np.float32)
        left = full[y + h:y + h + tail, x - side:x - side + w].astype(np.float32)
        right = full[y + h:y + h + tail, x + w + side - w:x + w + side].astype(np.float32)
        flank = 0.5 * (float(left.mean()) + float(right.mean()))
        ratio = float(below.mean()) / max(flank, 1.0)
        if ratio < TAIL_RATIO or float(below.mean()) < 1.15 * max(float(left.mean()), float(right.mean())):
            continue  # a tail is a streak brighter than both sides, not the edge of a bright region
        if float(below.mean()) - flank < TAIL_MIN_SHARE * (dot - flank):
            continue  # a faint shoulder of a bright echo over black (a lumen, the background), not a tail
        score = ratio
        if prior is not None and prior.plane == "out":
            cx_mm, cz_mm = (cents[i][0] + 0.5) * mmx, (cents[i][1] + 0.5) * mmz
            if math.hypot(cx_mm - prior.tip_mm[0], cz_mm - prior.tip_mm[1]) < 2.0:
                score *= 2.0
        if score > best_score:
            best, best_score = i, score
    if best is None:
        return None
    x, y, w, h, _ = (int(v) for v in stats[best])
    # the dot's centre: grey-weighted centroid of its upper part (the tail's first bright rows pull down)
    top = max(1, int(round(min(h, w) * 1.0)))
    win = full[y:y + top, x:x + w].astype(np.float32)
    wts = np.clip(win - 0.9 * float(win.max()), 0, None) + 1e-3
    ry, rx = np.mgrid[0:win.shape[0], 0:win.shape[1]]
    cy = y + float((ry * wts).sum() / wts.sum())
    cx = x + float((rx * wts).sum() / wts.sum())
    tip = ((cx + 0.5) * mmx, (cy + 0.5) * mmz)
    conf = float(np.clip((best_score - TAIL_RATIO) / TAIL_RATIO + 0.5, 0.3, 1.0))
    return NeedleMeasurement(tip_mm=tip, entry_mm=tip, angle_deg=None, confidence=conf, plane="out",
                             shaft_px=None, dot_radius_mm=0.5 * max(w * mmx, h * mmz))


def _fit_shaft(full: np.ndarray, entry: np.ndarray, tip: np.ndarray, d: np.ndarray, mmx: float, mmz: float,
               thr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line through the bright pixels within 0.4 mm of the Hough shaft (full resolution)."""
    rows, cols = full.shape
    lo = np.minimum(entry, tip) - 0.5
    hi = np.maximum(entry, tip) + 0.5
    c0, c1 = max(0, int(lo[0] / mmx)), min(cols, int(hi[0] / mmx) + 1)
    r0, r1 = max(0, int(lo[1] / mmz)), min(rows, int(hi[1] / mmz) + 1)
    pts = cv2.findNonZero((full[r0:r1, c0:c1] >= thr).view(np.uint8)) if r0 < r1 and c0 < c1 else None
    if pts is None or len(pts) < 6:  # (findNonZero: the points in np.nonzero's order, faster)
        return entry, tip, d
    pts = pts.reshape(-1, 2)
    ys, xs = pts[:, 1], pts[:, 0]
    px = (xs + c0 + 0.5) * mmx
    pz = (ys + r0 + 0.5) * mmz
    n = np.array([-d[1], d[0]])
    dist = (px - entry[0]) * n[0] + (pz - entry[1]) * n[1]
    keep = np.abs(dist) < 0.4
    if keep.sum() < 6:
        return entry, tip, d
    pts = np.stack([px[keep], pz[keep]], 1).astype(np.float32)
    vx, vz, x0, z0 = cv2.fitLine(pts, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    u = np.array([vx, vz], dtype=float)
    if u @ d < 0:
        u = -u
    p0 = np.array([x0, z0], dtype=float)
    # project the ends onto the fitted line
    entry2 = p0 + ((entry - p0) @ u) * u
    tip2 = p0 + ((tip - p0) @ u) * u
    return entry2, tip2, u


def _support(full: np.ndarray, a: np.ndarray, b: np.ndarray, mmx: float, mmz: float, thr: float) -> float:
    """Fraction of the segment a-b (mm) whose full-resolution echo reaches the bright threshold."""
    rows, cols = full.shape
    n = max(4, int(np.linalg.norm(b - a) / min(mmx, mmz)))
    t = np.linspace(0.0, 1.0, n)
    p = a[None, :] + t[:, None] * (b - a)[None, :]
    c = np.clip(np.round(p[:, 0] / mmx - 0.5).astype(int), 0, cols - 1)
    r = np.clip(np.round(p[:, 1] / mmz - 0.5).astype(int), 0, rows - 1)
    up, down = full[np.clip(r - 1, 0, rows - 1), c], full[np.clip(r + 1, 0, rows - 1), c]
    best = np.maximum(full[r, c], np.maximum(up, down))
    return float(np.mean(best >= thr))


def _refine_tip(full: np.ndarray, tip: np.ndarray, d: np.ndarray, mmx: float, mmz: float, thr: float) -> np.ndarray:
    """Move the tip along the shaft direction ``d`` to where the echo falls below half-way to the tissue."""
    rows, cols = full.shape
    step = 0.5 * min(mmx, mmz)
    s = np.arange(-2.0, TIP_SEARCH_MM, step)
    n = np.array([-d[1], d[0]])
    offs = np.array([-0.15, 0.0, 0.15])
    pts = tip[None, None, :] + s[:, None, None] * d[None, None, :] + offs[None, :, None] * n[None, None, :]
    c = np.clip(np.round(pts[..., 0] / mmx - 0.5).astype(int), 0, cols - 1)
    r = np.clip(np.round(pts[..., 1] / mmz - 0.5).astype(int), 0, rows - 1)
    prof = full[r, c].astype(np.float32).max(axis=1)
    shaft = float(median(prof[s < -0.5])) if (s < -0.5).any() else thr
    tissue = float(median(prof[s > 1.0])) if (s > 1.0).any() else 0.0
    half = tissue + 0.5 * (shaft - tissue)
    inside = prof >= half
    # last sample, walking outward from the shaft, that is still bright (allowing 1-sample gaps)
    start = int(np.searchsorted(s, -0.5))
    last = start
    for i in range(start, len(s)):
        if inside[i] or (i + 1 < len(s) and inside[i + 1]):
            last = i
        else:
            break
    return tip + (s[last] - TIP_ECHO_MM) * d


class NeedleTracker:
    """Alpha-beta (constant-velocity) filter on the tip; holds it through drop-outs up to ``hold_s``.

    State is explicit and resettable (:meth:`reset`). ``update(measurement, t_s)`` returns the needle to
    report (a held estimate when the measurement is missing) and whether the needle has just been lost.
    """

    def __init__(self, *, hold_s: float = HOLD_S, alpha: float = 0.85, beta: float = 0.3) -> None:
        self.hold_s = hold_s
        self.alpha = alpha
        self.beta = beta
        self.reset()

    def reset(self) -> None:
        self.pos: np.ndarray | None = None
        self.vel = np.zeros(2)
        self.t_last: float | None = None  # time of the last update
        self.t_seen: float | None = None  # time of the last measurement
        self.last: NeedleMeasurement | None = None
        self.lost_since: float | None = None
        self._streak = 0
        self._candidate: tuple[float, float] | None = None
        self._in_streak = 0
        self._in_candidate: NeedleMeasurement | None = None

    def _confirm_in_plane(self, m: NeedleMeasurement) -> NeedleMeasurement | None:
        """A new in-plane shaft: reported at once when sure (:data:`IN_PLANE_SURE`), otherwise once it has been seen
        on the same line :data:`IN_PLANE_CONFIRM` frames running."""
        c = self._in_candidate
        same = (c is not None and c.angle_deg is not None and m.angle_deg is not None
                and abs(c.angle_deg - m.angle_deg) <= IN_PLANE_SAME_DEG
                and math.hypot(c.entry_mm[0] - m.entry_mm[0], c.entry_mm[1] - m.entry_mm[1]) <= IN_PLANE_SAME_MM)
        self._in_streak = self._in_streak + 1 if same else 1
        self._in_candidate = m
        if m.confidence >= IN_PLANE_SURE or self._in_streak >= IN_PLANE_CONFIRM:
            return m
        return None

    def update(self, m: NeedleMeasurement | None, t_s: float) -> tuple[NeedleMeasurement | None, bool]:
        if m is not None and m.plane == "out" and (self.last is None or self.last.plane != "out"
                                                  or self.t_seen is None or t_s - self.t_seen > self.hold_s):
            # a bright speck with a tail is a needle only when it persists: OUT_OF_PLANE_CONFIRM frames in a row
            near = self._candidate is not None and math.hypot(m.tip_mm[0] - self._candidate[0],
                                                               m.tip_mm[1] - self._candidate[1]) < 1.5
            self._streak = self._streak + 1 if near else 1
            self._candidate = m.tip_mm
            if self._streak < OUT_OF_PLANE_CONFIRM:
                m = None
        elif m is None or m.plane != "out":
            self._streak, self._candidate = 0, None
        if m is not None and m.plane == "in" and (self.last is None or self.t_seen is None
                                                 or t_s - self.t_seen > self.hold_s):
            m = self._confirm_in_plane(m)
        elif m is None or m.plane != "in":
            self._in_streak, self._in_candidate = 0, None
        dt = 0.0 if self.t_last is None else max(0.0, t_s - self.t_last)
        self.t_last = t_s
        if m is not None and self.last is not None and self.t_seen is not None and self.pos is not None \
                and m.angle_deg is not None and self.last.angle_deg is not None \
                and abs(m.angle_deg - self.last.angle_deg) < 6.0:
            # the shaft seems to jump forward: echogenic foam (or a bright wall) continues the line beyond the
            # real tip. A needle does not advance faster than MAX_ADVANCE_MM_S: keep the tip where it was.
            d = np.array(m.tip_mm) - np.array(m.entry_mm)
            d /= max(float(np.linalg.norm(d)), 1e-9)
            advance = float((np.array(m.tip_mm) - self.pos) @ d)
            if advance > 2.0 + MAX_ADVANCE_MM_S * max(dt, t_s - self.t_seen):
                self.t_seen = t_s
                held = NeedleMeasurement(tip_mm=(float(self.pos[0]), float(self.pos[1])), entry_mm=m.entry_mm,
                                         angle_deg=m.angle_deg, confidence=0.5 * m.confidence, plane=m.plane,
                                         shaft_px=m.shaft_px)
                return held, False
        if m is not None:
            z = np.array(m.tip_mm)
            if self.pos is None or self.t_seen is None or t_s - self.t_seen > self.hold_s:
                self.pos, self.vel = z, np.zeros(2)
            else:
                pred = self.pos + self.vel * dt
                r = z - pred
                self.pos = pred + self.alpha * r
                if dt > 0:
                    self.vel = self.vel + self.beta * r / dt
            self.t_seen = t_s
            self.last = m
            self.lost_since = None
            # report the measurement itself (sub-pixel, no lag); the filter serves the drop-outs
            return m, False
        if self.pos is None or self.t_seen is None or self.last is None:
            return None, False
        gap = t_s - self.t_seen
        if gap <= self.hold_s:
            self.pos = self.pos + self.vel * dt
            # a needle does not move much while invisible: damp the velocity
            self.vel *= 0.5
            conf = self.last.confidence * max(0.1, 1.0 - gap / self.hold_s)
            held = NeedleMeasurement(tip_mm=(float(self.pos[0]), float(self.pos[1])), entry_mm=self.last.entry_mm,
                                     angle_deg=self.last.angle_deg, confidence=conf, plane=self.last.plane,
                                     shaft_px=self.last.shaft_px)
            return held, False
        if self.lost_since is None:
            self.lost_since = t_s
        return None, t_s - self.lost_since < 2.0
