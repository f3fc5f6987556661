"""Vessel tracking with stable ids, and the per-vessel evidence gathered over time.

Each :class:`Track` owns a working-resolution mask of its lumen. Detections are assigned to tracks by mask
overlap (a detection split by a needle or by foam gives several fragments, all assigned to their track);
unassigned detections start tentative tracks. A confirmed track that is not detected keeps its last geometry
("coasting") for up to :data:`MAX_COAST_S` — a vein collapsed under compression or hidden under an acoustic
shadow is still there.

Evidence per track (for classification, :mod:`echosclero.guidance.classify`): lumen area over time
(pulsatility), colour-flow fraction over time (pulsatile flashes of an artery vs steady venous flow), wall
echogenicity, and the area lost under probe compression.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from echosclero.guidance._masks import mask_bbox
from echosclero.guidance.compression_state import CompressionState
from echosclero.guidance.foam import content_ratio, fill_fraction
from echosclero.guidance.kind_state import KindState
from echosclero.guidance.preprocess import Prepared
from echosclero.guidance.vessels import Lumen, is_round, lumen_from_mask

__all__ = ["MAX_COAST_S", "Track", "VesselTracker"]

#: How long a confirmed track is kept without detection (s).
MAX_COAST_S = 3.0
#: A track detected fewer than :data:`STEADY_HITS` times coasts only this long (s): a dark patch seen in two or
#: three frames and then gone was noise, not a vessel that collapsed or went under a shadow.
MIN_COAST_S = 0.3
STEADY_HITS = 4
#: A steady track whose outline lies (by this fraction) in an acoustic shadow is kept this long (s): it is hidden,
#: not gone.
MAX_SHADOW_COAST_S = 8.0
SHADOW_COAST_FRACTION = 0.5
#: ... and so is a lumen holding foam over this fraction of it: the dark-lumen detector no longer sees a lumen
#: full of echogenic sclerosant, but it is there (its fill is still read inside its outline).
FOAM_COAST_FILL = 0.3
#: Detections before a track is confirmed.
CONFIRM_HITS = 2
#: Minimum overlap (fraction of the smaller of detection and track) to assign a detection to a track.
MIN_OVERLAP = 0.3
#: Length of the evidence history (s).
HISTORY_S = 2.0
#: Foam: grey / local tissue level above which a lumen pixel is echogenic content (blood is < 0.5).
FOAM_RATIO = 0.9


@dataclass(eq=False)
class Track:
    id: str
    mask: np.ndarray  # (r, c) bool, working resolution, full image
    lumen: Lumen
    t_first: float
    t_last_seen: float
    hits: int = 1
    ref_mask: np.ndarray | None = None  # lumen before any foam
    ref_area_mm2: float = 0.0
    ref_lumen: Lumen | None = None  # the lumen as last fully seen (no foam, no shadow)
    baseline_diameter_mm: float | None = None
    compression: CompressionState = field(default_factory=CompressionState)  # the compression test's evidence
    area_now_mm2: float = 0.0
    diameter_now_mm: float = 0.0
    foam_fill: float = 0.0
    foam_baseline: float | None = None
    foam_history: deque = field(default_factory=lambda: deque(maxlen=8))
    foam_front_mm: tuple[float, float] | None = None
    lumen_level: float | None = None  # median grey / tissue level of the free lumen's core (its anechoic state)
    foam_pending: int = 0  # consecutive readings of a new echogenic layer with no needle near (see Engine)
    foam_pending_first: float = 0.0  # the first of those readings (a layer of foam starts thin; see Engine)
    foam_width_ref: float | None = None  # width of the foam-filled lumen when its fill first passed a half (mm)
    foam_widths: deque = field(default_factory=lambda: deque(maxlen=32))  # foam widths read (mm), see Engine
    spasm_now: float | None = None  # relative diameter loss against the pre-injection baseline
    kind_state: KindState = field(default_factory=KindState)  # vein or artery, and the evidence behind it
    tip_near_t: float | None = None  # last time (s) the needle tip was near this lumen (a source of foam)
    seen_now: bool = True

    @property
    def confirmed(self) -> bool:
        return self.hits >= CONFIRM_HITS


def _lumen_full_mask(lum: Lumen, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    r0, c0, r1, c1 = lum.bbox
    m[r0:r1, c0:c1] = lum.mask
    return m


class VesselTracker:
    """Assigns lumens to stable tracks frame after frame. ``reset()`` forgets everything."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tracks: list[Track] = []
        self._next_id = 1

    def known_mask(self, shape: tuple[int, int]) -> np.ndarray | None:
        """Union of the reference outlines of the confirmed tracks, grown by one pixel (or ``None``)."""
        refs = [tr.ref_mask for tr in self.tracks if tr.confirmed and tr.ref_mask is not None
                and tr.ref_mask.shape == shape]
        if not refs:
            return None
        m = np.logical_or.reduce(refs) if len(refs) > 1 else refs[0].copy()
        return cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)

    def _split_over_tracks(self, lumens: list[Lumen], prep: Prepared) -> list[Lumen]:
        """Divide a detection that covers several tracked transverse lumens (touching vessels seen as one
        blob, e.g. paired veins hugging their artery) among them: each pixel goes to the track whose centre
        is nearest relative to its radius."""
        known = [tr for tr in self.tracks if tr.confirmed and tr.ref_mask is not None and tr.ref_lumen is not None
                 and not tr.ref_lumen.longitudinal]
        if len(known) < 2:
            return lumens
        out: list[Lumen] = []
        for lum in lumens:
            r0, c0, r1, c1 = lum.bbox
            hits = []
            covered = np.zeros(lum.mask.shape, bool)
            for tr in known:
                ref = tr.ref_mask[r0:r1, c0:c1]
                if np.count_nonzero(ref & lum.mask) >= 0.3 * tr.ref_area_mm2 / (prep.mm_per_px_x * prep.mm_per_px_z):
                    hits.append(tr)
                    covered |= ref
            # a band made of tracked round lumens (a row of touching vessels) is split too, not a long-axis vessel
            if len(hits) < 2 or (lum.longitudinal and np.count_nonzero(covered & lum.mask) < 0.6 * lum.mask.sum()):
                out.append(lum)
                continue
            ys, xs = np.nonzero(lum.mask)
            ctr = np.array([prep.to_px(*tr.ref_lumen.center_mm) for tr in hits], dtype=np.float64)
            rad = np.array([max(1.0, 0.5 * tr.ref_lumen.diameter_mm / prep.mm_per_px_x) for tr in hits])
            d = np.hypot(ys[:, None] + r0 - ctr[None, :, 0], xs[:, None] + c0 - ctr[None, :, 1]) / rad[None, :]
            owner = np.argmin(d, axis=1)
            for k in range(len(hits)):
                sel = owner == k
                if not sel.any():
                    continue
                part = np.zeros(lum.mask.shape, np.uint8)
                part[ys[sel], xs[sel]] = 1
                sub = lumen_from_mask(prep, part, r0, c0)
                if sub is not None:
                    out.append(sub)
        return out

    def update(self, lumens: list[Lumen], prep: Prepared, t_s: float, *, exclude: np.ndarray | None = None,
               shadow: np.ndarray | None = None) -> list[Track]:
        """Assign this frame's lumens to tracks; the tracks to report (seen now, or confirmed and coasting).

        ``exclude``: the needle's mask (a needle cuts one lumen into fragments); ``shadow``: the frame's acoustic
        shadows (a steady track under one is hidden, not gone, and coasts longer)."""
        shape = prep.shape
        lumens = self._split_over_tracks(lumens, prep)
        masks = [_lumen_full_mask(lum, shape) for lum in lumens]
        assigned: dict[int, list[int]] = {}
        free = []
        for j, m in enumerate(masks):
            # candidates: tracks holding enough of the detection (or of whose outline the detection holds
            # enough: a fragment); among them the best intersection over union
            best, best_iou = None, 0.0
            a = np.count_nonzero(m)
            r0, c0, r1, c1 = lumens[j].bbox  # the detection lies within its box: overlaps are read there
            for i, tr in enumerate(self.tracks):
                ref = tr.ref_mask if tr.ref_mask is not None else tr.mask
                ov = np.count_nonzero(lumens[j].mask & ref[r0:r1, c0:c1])
                if ov == 0:
                    continue
                b = np.count_nonzero(ref)
                if ov / max(1, min(a, b)) < MIN_OVERLAP:
                    continue
                iou = ov / max(1, a + b - ov)
                if iou > best_iou:
                    best, best_iou = i, iou
            if best is not None:
                assigned.setdefault(best, []).append(j)
            else:
                free.append(j)
        for tr in self.tracks:
            tr.seen_now = False
        for i, js in list(assigned.items()):
            tr = self.tracks[i]
            whole = [j for j in js if not lumens[j].longitudinal and not lumens[j].occluded]
            if len(js) > 1 and len(whole) == len(js) and tr.foam_fill < 0.05 and ignore_free(masks, js, exclude) \
                    and not _is_round(tr.ref_mask if tr.ref_mask is not None else tr.mask):
                # several complete round lumens inside one old outline: touching vessels first seen as one
                # blob, now told apart. The best-overlapping keeps the track, the others start their own.
                ref = tr.ref_mask if tr.ref_mask is not None else tr.mask
                js = sorted(js, key=lambda j: -np.count_nonzero(masks[j] & ref))
                assigned[i] = js[:1]
                free.extend(js[1:])
                tr.ref_mask = None
                js = js[:1]
            if len(js) == 1:
                lum, m = lumens[js[0]], masks[js[0]]
            else:  # fragments of one lumen (cut by a needle or by foam): merge
                m = np.zeros(shape, bool)
                for j in js:
                    m |= masks[j]
                lum = max((lumens[j] for j in js), key=lambda lu: lu.area_mm2)
            tr.lumen, tr.mask = lum, m
            tr.t_last_seen = t_s
            tr.hits += 1
            tr.seen_now = True
        for j in free:
            tr = Track(id=f"V{self._next_id}", mask=masks[j], lumen=lumens[j], t_first=t_s, t_last_seen=t_s)
            self._next_id += 1
            self.tracks.append(tr)
        keep = []
        for tr in self.tracks:
            gap = t_s - tr.t_last_seen
            coast = MAX_COAST_S if tr.hits >= STEADY_HITS else MIN_COAST_S
            if tr.hits >= STEADY_HITS and gap > coast and (
                    tr.foam_fill >= FOAM_COAST_FILL or (shadow is not None and _under(tr, shadow))):
                coast = MAX_SHADOW_COAST_S
            if tr.seen_now or (tr.confirmed and gap <= coast):
                keep.append(tr)
        self.tracks = keep
        return [tr for tr in self.tracks if tr.seen_now or tr.confirmed]


def _under(tr: Track, shadow: np.ndarray) -> bool:
    """Whether most of the track's known outline lies in the acoustic shadow of this frame."""
    ref = tr.ref_mask if tr.ref_mask is not None else tr.mask
    if ref.shape != shadow.shape:
        return False
    n = np.count_nonzero(ref)
    return n > 0 and np.count_nonzero(ref & shadow) >= SHADOW_COAST_FRACTION * n


def _is_round(mask: np.ndarray) -> bool:
    box = mask_bbox(mask)
    if box is None:
        return False
    return is_round(mask[box[0]:box[1], box[2]:box[3]].astype(np.uint8))


def ignore_free(masks: list[np.ndarray], js: list[int], exclude: np.ndarray | None) -> bool:
    """No detection among ``js`` touches the needle mask (a needle cuts one lumen into fragments)."""
    if exclude is None:
        return True
    grown = cv2.dilate(exclude.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return not any(np.any(masks[j] & grown) for j in js)


def foam_measure(prep: Prepared, tr: Track, exclude: np.ndarray | None, shade: np.ndarray | None = None
                 ) -> tuple[float, np.ndarray | None]:
    """Fraction of the track's reference lumen filled with echogenic content (foam), and the bright foam mask
    (0 when none of it can be read).

    ``exclude``: the needle; ``shade``: what the needle hides (shaft and the scan lines below it), not read.
    The fill is read as a layer within the reference outline (:func:`echosclero.guidance.foam.fill_fraction`).
    """
    ref = tr.ref_mask if tr.ref_mask is not None else tr.mask
    box = mask_bbox(ref)
    if box is None or box[4] < 4:
        return 0.0, None
    r0, r1, c0, c1, _ = box
    region = ref[r0:r1, c0:c1]
    # read the lumen less its edge pixel, which mixes with the wall echo
    sub = np.zeros((r1 - r0 + 2, c1 - c0 + 2), np.uint8)
    sub[1:-1, 1:-1] = region
    measurable = cv2.erode(sub, np.ones((3, 3), np.uint8))[1:-1, 1:-1].astype(bool)
    if int(measurable.sum()) < 4:
        return 0.0, None
    hidden = shade if shade is not None else exclude
    if hidden is not None:
        measurable &= ~hidden[r0:r1, c0:c1]
    if prep.colour_small is not None:  # the colour-flow overlay hides the grey echoes underneath
        measurable &= prep.colour_small[r0:r1, c0:c1] <= np.float32(0.05)
    if int(measurable.sum()) < 4:
        return 0.0, None  # nothing of the lumen can be read
    ratio = prep.ratio[r0:r1, c0:c1]
    longitudinal = (tr.ref_lumen or tr.lumen).longitudinal
    fill = fill_fraction(region, ratio >= np.float32(content_ratio(tr.lumen_level)), measurable, longitudinal)
    bright = np.zeros(ref.shape, bool)
    bright[r0:r1, c0:c1] = (ratio > np.float32(FOAM_RATIO)) & measurable
    return fill, bright


def _rdp_free(x: float) -> float:
    return x if math.isfinite(x) else 0.0
