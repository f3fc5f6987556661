"""Per-track state of the vein/artery decision: the evidence gathered over time and the kind decided from it.

One :meth:`KindState.update` per frame and track (:class:`~echosclero.guidance.tracking.Track` holds one).
Evidence: the lumen's width over time (pulsatility, read with sub-pixel precision where nothing else moves the
outline), colour-flow fraction over time, wall echogenicity, thrombus echoes and the compression test; the
decision is :func:`~echosclero.guidance.classify.artery_logit`, and a decided vessel changes kind only when the
contrary evidence persists.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from echosclero.guidance._masks import mask_bbox
from echosclero.guidance._quantile import median, percentile
from echosclero.guidance.classify import artery_logit
from echosclero.guidance.foam import tip_in_mask
from echosclero.guidance.preprocess import Prepared

if TYPE_CHECKING:
    from echosclero.guidance.context import FrameContext
    from echosclero.guidance.tracking import Track

__all__ = ["KindState", "colour_fraction", "wall_ratio"]

#: Contrary decisive evidence must last this long (s) before a decided vessel changes kind, so a transient
#: deformation (a needle, a probe shift) does not flip it: to vein, longer than the pulse window (a glitch
#: stays in it that long); to artery sooner, because an artery taken for a vein silences TIP_IN_ARTERY.
FLIP_TO_VEIN_S = 1.5
FLIP_TO_ARTERY_S = 0.75
#: A needle tip this close (mm) to a transverse lumen deforms its outline: its pulse series pauses.
TIP_TOUCH_MM = 2.0
#: Largest frame-to-frame change of lumen width (relative) that is read as wall motion; an arterial diameter
#: swings 5-10 % over a whole cycle, so a bigger jump is a change of segmentation (a fragment, a merge).
MAX_PULSE_STEP = 0.12
#: A pulse moves a long-axis lumen's whole wall; where the columns read twice running disagree by more than this
#: (interquartile range of their height changes, mm: one working pixel) part of the outline moved instead (the
#: needle nearing, the outline catching a piece of wall at a bend): that reading starts the series again. On our
#: simulator's long-axis scenes (foam_deep_junction, ssv_longitudinal, seeds 5001-5002) the range is 0.01-0.08 mm
#: (90th percentile) from frame to frame, and 0.4 mm at the bend glitch of foam_deep_junction seed 5001 that gave a
#: 4.5 % "pulse" (the vein called an artery 0.2 s after the needle appeared; TIP_IN_ARTERY for 90 frames).
LONG_AXIS_PART_MOVED_MM = 0.2
#: The wall echogenicity cue changes slowly: sampled at most this often (s).
WALL_EVERY_S = 0.25


@dataclass(eq=False)
class KindState:
    """Vein or artery, for one tracked lumen, and the evidence behind it.

    Attributes
    ----------
    kind
        ``"unknown"``, ``"vein"`` or ``"artery"``.
    artery_probability
        Probability of an artery from the evidence so far (0.5: none).
    areas, colour, walls
        Evidence histories ``(t_s, value)``: the equivalent-circle area of the width read (mm^2), the colour-flow
        fraction of the lumen, the wall echogenicity (:func:`wall_ratio`).
    col_heights
        Long axis: soft lumen height per image column at the last width reading (mm).
    flip_since
        Contrary decisive evidence seen since this time (s), or ``None``.
    echogenic_frames, clear_frames
        Frames the lumen was found filled with echoes (thrombus) / anechoic, outside injections.
    """

    areas: deque = field(default_factory=lambda: deque(maxlen=128))
    col_heights: np.ndarray | None = None
    colour: deque = field(default_factory=lambda: deque(maxlen=128))
    walls: deque = field(default_factory=lambda: deque(maxlen=128))
    artery_probability: float = 0.5
    kind: str = "unknown"
    flip_since: float | None = None
    echogenic_frames: int = 0
    clear_frames: int = 0

    def update(self, tr: Track, ctx: FrameContext, *, needle_ever_seen: bool) -> None:
        """Add this frame's evidence (width, wall, colour; thrombus echoes) and decide the kind.

        ``needle_ever_seen``: a needle was seen in this cine (echoes in a lumen may then be foam, not thrombus).
        """
        prep, t, pressed, tip_mm, systoles = ctx.prep, ctx.t_s, ctx.pressed, ctx.tip_mm, ctx.systoles
        # the lumen's own pulsation is read where nothing else moves its outline: no probe pressure, no foam in
        # it; the parts near the needle, under a shadow or under spreading foam are left out (the rest of the
        # wall still shows the pulse). The needle tip (or an out-of-plane needle's dot) within 2 mm pushes and
        # rings on the wall itself: the series then pauses
        touched = (tip_mm is not None and not tr.lumen.longitudinal
                   and tip_in_mask(prep, tr.mask, tip_mm, tol_mm=TIP_TOUCH_MM))
        disturbed = None
        for extra in (ctx.near, ctx.below_foam, ctx.shadow):
            if extra is not None:
                disturbed = extra if disturbed is None else disturbed | extra
        if tr.seen_now and tr.foam_fill < 0.05 and not needle_ever_seen:
            self.echogenic_frames += tr.lumen.echogenic  # thrombus-filled, found by its wall (not foam)
            self.clear_frames += not tr.lumen.echogenic
        if tr.seen_now and not pressed and tr.foam_fill < 0.05 and not touched:
            # (a needle within 2 mm of a transverse lumen: its echoes and ring-down move the outline; the
            # series pauses and resumes once it is clear)
            reading = self._pulse_width_mm(tr, prep, disturbed)
            width, moved = reading if reading is not None else (0.0, False)
            if width > 0.0:  # (none of the lumen left undisturbed: no reading)
                if self.areas and (moved or abs(width / (2.0 * math.sqrt(self.areas[-1][1] / math.pi)) - 1.0)
                                 > MAX_PULSE_STEP):
                    self.areas.clear()  # a jump no pulse makes between two frames: the segmentation changed
                self.areas.append((t, math.pi * (0.5 * width) ** 2))  # width series, any view
            if not self.walls or t - self.walls[-1][0] >= WALL_EVERY_S:
                self.walls.append((t, wall_ratio(prep, tr.mask)))
        elif tr.foam_fill >= 0.05:
            self.areas.clear()  # foam and spasm change the lumen: start again once free
        cf = colour_fraction(prep, tr.mask if tr.seen_now else (tr.ref_mask if tr.ref_mask is not None else tr.mask))
        if cf is not None and not pressed:
            self.colour.append((t, cf))
        if self.kind != "unknown" and not tr.seen_now:
            return  # coasting: nothing new to weigh, the decision stands
        if self.kind != "unknown" and (touched or tr.foam_fill >= 0.05 or pressed) \
                and tr.compression.max_compressibility is None:
            return  # the decision taken on the free vessel stands while the needle or foam deform it
        logit, decided = artery_logit(t_now=t, t_first=tr.t_first, areas=self.areas, colour=self.colour,
                                      walls=self.walls, max_compressibility=tr.compression.max_compressibility,
                                      echogenic_fraction=self.echogenic_frames / max(1, self.echogenic_frames
                                                                                   + self.clear_frames),
                                      systoles=systoles)
        self.artery_probability = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))
        if not decided:
            self.flip_since = None
            return
        kind = "artery" if logit > 0 else "vein"
        if self.kind == "unknown" or kind == self.kind:
            self.kind, self.flip_since = kind, None
        elif self.flip_since is None:
            self.flip_since = t  # a vessel does not change kind: the contrary evidence must persist
        elif t - self.flip_since >= (FLIP_TO_ARTERY_S if kind == "artery" else FLIP_TO_VEIN_S):
            self.kind, self.flip_since = kind, None

    def _pulse_width_mm(self, tr: Track, prep: Prepared, disturbed: np.ndarray | None) -> tuple[float, bool] | None:
        """Width of the lumen now, with sub-pixel precision, for the pulsatility series.

        A binary mask moves in whole pixels (0.2 mm), about the size of an arterial pulse (5-10 % of 6 mm),
        and along a straight long-axis wall every column flips at once; so each pixel near the edge counts
        by where its grey lies between the lumen level and the wall level (a soft area).

        Returns ``(width_mm, moved)``: ``moved`` when part of a long-axis lumen's outline moved and not its wall
        (:data:`LONG_AXIS_PART_MOVED_MM`; the column heights of each reading are kept in ``col_heights``).

        ``disturbed``: where the needle, an acoustic shadow or spreading foam moves the grey for reasons of
        its own. Transverse: the equivalent-circle diameter of the soft area; with part of the lumen
        disturbed, the resting outline scaled by the ratio of the undisturbed part now to the same part of
        the resting outline (the pulse moves the whole wall, so any part of it shows it). Long axis: the
        mean soft height of the lumen over the central 80 % of the undisturbed columns it crosses.
        """
        lum = tr.lumen
        rows, cols = prep.shape
        r0, c0, r1, c1 = lum.bbox
        pad = 2
        a0, b0, a1, b1 = max(0, r0 - pad), max(0, c0 - pad), min(rows, r1 + pad), min(cols, c1 + pad)
        dist = disturbed[a0:a1, b0:b1] if disturbed is not None else None
        if not lum.longitudinal and (lum.occluded or (dist is not None and dist.any())):
            if tr.ref_mask is None or tr.ref_lumen is None or tr.ref_mask.shape != prep.shape:
                return None
            free = ~disturbed if disturbed is not None else np.ones(prep.shape, bool)
            visible_ref = np.count_nonzero(tr.ref_mask & free)
            if visible_ref < 0.4 * np.count_nonzero(tr.ref_mask):
                return None  # too little left in view to read the wall motion
            return tr.ref_lumen.diameter_mm * math.sqrt(np.count_nonzero(tr.mask & free) / visible_ref), False
        m = np.zeros((a1 - a0, b1 - b0), np.uint8)
        m[r0 - a0:r1 - a0, c0 - b0:c1 - b0] = lum.mask
        grown = cv2.dilate(m, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)).astype(bool)
        inside = m.astype(bool)
        ring = grown & ~inside
        win = prep.ratio[a0:a1, b0:b1]
        if dist is not None and dist.any():
            # the levels from the undisturbed wall only: the needle's echo in the ring, or its shadow, would move
            # them, and with them the soft edge all round the lumen
            inside_lv, ring_lv = inside & ~dist, ring & ~dist
            if np.count_nonzero(inside_lv) < 10 or np.count_nonzero(ring_lv) < 10:
                return None
        else:
            inside_lv, ring_lv = inside, ring
        if not ring_lv.any():
            return None
        lo = float(median(win[inside_lv]))
        hi = float(percentile(win[ring_lv], 75))
        if hi - lo < 0.1:
            return None  # no edge contrast to interpolate on
        soft = np.clip((hi - win) / (hi - lo), 0.0, 1.0) * grown
        if lum.longitudinal:
            cols_in = inside.any(axis=0)
            if dist is not None:  # columns the needle, foam or a shadow disturb
                cols_in &= ~dist.any(axis=0)
            present = np.flatnonzero(cols_in)
            if present.size < 10:
                return None
            cut = present.size // 10
            used = present[cut:present.size - cut]
            heights = soft.sum(axis=0) * np.float32(prep.mm_per_px_z)
            now = float(heights[used].mean())
            prof = np.full(cols, np.nan, np.float32)
            prof[b0 + used] = heights[used]
            ref, self.col_heights = self.col_heights, prof
            if ref is not None and ref.shape[0] == cols:
                d = prof[b0 + used] - ref[b0 + used]
                d = d[np.isfinite(d)]
                if d.size >= 10:
                    q25, q75 = (float(v) for v in np.percentile(d, (25, 75)))
                    if q75 - q25 > LONG_AXIS_PART_MOVED_MM:
                        return now, True  # part of the outline moved, not the wall
            return now, False
        return 2.0 * math.sqrt(float(soft.sum()) * prep.mm_per_px_x * prep.mm_per_px_z / math.pi), False


def wall_ratio(prep: Prepared, mask: np.ndarray) -> float:
    """Median grey / tissue level in a ring 0.2-1.0 mm outside the lumen (vessel wall echogenicity)."""
    k_in = max(1, int(round(0.2 / prep.mm_per_px_x)))
    k_out = max(2, int(round(1.0 / prep.mm_per_px_x)))
    box = mask_bbox(mask)
    if box is None:
        return float("nan")
    r0, r1 = max(0, box[0] - k_out - 1), min(mask.shape[0], box[1] + k_out + 1)
    c0, c1 = max(0, box[2] - k_out - 1), min(mask.shape[1], box[3] + k_out + 1)
    sub = mask[r0:r1, c0:c1].astype(np.uint8)
    outer = cv2.dilate(sub, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k_out + 1, 2 * k_out + 1)))
    inner = cv2.dilate(sub, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k_in + 1, 2 * k_in + 1)))
    ring = (outer > 0) & (inner == 0)
    if not ring.any():
        return float("nan")
    ratio = prep.small[r0:r1, c0:c1][ring] / prep.background[r0:r1, c0:c1][ring]
    return float(percentile(ratio, 75))


def colour_fraction(prep: Prepared, mask: np.ndarray) -> float | None:
    """Mean colour-flow fraction over the mask (``None`` for a grey frame)."""
    if prep.colour_small is None:
        return None
    vals = prep.colour_small[mask]
    return float(vals.mean()) if vals.size else 0.0
