"""Scenes imaged by PyMUST (``benchmarks/pymust_scenes.py``): does the truth agree with the other physics?

* the truth carried by a PyMUST frame is the simulator's own truth for the same scene and instant;
* the scatterers put anechoic blood where the truth puts a lumen, and the wall contours on its boundary;
* slow: a small SIMUS + DAS image of a transverse vein is dark where the truth says the lumen is, and the
  dark region is centred on the truth centre (geometry and physics agree: x from the image's left edge, z from
  the transducer face).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymust")

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # benchmarks/ is a top-level package of the repository, not installed
    sys.path.insert(0, str(_ROOT))

from benchmarks import pymust_scenes as ps  # noqa: E402

from echosclero.sim import open_simulated_source  # noqa: E402

SCENARIO, SEED = "gsv_injection", 6002


def _scatterers(t_s: float = 0.0, *, density_per_mm2: float = 5.0, window_mm=None):
    src = open_simulated_source(SCENARIO, seed=SEED)
    tissue = ps.TissueScatterers(src.grid, scatterers_per_mm2=density_per_mm2, rng=np.random.default_rng(7))
    return src, ps.frame_scatterers(src.scene, t_s, tissue, wavelength_mm=0.308, window_mm=window_mm)


def test_truth_is_the_simulators_own():
    ours = next(open_simulated_source(SCENARIO, seed=SEED).frames()).meta["truth"]
    _, fs = _scatterers(0.0)
    fs.truth["index"] = 0
    assert fs.truth == ours


def test_scatterers_are_anechoic_inside_the_truth_lumens_and_walls_on_their_boundary():
    _, fs = _scatterers(0.0)
    n_tissue = fs.counts["tissue"]
    x, z, a = fs.x_mm[:n_tissue], fs.z_mm[:n_tissue], fs.amplitude[:n_tissue]
    wx, wz = fs.x_mm[-fs.counts["walls_needle"]:], fs.z_mm[-fs.counts["walls_needle"]:]
    checked = 0
    for v in fs.truth["vessels"]:
        if v["view"] != "transverse" or not v["visible"] or v["thrombosed"]:
            continue
        r_mm = v["diameter_mm"] / 2
        d = np.hypot(x - v["center_mm"][0], z - v["center_mm"][1])
        inner, ring = d < 0.5 * r_mm, (d > 1.6 * r_mm) & (d < 2.4 * r_mm)
        rms_in = float(np.sqrt(np.mean(a[inner] ** 2)))
        rms_ring = float(np.sqrt(np.mean(a[ring] ** 2)))
        assert rms_in < 0.05 * rms_ring, f"{v['id']}: lumen RMS {rms_in:.3g} vs tissue {rms_ring:.3g}"
        # wall contours (lumen and adventitia) surround the lumen (aspect up to 1.5: semi-axes 0.82-1.22 radii)
        dw = np.hypot(wx - v["center_mm"][0], wz - v["center_mm"][1])
        assert not np.any(dw < 0.6 * r_mm), f"{v['id']}: wall points inside the lumen"
        assert ((dw > 0.6 * r_mm) & (dw < 1.5 * r_mm + 1.0)).sum() > 100
        checked += 1
    assert checked >= 2


def test_window_keeps_only_scatterers_inside():
    _, fs = _scatterers(0.0, window_mm=(10.0, 20.0, 5.0, 15.0))
    assert fs.x_mm.size > 0
    assert fs.x_mm.min() >= 10.0 and fs.x_mm.max() <= 20.0 and fs.z_mm.min() >= 5.0 and fs.z_mm.max() <= 15.0


def test_tissue_scatterers_refuse_bad_density():
    from echosclero.sim.acoustics import ImagingGrid

    with pytest.raises(ValueError, match="scatterers_per_mm2"):
        ps.TissueScatterers(ImagingGrid(), scatterers_per_mm2=0.0, rng=np.random.default_rng(0))


@pytest.mark.slow
def test_pymust_image_is_dark_in_the_truth_lumen_of_a_transverse_vein():
    """SIMUS (3 plane waves, L9-4/38) + DAS on a 0.15 mm grid around the great saphenous vein at t = 0."""
    src = open_simulated_source(SCENARIO, seed=SEED)
    gsv = next(v for v in next(src.frames()).meta["truth"]["vessels"] if v["id"] == "GSV")
    (cx, cz), r_mm = gsv["center_mm"], gsv["diameter_mm"] / 2
    half = r_mm + 3.0
    margin = 2.0  # scatterers beyond the imaged window still echo into it
    _, fs = _scatterers(0.0, density_per_mm2=20.0,
                        window_mm=(cx - half - margin, cx + half + margin, max(0.05, cz - half - margin),
                                   cz + half + margin))
    xs = np.arange(cx - half, cx + half, 0.15)
    zs = np.arange(cz - half, cz + half, 0.15)
    imager = ps.PymustImager(ps.ImagingSetup(), src.grid, x_native_mm=xs, z_native_mm=zs)
    env = imager.envelope(fs.x_mm, fs.z_mm, fs.amplitude)  # no noise, no TGC: a local ratio is tested
    intensity = env**2
    d = np.hypot(xs[None, :] - cx, zs[:, None] - cz)
    lumen, ring = d < 0.6 * r_mm, (d > 1.5 * r_mm) & (d < 2.2 * r_mm)
    ratio_db = 10 * math.log10(intensity[lumen].mean() / intensity[ring].mean())
    assert ratio_db < -10.0, f"truth lumen only {ratio_db:.1f} dB below the surrounding tissue"
    # the dark region (below the midpoint in dB, within 1.3 radii) is centred on the truth centre
    level_db = 0.5 * (10 * np.log10(intensity[lumen].mean()) + 10 * np.log10(intensity[ring].mean()))
    dark = (10 * np.log10(intensity + 1e-30) < level_db) & (d < 1.3 * r_mm)
    zz, xx = np.meshgrid(zs, xs, indexing="ij")
    offset_mm = math.hypot(float(xx[dark].mean()) - cx, float(zz[dark].mean()) - cz)
    assert offset_mm < 0.5, f"dark region centred {offset_mm:.2f} mm from the truth centre ({cx:.2f}, {cz:.2f})"


def test_imaging_setup_refuses_implausible_values():
    with pytest.raises(ValueError, match="tilts_deg"):
        ps.ImagingSetup(tilts_deg=())
    with pytest.raises(ValueError, match="f_number_rx"):
        ps.ImagingSetup(f_number_rx=0.0)


def test_display_intensity_inverts_the_log_compression():
    from echosclero.sim.acoustics import log_compress

    env = np.array([[0.1, 1.0, 3.0]], dtype=np.float32)
    grey = log_compress(env, dynamic_range_db=60.0, gain_db=2.0, reference=1.0)
    back = np.sqrt(ps.display_intensity(grey, gain_db=2.0))
    np.testing.assert_allclose(back, env, rtol=0.03)  # uint8 steps: 60/255 dB = 2.7 %
