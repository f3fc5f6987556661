"""The guidance engine: one :meth:`Engine.process` call per frame, explicit resettable state.

Stages, in order (each a pure function on the prepared frame, plus the tracked state of this engine):
preparation (:mod:`.preprocess`) -> needle (:mod:`.needle`) -> lumens (:mod:`.vessels`) -> tracking
(:mod:`.tracking`) -> probe-compression strain -> foam, compressibility, classification (:mod:`.classify`)
-> alerts (:mod:`.alerts`). Everything is in millimetres via the frame's calibration.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from echosclero._runtime import tune_allocator
from echosclero.frames import Frame
from echosclero.guidance._masks import mask_bbox
from echosclero.guidance._quantile import median
from echosclero.guidance.alerts import evaluate_alerts
from echosclero.guidance.classify import systole_times
from echosclero.guidance.closure import closure
from echosclero.guidance.context import FrameContext
from echosclero.guidance.findings import Alert, FoamFinding, FrameResult, NeedleFinding, VesselFinding
from echosclero.guidance.foam import (
    content_ratio,
    filling_from_top,
    foam_width_mm,
    lost_to_echoes,
    needle_shade,
    tip_in_mask,
)
from echosclero.guidance.footprint import FootprintCache, inside
from echosclero.guidance.lumen_net import LumenNet
from echosclero.guidance.needle import NeedleMeasurement, NeedleTracker, detect_needle
from echosclero.guidance.preprocess import Prepared, prepare
from echosclero.guidance.shadows import acoustic_shadow
from echosclero.guidance.tracking import Track, VesselTracker, foam_measure
from echosclero.guidance.vessels import (
    detect_learned_lumens,
    detect_lumens,
    detect_walled_lumens,
    merge_lumens,
)

__all__ = ["Engine", "EngineConfig"]

#: TIP_IN_ARTERY needs the tip this far (mm) inside the artery's lumen: a tip found on the wall is not in it.
TIP_CLEAR_OF_WALL_MM = 0.3
#: Foam is growing (sclerosant entering now) when its fill rose by this much over the last readings (8 frames).
GROWING_FILL = 0.05
#: Lumens this close (mm) are taken as joined: foam spreads from one to the other.
FOAM_TOUCH_MM = 1.0
#: Foam can start in a lumen the needle tip came this close to (mm): the tip error is ~1 mm (p95).
FOAM_SOURCE_MM = 3.0
#: Foam with no needle near (out of the plane, out of view, not found): it may start in a lumen tracked this long
#: (s), seen anechoic before (its fill reading at most FOAM_CLEAR_BEFORE), with the probe still (strain at most
#: STILL_STRAIN, the estimator's first step) for FOAM_STILL_S (a compression and its release move tissue into
#: the outline), once the echogenic layer has been read FOAM_CONFIRM_FRAMES frames running (speckle, one frame).
FOAM_STEADY_S = 1.0
FOAM_CLEAR_BEFORE = 0.1
STILL_STRAIN = 0.004
FOAM_STILL_S = 0.5
FOAM_CONFIRM_FRAMES = 3
#: ... and only if the first of those readings was a thin layer (fill at most this): sclerosant entering out of
#: view rises from the top over seconds; a lumen reading a third full from one frame to the next is tissue moved
#: into its outline (a compression released, the vein refilling), not foam.
FOAM_FIRST_LAYER_MAX = 0.3
#: Spasm is read from the foam's width once the vein is this full (the foam then spans its widest row), as the
#: median of the last SPASM_MEDIAN_FRAMES readings (speckle moves the edge by a pixel from frame to frame).
SPASM_READ_FILL = 0.5
SPASM_MEDIAN_FRAMES = 5
#: The resting outline of a lumen follows its detection while the area stays within these factors of it: a
#: lumen partly hidden (smaller) or merged with a neighbour or a shadow (bigger) does not replace it.
REF_SHRINK_MIN = 0.6
REF_GROW_MAX = 1.4
#: An artery whose pulse scores this much (2-5 for a 5-10 % swing) times the systoles for the other vessels.
REFERENCE_PULSE_SCORE = 2.0


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tunable physical thresholds of the engine (defaults from the design notes of each stage)."""

    #: A vessel whose centre lies deeper than this is taken as deep (below the deep fascia). The saphenous
    #: compartment lies within ~1.5 cm of the skin in most legs (Caggiati, Circulation 1999;100:2547).
    deep_z_mm: float = 16.0
    #: Vertical tissue strain above which the probe is taken to be compressing.
    pressed_strain: float = 0.02
    #: Foam fill reported from this fraction of the lumen.
    min_foam_fill: float = 0.08
    #: Foam may start in a lumen only this long (s) after a needle was last seen (or while foam is elsewhere).
    injection_window_s: float = 10.0
    #: Tolerance (mm) of the tip-in-lumen test (the lumen edge blurs over ~1 PSF width).
    tip_tolerance_mm: float = 0.4
    #: Largest strain searched by the compression estimator.
    max_strain: float = 0.25
    #: Find lumens with the lumen network (:mod:`.lumen_net`) as well as by contrast. Off: contrast alone (the
    #: engine before the network; kept for comparison in the benchmarks).
    lumen_net: bool = True


def _core_level(prep: Prepared, lum) -> float | None:
    """Median grey / local tissue level of a lumen's core (the lumen less a 0.4 mm rim that mixes with the wall)."""
    r0, c0, r1, c1 = lum.bbox
    core = cv2.erode(lum.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if np.count_nonzero(core) < 4:
        return None
    return float(median(prep.ratio[r0:r1, c0:c1][core]))


class _StrainEstimator:
    """Vertical tissue strain under probe pressure from the depth profile of the image.

    Tissue at depth ``z`` moves to ``z (1 - s)`` under a uniform strain ``s``; the mean grey per row of the
    current frame is compared with a reference profile (taken at rest) stretched by each candidate strain.
    """

    def __init__(self, max_strain: float) -> None:
        self.strains = np.linspace(0.0, max_strain, int(round(max_strain / 0.004)) + 1)
        self.reset()

    def reset(self) -> None:
        self.ref: np.ndarray | None = None
        self._idx = None

    def update(self, prep: Prepared) -> float:
        prof = prep.small.mean(axis=1).astype(np.float64)
        n = prof.size
        if self.ref is None or self.ref.size != n:
            self.ref = prof
            z = np.arange(n, dtype=np.float64)
            self._valid = int(n * (1 - self.strains[-1])) - 1
            self._src = (z[None, : self._valid] + 0.5) / (1 - self.strains[:, None]) - 0.5
            # linear interpolation on the unit grid, as np.interp computes it (slope * (x - j) + ref[j]), for
            # all strains at once: the source positions lie within [0, n - 1)
            self._j = np.floor(self._src).astype(np.intp)
            self._frac = self._src - self._j
            return 0.0
        ref, j = self.ref, self._j
        cand = (ref[j + 1] - ref[j]) * self._frac + ref[j]
        cur = prof[: self._valid]
        cur = cur - cur.mean()
        cand -= cand.mean(axis=1, keepdims=True)
        score = (cand @ cur) / (np.linalg.norm(cand, axis=1) * max(np.linalg.norm(cur), 1e-9) + 1e-12)
        s = float(self.strains[int(np.argmax(score))])
        if s <= 0.004:
            self.ref = 0.9 * self.ref + 0.1 * prof
        return s


class Engine:
    """Per-frame ultrasound guidance: vessels, needle, foam, compressibility, alerts.

    Examples
    --------
    >>> engine = Engine()
    >>> for frame in source.frames():            # doctest: +SKIP
    ...     result = engine.process(frame)
    ...     print(result.to_json())
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        tune_allocator()  # per-frame buffers stay in the heap: see echosclero._runtime
        self.config = config or EngineConfig()
        self.vessels = VesselTracker()
        self.needle = NeedleTracker()
        self.strain = _StrainEstimator(self.config.max_strain)
        self.footprint = FootprintCache()
        self.net = LumenNet.load() if self.config.lumen_net else None
        self.reset()

    def reset(self) -> None:
        """Forget all tracked state (start of a new cine or stream)."""
        self.vessels.reset()
        self.needle.reset()
        self.strain.reset()
        self.footprint.reset()
        self._pressed_once = False
        self._shape: tuple[int, int] | None = None
        self._last_t: float | None = None
        self._needle_seen_t: float | None = None
        self._still_since: float | None = None

    def _injecting(self, t: float) -> bool:
        """A needle was seen within :attr:`EngineConfig.injection_window_s`, or foam is already in a vessel."""
        if self._needle_seen_t is not None and t - self._needle_seen_t <= self.config.injection_window_s:
            return True
        return any(tr.foam_fill >= self.config.min_foam_fill for tr in self.vessels.tracks)

    def _still(self, t: float, for_s: float) -> bool:
        """The probe has not compressed the tissue for ``for_s`` seconds."""
        return self._still_since is not None and t - self._still_since >= for_s

    def _may_start_foam(self, tr: Track, ctx: FrameContext) -> bool:
        """Can foam appear in this lumen now?

        * where the needle tip came within :data:`FOAM_SOURCE_MM` in the last
          :attr:`EngineConfig.injection_window_s`;
        * never, otherwise, in a lumen known to be an artery (foam reaches an artery only through a needle);
        * from a lumen holding foam that it touches (a junction seen in the plane);
        * with no needle near (it is out of the plane or not found): in a lumen tracked for
          :data:`FOAM_STEADY_S`, anechoic before, with the probe still, once the layer of echoes has been read
          :data:`FOAM_CONFIRM_FRAMES` frames running;
        * from foam anywhere else into a lumen known to be a vein (foam travels along veins and perforators
          out of the plane). An undecided lumen away from the foam gets none: noise in a deep lumen is not
          foam.
        """
        t, mm_per_px = ctx.t_s, ctx.prep.mm_per_px_x
        if tr.tip_near_t is not None and t - tr.tip_near_t <= self.config.injection_window_s:
            return True
        if tr.kind_state.kind == "artery":
            return False
        if (tr.foam_pending >= FOAM_CONFIRM_FRAMES and tr.foam_pending_first <= FOAM_FIRST_LAYER_MAX
                and t - tr.t_first >= FOAM_STEADY_S
                and (tr.foam_baseline or 0.0) <= FOAM_CLEAR_BEFORE and ctx.probe_still):
            return True  # foam with no needle in view: a steady, still, anechoic lumen taking a layer of echoes
        sources = [o for o in self.vessels.tracks if o is not tr and o.foam_fill >= self.config.min_foam_fill]
        if not sources:
            return False
        if tr.kind_state.kind == "vein":
            return True
        mine = tr.ref_mask if tr.ref_mask is not None else tr.mask
        box = mask_bbox(mine)
        if box is None:
            return False
        r0, r1, c0, c1, _ = box
        k = max(1, int(round(FOAM_TOUCH_MM / mm_per_px)))
        r0, c0 = max(0, r0 - k), max(0, c0 - k)
        for o in sources:
            other = o.ref_mask if o.ref_mask is not None else o.mask
            if other.shape == mine.shape and other[r0:r1 + k, c0:c1 + k].any():
                grown = cv2.dilate(other[r0:r1 + k, c0:c1 + k].astype(np.uint8), np.ones((2 * k + 1,) * 2, np.uint8))
                if np.any(grown.astype(bool) & mine[r0:r1 + k, c0:c1 + k]):
                    return True
        return False

    # ------------------------------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        """Analyse one frame (frames of one cine in order; call :meth:`reset` between cines)."""
        t0 = time.perf_counter()
        prep = self._prepare(frame)
        if not prep.usable:
            return FrameResult(index=frame.index, t_s=float(frame.t_s), status=prep.reason,
                               alerts=(Alert("FRAME_UNUSABLE", "info", f"frame {frame.index}: {prep.reason}, "
                                             "nothing analysed"),),
                               processing_ms=(time.perf_counter() - t0) * 1e3)
        ctx = self._measure(prep, float(frame.t_s))
        lumens = self._detect_lumens(ctx)
        tracks = self.vessels.update(lumens, prep, ctx.t_s, exclude=ctx.exclude, shadow=ctx.shadow)
        systoles = self._systoles(tracks, ctx.t_s) if any(tr.kind_state.kind == "unknown" for tr in tracks) else ()
        ctx = ctx.after_tracking(below_foam=self._below_foam(prep.shape), systoles=systoles)
        return self._report(frame, ctx, tracks, t0)

    def _prepare(self, frame: Frame) -> Prepared:
        """The prepared frame; tracked state is forgotten when time goes back or the geometry changes."""
        if self._last_t is not None and frame.t_s < self._last_t:
            self.reset()  # time went back: another cine
        prep = prepare(frame, footprint_cache=self.footprint)
        if self._shape is not None and self._shape != prep.shape:
            self.reset()  # a new geometry: nothing tracked can carry over
        self._shape = prep.shape
        self._last_t = frame.t_s
        return prep

    def _measure(self, prep: Prepared, t: float) -> FrameContext:
        """The frame's context: needle, its masks, acoustic shadow, probe compression (once per frame)."""
        cfg = self.config
        meas = detect_needle(prep, prior=self.needle.last)
        needle_m, needle_lost = self.needle.update(meas, t)
        if needle_m is not None:
            self._needle_seen_t = t
        exclude = self._needle_mask(prep, needle_m) if needle_m is not None else None
        shadow = acoustic_shadow(prep)
        strain = self.strain.update(prep)
        pressed = strain >= cfg.pressed_strain
        if strain > STILL_STRAIN:
            self._still_since = None
        elif self._still_since is None:
            self._still_since = t
        if pressed:
            self._pressed_once = True
        near = None
        if exclude is not None:
            k = max(3, int(round(2.0 / prep.mm_per_px_x)) | 1)
            near = cv2.dilate(exclude.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        # foam is read (and the needle's shade needed) only with the probe at rest
        shade = needle_shade(prep, needle_m, exclude) if needle_m is not None and not pressed else exclude
        return FrameContext(prep=prep, t_s=t, needle=needle_m, needle_detected=meas, needle_lost=needle_lost,
                            exclude=exclude, near=near, needle_shade=shade, shadow=shadow, strain=strain,
                            pressed=pressed, probe_still=self._still(t, FOAM_STILL_S))

    def _detect_lumens(self, ctx: FrameContext) -> list:
        """Lumens of this frame: by contrast, by the lumen network, by their walls; inside the imaged area."""
        prep, exclude, shadow = ctx.prep, ctx.exclude, ctx.shadow
        known = self.vessels.known_mask(prep.shape)
        lumens = detect_lumens(prep, ignore=exclude, shadow=shadow, keep=known)
        if self.net is not None:
            below_foam = self._below_foam(prep.shape)
            prob = self.net.probability(prep.small, prep.imaged)
            # while injecting, the needle's shadow and what lies under foam are dark without blood
            hidden = shadow if ctx.needle is not None else None
            if below_foam is not None:
                hidden = below_foam if hidden is None else hidden | below_foam
            learned = detect_learned_lumens(prep, prob, ignore=exclude, half_way=False)
            lumens = merge_lumens(learned, lumens, shadow=hidden, known=known, prob=prob, prep=prep)
        taken = np.zeros(prep.shape, bool)
        for lum in lumens:
            r0, c0, r1, c1 = lum.bbox
            taken[r0:r1, c0:c1] |= lum.mask
        lumens += detect_walled_lumens(prep, taken=taken | shadow)
        # nothing is reported outside the imaged area (black background, text, the deep no-signal region)
        return [lum for lum in lumens if inside(prep.imaged, *prep.to_px(*lum.center_mm))]

    def _report(self, frame: Frame, ctx: FrameContext, tracks: list[Track], t0: float) -> FrameResult:
        """Update each track's evidence and report the frame: vessels, needle, foam, alerts."""
        cfg = self.config
        prep, t, needle_m, strain, pressed = ctx.prep, ctx.t_s, ctx.needle, ctx.strain, ctx.pressed
        findings: list[VesselFinding] = []
        foam: list[FoamFinding] = []
        growing: set[str] = set()
        comp_now: dict[str, float] = {}
        tip = np.array(needle_m.tip_mm) if needle_m is not None else None
        for tr in tracks:
            self._update_geometry(tr, ctx)
            c = tr.compression.update(tr, ctx)
            if c is not None:
                comp_now[tr.id] = c
            tr.kind_state.update(tr, ctx, needle_ever_seen=self._needle_seen_t is not None)
            contains = tip is not None and self._contains(tr, prep, tip, needle_m)
            in_lumen = contains and self._clear_of_wall(tr, prep, tip)
            # partly hidden (shadow) or filled (foam): report the outline as last seen free
            hidden = tr.lumen.occluded or tr.foam_fill >= cfg.min_foam_fill or not tr.seen_now
            lum = tr.ref_lumen if hidden and tr.ref_lumen is not None else tr.lumen
            spasm = None
            if tr.baseline_diameter_mm and (tr.foam_fill > 0 or tr.spasm_now is not None):
                spasm = tr.spasm_now if tr.spasm_now is not None else \
                    max(0.0, 1.0 - tr.diameter_now_mm / tr.baseline_diameter_mm)
            cx, cz = lum.center_mm
            if not inside(prep.imaged, *prep.to_px(cx, cz)):
                continue  # a track coasting where this frame holds no echo data: not reported (still tracked)
            diameter = tr.diameter_now_mm
            closed, evidence = closure(tr, t)
            areas = tr.kind_state.areas
            if lum.longitudinal and tr.seen_now and areas and areas[-1][0] == t and tr.foam_fill < 0.05:
                # a long-axis lumen's width from the sub-pixel series measured this frame (mean soft height
                # over its columns), not the distance transform's whole pixels: the pulse shows in it
                diameter = 2.0 * math.sqrt(areas[-1][1] / math.pi)
            findings.append(VesselFinding(
                id=tr.id, kind=tr.kind_state.kind, center_mm=(cx, cz), diameter_mm=diameter,
                area_mm2=tr.area_now_mm2,
                compressibility=(comp if (comp := tr.compression.max_compressibility) is not None else 0.0)
                if self._pressed_once else None,
                contains_needle_tip=bool(contains), view="longitudinal" if lum.longitudinal else "transverse",
                artery_probability=tr.kind_state.artery_probability, deep=cz >= cfg.deep_z_mm,
                spasm=spasm, coasting=not tr.seen_now, contour_mm=lum.contour_mm, confidence=lum.confidence,
                width_mm=lum.width_mm, depth_mm=lum.depth_mm, closed=closed, closed_evidence=evidence,
                tip_in_lumen=bool(in_lumen)))
            if tr.foam_fill >= cfg.min_foam_fill:
                foam.append(FoamFinding(tr.id, float(min(1.0, tr.foam_fill)), tr.foam_front_mm))
                hist = [f for (_, f) in tr.foam_history]
                if len(hist) >= 3 and hist[-1] - min(hist) > GROWING_FILL:
                    growing.add(tr.id)
        compressed = pressed and any(v >= 0.8 for v in comp_now.values())
        needle_f = None
        meas = ctx.needle_detected
        if needle_m is not None:
            needle_f = NeedleFinding(tip_mm=needle_m.tip_mm, entry_mm=needle_m.entry_mm, angle_deg=needle_m.angle_deg,
                                     confidence=needle_m.confidence, plane=needle_m.plane,  # type: ignore[arg-type]
                                     held=meas is None or meas.tip_mm != needle_m.tip_mm)
        vessels_t = tuple(findings)
        foam_t = tuple(foam)
        alerts = evaluate_alerts(vessels_t, needle_f, foam_t, foam_growing=growing, needle_lost=ctx.needle_lost,
                                 compressed=compressed)
        return FrameResult(index=frame.index, t_s=t, vessels=vessels_t, needle=needle_f, foam=foam_t, alerts=alerts,
                           compression_strain=strain, processing_ms=(time.perf_counter() - t0) * 1e3)

    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _needle_mask(prep: Prepared, m: NeedleMeasurement) -> np.ndarray:
        """Working-resolution mask of the shaft and the reverberations below it."""
        mask = np.zeros(prep.shape, np.uint8)
        if m.plane == "out":  # the cross-section echo and its reverberation tail below it
            r, c = prep.to_px(*m.tip_mm)
            rad = max(1.0, (m.dot_radius_mm + 0.3) / prep.mm_per_px_x)
            tail = int(round(3.0 / prep.mm_per_px_z))
            p = (int(round(float(c))), int(round(float(r))))
            cv2.circle(mask, p, int(math.ceil(rad)), 1, -1)
            half = int(math.ceil(rad * 0.8))
            cv2.rectangle(mask, (p[0] - half, p[1]), (p[0] + half, p[1] + tail), 1, -1)
            return mask.astype(bool)
        (ex, ez), (tx, tz) = m.entry_mm, m.tip_mm
        r0, c0 = prep.to_px(ex, ez)
        r1, c1 = prep.to_px(tx, tz)
        th = max(2, int(round(1.0 / prep.mm_per_px_x)))
        p0 = (int(round(float(c0))), int(round(float(r0))))
        p1 = (int(round(float(c1))), int(round(float(r1))))
        cv2.line(mask, p0, p1, 1, thickness=th)
        off = int(round(1.5 / prep.mm_per_px_z))
        cv2.line(mask, (p0[0], p0[1] + off), (p1[0], p1[1] + off), 1, thickness=2 * th)
        cv2.circle(mask, p1, th, 1, -1)
        return mask.astype(bool)

    def _update_geometry(self, tr: Track, ctx: FrameContext) -> None:
        prep, exclude, t, needle_m, pressed = ctx.prep, ctx.exclude, ctx.t_s, ctx.needle, ctx.pressed
        mmx, mmz = prep.mm_per_px_x, prep.mm_per_px_z
        px_area = mmx * mmz
        raw, bright = None, None
        if not pressed:
            raw, bright = foam_measure(prep, tr, exclude, ctx.needle_shade)
        if raw is None:
            # under probe pressure the lumen collapses inside its resting outline and the tissue now inside
            # that outline is not sclerosant; a lumen mostly hidden (needle, colour flow) cannot be read:
            # the fill is not re-measured until it can be
            raw = (tr.foam_baseline or 0.0) + tr.foam_fill * (1.0 - (tr.foam_baseline or 0.0))
        if tr.foam_baseline is None:
            tr.foam_baseline = raw
        elif tr.foam_fill < 0.02 and len(tr.foam_history) < 6:
            tr.foam_baseline = 0.7 * tr.foam_baseline + 0.3 * min(raw, tr.foam_baseline + 0.05)
        fill = max(0.0, (raw - tr.foam_baseline) / max(1e-6, 1.0 - tr.foam_baseline))
        if needle_m is not None and tr.ref_mask is not None and tip_in_mask(
                prep, tr.ref_mask, needle_m.tip_mm, tol_mm=FOAM_SOURCE_MM):
            tr.tip_near_t = t
        if fill > 0 and tr.foam_fill < self.config.min_foam_fill and not self._may_start_foam(tr, ctx):
            # sclerosant only comes from an injection: echoes appearing in a lumen that no needle tip came near
            # in the last seconds, with no foam elsewhere to spread from, are the lumen collapsing (probe
            # pressure) or noise, not foam
            if not ctx.probe_still:
                tr.foam_pending = 0  # counted only once the probe has been still (a release moves tissue)
            else:
                if tr.foam_pending == 0:
                    tr.foam_pending_first = fill
                tr.foam_pending += 1
            fill = 0.0
            confirmed = False
        else:
            # the first reading let through after FOAM_CONFIRM_FRAMES held back is reported as read: the median
            # below would set it against the zeros recorded while it was held back. The count goes on while the
            # layer is read (a thin first layer stays below min_foam_fill for a few frames and must not start
            # over); it ends with the first frame that reads none.
            confirmed = fill > 0 and tr.foam_pending >= FOAM_CONFIRM_FRAMES
            tr.foam_pending = tr.foam_pending + 1 if fill > 0 and tr.foam_pending else 0
        tr.foam_history.append((t, fill))
        if fill > 0 and len(tr.foam_history) >= 3 and not confirmed:
            # the fill read in one frame jumps with speckle and the foam's own shadow: report the median of
            # the last three readings (one frame of lag)
            fill = sorted(f for (_, f) in list(tr.foam_history)[-3:])[1]
        tr.foam_fill = fill
        lum = tr.lumen
        if fill < 0.05:
            seen = tr.seen_now and not lum.occluded  # a lumen cut by a shadow is not measured
            # while a needle is inside the lumen, or echoes take the place of part of it during an injection,
            # the detection shows the lumen less the needle or the first foam: keep the outline as it was; and
            # while foam is anywhere in view, its shadow darkens the tissue beside the lumens below it, which
            # the detection may join to them
            # (echoes judged against the lumen's own anechoic level); with no injection known, a layer of
            # echoes taking the top of a transverse lumen, the probe still, freezes it too (foam with no needle
            # in view)
            injecting = self._injecting(t)
            freeze = tr.ref_mask is not None and not pressed and (injecting and (
                (needle_m is not None and tip_in_mask(prep, tr.ref_mask, needle_m.tip_mm))
                or lost_to_echoes(prep, tr.ref_mask, tr.mask, exclude, ratio=content_ratio(tr.lumen_level))
                or any(o.foam_fill >= self.config.min_foam_fill for o in self.vessels.tracks))
                or (not injecting and ctx.probe_still and lost_to_echoes(
                    prep, tr.ref_mask, tr.mask, exclude, ratio=content_ratio(tr.lumen_level),
                    from_top=not lum.longitudinal)))
            # (a detection much bigger than the outline known is a merge with a neighbour or with a shadow: a
            # vein widens over seconds, not from one frame to the next)
            if freeze is False and seen and tr.ref_mask is not None and not lum.longitudinal and not pressed and (
                    needle_m is None or not tip_in_mask(prep, tr.ref_mask, needle_m.tip_mm, tol_mm=FOAM_SOURCE_MM)):
                # foam rising slowly: hold the outline while its top turns echogenic, so the loss adds up (not
                # with a needle at the lumen: its shaft and ring-down take the top, the rules above handle it)
                freeze = filling_from_top(prep, tr.ref_mask, tr.mask, ratio=content_ratio(tr.lumen_level))
            if seen and not freeze and (tr.ref_mask is None or not tr.confirmed or REF_SHRINK_MIN * tr.ref_area_mm2
                                        <= lum.area_mm2 <= REF_GROW_MAX * tr.ref_area_mm2):
                tr.ref_mask = tr.mask.copy()
                tr.ref_area_mm2 = lum.area_mm2
                tr.ref_lumen = lum
                level = _core_level(prep, lum)
                if level is not None:
                    tr.lumen_level = level if tr.lumen_level is None else 0.8 * tr.lumen_level + 0.2 * level
            tr.area_now_mm2 = lum.area_mm2 if seen else tr.area_now_mm2 or lum.area_mm2
            tr.diameter_now_mm = lum.diameter_mm if seen else tr.diameter_now_mm or lum.diameter_mm
            if seen:
                tr.baseline_diameter_mm = (lum.diameter_mm if tr.baseline_diameter_mm is None
                                           else 0.8 * tr.baseline_diameter_mm + 0.2 * lum.diameter_mm)
            tr.foam_front_mm = None
            return
        # foam present: the lumen is dark blood + bright foam within the reference outline
        ref = tr.ref_mask if tr.ref_mask is not None else tr.mask
        grow = cv2.dilate(ref.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        dark = prep.small < prep.background * np.float32(0.6)
        foamy = prep.small > prep.background * np.float32(0.9)
        union = (dark | foamy) & grow
        if exclude is not None:
            union |= exclude & ref
        area = float(union.sum()) * px_area
        tr.area_now_mm2 = area
        base = tr.baseline_diameter_mm or lum.diameter_mm
        if lum.longitudinal:
            tr.diameter_now_mm = base
        else:
            # spasm: the filled vein's wall moves in and its foam narrows with it; the width of the foam against
            # its width when the vein was first half full, times the diameter before the injection
            width = None
            if fill >= SPASM_READ_FILL and not pressed:
                width = foam_width_mm(prep, ref, ctx.needle_shade)
            if width is not None:
                tr.foam_widths.append(width)
                if tr.foam_width_ref is None and len(tr.foam_widths) >= 3:
                    tr.foam_width_ref = float(np.median(tr.foam_widths))
            if tr.foam_width_ref is not None and tr.foam_widths:
                now = float(np.median(list(tr.foam_widths)[-SPASM_MEDIAN_FRAMES:]))
                tr.spasm_now = max(0.0, 1.0 - now / tr.foam_width_ref)
            tr.diameter_now_mm = base * (1.0 - (tr.spasm_now or 0.0))
            tr.area_now_mm2 = math.pi * (0.5 * tr.diameter_now_mm) ** 2 if tr.spasm_now is not None else area
        if bright is not None and bright.any():
            ys, xs = np.nonzero(bright)
            if lum.longitudinal:
                if needle_m is not None:
                    origin = prep.to_px(*needle_m.tip_mm)
                else:
                    origin = (ys.mean(), xs.mean())
                d2 = (ys - origin[0]) ** 2 + (xs - origin[1]) ** 2
                k = int(np.argmax(d2))
                x, z = prep.to_mm(ys[k], xs[k])
            else:
                x = lum.center_mm[0]
                z = float(prep.to_mm(np.percentile(ys, 98), 0)[1])
            tr.foam_front_mm = (float(x), float(z))

    def _below_foam(self, shape: tuple[int, int]) -> np.ndarray | None:
        """Where the image lies under a lumen holding foam (as of the last frame): the foam's echoes and its
        shadow change the grey there as it spreads, which is not the wall motion of the vessels below."""
        m = None
        for tr in self.vessels.tracks:
            if tr.foam_fill >= self.config.min_foam_fill and tr.ref_mask is not None and tr.ref_mask.shape == shape:
                rows = np.flatnonzero(tr.ref_mask.any(axis=1))
                if rows.size:
                    if m is None:
                        m = np.zeros(shape, bool)
                    m[rows[0]:, tr.ref_mask.any(axis=0)] = True
        return m

    @staticmethod
    def _systoles(tracks: list[Track], t: float) -> tuple[float, ...]:
        """Systolic peak times (s) shown by the clearly pulsing arteries in view: the cardiac clock of this image."""
        out: list[float] = []
        for tr in tracks:
            if tr.kind_state.kind == "artery" and tr.seen_now:
                out += systole_times(tr.kind_state.areas, t, min_score=REFERENCE_PULSE_SCORE)
        return tuple(out)

    @staticmethod
    def _clear_of_wall(tr: Track, prep: Prepared, tip: np.ndarray) -> bool:
        """Is the tip inside the lumen itself, at least :data:`TIP_CLEAR_OF_WALL_MM` in from its edge?

        A shaft that ends on a vessel's wall is often extended by the wall's own echo to the edge of the lumen
        (the tip found 0.1-0.3 mm outside it while the real tip is a millimetre or more away): that is not a tip
        in the lumen."""
        ref = tr.ref_mask if tr.ref_mask is not None else tr.mask
        r, c = (int(round(float(v))) for v in prep.to_px(float(tip[0]), float(tip[1])))
        k = max(1, int(round(TIP_CLEAR_OF_WALL_MM / prep.mm_per_px_x)))
        r0, r1, c0, c1 = r - k, r + k + 1, c - k, c + k + 1
        if r0 < 0 or c0 < 0 or r1 > ref.shape[0] or c1 > ref.shape[1]:
            return False
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)).astype(bool)
        return bool(ref[r0:r1, c0:c1][disc].all())

    def _contains(self, tr: Track, prep: Prepared, tip: np.ndarray, needle_m: NeedleMeasurement | None) -> bool:
        ref = tr.ref_mask if tr.ref_mask is not None else tr.mask
        tol = self.config.tip_tolerance_mm

        def inside(p: np.ndarray, tol_mm: float) -> bool:
            r, c = prep.to_px(p[0], p[1])
            rad_r = int(math.ceil(tol_mm / prep.mm_per_px_z))
            rad_c = int(math.ceil(tol_mm / prep.mm_per_px_x))
            r, c = int(round(float(r))), int(round(float(c)))
            r0, r1 = max(0, r - rad_r), min(ref.shape[0], r + rad_r + 1)
            c0, c1 = max(0, c - rad_c), min(ref.shape[1], c + rad_c + 1)
            if r0 >= r1 or c0 >= c1:
                return False
            return bool(ref[r0:r1, c0:c1].any()) if tol_mm > 0 else bool(ref[r, c])

        if inside(tip, 0.0) or inside(tip, tol):
            return True
        if needle_m is not None:
            d = np.array(needle_m.tip_mm) - np.array(needle_m.entry_mm)
            d /= max(float(np.linalg.norm(d)), 1e-9)
            # the tip echo hidden by colour flow or foam: the shaft ends at the lumen edge, pointing in
            return inside(tip + 1.0 * d, 0.0) and inside(tip, 0.8)
        return False
