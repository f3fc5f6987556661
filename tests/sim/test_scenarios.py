"""The simulator's images agree with its ground truth, and its dynamics behave as physiology says.

Tolerances are stated per test; images are measured with simple, independent image analysis (never with
the guidance engine under test elsewhere).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from echosclero.errors import InputError
from echosclero.sim import list_scenarios, open_simulated_source
from echosclero.sim.acoustics import BModeRenderer, ImagingGrid, Probe


def _frames(name: str, seed: int, duration_s: float, **kw):
    src = open_simulated_source(name, seed=seed, duration_s=duration_s, **kw)
    return src, list(src.frames())


def _gray(frame) -> np.ndarray:
    p = frame.pixels
    return p if p.ndim == 2 else cv2.cvtColor(p, cv2.COLOR_RGB2GRAY)


def _lumen_diameter_mm(frame, vessel: dict, *, n_rays: int = 72) -> float:
    """Equivalent diameter of the lumen traced along rays from the truth centre: the edge is where the
    (lightly smoothed) image first rises half-way from the lumen level to the wall peak — the unbiased edge
    of a step blurred by a symmetric PSF. Returns 0 when no lumen is found."""
    from scipy.ndimage import map_coordinates

    img = cv2.GaussianBlur(_gray(frame).astype(np.float32), (0, 0), 1.5)
    cal = frame.calibration
    cx, cz = vessel["center_mm"]
    r_max = vessel["diameter_mm"] + 2.0
    radii = np.arange(0.0, r_max, 0.03)
    theta = np.linspace(0, 2 * np.pi, n_rays, endpoint=False)
    xs = cx + radii[None, :] * np.cos(theta)[:, None]
    zs = cz + radii[None, :] * np.sin(theta)[:, None]
    rows, cols = cal.mm_to_px(xs, zs)
    prof = map_coordinates(img, [rows - 0.5, cols - 0.5], order=1, mode="nearest")
    inner = radii < 0.3 * vessel["diameter_mm"] / 2
    lumen = float(np.median(prof[:, inner]))
    edges = []
    for ray in prof:
        peak_i = int(np.argmax(ray))
        half = lumen + 0.5 * (ray[peak_i] - lumen)
        above = np.flatnonzero(ray[: peak_i + 1] >= half)
        edges.append(radii[above[0]] if above.size else 0.0)
    e = np.array(edges)
    pts = np.stack([e * np.cos(theta), e * np.sin(theta)], 1)
    area = 0.5 * abs(np.dot(pts[:, 0], np.roll(pts[:, 1], -1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], -1)))
    return 2 * math.sqrt(area / math.pi)


def test_every_scenario_has_a_description_and_renders_with_truth():
    names = [n for n, _ in list_scenarios()]
    assert {"gsv_injection", "artery_near_miss", "compression_thrombosis", "foam_deep_junction",
            "sfj_reflux"} <= set(names)
    for name in names:
        src, frames = _frames(name, seed=11, duration_s=0.2)
        assert len(frames) == 4
        truth = frames[0].meta["truth"]
        assert {"t_s", "vessels", "needle", "foam", "alerts"} <= set(truth)
        ids = [v["id"] for v in truth["vessels"]]
        assert len(ids) == len(set(ids))
        assert frames[0].pixels.dtype == np.uint8 and frames[0].pixels.shape[:2] == (512, 512)


def test_same_seed_same_scene_other_seed_other_anatomy():
    _, a = _frames("gsv_injection", seed=5, duration_s=0.1)
    _, b = _frames("gsv_injection", seed=5, duration_s=0.1)
    _, c = _frames("gsv_injection", seed=6, duration_s=0.1)
    assert np.array_equal(a[0].pixels, b[0].pixels)
    assert a[0].meta["truth"] == b[0].meta["truth"]
    ga = {v["id"]: v for v in a[0].meta["truth"]["vessels"]}["GSV"]
    gc = {v["id"]: v for v in c[0].meta["truth"]["vessels"]}["GSV"]
    assert ga["center_mm"] != gc["center_mm"] and ga["diameter_mm"] != gc["diameter_mm"]


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_rendered_lumens_match_truth_diameter(seed):
    # Tolerance 0.3 mm (four pixels): speckle on the wall moves the half-way crossing of single rays.
    _, frames = _frames("gsv_injection", seed=seed, duration_s=0.05)
    f = frames[0]
    for v in f.meta["truth"]["vessels"]:
        if v["diameter_mm"] < 3.0:
            continue
        measured = _lumen_diameter_mm(f, v)
        assert abs(measured - v["diameter_mm"]) < 0.3, (v["id"], measured, v["diameter_mm"])


def test_truth_area_and_diameter_are_consistent():
    _, frames = _frames("compression_thrombosis", seed=3, duration_s=0.5)
    for f in frames:
        for v in f.meta["truth"]["vessels"]:
            assert v["diameter_mm"] == pytest.approx(2 * math.sqrt(v["area_mm2"] / math.pi), rel=1e-3)


def test_compression_collapses_normal_veins_not_thrombosed_ones_or_arteries():
    src, frames = _frames("compression_thrombosis", seed=8, duration_s=3.0)
    rest = frames[0].meta["truth"]
    pressed = max(frames, key=lambda f: f.meta["truth"]["probe_pressure"])
    assert pressed.meta["truth"]["probe_pressure"] > 0.95
    area0 = {v["id"]: v["area_mm2"] for v in rest["vessels"]}
    for v in pressed.meta["truth"]["vessels"]:
        drop = 1 - v["area_mm2"] / area0[v["id"]]
        if v["kind"] == "artery" or v["thrombosed"]:
            assert drop < 0.2, v
        else:
            assert drop > 0.85, v
            # and it is visibly gone from the image: the traced lumen is a fraction of the rest diameter
            rest_v = next(r for r in rest["vessels"] if r["id"] == v["id"])
            assert _lumen_diameter_mm(pressed, v) < 0.5 * rest_v["diameter_mm"]
    codes = {a["code"] for f in frames for a in f.meta["truth"]["alerts"]}
    assert "NONCOMPRESSIBLE_VEIN" in codes


def test_artery_pulsates_vein_does_not():
    _, frames = _frames("gsv_injection", seed=4, duration_s=1.5)
    d = {vid: [next(v for v in f.meta["truth"]["vessels"] if v["id"] == vid)["diameter_mm"] for f in frames]
         for vid in ("FA", "FV")}
    fa, fv = np.array(d["FA"]), np.array(d["FV"])
    assert 0.04 < (fa.max() - fa.min()) / fa.mean() < 0.15
    assert (fv.max() - fv.min()) / fv.mean() < 0.01


def test_needle_shaft_is_bright_and_tip_reaches_the_target_vein():
    _, frames = _frames("gsv_injection", seed=9, duration_s=3.0)
    with_tip = [f for f in frames if f.meta["truth"]["needle"] is not None]
    assert with_tip
    f = with_tip[len(with_tip) // 2]
    n = f.meta["truth"]["needle"]
    img = _gray(f).astype(np.float32)
    cal = f.calibration
    (x0, z0), (x1, z1) = n["entry_mm"], n["tip_mm"]
    ts = np.linspace(0.2, 0.9, 30)
    rows, cols = cal.mm_to_px(x0 + ts * (x1 - x0), z0 + ts * (z1 - z0))
    on_shaft = img[np.clip(rows.astype(int), 0, 511), np.clip(cols.astype(int), 0, 511)]
    assert np.median(on_shaft) > np.percentile(img, 95)
    assert math.degrees(math.atan2(z1 - z0, abs(x1 - x0))) == pytest.approx(n["angle_deg"], abs=0.5)
    assert any(v["contains_needle_tip"] and v["target"] for v in frames[-20].meta["truth"]["vessels"]) or any(
        v["contains_needle_tip"] and v["target"] for f in frames for v in f.meta["truth"]["vessels"])


def test_foam_fills_the_lumen_brightens_it_and_shadows_below():
    _, frames = _frames("gsv_injection", seed=12, duration_s=6.0)
    fills = [next((x["fill_fraction"] for x in f.meta["truth"]["foam"] if x["vessel_id"] == "GSV"), 0.0)
             for f in frames]
    assert fills[0] == 0.0 and fills[-1] > 0.95
    assert all(b >= a - 1e-9 for a, b in zip(fills, fills[1:], strict=False) if b > 0)
    before, after = frames[0], frames[-1]
    gsv0 = next(v for v in before.meta["truth"]["vessels"] if v["id"] == "GSV")
    cal = before.calibration
    r, c = (int(v) for v in cal.mm_to_px(*gsv0["center_mm"]))
    below = slice(r + int(6 / cal.mm_per_px_z), r + int(14 / cal.mm_per_px_z))
    cols = slice(c - 10, c + 10)
    assert _gray(after)[r - 3:r + 4, c - 3:c + 4].mean() > 2 * _gray(before)[r - 3:r + 4, c - 3:c + 4].mean()
    assert _gray(after)[below, cols].mean() < 0.8 * _gray(before)[below, cols].mean()
    # spasm: the foam-filled vein narrows
    gsv1 = next(v for v in after.meta["truth"]["vessels"] if v["id"] == "GSV")
    assert gsv1["diameter_mm"] < 0.85 * gsv0["diameter_mm"]


def _ring_median(img, frame, vessel, *, inside: bool) -> float:
    """Median grey level of the lumen (inside) at 60-90 % of its radius, away from the centre."""
    cal = frame.calibration
    rr, cc = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    x, z = cal.px_to_mm(rr + 0.5, cc + 0.5)
    d = np.hypot(x - vessel["center_mm"][0], z - vessel["center_mm"][1]) / (vessel["diameter_mm"] / 2)
    return float(np.median(img[(d > 0.6) & (d < 0.9)]))


def test_out_of_plane_needle_is_a_bright_dot_that_ends_in_the_vein():
    _, frames = _frames("gsv_out_of_plane", seed=3, duration_s=3.0)
    # the last frame before foam appears: the dot sits in the dark lumen
    f = [f for f in frames if not f.meta["truth"]["foam"]][-1]
    n = f.meta["truth"]["needle"]
    assert n["plane"] == "out" and n["angle_deg"] is None
    r, c = (int(v) for v in f.calibration.mm_to_px(*n["tip_mm"]))
    img = _gray(f).astype(np.float32)
    gsv = next(v for v in f.meta["truth"]["vessels"] if v["id"] == "GSV")
    assert img[r - 2:r + 3, c - 2:c + 3].mean() > 200  # a bright dot ...
    assert img[r - 2:r + 3, c - 2:c + 3].mean() > 3 * _ring_median(img, f, gsv, inside=True)  # ... in the dark lumen
    assert any(v["contains_needle_tip"] and v["target"] for v in f.meta["truth"]["vessels"])


def test_near_miss_raises_tip_in_artery_then_ends_in_the_vein():
    _, frames = _frames("artery_near_miss", seed=2, duration_s=6.0)
    codes = [[a["code"] for a in f.meta["truth"]["alerts"]] for f in frames]
    first = next(i for i, c in enumerate(codes) if "TIP_IN_ARTERY" in c)
    assert 1.0 < frames[first].t_s < 2.6
    last = frames[-1].meta["truth"]
    assert any(v["contains_needle_tip"] and v["target"] for v in last["vessels"])
    assert "TIP_IN_ARTERY" not in codes[-1]
    assert frames[0].pixels.ndim == 3  # colour Doppler


def test_colour_write_priority_leaves_echogenic_foam_grey():
    """Colour is painted over dark blood only: foam (bright) in a vein with flow stays visible as grey echoes."""
    _, frames = _frames("artery_near_miss", seed=1, duration_s=6.0)
    f = next(f for f in frames if any(x["fill_fraction"] > 0.6 for x in f.meta["truth"]["foam"]))
    truth = f.meta["truth"]
    fo = next(x for x in truth["foam"] if x["fill_fraction"] > 0.6)

    def share(frame, upper: bool = False):
        px = frame.pixels.astype(np.int16)
        coloured = (px.max(axis=2) - px.min(axis=2)) > 40
        v = next(v for v in frame.meta["truth"]["vessels"] if v["id"] == fo["vessel_id"])
        r, c = (int(round(x)) for x in frame.calibration.mm_to_px(*v["center_mm"]))
        k = v["diameter_mm"] / frame.calibration.mm_per_px_x
        rows = slice(r - int(0.4 * k), r - int(0.1 * k)) if upper else slice(r - int(0.3 * k), r + int(0.3 * k))
        return coloured[rows, c - int(0.2 * k):c + int(0.2 * k)].mean()

    # the vein's flowing blood is coloured before the injection; foam rises to the top of its lumen and stays grey
    assert share(frames[0]) > 0.6
    assert share(f, upper=True) < 0.2


def test_foam_reaching_the_junction_raises_foam_in_deep_vein():
    _, frames = _frames("foam_deep_junction", seed=4, duration_s=5.0)
    codes = [{a["code"] for a in f.meta["truth"]["alerts"]} for f in frames]
    assert "FOAM_IN_DEEP_VEIN" not in codes[10]
    assert "FOAM_IN_DEEP_VEIN" in codes[-1]
    fronts = [next(x["front_mm"][0] for x in f.meta["truth"]["foam"] if x["vessel_id"] == "GSV")
              for f in frames if any(x["vessel_id"] == "GSV" for x in f.meta["truth"]["foam"])]
    assert fronts[-1] > fronts[0] + 5  # the front travels towards the junction


def test_sfj_reflux_carries_a_calibrated_spectral_display_and_its_truth():
    src, frames = _frames("sfj_reflux", seed=7, duration_s=6.0)
    doc = src.truth_document([f.meta["truth"] for f in frames])
    reflux = doc["reflux"]
    assert reflux["schema"] == "echosclero.reflux/1"
    assert 0 <= reflux["reflux_ms"] <= 3000
    last = frames[-1]
    assert last.spectral is not None and last.spectral_pixels.shape[1] == 512
    assert last.spectral_pixels[:, -5:].any() and not frames[0].spectral_pixels[:, 10:].any()


def test_tgc_keeps_speckle_level_flat_with_depth_and_noise_rises():
    grid = ImagingGrid()
    r = BModeRenderer(Probe.l11_5v(), grid, noise_db=-45, rng=np.random.default_rng(0))
    field = np.random.default_rng(1).standard_normal((512, 512, 2), dtype=np.float32) * np.float32(0.7071)
    env = r.envelope(field.copy())
    shallow, deep = env[40:120].mean(), env[400:480].mean()
    assert deep == pytest.approx(shallow, rel=0.1)
    noise_only = r.envelope(np.zeros_like(field))
    assert noise_only[400:480].mean() > 10 * noise_only[40:120].mean()


def test_bad_scenario_options_are_refused_clearly():
    with pytest.raises(InputError, match="did you mean gsv_injection"):
        open_simulated_source("gsv_injecton")
    with pytest.raises(InputError, match="duration_s"):
        open_simulated_source("gsv_injection", duration_s=-1)
    with pytest.raises(InputError, match="plausible range"):
        Probe(centre_frequency_hz=1e9)
