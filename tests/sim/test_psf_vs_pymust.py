"""The fast B-mode simulator against an independent physics: PyMUST (SIMUS + rf2iq + DAS).

* accuracy: axial and lateral -6 dB widths of ``render_scatterers`` within 20 % of PyMUST's at 10, 20 and
  30 mm, for targets on pixel edges and on pixel centres of the 512 x 512 display grid;
* statistics: envelope SNR of homogeneous speckle within 1.91 +- 0.15 (Rayleigh; Wagner et al. 1983) for
  both simulators;
* the reference itself: PyMUST's axial width against the width predicted from its own spectra, its lateral
  width against the rectangular-aperture bound 1.207 lambda F#, and the fast SIMUS options.

The PyMUST point-target images are small windows (same pixel pitch as the display grid): each takes well
under a second. Only the PyMUST speckle test is slow.
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

from benchmarks import pymust_reference as ref  # noqa: E402

from echosclero.sim.acoustics import ImagingGrid, Probe, render_scatterers  # noqa: E402

WIDTH_MM, DEPTH_MM, SHAPE = 38.4, 40.0, (512, 512)
DEPTHS_MM = (10.0, 20.0, 30.0)
FWHM_REL_TOL = 0.20
SNR_TOL = 0.15


@pytest.fixture(scope="module")
def probe() -> Probe:
    return Probe.l11_5v()


@pytest.fixture(scope="module")
def grid() -> ImagingGrid:
    return ImagingGrid(rows=SHAPE[0], cols=SHAPE[1], width_mm=WIDTH_MM, depth_mm=DEPTH_MM)


def _target(depth_mm: float, offset_px: float, grid: ImagingGrid) -> tuple[float, float]:
    return WIDTH_MM / 2 + offset_px * grid.mm_per_px_x, depth_mm + offset_px * grid.mm_per_px_z


def _pymust_fwhm(x_mm: float, z_mm: float, grid: ImagingGrid, *, fast: bool = True) -> tuple[float, float]:
    """PyMUST widths on a 49 x 65 px window of the display grid around the target."""
    dx, dz = grid.mm_per_px_x, grid.mm_per_px_z
    r0, c0 = int(z_mm / dz), int(x_mm / dx)
    rows, cols = slice(r0 - 24, r0 + 25), slice(c0 - 32, c0 + 33)
    env = ref.pymust_bmode(
        [x_mm],
        [z_mm],
        [1.0],
        width_mm=WIDTH_MM,
        depth_mm=DEPTH_MM,
        shape=SHAPE,
        rows=rows,
        cols=cols,
        fast=fast,
        origin_px=0.5,
    )
    return ref.measure_psf_fwhm(
        env,
        mm_per_px_x=dx,
        mm_per_px_z=dz,
        x_mm=x_mm - cols.start * dx,
        z_mm=z_mm - rows.start * dz,
        origin_px=0.5,
    )


def test_reference_uses_the_fast_simulators_receive_fnumber(probe: Probe) -> None:
    assert ref.make_param().fnumber == pytest.approx(probe.f_number_rx)


@pytest.mark.parametrize("offset_px", [0.0, 0.5], ids=["pixel-edge", "pixel-centre"])
@pytest.mark.parametrize("depth_mm", DEPTHS_MM)
def test_render_scatterers_psf_within_20_percent_of_pymust(
    depth_mm: float, offset_px: float, probe: Probe, grid: ImagingGrid
) -> None:
    x_mm, z_mm = _target(depth_mm, offset_px, grid)
    ax_ref, lat_ref = _pymust_fwhm(x_mm, z_mm, grid)
    env = render_scatterers([x_mm], [z_mm], [1.0], probe=probe, grid=grid)
    ax, lat = ref.measure_psf_fwhm(
        env, mm_per_px_x=grid.mm_per_px_x, mm_per_px_z=grid.mm_per_px_z, x_mm=x_mm, z_mm=z_mm, origin_px=0.5
    )
    report = (
        f"target ({x_mm:.4f}, {z_mm:.4f}) mm: axial ours {ax:.4f} vs PyMUST {ax_ref:.4f} mm "
        f"(ratio {ax / ax_ref:.3f}); lateral ours {lat:.4f} vs PyMUST {lat_ref:.4f} mm "
        f"(ratio {lat / lat_ref:.3f}); allowed ratio 1 +- {FWHM_REL_TOL}"
    )
    assert abs(ax / ax_ref - 1) <= FWHM_REL_TOL, report
    assert abs(lat / lat_ref - 1) <= FWHM_REL_TOL, report


def test_render_scatterers_speckle_snr_is_rayleigh(probe: Probe, grid: ImagingGrid) -> None:
    """1000 scatterers/mm^2 (~65 per resolution cell) over 20 x 20 mm; SNR in the inner 18 x 18 mm, 3 seeds."""
    xs, zs = grid.x_mm(), grid.z_mm()
    x_range, z_range = (WIDTH_MM / 2 - 10, WIDTH_MM / 2 + 10), (10.0, 30.0)
    mask = ((zs >= z_range[0] + 1) & (zs <= z_range[1] - 1))[:, None] & (
        (xs >= x_range[0] + 1) & (xs <= x_range[1] - 1)
    )[None, :]
    snrs = []
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        x, z, a = ref.speckle_scatterers(400_000, x_range_mm=x_range, z_range_mm=z_range, rng=rng)
        snrs.append(ref.envelope_snr(render_scatterers(x, z, a, probe=probe, grid=grid), mask))
    mean = float(np.mean(snrs))
    assert abs(mean - ref.RAYLEIGH_SNR) <= SNR_TOL, (
        f"speckle SNR {mean:.3f} (seeds: {np.round(snrs, 3).tolist()}), expected {ref.RAYLEIGH_SNR:.3f} +- {SNR_TOL}"
    )


@pytest.mark.slow
def test_pymust_speckle_snr_is_rayleigh() -> None:
    """400 scatterers/mm^2 (~30 per resolution cell) over 6 x 6 mm at 7-13 mm; inner 4 x 4 mm, 2 seeds."""
    x_range, z_range = (WIDTH_MM / 2 - 3, WIDTH_MM / 2 + 3), (7.0, 13.0)
    dx, dz = WIDTH_MM / SHAPE[1], DEPTH_MM / SHAPE[0]
    rows = slice(int(round((z_range[0] + 1) / dz)), int(round((z_range[1] - 1) / dz)))
    cols = slice(int(round((x_range[0] + 1) / dx)), int(round((x_range[1] - 1) / dx)))
    snrs = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        x, z, a = ref.speckle_scatterers(14_400, x_range_mm=x_range, z_range_mm=z_range, rng=rng)
        env = ref.pymust_bmode(x, z, a, rows=rows, cols=cols, origin_px=0.5)
        snrs.append(ref.envelope_snr(env))
    mean = float(np.mean(snrs))
    assert abs(mean - ref.RAYLEIGH_SNR) <= SNR_TOL, (
        f"PyMUST speckle SNR {mean:.3f} (seeds: {np.round(snrs, 3).tolist()}), expected "
        f"{ref.RAYLEIGH_SNR:.3f} +- {SNR_TOL}"
    )


# ---- the reference itself ------------------------------------------------------------------------


def _pymust_fine_profiles(x_mm: float, z_mm: float) -> tuple[float, float]:
    """PyMUST widths on a fine cross: one column (5 um steps) and one row (10 um steps) through the target."""
    zg = z_mm + np.arange(-80, 81) * 0.005
    xg = x_mm + np.arange(-120, 121) * 0.01
    col = ref.pymust_envelope_on_grid([x_mm], [z_mm], [1.0], x_grid_mm=np.array([x_mm]), z_grid_mm=zg)
    row = ref.pymust_envelope_on_grid([x_mm], [z_mm], [1.0], x_grid_mm=xg, z_grid_mm=np.array([z_mm]))
    ax = ref.profile_fwhm_mm(col[:, 0], mm_per_px=0.005)
    lat = ref.profile_fwhm_mm(row[0, :], mm_per_px=0.01)
    return ax, lat


def test_pymust_axial_width_matches_its_spectrum() -> None:
    expected = ref.spectral_axial_fwhm_mm()
    ax, _ = _pymust_fine_profiles(WIDTH_MM / 2, 20.0)
    assert ax == pytest.approx(expected, rel=0.05), f"PyMUST axial {ax:.4f} mm, spectral model {expected:.4f} mm"


def test_pymust_lateral_width_near_rectangular_aperture_limit(probe: Probe) -> None:
    """Rectangular receive aperture at fc: 1.207 lambda F#; element directivity widens it by < 20 %."""
    bound = 1.207 * probe.wavelength_mm * probe.f_number_rx
    for depth in (10.0, 30.0):  # constant with depth: also checks the RF record covers the deep aperture
        _, lat = _pymust_fine_profiles(WIDTH_MM / 2, depth)
        assert bound <= lat <= 1.2 * bound, f"z = {depth} mm: lateral {lat:.4f} mm, bound {bound:.4f} mm"


def test_fast_simus_options_do_not_change_the_psf(grid: ImagingGrid) -> None:
    for depth in (10.0, 30.0):
        fast = _pymust_fwhm(WIDTH_MM / 2, depth, grid, fast=True)
        full = _pymust_fwhm(WIDTH_MM / 2, depth, grid, fast=False)
        np.testing.assert_allclose(fast, full, rtol=0.02, err_msg=f"z = {depth} mm")


# ---- measurement helpers -------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.3, 0.5), (0.5, 0.25)])
def test_measure_psf_fwhm_recovers_gaussian_widths(offset: tuple[float, float]) -> None:
    fwhm_ax, fwhm_lat, dx, dz = 0.18, 0.42, 0.075, 0.078125
    rows, cols = np.arange(64), np.arange(64)
    z0, x0 = (32 + offset[0]) * dz, (32 + offset[1]) * dx
    zz, xx = np.meshgrid(rows * dz, cols * dx, indexing="ij")
    env = np.exp(-4 * math.log(2) * (((zz - z0) / fwhm_ax) ** 2 + ((xx - x0) / fwhm_lat) ** 2))
    ax, lat = ref.measure_psf_fwhm(env, mm_per_px_x=dx, mm_per_px_z=dz, x_mm=x0, z_mm=z0)
    # the axial profile has ~2.3 samples per width: a cubic spline through them is good to a few %
    assert ax == pytest.approx(fwhm_ax, rel=0.06)
    assert lat == pytest.approx(fwhm_lat, rel=0.02)


def test_envelope_snr_of_rayleigh_samples() -> None:
    rng = np.random.default_rng(7)
    env = np.abs(rng.standard_normal(200_000) + 1j * rng.standard_normal(200_000)).reshape(400, 500)
    assert ref.envelope_snr(env) == pytest.approx(ref.RAYLEIGH_SNR, abs=0.02)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones(10), "2-D"),
        (-np.ones((8, 8)), "linear envelope"),
    ],
)
def test_measure_psf_fwhm_refuses_bad_input(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ref.measure_psf_fwhm(bad, mm_per_px_x=0.1, mm_per_px_z=0.1, x_mm=0.4, z_mm=0.4)


def test_envelope_snr_refuses_constant_and_tiny_masks() -> None:
    with pytest.raises(ValueError, match="constant"):
        ref.envelope_snr(np.ones((4, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        ref.envelope_snr(np.ones((4, 4)), np.eye(4, dtype=bool) & False)


def test_pymust_bmode_refuses_mismatched_scatterers() -> None:
    with pytest.raises(ValueError, match="same length"):
        ref.pymust_bmode([1.0, 2.0], [10.0], [1.0], rows=slice(0, 4), cols=slice(0, 4))
    with pytest.raises(ValueError, match="below the transducer"):
        ref.pymust_bmode([1.0], [-1.0], [1.0], rows=slice(0, 4), cols=slice(0, 4))
