"""A dynamic scene: phantom + probe + timeline -> B-mode frames and their ground truth.

Per frame the scene (1) asks its timeline for the state at time ``t`` (probe pressure, needle, foam, spasm,
flow), (2) deforms the static tissue maps under probe pressure (the speckle moves with the tissue), (3) draws
vessels, foam and needle, (4) accumulates acoustic shadowing down each scan line, and (5) forms the image with
:class:`~echosclero.sim.acoustics.BModeRenderer`. Ground truth comes from the same geometry, in the
``echosclero.analysis/1`` schema.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from echosclero._runtime import tune_allocator
from echosclero.frames import Calibration
from echosclero.sim import phantom as ph
from echosclero.sim.acoustics import BModeRenderer, ImagingGrid, Probe, log_compress

# Vessel deformation under full probe pressure (fraction of the depth semi-axis lost). A normal vein
# collapses completely under moderate pressure (the basis of the compression test for DVT: Lensing et al.,
# N Engl J Med 1989;320:342-45); a thrombosed vein and an artery barely deform.
COLLAPSE_VEIN = 0.94
COLLAPSE_THROMBOSED = 0.06
COLLAPSE_ARTERY = 0.08
TISSUE_STRAIN = 0.12  # vertical strain of the soft tissue under full pressure
ARTERY_PULSATION = 0.06  # relative radius change over the cardiac cycle (femoral: ~5-10 %)
SPASM_MAX = 0.35  # relative diameter loss of a vein in full sclerosant-induced spasm
DOPPLER_COS = 0.34  # cos(70°): beam-to-flow angle with a tilted probe / steered colour box
NYQUIST_CM_S = 30.0  # colour scale (venous preset)
# Colour write priority: a scanner paints colour only where the B-mode grey is below a threshold, so that bright
# echoes (tissue, a wall, a needle, echogenic sclerosant foam) are not hidden by a Doppler signal (the
# "write priority" / "colour priority" control of every duplex scanner, usually near the middle of the grey
# scale). Display grey levels 0-255.
WRITE_PRIORITY_GREY = 100
#: Truth of closure: a vein this full of foam (fraction of its lumen) is closed (no longer anechoic).
CLOSED_FOAM_FILL = 0.9


@dataclass
class State:
    """What the timeline sets for one instant."""

    pressure: float = 0.0  # probe compression, 0..1
    needle: ph.Needle | None = None
    injecting: bool = False
    foam: dict[str, float] = field(default_factory=dict)  # vessel id -> fill fraction 0..1
    foam_front: dict[str, float] = field(default_factory=dict)  # longitudinal: arc-length fraction of front
    foam_back: dict[str, float] = field(default_factory=dict)
    spasm: dict[str, float] = field(default_factory=dict)  # vessel id -> 0..1
    heart_phase: float = 0.0  # 0..1 over the cardiac cycle
    flow_scale: dict[str, float] = field(default_factory=dict)


Timeline = Callable[[float, "Scene"], State]


def cardiac_waveform(phase: float) -> float:
    """Triphasic peripheral-artery velocity waveform, peak 1: systolic peak, brief reversal, small forward."""
    p = phase % 1.0
    return (
        math.exp(-((p - 0.12) / 0.05) ** 2)
        - 0.25 * math.exp(-((p - 0.28) / 0.05) ** 2)
        + 0.12 * math.exp(-((p - 0.45) / 0.08) ** 2)
    )


class Scene:
    """A section of a leg imaged over time.

    Parameters
    ----------
    grid, probe
        Image geometry and acoustics.
    layers
        Static tissue maps from :func:`~echosclero.sim.phantom.build_layers`.
    vessels
        The vessels; their ``id`` is the stable truth id.
    timeline
        ``timeline(t, scene) -> State``.
    rng
        Scene randomness (speckle, noise, foam texture).
    color
        Render colour Doppler (RGB frames) over the whole image.
    heart_rate_bpm
        Cardiac rate for arterial pulsation and flow.
    foam_reflect, foam_transmission_per_mm
        How the sclerosant foam looks: its diffuse scatterer amplitude (1.0 = soft tissue; grey foam ~1, fresh
        dense foam ~3) and the acoustic amplitude it lets through per mm (1.0 = no shadow below it).
    """

    def __init__(self, *, grid: ImagingGrid, probe: Probe, layers: ph.Layers, vessels: list[ph.Vessel],
                 timeline: Timeline, rng: np.random.Generator, color: bool = False,
                 heart_rate_bpm: float = 66.0, gain_db: float = 0.0, dynamic_range_db: float = 60.0,
                 foam_reflect: float = ph.REFLECT_FOAM,
                 foam_transmission_per_mm: float = ph.FOAM_TRANSMISSION_PER_MM) -> None:
        self.grid = grid
        self.probe = probe
        self.layers = layers
        self.vessels = vessels
        self.timeline = timeline
        self.color = color
        self.heart_rate_bpm = heart_rate_bpm
        self.gain_db = gain_db
        self.dynamic_range_db = dynamic_range_db
        self.foam_reflect = float(foam_reflect)
        self.foam_transmission_per_mm = float(foam_transmission_per_mm)
        self.rng = rng
        tune_allocator()  # per-frame buffers stay in the heap: see echosclero._runtime
        self.renderer = BModeRenderer(probe, grid, rng=rng)
        self.raster = ph.Raster(grid)
        rows, cols = grid.shape
        s0 = rng.standard_normal((rows, cols, 2), dtype=np.float32)
        s0 *= np.float32(1 / math.sqrt(2))
        self._scatter = s0
        self._field = np.empty_like(s0)
        self._foam_tex = np.exp(0.6 * rng.standard_normal((rows, cols))).astype(np.float32)
        self._rest = {v.id: (v.a_mm, v.b_mm, v.centre_mm) for v in vessels}
        self._rest_area = {v.id: v.area_mm2() for v in vessels}
        self._max_compress: dict[str, float] = {}
        self._pressed = False
        self.calibration = Calibration(grid.mm_per_px_x, grid.mm_per_px_z, source="simulator")
        self._padded: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # ----------------------------------------------------------------------------------------------
    def vessel(self, vessel_id: str) -> ph.Vessel:
        for v in self.vessels:
            if v.id == vessel_id:
                return v
        raise KeyError(vessel_id)

    def _update_vessels(self, st: State) -> None:
        p = st.pressure
        pulse = cardiac_waveform(st.heart_phase)
        for v in self.vessels:
            a0, b0, (cx, cz) = self._rest[v.id]
            if v.kind == "artery":
                collapse = COLLAPSE_ARTERY
                scale = 1.0 + ARTERY_PULSATION * (pulse - 0.3)
            else:
                collapse = COLLAPSE_THROMBOSED if v.thrombosed else COLLAPSE_VEIN
                scale = 1.0 - SPASM_MAX * st.spasm.get(v.id, 0.0)
            squash = 1.0 - collapse * p
            v.b_mm = b0 * scale * squash
            v.a_mm = a0 * scale * (1.0 + 0.3 * collapse * p) if not v.longitudinal else a0 * scale
            v.centre_now_mm = (cx, cz * (1.0 - TISSUE_STRAIN * p))
            if v.kind == "artery":
                v.velocity_cm_s = v.peak_velocity_cm_s * pulse
            elif v.thrombosed:
                v.velocity_cm_s = 0.0
            else:
                v.velocity_cm_s = -v.peak_velocity_cm_s * st.flow_scale.get(v.id, 1.0) * (1.0 - p)
            v.foam_fill = st.foam.get(v.id, 0.0)
            v.invalidate()

    def _apply_shadow(self, refl: np.ndarray, spec: np.ndarray, atten_db: np.ndarray) -> None:
        """Scale echoes below attenuating objects by the two-way transmission, column by column.

        Applied to both source maps (field = scatterers x refl + spec is linear in them), in place."""
        cols = np.flatnonzero(atten_db.any(axis=0))
        if cols.size == 0:
            return
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        r0 = int(np.flatnonzero(atten_db[:, c0:c1].any(axis=1))[0])
        cum = np.cumsum(atten_db[r0:, c0:c1], axis=0, dtype=np.float32)
        trans = cv2.exp(cum * np.float32(-2.0 * math.log(10) / 20))  # two-way, dB -> amplitude
        refl[r0:, c0:c1] *= trans
        spec[r0:, c0:c1] *= trans

    def _tissue_maps(self, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        refl, spec, scat = self.layers.reflectivity, self.layers.specular, self._scatter
        if p <= 1e-3:
            return refl.copy(), spec.copy(), scat
        # Probe pressure: tissue at depth z moves up to z (1 - strain p), so the displayed rows sample the
        # rest maps down to depth / (1 - strain p): a vertical resize of the (bottom-padded) rest maps.
        if self._padded is None:
            extra = int(math.ceil(self.grid.rows * TISSUE_STRAIN / (1 - TISSUE_STRAIN))) + 2
            pad = lambda a: np.concatenate([a, a[-1:-extra - 1:-1]], axis=0)  # noqa: E731 - mirrored rows
            self._padded = (pad(refl), pad(spec), pad(scat))
        n_src = int(round(self.grid.rows / (1.0 - TISSUE_STRAIN * p)))
        size = (self.grid.cols, self.grid.rows)
        return tuple(cv2.resize(a[:n_src], size, interpolation=cv2.INTER_LINEAR) for a in self._padded)

    def render(self, t: float) -> tuple[np.ndarray, dict]:
        """Render the frame at time ``t`` (s): returns (pixels, truth-frame dict)."""
        st, refl, spec, scat, atten, foam_regions = self._compose(t)
        if atten is not None:
            self._apply_shadow(refl, spec, atten)
        field = np.multiply(scat, refl[..., None], out=self._field)
        field[..., 0] += spec
        env = self.renderer.envelope(field)
        img = log_compress(env, dynamic_range_db=self.dynamic_range_db, gain_db=self.gain_db)
        if self.color:
            img = self._colour_doppler(img)
        return img, self._truth(t, st, foam_regions)

    def maps(self, t: float) -> tuple[np.ndarray, np.ndarray, dict]:
        """The phantom at time ``t`` without imaging: (diffuse reflectivity, specular amplitude, truth).

        Used to give the very same phantom to another simulator (``benchmarks/bench_sim.py``: PyMUST)."""
        st, refl, spec, _scat, _atten, foam_regions = self._compose(t)
        return refl, spec, self._truth(t, st, foam_regions)

    def _compose(self, t: float):
        """State at ``t`` and the tissue maps with vessels, foam and needle drawn in; shadows as dB per pixel."""
        st = self.timeline(t, self)
        st.heart_phase = (t * self.heart_rate_bpm / 60.0) % 1.0
        self._update_vessels(st)
        refl, spec, scat = self._tissue_maps(st.pressure)
        atten = None  # dB per pixel, for shadows
        for v in self.vessels:
            ph.draw_vessel_wall(self.raster, refl, spec, v)
        for v in self.vessels:
            ph.draw_vessel_lumen(self.raster, refl, spec, v)
        foam_regions: dict[str, np.ndarray] = {}
        for v in self.vessels:
            region = self._foam_polygon(v, st)
            if region is None or len(region) < 3:
                v.foam_front_mm = None
                continue
            foam_regions[v.id] = region
            mask = self.raster.mask_polygon(region)
            refl[mask] = self.foam_reflect * self._foam_tex[mask]
            if self.foam_transmission_per_mm < 1.0:
                if atten is None:
                    atten = np.zeros(self.grid.shape, np.float32)
                db_per_px = -20 * math.log10(self.foam_transmission_per_mm) * self.grid.mm_per_px_z
                atten[mask] += db_per_px
        needle = st.needle
        if needle is not None and needle.visible:
            atten = self._draw_needle(needle, spec, atten)
        return st, refl, spec, scat, atten, foam_regions

    # ----------------------------------------------------------------------------------------------
    def _foam_polygon(self, v: ph.Vessel, st: State) -> np.ndarray | None:
        fill = st.foam.get(v.id, 0.0)
        if fill <= 0:
            return None
        if not v.longitudinal:
            poly = ph.foam_region_transverse(v, fill)
            if poly is not None and len(poly):
                v.foam_front_mm = (v.centre_now_mm[0], float(poly[:, 1].max()))
            return poly
        path = v.path_now()
        seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
        s = np.concatenate([[0], np.cumsum(seg)])
        s0 = st.foam_back.get(v.id, 0.0) * s[-1]
        s1 = st.foam_front.get(v.id, fill) * s[-1]
        if s1 - s0 < 0.2:
            return None
        ss = np.linspace(s0, s1, max(4, int((s1 - s0) / 0.5)))
        pts = np.stack([np.interp(ss, s, path[:, 0]), np.interp(ss, s, path[:, 1])], 1)
        n = ph._normals(pts)
        r = v.b_mm * 0.98
        v.foam_front_mm = (float(pts[-1, 0]), float(pts[-1, 1]))
        return np.vstack([pts + n * r, (pts - n * r)[::-1]])

    def _draw_needle(self, needle: ph.Needle, spec: np.ndarray, atten: np.ndarray | None) -> np.ndarray:
        if atten is None:
            atten = np.zeros(self.grid.shape, np.float32)
        r = self.raster
        if needle.in_plane:
            if needle.length_mm <= 0.2:
                return atten
            a = np.array(needle.entry_mm)
            b = np.array(needle.tip_mm)
            # specular strength falls as the shaft steepens (less energy reflected back to the probe)
            vis = max(0.2, math.cos(math.radians(needle.angle_deg)) ** 2)
            amp = ph.SPEC_NEEDLE * vis
            shaft = np.stack([a, b])
            r.polyline(spec, shaft, amp, 0.12)  # the upper wall of the shaft
            r.polyline(spec, shaft + np.array([0.0, needle.diameter_mm * 0.8]), amp * 0.5, 0.08)  # lower wall
            # reverberation inside the shaft: parallel echoes below at the wall spacing, decaying
            normal = np.array([-needle.unit[1], needle.unit[0]]) * (1 if needle.unit[0] > 0 else -1)
            if normal[1] < 0:
                normal = -normal
            for k in range(1, 5):
                r.polyline(spec, shaft + normal * needle.diameter_mm * k, amp * 0.3**k, 0.08)
            # bevel: a brighter tip echo
            tip = b[None, :]
            cv2.circle(spec, tuple(int(v) for v in r.px(tip)[0]), int(round(0.3 / self.grid.mm_per_px_x * 16)),
                       float(amp * 1.3), -1, lineType=cv2.LINE_8, shift=r.SHIFT)
            db = -20 * math.log10(ph.NEEDLE_TRANSMISSION)
            r.polyline(atten, shaft + normal * needle.diameter_mm * 0.5, db, 0.1)
        else:
            c = np.array(needle.tip_mm)
            rad_px = needle.diameter_mm / 2 / self.grid.mm_per_px_x
            for k in range(0, 5):
                centre = c + np.array([0, needle.diameter_mm * 0.9 * k])
                cv2.circle(spec, tuple(int(v) for v in r.px(centre[None])[0]), int(round(rad_px * 16)),
                           float(ph.SPEC_NEEDLE * 0.9 * 0.5**k), -1, lineType=cv2.LINE_8, shift=r.SHIFT)
        return atten

    def _colour_doppler(self, gray: np.ndarray) -> np.ndarray:
        rgb = np.repeat(gray[..., None], 3, axis=2)
        for v in self.vessels:
            vd = v.velocity_cm_s * DOPPLER_COS
            if abs(vd) < 1.0 or v.foam_fill > 0.95:
                continue
            if v.longitudinal:
                continue
            poly = v.lumen_polygon()
            x0, z0 = poly.min(axis=0)
            x1, z1 = poly.max(axis=0)
            c0 = max(0, int(x0 / self.grid.mm_per_px_x))
            c1 = min(self.grid.cols, int(x1 / self.grid.mm_per_px_x) + 2)
            r0 = max(0, int(z0 / self.grid.mm_per_px_z))
            r1 = min(self.grid.rows, int(z1 / self.grid.mm_per_px_z) + 2)
            if c1 <= c0 or r1 <= r0:
                continue
            xs = (np.arange(c0, c1) + 0.5) * self.grid.mm_per_px_x
            zs = (np.arange(r0, r1) + 0.5) * self.grid.mm_per_px_z
            u = (xs[None, :] - v.centre_now_mm[0]) / max(v.a_mm, 1e-3)
            w = (zs[:, None] - v.centre_now_mm[1]) / max(v.b_mm, 1e-3)
            rr = u**2 + w**2
            inside = rr < 0.95
            profile = np.clip(1.0 - rr, 0, 1) * 2.0  # parabolic laminar profile, mean = peak / 2
            vel = vd * profile
            vel = (vel + NYQUIST_CM_S) % (2 * NYQUIST_CM_S) - NYQUIST_CM_S  # aliasing
            show = inside & (np.abs(vel) > 1.5) & (self.rng.random(inside.shape) > 0.05)
            show &= gray[r0:r1, c0:c1] < WRITE_PRIORITY_GREY
            mag = np.clip(np.abs(vel) / NYQUIST_CM_S, 0, 1)
            patch = rgb[r0:r1, c0:c1]
            red = np.stack([120 + 135 * mag, 40 + 180 * mag**2, np.zeros_like(mag)], -1)
            blue = np.stack([np.zeros_like(mag), 60 + 180 * mag**2, 120 + 135 * mag], -1)
            colour = np.where((vel > 0)[..., None], red, blue).astype(np.uint8)
            patch[show] = colour[show]
        return rgb

    # ----------------------------------------------------------------------------------------------
    def _truth(self, t: float, st: State, foam_regions: dict[str, np.ndarray]) -> dict:
        tip = st.needle.tip_mm if (st.needle is not None and st.needle.visible and
                                   (not st.needle.in_plane or st.needle.length_mm > 0.2)) else None
        if st.pressure > 0.05:
            self._pressed = True
        vessels = []
        for v in self.vessels:
            area = v.area_mm2()
            comp_now = max(0.0, 1.0 - area / self._rest_area[v.id])
            if st.pressure > 0.05:
                self._max_compress[v.id] = max(self._max_compress.get(v.id, 0.0), comp_now)
            vessels.append({
                "id": v.id,
                "kind": v.kind,
                "center_mm": [round(v.centre_now_mm[0], 4), round(v.centre_now_mm[1], 4)],
                "diameter_mm": round(v.diameter_mm(), 4),
                "area_mm2": round(area, 4),
                "compressibility": round(self._max_compress[v.id], 4) if self._pressed else None,
                "contains_needle_tip": bool(tip is not None and v.contains(*tip)),
                "segment": v.segment,
                "deep": v.deep,
                "target": v.target,
                "thrombosed": v.thrombosed,
                "view": "longitudinal" if v.longitudinal else "transverse",
                "flow_velocity_cm_s": round(v.velocity_cm_s, 3),
                "visible": self._visible(v),
                # closed (occluded): a vein whose lumen is no longer anechoic, filled with echogenic foam (the
                # same share as CLOSED_FOAM_FILL) or thrombus; an open vein False; arteries are not judged
                "closed": None if v.kind == "artery" else bool(v.thrombosed or v.foam_fill >= CLOSED_FOAM_FILL),
            })
        needle = None
        if tip is not None and st.needle is not None:
            n = st.needle
            needle = {
                "tip_mm": [round(tip[0], 4), round(tip[1], 4)],
                "entry_mm": [round(n.entry_mm[0], 4), round(n.entry_mm[1], 4)] if n.in_plane else
                [round(tip[0], 4), round(tip[1], 4)],
                "angle_deg": round(n.angle_deg, 3) if n.in_plane else None,
                "confidence": 1.0,
                "plane": "in" if n.in_plane else "out",
            }
        foam_mask = None  # all foam drawn, for the long-axis fills (built once per frame, if needed)
        if any(v.longitudinal and v.id in foam_regions for v in self.vessels):
            foam_mask = np.zeros(self.grid.shape, bool)
            for region in foam_regions.values():
                foam_mask |= self.raster.mask_polygon(region)
        foam = [
            {"vessel_id": v.id, "fill_fraction": round(self._fill_in_view(v, foam_mask), 4),
             "front_mm": [round(v.foam_front_mm[0], 4), round(v.foam_front_mm[1], 4)] if v.foam_front_mm else None}
            for v in self.vessels if v.id in foam_regions
        ]
        return {
            "t_s": round(t, 6),
            "vessels": vessels,
            "needle": needle,
            "foam": foam,
            "alerts": truth_alerts(vessels, needle, foam, st),
            "probe_pressure": round(st.pressure, 4),
            "injecting": st.injecting,
        }

    def _fill_in_view(self, v: ph.Vessel, foam_mask: np.ndarray | None) -> float:
        """Fraction of the vessel's lumen *in the image* holding foam.

        Transverse: the foam layer's area fraction, as drawn. Long axis: the timeline sets the foam as a stretch
        of the vessel's path, which runs beyond the image and, for a tributary, into the vein it joins; the
        truth is what the image shows: the share of the lumen in view covered by foam (``foam_mask``: all foam
        drawn, its own or foam that spread from a joining vessel)."""
        if not v.longitudinal or foam_mask is None:
            return float(np.clip(v.foam_fill, 0, 1))
        lumen = self.raster.mask_polygon(ph.tube_polygon(v.path_now(), v.b_mm))
        n = int(np.count_nonzero(lumen))
        return float(np.count_nonzero(lumen & foam_mask)) / n if n else 0.0

    def _visible(self, v: ph.Vessel) -> bool:
        x, z = v.centre_now_mm
        return 0 <= x <= self.grid.width_mm and 0 <= z <= self.grid.depth_mm


def truth_alerts(vessels: list[dict], needle: dict | None, foam: list[dict], st: State) -> list[dict]:
    """The alerts a perfect guidance engine raises for this frame (codes and severities of DESIGN.md)."""
    alerts = []
    by_id = {v["id"]: v for v in vessels}
    if needle is not None:
        for v in vessels:
            if v["kind"] == "artery" and v["contains_needle_tip"]:
                alerts.append({"code": "TIP_IN_ARTERY", "severity": "critical",
                               "message": f"needle tip inside artery {v['id']}: do not inject"})
    if st.injecting and needle is not None and any(f["fill_fraction"] > 0 for f in foam):
        # (with no needle in view nobody can tell where its tip is: no alert)
        in_target = any(v["target"] and v["contains_needle_tip"] for v in vessels)
        if not in_target:
            alerts.append({"code": "TIP_OUTSIDE_TARGET", "severity": "warning",
                           "message": "sclerosant appearing while the needle tip is outside the target vein"})
    for f in foam:
        v = by_id[f["vessel_id"]]
        if v["deep"] and v["kind"] == "vein" and f["fill_fraction"] > 0:
            alerts.append({"code": "FOAM_IN_DEEP_VEIN", "severity": "critical",
                           "message": f"foam entering deep vein {v['id']}: stop injecting, compress the junction"})
    if st.pressure >= 0.7:
        for v in vessels:
            if v["kind"] == "vein" and v["compressibility"] is not None and v["compressibility"] < 0.5:
                alerts.append({"code": "NONCOMPRESSIBLE_VEIN", "severity": "warning",
                               "message": f"vein {v['id']} does not compress: possible thrombus"})
    return alerts
