"""Named simulated scenarios of ultrasound-guided sclerotherapy, each with per-frame ground truth.

Every scenario takes a seed: anatomy (depths, diameters, positions, septa), needle path and timing vary with
it, so tests and benchmarks can draw fresh scenes the guidance engine was never tuned on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from echosclero.errors import InputError
from echosclero.frames import ANALYSIS_SCHEMA, Frame
from echosclero.sim import phantom as ph
from echosclero.sim.acoustics import ImagingGrid, Probe
from echosclero.sim.scene import Scene, State
from echosclero.sources.base import RegionInfo, Source, SourceInfo

SCHEMA = ANALYSIS_SCHEMA


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    description: str
    duration_s: float
    build: Callable[[np.random.Generator, ImagingGrid, Probe], Scene]
    frame_rate_hz: float = 20.0


def _ramp(t: float, t0: float, t1: float) -> float:
    """0 before t0, 1 after t1, smooth (cosine) in between."""
    if t <= t0:
        return 0.0
    if t >= t1:
        return 1.0
    return 0.5 - 0.5 * math.cos(math.pi * (t - t0) / (t1 - t0))


def _shape(rng: np.random.Generator, roughness: float = 0.04) -> tuple[tuple[float, float], ...]:
    return tuple((float(rng.normal(0, roughness / k)), float(rng.uniform(0, 2 * math.pi))) for k in (2, 3, 4))


def _needle_towards(entry: tuple[float, float], target: tuple[float, float], *, diameter_mm: float = 0.7
                    ) -> tuple[ph.Needle, float]:
    """An in-plane needle entering at ``entry`` aimed at ``target``; returns it and the distance to target."""
    dx, dz = target[0] - entry[0], target[1] - entry[1]
    angle = math.degrees(math.atan2(dz, abs(dx)))
    return ph.Needle(in_plane=True, entry_mm=entry, angle_deg=angle, direction=1 if dx >= 0 else -1,
                     diameter_mm=diameter_mm), math.hypot(dx, dz)


def _entry_for(grid: ImagingGrid, target: tuple[float, float], side: int,
               angle_deg: float) -> tuple[float, float]:
    """Where a shaft at ``angle_deg`` below horizontal reaching ``target`` crosses the image's side edge."""
    x_edge = 0.0 if side < 0 else grid.width_mm
    dz = abs(target[0] - x_edge) * math.tan(math.radians(angle_deg))
    z = target[1] - dz
    if z < 0.5:  # would cross the skin inside the image: enter through the skin instead
        z = 0.5
        x_edge = target[0] + side * (target[1] - z) / math.tan(math.radians(angle_deg))
    return (x_edge, z)


# ------------------------------------------------------------------------------------------------------
# thigh, transverse: GSV in its saphenous eye, femoral vein and artery deep
def _thigh_transverse(rng, grid, probe, *, thrombosed_fv=False, gsv_thrombosed=False):
    gsv_r = rng.uniform(2.2, 3.4)
    gsv = (rng.uniform(14, 24), rng.uniform(7.5, 11.0))
    fascia = gsv[1] + gsv_r + rng.uniform(1.2, 2.5)
    layers = ph.build_layers(grid, region="thigh", view="transverse", rng=rng, skin_mm=rng.uniform(1.3, 2.0),
                             deep_fascia_mm=fascia, saphenous_centre_mm=gsv, saphenous_radius_mm=gsv_r)
    fv_x = rng.uniform(12, 22)
    fv_z = rng.uniform(max(fascia + 9, 24), 30)
    side = rng.choice([-1, 1])
    fv = ph.Vessel("FV", "vein", "FV", True, (fv_x, fv_z), rng.uniform(4.0, 5.2), aspect=rng.uniform(1.2, 1.5),
                   wall_mm=0.4, thrombosed=thrombosed_fv, shape=_shape(rng, 0.05),
                   peak_velocity_cm_s=rng.uniform(10, 18))
    fa_r = rng.uniform(2.9, 3.6)
    # the artery lies beside the vein in the same sheath, walls a millimetre or two apart
    fa_x = fv_x + side * (fv.a_mm * 1.06 + fa_r + 0.8 + 0.6 + rng.uniform(0.8, 2.0))
    vessels = [
        ph.Vessel("GSV", "vein", "GSV", False, gsv, gsv_r, aspect=rng.uniform(1.1, 1.4), wall_mm=0.35,
                  target=True, thrombosed=gsv_thrombosed, shape=_shape(rng), peak_velocity_cm_s=rng.uniform(8, 14)),
        fv,
        ph.Vessel("FA", "artery", "FA", True, (fa_x, fv_z - rng.uniform(1.5, 3.5)), fa_r, aspect=1.0, wall_mm=0.8,
                  shape=_shape(rng, 0.01), peak_velocity_cm_s=rng.uniform(70, 100)),
    ]
    trib_x = gsv[0] + rng.choice([-1, 1]) * rng.uniform(7, 12)
    if 3 < trib_x < grid.width_mm - 3:
        vessels.append(ph.Vessel("TRIB", "vein", "TRIB_THIGH", False, (trib_x, rng.uniform(3.5, gsv[1] - 1.5)),
                                 rng.uniform(0.9, 1.4), aspect=1.3, wall_mm=0.25, shape=_shape(rng),
                                 peak_velocity_cm_s=5.0))
    return layers, vessels


def _build_gsv_injection(rng: np.random.Generator, grid: ImagingGrid, probe: Probe) -> Scene:
    layers, vessels = _thigh_transverse(rng, grid, probe)
    gsv = vessels[0]
    side = int(rng.choice([-1, 1]))
    target = (gsv.centre_mm[0] + rng.uniform(-0.3, 0.3) * gsv.a_mm,
              gsv.centre_mm[1] - rng.uniform(0.0, 0.35) * gsv.b_mm)
    angle = rng.uniform(25, 45)
    entry = _entry_for(grid, target, side, angle)
    needle, dist = _needle_towards(entry, target)
    t_reach = rng.uniform(1.6, 2.2)
    t_inject, t_full = t_reach + 0.4, t_reach + rng.uniform(2.2, 2.8)

    def timeline(t: float, scene: Scene) -> State:
        n = ph.Needle(**{**needle.__dict__})
        if t < t_full + 0.8:
            n.length_mm = dist * _ramp(t, 0.2, t_reach)
        else:  # withdrawn after the injection
            n.length_mm = dist * (1 - _ramp(t, t_full + 0.8, t_full + 1.6))
        fill = _ramp(t, t_inject, t_full)
        return State(needle=n if n.length_mm > 0.2 else None, injecting=t_inject <= t <= t_full,
                     foam={"GSV": fill} if fill > 0 else {}, spasm={"GSV": _ramp(t, t_full - 0.5, t_full + 2.0)})

    return Scene(grid=grid, probe=probe, layers=layers, vessels=vessels, timeline=timeline, rng=rng)


#: Foam appearance drawn per scene of :func:`_build_gsv_foam_unseen_needle` (scatterer amplitude, 1.0 = soft
#: tissue): from grey (fine, wet foam, about tissue-bright) to bright (fresh dense foam, REFLECT_FOAM).
FOAM_REFLECT_RANGE = (0.9, ph.REFLECT_FOAM)
#: ... and its shadow: half the scenes none (amplitude transmission 1.0 per mm), the others 0.70-0.88 per mm
#: (microbubbles scatter and absorb; how much depends on the foam's density and age; REFLECT_FOAM's 0.72 is dense).
FOAM_SHADOW_TRANSMISSION_RANGE = (0.70, 0.88)


def _build_gsv_foam_unseen_needle(rng: np.random.Generator, grid: ImagingGrid, probe: Probe) -> Scene:
    """Foam fills the GSV while no needle is in view, then the vein goes into spasm and stays filled (closed).

    Drawn per seed: either the needle is seen entering the vein in plane and then drifts out of the image plane
    (the probe slides) before the injection, or it never shows (the injection is made up or down the vein, out
    of this plane, and the foam arrives); and the foam's look (grey to bright, with or without a shadow)."""
    layers, vessels = _thigh_transverse(rng, grid, probe)
    gsv = vessels[0]
    seen_first = bool(rng.random() < 0.5)
    foam_reflect = float(rng.uniform(*FOAM_REFLECT_RANGE))
    transmission = 1.0 if rng.random() < 0.5 else float(rng.uniform(*FOAM_SHADOW_TRANSMISSION_RANGE))
    side = int(rng.choice([-1, 1]))
    target = (gsv.centre_mm[0] + rng.uniform(-0.3, 0.3) * gsv.a_mm,
              gsv.centre_mm[1] - rng.uniform(0.0, 0.35) * gsv.b_mm)
    needle, dist = _needle_towards(_entry_for(grid, target, side, rng.uniform(25, 45)), target)
    t_reach = rng.uniform(1.4, 1.8)
    t_hide = t_reach + rng.uniform(0.4, 0.8)  # the shaft leaves the image plane
    t_inject = (t_hide if seen_first else rng.uniform(1.5, 2.5)) + rng.uniform(0.3, 0.8)
    t_full = t_inject + rng.uniform(1.8, 3.0)

    def timeline(t: float, scene: Scene) -> State:
        n = None
        if seen_first and t < t_hide:
            n = ph.Needle(**{**needle.__dict__})
            n.length_mm = dist * _ramp(t, 0.2, t_reach)
            if n.length_mm <= 0.2:
                n = None
        fill = _ramp(t, t_inject, t_full)
        return State(needle=n, injecting=t_inject <= t <= t_full, foam={"GSV": fill} if fill > 0 else {},
                     spasm={"GSV": _ramp(t, t_full - 0.5, t_full + 2.0)})

    return Scene(grid=grid, probe=probe, layers=layers, vessels=vessels, timeline=timeline, rng=rng,
                 foam_reflect=foam_reflect, foam_transmission_per_mm=transmission)


def _build_gsv_out_of_plane(rng: np.random.Generator, grid: ImagingGrid, probe: Probe) -> Scene:
    """Out-of-plane approach: the needle crosses the image plane, seen as a bright dot (with ring-down) that
    walks down from the skin into the vein as the needle advances; then foam."""
    layers, vessels = _thigh_transverse(rng, grid, probe)
    gsv = vessels[0]
    target = (gsv.centre_mm[0] + rng.uniform(-0.2, 0.2) * gsv.a_mm, gsv.centre_mm[1] - rng.uniform(0, 0.3) * gsv.b_mm)
    start = (target[0] + rng.uniform(-1.0, 1.0), rng.uniform(1.0, 2.0))
    t_reach = rng.uniform(1.8, 2.4)
    t_inject, t_full = t_reach + 0.4, t_reach + rng.uniform(2.0, 2.6)

    def timeline(t: float, scene: Scene) -> State:
        f = _ramp(t, 0.3, t_reach)
        dot = (start[0] + f * (target[0] - start[0]), start[1] + f * (target[1] - start[1]))
        needle = ph.Needle(in_plane=False, dot_mm=dot, diameter_mm=0.7) if t >= 0.3 else None
        fill = _ramp(t, t_inject, t_full)
        return State(needle=needle, injecting=t_inject <= t <= t_full, foam={"GSV": fill} if fill > 0 else {},
                     spasm={"GSV": _ramp(t, t_full - 0.5, t_full + 2.0)})

    return Scene(grid=grid, probe=probe, layers=layers, vessels=vessels, timeline=timeline, rng=rng)


def _build_compression(rng: np.random.Generator, grid: ImagingGrid, probe: Probe) -> Scene:
    thrombosed_fv = bool(rng.random() < 0.5)
    layers, vessels = _thigh_transverse(rng, grid, probe, thrombosed_fv=thrombosed_fv,
                                        gsv_thrombosed=not thrombosed_fv)
    period = rng.uniform(2.4, 3.0)

    def timeline(t: float, scene: Scene) -> State:
        ph_ = (t % period) / period
        p = _ramp(ph_, 0.15, 0.45) * (1 - _ramp(ph_, 0.6, 0.9))
        return State(pressure=p)

    return Scene(grid=grid, probe=probe, layers=layers, vessels=vessels, timeline=timeline, rng=rng, color=True)


# ------------------------------------------------------------------------------------------------------
# calf, transverse: a superficial target vein with an accompanying artery; posterior tibial bundle deep
def _build_artery_near_miss(rng: np.random.Generator, grid: ImagingGrid, probe: Probe) -> Scene:
    vein_r = rng.uniform(1.6, 2.4)
    vein = (rng.uniform(15, 23), rng.uniform(9, 12))
    side = int(rng.choice([-1, 1]))
    art_r = rng.uniform(1.1, 1.5)
    # the artery lies beside the vein, on the side the needle comes from and slightly deeper
    # the accompanying artery runs in contact with the vein (perforating veins travel with an artery)
    art = (vein[0] + side * (vein_r + art_r + rng.uniform(0.8, 1.6)), vein[1] + rng.uniform(0.5, 1.5))
    fascia = max(vein[1], art[1]) + vein_r + rng.uniform(2.0, 3.0)
    layers = ph.build_layers(grid, region="calf", view="transverse", rng=rng, skin_mm=rng.uniform(1.1, 1.6),
                             deep_fascia_mm=fascia, saphenous_centre_mm=None, saphenous_radius_mm=0)
    ptv_z = rng.uniform(max(fascia + 8, 26), 32)
    ptv_x = rng.uniform(14, 24)
    vessels = [
        ph.Vessel("V1", "vein", "CPV", False, vein, vein_r, aspect=rng.uniform(1.1, 1.3), wall_mm=0.3, target=True,
                  shape=_shape(rng), peak_velocity_cm_s=8.0),
        ph.Vessel("A1", "artery", "ART", False, art, art_r, aspect=1.0, wall_mm=0.5, shape=_shape(rng, 0.01),
                  peak_velocity_cm_s=rng.uniform(40, 60)),
        ph.Vessel("PTA", "artery", "PTA", True, (ptv_x, ptv_z), rng.uniform(1.4, 1.8), wall_mm=0.6,
                  peak_velocity_cm_s=60.0),
        ph.Vessel("PTV1", "vein", "PTV", True, (ptv_x - rng.uniform(3.2, 4.0), ptv_z + 0.5), rng.uniform(1.6, 2.2),
                  aspect=1.3, wall_mm=0.3, shape=_shape(rng), peak_velocity_cm_s=8.0),
        ph.Vessel("PTV2", "vein", "PTV", True, (ptv_x + rng.uniform(3.2, 4.0), ptv_z - 0.3), rng.uniform(1.6, 2.2),
                  aspect=1.3, wall_mm=0.3, shape=_shape(rng), peak_velocity_cm_s=8.0),
    ]
    angle1 = rng.uniform(30, 42)
    # the needle comes from the artery's side of the screen: it meets the artery first
    entry = _entry_for(grid, art, side, angle1)
    n1, d1 = _needle_towards(entry, art)
    vein_target = (vein[0] + side * 0.2 * vein_r, vein[1] - 0.2 * vein_r)
    n2, d2 = _needle_towards(entry, vein_target)
    t_art, t_back, t_vein = rng.uniform(1.6, 2.0), 3.0, rng.uniform(4.4, 4.8)

    def timeline(t: float, scene: Scene) -> State:
        if t < t_back:
            n = ph.Needle(**{**n1.__dict__})
            n.length_mm = d1 * _ramp(t, 0.2, t_art)
            if t > t_art + 0.3:  # pull back out of the artery
                n.length_mm = d1 * (1 - 0.45 * _ramp(t, t_art + 0.3, t_back))
        else:  # redirect towards the vein
            n = ph.Needle(**{**n2.__dict__})
            n.length_mm = d2 * (0.55 + 0.45 * _ramp(t, t_back + 0.3, t_vein))
        fill = _ramp(t, t_vein + 0.4, t_vein + 1.6)
        return State(needle=n if n.length_mm > 0.2 else None, injecting=t_vein + 0.4 <= t <= t_vein + 1.6,
                     foam={"V1": fill} if fill > 0 else {})

    return Scene(grid=grid, probe=probe, layers=layers, vessels=vessels, timeline=timeline, rng=rng, color=True)


# ------------------------------------------------------------------------------------------------------
# groin, longitudinal: GSV descending into the common femoral vein at the saphenofemoral junction
def _build_foam_deep_junction(rng: np.random.Generator, grid: ImagingGrid, probe: Probe) -> Scene:
    cfv_z = rng.uniform(20, 25)
    cfv_r = rng.uniform(4.5, 5.5)
    jx = rng.uniform(22, 28)
    gsv_r = rng.uniform(2.5, 3.3)
    gsv_z0 = rng.uniform(6.5, 9.0)
    xs = np.linspace(-2, jx, 40)
    # the GSV runs near-horizontally then dives to the junction (a smooth S-curve)
    s = np.clip((xs - (jx - 12)) / 12, 0, 1)
    zs = gsv_z0 + (cfv_z - cfv_r * 0.6 - gsv_z0) * (3 * s**2 - 2 * s**3)
    gsv_path = np.stack([xs, zs], 1)
    cfv_path = np.stack([np.linspace(-2, grid.width_mm + 2, 30), np.full(30, cfv_z)], 1)
    cfv_path[:, 1] += 0.6 * np.sin(cfv_path[:, 0] / 9.0)
    fascia = gsv_z0 + gsv_r + 1.5
    layers = ph.build_layers(grid, region="thigh", view="longitudinal", rng=rng, skin_mm=rng.uniform(1.3, 1.9),
                             deep_fascia_mm=fascia, saphenous_centre_mm=(10.0, gsv_z0), saphenous_radius_mm=gsv_r)
    cfa_z = cfv_z + cfv_r + rng.uniform(5.0, 7.0)
    vessels = [
        ph.Vessel("GSV", "vein", "GSV", False, (float(xs[len(xs) // 3]), float(zs[len(xs) // 3])), gsv_r,
                  target=True, wall_mm=0.35, path_mm=gsv_path),
        ph.Vessel("CFV", "vein", "CFV", True, (grid.width_mm / 2, cfv_z), cfv_r, wall_mm=0.45, path_mm=cfv_path),
        ph.Vessel("CFA", "artery", "CFA", True, (grid.width_mm / 2, cfa_z), rng.uniform(3.2, 3.8), wall_mm=0.8,
                  path_mm=np.stack([np.linspace(-2, grid.width_mm + 2, 10), np.full(10, cfa_z)], 1),
                  peak_velocity_cm_s=90.0),
    ]
    gsv_len = float(np.linalg.norm(np.diff(gsv_path, axis=0), axis=1).sum())
    x_tip = rng.uniform(5, 9)
    s_tip = x_tip + 2.0  # arc length ≈ x in the flat part (path starts at x = -2)
    target = (x_tip, float(np.interp(x_tip, xs, zs)))
    entry = (0.0, max(0.6, target[1] - x_tip * math.tan(math.radians(rng.uniform(12, 20)))))
    needle, dist = _needle_towards(entry, target)
    t_reach = 0.6
    t_junction = rng.uniform(2.8, 3.4)

    def timeline(t: float, scene: Scene) -> State:
        n = ph.Needle(**{**needle.__dict__})
        n.length_mm = dist * _ramp(t, 0.0, t_reach)
        f = _ramp(t, t_reach + 0.2, t_junction)
        front = (s_tip + f * (gsv_len - s_tip)) / gsv_len
        back = max(0.0, (s_tip - 3.0 * f) / gsv_len)
        foam = {"GSV": front - back} if f > 0 else {}
        st = State(needle=n, injecting=t_reach + 0.2 <= t <= t_junction + 0.8, foam=foam)
        if f > 0:
            st.foam_front["GSV"], st.foam_back["GSV"] = front, back
        plume = _ramp(t, t_junction, t_junction + 1.0)
        if plume > 0:
            cfv = scene.vessel("CFV")
            cpath = cfv.path_now()
            clen = float(np.linalg.norm(np.diff(cpath, axis=0), axis=1).sum())
            centre = (jx + 2.0) / clen
            half = plume * 8.0 / clen
            st.foam["CFV"] = 2 * half
            st.foam_back["CFV"], st.foam_front["CFV"] = max(0.0, centre - half * 0.4), min(1.0, centre + half * 1.6)
        return st

    return Scene(grid=grid, probe=probe, layers=layers, vessels=vessels, timeline=timeline, rng=rng)


# ------------------------------------------------------------------------------------------------------
# calf, longitudinal: small saphenous vein cannulated in-plane
def _build_ssv_longitudinal(rng: np.random.Generator, grid: ImagingGrid, probe: Probe) -> Scene:
    ssv_z = rng.uniform(7, 10)
    ssv_r = rng.uniform(1.8, 2.6)
    xs = np.linspace(-2, grid.width_mm + 2, 30)
    zs = ssv_z + 0.8 * np.sin(xs / rng.uniform(8, 14) + rng.uniform(0, 6))
    fascia = ssv_z + ssv_r + rng.uniform(1.5, 2.5)
    layers = ph.build_layers(grid, region="calf", view="longitudinal", rng=rng, skin_mm=rng.uniform(1.1, 1.6),
                             deep_fascia_mm=fascia, saphenous_centre_mm=(grid.width_mm / 2, ssv_z),
                             saphenous_radius_mm=ssv_r)
    gv_z = rng.uniform(max(fascia + 7, 22), 30)
    vessels = [
        ph.Vessel("SSV", "vein", "SSV", False, (grid.width_mm / 2, ssv_z), ssv_r, wall_mm=0.3, target=True,
                  path_mm=np.stack([xs, zs], 1)),
        ph.Vessel("GAV", "vein", "GAV", True, (grid.width_mm / 2, gv_z), rng.uniform(1.8, 2.6), wall_mm=0.3,
                  path_mm=np.stack([xs, gv_z + 0.5 * np.sin(xs / 7.0)], 1)),
    ]
    side = int(rng.choice([-1, 1]))
    x_t = grid.width_mm / 2 + side * rng.uniform(2, 6)
    target = (x_t, float(np.interp(x_t, xs, zs)) - 0.2 * ssv_r)
    entry = _entry_for(grid, target, side, rng.uniform(18, 30))
    needle, dist = _needle_towards(entry, target)
    t_reach = rng.uniform(1.5, 2.0)
    length = float(np.linalg.norm(np.diff(vessels[0].path_mm, axis=0), axis=1).sum())
    s_tip = (x_t + 2.0) / length

    def timeline(t: float, scene: Scene) -> State:
        n = ph.Needle(**{**needle.__dict__})
        n.length_mm = dist * _ramp(t, 0.2, t_reach)
        f = _ramp(t, t_reach + 0.4, t_reach + 3.0)
        st = State(needle=n, injecting=t_reach + 0.4 <= t <= t_reach + 3.0,
                   spasm={"SSV": _ramp(t, t_reach + 2.5, t_reach + 4.0)})
        if f > 0:
            back, front = max(0.0, s_tip - 0.35 * f), min(1.0, s_tip + 0.45 * f)
            st.foam["SSV"] = front - back
            st.foam_back["SSV"], st.foam_front["SSV"] = back, front
        return st

    return Scene(grid=grid, probe=probe, layers=layers, vessels=vessels, timeline=timeline, rng=rng)


# ------------------------------------------------------------------------------------------------------
# groin, transverse at the saphenofemoral junction, with a spectral Doppler display of a reflux test
SPECTRAL_ROWS = 200


def _build_sfj_reflux(rng: np.random.Generator, grid: ImagingGrid, probe: Probe) -> Scene:
    from echosclero.sim.doppler import simulate_spectral_display

    cfv_r = rng.uniform(5.0, 6.2)
    cfv = (rng.uniform(15, 23), rng.uniform(21, 25))
    side = int(rng.choice([-1, 1]))
    gsv_r = rng.uniform(3.0, 4.2)
    # the "Mickey Mouse" view: CFV the head, CFA and GSV the ears (GSV medial and superficial)
    gsv = (cfv[0] - side * rng.uniform(4.0, 6.0), cfv[1] - cfv_r - gsv_r + rng.uniform(0.5, 1.2))
    cfa = (cfv[0] + side * (cfv_r + rng.uniform(3.5, 4.5)), cfv[1] - rng.uniform(2.5, 4.5))
    fascia = gsv[1] + gsv_r * 0.2
    layers = ph.build_layers(grid, region="thigh", view="transverse", rng=rng, skin_mm=rng.uniform(1.4, 2.0),
                             deep_fascia_mm=fascia, saphenous_centre_mm=gsv, saphenous_radius_mm=gsv_r)
    vessels = [
        ph.Vessel("GSV", "vein", "SFJ", False, gsv, gsv_r, aspect=1.2, wall_mm=0.4, shape=_shape(rng),
                  peak_velocity_cm_s=12.0),
        ph.Vessel("CFV", "vein", "CFV", True, cfv, cfv_r, aspect=rng.uniform(1.2, 1.45), wall_mm=0.45,
                  shape=_shape(rng), peak_velocity_cm_s=15.0),
        ph.Vessel("CFA", "artery", "CFA", True, cfa, rng.uniform(3.3, 4.0), wall_mm=0.9, shape=_shape(rng, 0.01),
                  peak_velocity_cm_s=100.0),
    ]
    reflux_ms = float(rng.uniform(0.0, 3000.0)) if rng.random() > 0.15 else float(rng.uniform(0, 300))
    duration = 6.0
    display = simulate_spectral_display(
        reflux_ms=reflux_ms, peak_antegrade_cm_s=float(rng.uniform(25, 60)),
        peak_reflux_cm_s=float(rng.uniform(15, 45)), rng=rng, sweep_s=duration, n_rows=SPECTRAL_ROWS,
        n_cols=grid.cols, s_per_px=duration / grid.cols, augmentation_start_s=float(rng.uniform(0.4, 0.8)),
    )
    t_release = display.truth.release_s

    def timeline(t: float, scene: Scene) -> State:
        # distal compression augments flow, release lets the incompetent valve reflux
        aug = _ramp(t, display.truth.augmentation_start_s, display.truth.augmentation_start_s + 0.3) * (
            1 - _ramp(t, t_release - 0.1, t_release + 0.1))
        return State(flow_scale={"GSV": 1 + 3 * aug, "CFV": 1 + 2 * aug})

    scene = Scene(grid=grid, probe=probe, layers=layers, vessels=vessels, timeline=timeline, rng=rng)
    scene.spectral_display = display
    return scene


SCENARIOS: dict[str, ScenarioSpec] = {
    s.name: s
    for s in (
        ScenarioSpec("gsv_injection", "thigh, transverse: in-plane needle into the great saphenous vein, foam fills "
                     "the lumen, vein spasm", 6.0, _build_gsv_injection),
        ScenarioSpec("gsv_foam_unseen_needle", "thigh, transverse: foam fills the great saphenous vein with no needle "
                     "in view (seen entering then out of the plane, or never seen); grey to bright foam, with or "
                     "without a shadow; spasm; the vein ends filled (closed)", 7.5, _build_gsv_foam_unseen_needle),
        ScenarioSpec("gsv_out_of_plane", "thigh, transverse: out-of-plane needle (a bright dot) walked down into "
                     "the great saphenous vein, then foam", 6.0, _build_gsv_out_of_plane),
        ScenarioSpec("artery_near_miss", "calf, transverse: needle enters an artery beside the target vein, is "
                     "withdrawn and redirected into the vein (colour Doppler)", 6.0, _build_artery_near_miss),
        ScenarioSpec("compression_thrombosis", "thigh, transverse: probe compression test; one vein is thrombosed "
                     "and does not collapse (colour Doppler)", 6.0, _build_compression),
        ScenarioSpec("foam_deep_junction", "groin, longitudinal: foam injected in the GSV travels to the "
                     "saphenofemoral junction and enters the common femoral vein", 5.0, _build_foam_deep_junction),
        ScenarioSpec("ssv_longitudinal", "calf, longitudinal: in-plane cannulation of the small saphenous vein, "
                     "foam spreads along it", 6.0, _build_ssv_longitudinal),
        ScenarioSpec("sfj_reflux", "groin, transverse at the saphenofemoral junction with a pulsed-wave Doppler "
                     "display: augmentation then reflux of a seeded duration (0-3 s)", 6.0, _build_sfj_reflux),
    )
}


def get_scenario(name: str) -> ScenarioSpec:
    import difflib

    if name in SCENARIOS:
        return SCENARIOS[name]
    near = difflib.get_close_matches(name, list(SCENARIOS), n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    raise InputError(f"unknown scenario {name!r}{hint}; run `echosclero simulate --list` for the names")


class SimulatedSource(Source):
    """Frames of a named scenario, rendered on demand; each Frame's ``meta['truth']`` is its ground truth."""

    def __init__(self, name: str, *, seed: int = 0, duration_s: float | None = None,
                 frame_rate_hz: float | None = None, grid: ImagingGrid | None = None,
                 probe: Probe | None = None) -> None:
        self.spec = get_scenario(name)
        self.seed = int(seed)
        self.duration_s = float(duration_s if duration_s is not None else self.spec.duration_s)
        self.frame_rate_hz = float(frame_rate_hz if frame_rate_hz is not None else self.spec.frame_rate_hz)
        if not (0 < self.duration_s <= 600):
            raise InputError(f"duration_s={self.duration_s} must be in (0, 600] seconds")
        if not (1 <= self.frame_rate_hz <= 200):
            raise InputError(f"frame_rate_hz={self.frame_rate_hz} must be in [1, 200]")
        self.grid = grid or ImagingGrid()
        self.probe = probe or Probe.l11_5v()
        self.source_id = f"sim:{name}"
        self.scene = self.spec.build(np.random.default_rng(self.seed), self.grid, self.probe)

    @property
    def n_frames(self) -> int:
        return max(1, int(round(self.duration_s * self.frame_rate_hz)))

    @property
    def frame_time_s(self) -> float:
        return 1.0 / self.frame_rate_hz

    def frames(self) -> Iterator[Frame]:
        display = self.spectral_display
        for i in range(self.n_frames):
            t = i * self.frame_time_s
            pixels, truth = self.scene.render(t)
            truth["index"] = i
            spectral_pixels = None
            if display is not None:
                # the trace sweeps left to right: columns not yet acquired are black
                shown = min(display.pixels.shape[1], int(t / display.calibration.s_per_px) + 1)
                spectral_pixels = np.zeros_like(display.pixels)
                spectral_pixels[:, :shown] = display.pixels[:, :shown]
            yield Frame(pixels=pixels, calibration=self.scene.calibration, t_s=t, index=i,
                        source_id=self.source_id, meta={"truth": truth},
                        spectral=display.calibration if display is not None else None,
                        spectral_pixels=spectral_pixels)

    @property
    def spectral_display(self):
        return getattr(self.scene, "spectral_display", None)

    def info(self) -> SourceInfo:
        g = self.grid
        regions = [RegionInfo(index=0, kind="tissue", bbox_px=(0, 0, g.cols - 1, g.rows - 1),
                              mm_per_px_x=g.mm_per_px_x, mm_per_px_z=g.mm_per_px_z, data_type_code=1,
                              role="imaging")]
        rows = g.rows
        display = self.spectral_display
        if display is not None:
            cal = display.calibration
            h = display.pixels.shape[0]
            regions.append(RegionInfo(index=1, kind="PW", bbox_px=(0, g.rows, g.cols - 1, g.rows + h - 1),
                                      s_per_px=cal.s_per_px, cm_s_per_px=cal.cm_s_per_px,
                                      baseline_row=cal.baseline_row, data_type_code=3, role="spectral"))
            rows += h
        return SourceInfo(kind="simulator", source_id=self.source_id, n_frames=self.n_frames, rows=rows,
                          cols=g.cols, frame_time_s=self.frame_time_s, calibrated=True, regions=tuple(regions),
                          details={"scenario": self.spec.name, "seed": self.seed, "description": self.spec.description,
                                   "colour_doppler": self.scene.color})

    def truth_document(self, frames_truth: list[dict]) -> dict:
        return {
            "schema": SCHEMA,
            "source": self.source_id,
            "calibration": self.scene.calibration.to_json(),
            "scenario": {"name": self.spec.name, "seed": self.seed, "duration_s": self.duration_s,
                         "frame_rate_hz": self.frame_rate_hz, "description": self.spec.description,
                         "probe": {"centre_frequency_hz": self.probe.centre_frequency_hz,
                                   "fractional_bandwidth": self.probe.fractional_bandwidth,
                                   "f_number_rx": self.probe.f_number_rx},
                         "image": {"rows": self.grid.rows, "cols": self.grid.cols, "width_mm": self.grid.width_mm,
                                   "depth_mm": self.grid.depth_mm}},
            "frames": frames_truth,
            **({"reflux": {**self.spectral_display.truth.to_json(), "segment": "SFJ",
                           "schema": "echosclero.reflux/1"}} if self.spectral_display is not None else {}),
        }
