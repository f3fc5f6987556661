"""Reference B-mode physics with PyMUST (SIMUS + I/Q demodulation + delay-and-sum).

This is the *independent* physics against which the fast convolution simulator
(:mod:`echosclero.sim.acoustics`) is validated. It is slow (seconds per frame) and lives in
``benchmarks/``, not in the package.

Chain, per frame (Garcia, "SIMUS: an open-source simulator for medical ultrasound imaging",
Comput Methods Programs Biomed 2022; Perrot et al., "So you think you can DAS?", Ultrasonics 2021):

1. ``pymust.simus``: RF signals of the 128 elements of ``getparam('L11-5v')`` for one plane wave at 0°
   (all transmit delays 0), 2-D (no elevation focusing), no attenuation, c = 1540 m/s, fs = 4 fc;
2. ``pymust.rf2iq``: I/Q demodulation at fc, 5th-order Butterworth low-pass at (bandwidth / 2);
3. ``pymust.dasmtx``: delay-and-sum as a sparse matrix, rectangular receive aperture (no receive
   apodization) of the fast simulator's receive f-number (``Probe.l11_5v().f_number_rx``, else
   ``DEFAULT_RECEIVE_FNUMBER``), linear interpolation; built once per grid and cached;
4. envelope ``|IQ|`` on the image's pixel grid.

Coordinates: image ``x_mm`` runs from 0 at the left edge of the array aperture (the image is as wide as
the aperture, 128 x 0.3 mm = 38.4 mm), image ``z_mm`` from 0 at the transducer face. PyMUST puts x = 0 at
the centre of the array, so ``x_pymust_m = x_mm / 1000 - width_mm / 2000``.

Two traps of ``simus`` handled here (both found by measuring, see ``docs/benchmarks-psf.md``):

* the RF record length is set by the *farthest scatterer* (and shortened by ``FrequencyStep`` > 1), so a
  shallow point target gives a record too short for the receive aperture at depth: echoes on the outer
  elements are cut, which widens the lateral PSF. A zero-amplitude dummy scatterer is added so that the
  record always covers every (pixel, element) path the DAS matrix reads;
* the record length varies from call to call while the cached DAS matrix needs a fixed one: the RF is
  zero-padded or cut to the length the grid needs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pymust
import scipy.interpolate
import scipy.signal
import scipy.sparse

__all__ = [
    "DEFAULT_RECEIVE_FNUMBER",
    "FAST_OPTIONS",
    "RAYLEIGH_SNR",
    "ReferenceGrid",
    "envelope_snr",
    "lead_receive_fnumber",
    "make_param",
    "measure_psf_fwhm",
    "pymust_bmode",
    "profile_fwhm_mm",
    "pymust_envelope_on_grid",
    "spectral_axial_fwhm_mm",
    "speckle_scatterers",
]

#: Receive f-number used when the fast simulator does not expose one (Perrot et al. 2021 find 1 to 2 a
#: good range for a 7.6 MHz linear array; 1.5 is the middle).
DEFAULT_RECEIVE_FNUMBER = 1.5

#: Speed of sound in soft tissue, m/s (the value SIMUS and the fast simulator both assume).
SPEED_OF_SOUND_M_S = 1540.0

#: Fast SIMUS options (ECOSYSTEM.md). dBThresh = -20 keeps the frequencies whose one-way spectrum is within
#: 20 dB of its peak; ElementSplitting = 1 treats each 0.27 mm element as one far-field segment (the default
#: splits it in 2); FrequencyStep = 1.5 uses 1.5x fewer frequency samples (shorter RF record, see above).
FAST_OPTIONS: dict[str, Any] = {"dBThresh": -20, "ElementSplitting": 1, "FrequencyStep": 1.5}


def lead_receive_fnumber() -> float | None:
    """The receive f-number of ``echosclero.sim.acoustics.Probe.l11_5v()``, or None if unavailable."""
    try:
        from echosclero.sim.acoustics import Probe  # noqa: PLC0415 - optional, written concurrently
    except ImportError:
        return None
    probe = Probe.l11_5v()
    names = ("f_number_rx", "rx_f_number", "rx_fnumber", "receive_f_number", "receive_fnumber", "f_number")
    for name in names:
        value = getattr(probe, name, None)
        if value is not None:
            return float(value)
    return None


def make_param(probe: str = "L11-5v", *, fnumber: float | None = None) -> pymust.utils.Param:
    """PyMUST parameters of ``probe`` for the reference simulation.

    Parameters
    ----------
    probe : str
        A probe name known to ``pymust.getparam`` (``"L11-5v"``).
    fnumber : float, optional
        Receive f-number for DAS. Default: the fast simulator's (``lead_receive_fnumber``), else
        ``DEFAULT_RECEIVE_FNUMBER``.
    """
    param = pymust.getparam(probe)
    if fnumber is None:
        fnumber = lead_receive_fnumber()
    if fnumber is None:
        fnumber = DEFAULT_RECEIVE_FNUMBER
    if not (fnumber >= 0 and math.isfinite(fnumber)):
        raise ValueError(f"fnumber must be a finite number >= 0 (0 = full aperture); got {fnumber!r}")
    param.fnumber = float(fnumber)
    param.c = SPEED_OF_SOUND_M_S
    param.fs = 4 * param.fc  # SIMUS default; the minimum rf2iq accepts without aliasing
    param.attenuation = 0.0
    param.TXnow = 1  # one-cycle windowed sine (SIMUS default), stated explicitly
    param.t0 = np.zeros((1, 1))
    return param


@dataclasses.dataclass(frozen=True)
class ReferenceGrid:
    """Pixel grid of an image and the PyMUST coordinates of its pixels.

    ``x_mm = (col + origin_px) * mm_per_px_x``, ``z_mm = (row + origin_px) * mm_per_px_z``. The project's
    :class:`echosclero.frames.Calibration` puts pixel ``col`` at ``col * mm_per_px_x`` (``origin_px = 0``);
    use 0.5 for pixel centres of cells whose edges start at 0.
    """

    width_mm: float
    depth_mm: float
    rows: int
    cols: int
    origin_px: float = 0.0

    @property
    def mm_per_px_x(self) -> float:
        return self.width_mm / self.cols

    @property
    def mm_per_px_z(self) -> float:
        return self.depth_mm / self.rows

    def x_mm(self, cols: slice | None = None) -> np.ndarray:
        c = np.arange(self.cols, dtype=np.float64)[cols if cols is not None else slice(None)]
        return (c + self.origin_px) * self.mm_per_px_x

    def z_mm(self, rows: slice | None = None) -> np.ndarray:
        r = np.arange(self.rows, dtype=np.float64)[rows if rows is not None else slice(None)]
        return (r + self.origin_px) * self.mm_per_px_z


def _lead_grid_origin_px() -> float:
    """Pixel origin of ``echosclero.sim.acoustics.ImagingGrid`` (0.5: pixel centres); 0 if unavailable."""
    try:
        from echosclero.sim.acoustics import ImagingGrid  # noqa: PLC0415
    except ImportError:
        return 0.0
    grid = ImagingGrid()
    x_axis = getattr(grid, "x_mm", None)
    if x_axis is None:
        return 0.0
    values = np.asarray(x_axis() if callable(x_axis) else x_axis, dtype=np.float64).ravel()
    return float(values[0] / (grid.width_mm / grid.cols))


# --------------------------------------------------------------------------------------------------
# Simulation and beamforming
# --------------------------------------------------------------------------------------------------

_DAS_CACHE: dict[tuple, scipy.sparse.csr_matrix] = {}


def _param_key(param: pymust.utils.Param) -> tuple:
    return (
        float(param.fc),
        float(param.pitch),
        int(param.Nelements),
        float(param.bandwidth),
        float(param.fnumber),
        float(param.c),
        float(param.fs),
    )


def _element_x_m(param: pymust.utils.Param) -> np.ndarray:
    n = int(param.Nelements)
    return (np.arange(n) - (n - 1) / 2) * float(param.pitch)


def _needed_path_m(param: pymust.utils.Param, x_m: np.ndarray, z_m: float) -> float:
    """Longest transmit + receive path DAS reads for pixels at depth ``z_m`` and laterals ``x_m``."""
    xe = _element_x_m(param)
    half_aperture = (xe[-1] - xe[0]) / 2
    # plane wave at 0 deg from the whole array: TX path = z under the array, edge wave outside it
    d_tx = np.hypot(np.maximum(np.abs(x_m) - half_aperture, 0.0), z_m)
    dx = np.abs(xe[None, :] - x_m[:, None])
    d_rx = np.hypot(dx, z_m)
    if param.fnumber > 0:
        d_rx = np.where(dx <= z_m / 2 / param.fnumber, d_rx, 0.0)
    return float(np.max(d_tx + d_rx.max(axis=1)))


def _record_length(param: pymust.utils.Param, x_m: np.ndarray, z_max_m: float) -> tuple[int, float]:
    """Number of RF samples the DAS grid reads (with margin), and the matching path length in m."""
    _, tp = pymust.getpulse(param.copy(), 2)
    path = _needed_path_m(param, x_m, z_max_m) + tp[-1] * param.c
    n = int(math.ceil(path / param.c * param.fs)) + 8
    return n, path


def _das_matrix(param: pymust.utils.Param, x_m: np.ndarray, z_m: np.ndarray, n_samples: int) -> scipy.sparse.csr_matrix:
    key = (
        _param_key(param),
        n_samples,
        x_m.shape,
        round(float(x_m.min()), 12),
        round(float(x_m.max()), 12),
        round(float(z_m.min()), 12),
        round(float(z_m.max()), 12),
    )
    matrix = _DAS_CACHE.get(key)
    if matrix is None:
        delays = np.zeros((1, int(param.Nelements)))
        m = pymust.dasmtx(1j * np.array([n_samples, int(param.Nelements)]), x_m, z_m, delays, param.copy())
        matrix = m.tocsr()
        _DAS_CACHE[key] = matrix
    return matrix


def _simulate_rf(
    x_m: np.ndarray,
    z_m: np.ndarray,
    rc: np.ndarray,
    param: pymust.utils.Param,
    *,
    fast: bool,
    path_needed_m: float,
    n_samples: int,
    workers: int | None,
) -> np.ndarray:
    """RF (n_samples, Nelements) of one 0-deg plane wave, record long enough for ``path_needed_m``."""
    options = pymust.utils.Options(**FAST_OPTIONS) if fast else pymust.utils.Options()
    options.WaitBar = False
    if workers is not None and workers > 1 and x_m.size >= 4 * workers:
        options.ParPool = True
        options.setParPool(workers, "thread")
    step = float(options.get("FrequencyStep", 1.0))
    # SIMUS keeps a record of 2 * maxD / (c * FrequencyStep) s, with maxD the farthest element-scatterer
    # distance plus the pulse length: a zero-amplitude scatterer at that distance makes it long enough.
    d_dummy = step * path_needed_m / 2 + 2 * float(param.pitch)
    x_all = np.concatenate([x_m, [0.0]]).reshape(1, -1)
    z_all = np.concatenate([z_m, [d_dummy]]).reshape(1, -1)
    rc_all = np.concatenate([rc, [0.0]]).reshape(1, -1)
    delays = np.zeros((1, int(param.Nelements)))
    logger = logging.getLogger()
    previous = logger.level
    # SIMUS warns through the root logger whenever FrequencyStep > 1, with malformed arguments that make
    # logging print a traceback: silence the root logger during the call only.
    logger.setLevel(logging.ERROR)
    try:
        rf, _ = pymust.simus(x_all, z_all, rc_all, delays, param.copy(), options)
    finally:
        logger.setLevel(previous)
    rf = np.asarray(rf, dtype=np.float64)
    if rf.shape[0] >= n_samples:
        return rf[:n_samples]
    return np.pad(rf, ((0, n_samples - rf.shape[0]), (0, 0)))


def pymust_envelope_on_grid(
    x_mm: np.ndarray,
    z_mm: np.ndarray,
    amplitude: np.ndarray,
    *,
    x_grid_mm: np.ndarray,
    z_grid_mm: np.ndarray,
    width_mm: float = 38.4,
    probe: str = "L11-5v",
    fnumber: float | None = None,
    fast: bool = True,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Envelope ``|IQ|`` of a plane-wave DAS image on the rectilinear grid ``z_grid_mm x x_grid_mm``.

    Parameters
    ----------
    x_mm, z_mm, amplitude : (N,) array_like
        Scatterers, in image millimetres (x from the left edge of the aperture, z from the face), and
        their reflection coefficients.
    x_grid_mm, z_grid_mm : (C,), (R,) ndarray
        Lateral and depth pixel coordinates, image millimetres.
    timings : dict, optional
        Filled with the seconds spent in ``simus_s``, ``rf2iq_s``, ``das_build_s`` (0 when the DAS matrix
        came from the cache) and ``das_apply_s`` (beamforming + envelope).

    Returns
    -------
    envelope : (R, C) ndarray of float64
        Linear envelope, no attenuation, no TGC, no normalisation.
    """
    x_mm = np.asarray(x_mm, dtype=np.float64).ravel()
    z_mm = np.asarray(z_mm, dtype=np.float64).ravel()
    amplitude = np.asarray(amplitude, dtype=np.float64).ravel()
    if not (x_mm.shape == z_mm.shape == amplitude.shape):
        raise ValueError(
            f"x_mm, z_mm and amplitude must have the same length; got {x_mm.size}, {z_mm.size}, {amplitude.size}"
        )
    if x_mm.size == 0:
        raise ValueError("at least one scatterer is needed (pass a zero amplitude for an empty image)")
    if np.any(z_mm <= 0):
        raise ValueError(f"scatterers must lie below the transducer face (z_mm > 0); min is {z_mm.min()}")
    param = make_param(probe, fnumber=fnumber)
    x_grid_m = np.asarray(x_grid_mm, dtype=np.float64) / 1000 - width_mm / 2000
    z_grid_m = np.asarray(z_grid_mm, dtype=np.float64) / 1000
    xx, zz = np.meshgrid(x_grid_m, z_grid_m)  # (R, C)
    n_samples, path = _record_length(param, x_grid_m, float(z_grid_m.max()))
    t0 = time.perf_counter()
    rf = _simulate_rf(
        x_mm / 1000 - width_mm / 2000,
        z_mm / 1000,
        amplitude,
        param,
        fast=fast,
        path_needed_m=path,
        n_samples=n_samples,
        workers=workers,
    )
    t1 = time.perf_counter()
    iq = pymust.rf2iq(rf, param.copy())
    t2 = time.perf_counter()
    das = _das_matrix(param, xx, zz, n_samples)
    t3 = time.perf_counter()
    envelope = np.abs(das @ iq.flatten(order="F")).reshape(xx.shape, order="F")
    t4 = time.perf_counter()
    if timings is not None:
        timings.update(simus_s=t1 - t0, rf2iq_s=t2 - t1, das_build_s=t3 - t2, das_apply_s=t4 - t3)
    return envelope


def pymust_bmode(
    x_mm: np.ndarray,
    z_mm: np.ndarray,
    amplitude: np.ndarray,
    *,
    width_mm: float = 38.4,
    depth_mm: float = 40.0,
    shape: tuple[int, int] = (512, 512),
    probe: str = "L11-5v",
    fast: bool = True,
    fnumber: float | None = None,
    rows: slice | None = None,
    cols: slice | None = None,
    origin_px: float | None = None,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """PyMUST plane-wave B-mode envelope on the pixel grid of a ``shape`` image.

    Parameters
    ----------
    x_mm, z_mm, amplitude : (N,) array_like
        Scatterers (image millimetres) and reflection coefficients.
    width_mm, depth_mm, shape
        The image: ``shape = (rows, cols)`` pixels over ``width_mm x depth_mm``.
    fast : bool
        Use ``FAST_OPTIONS`` in SIMUS (measured to change the PSF FWHM by < 1 %).
    rows, cols : slice, optional
        Beamform only these rows/columns of the image (same pixel pitch): a small window around a target
        is much cheaper than the full DAS matrix.
    origin_px : float, optional
        Pixel ``col`` is at ``(col + origin_px) * width_mm / cols``. Default: the convention of
        ``echosclero.sim.acoustics.ImagingGrid`` if it exposes its axes, else 0 (``frames.Calibration``).
    workers : int, optional
        Threads for SIMUS (PyMUST's ``ParPool`` in thread mode). Default: one.
    timings : dict, optional
        Filled with per-stage seconds (see :func:`pymust_envelope_on_grid`).

    Returns
    -------
    envelope : (rows, cols) ndarray of float64
        Linear envelope ``|IQ|``.
    """
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f"shape must be (rows, cols) with positive sizes; got {shape!r}")
    if origin_px is None:
        origin_px = _lead_grid_origin_px()
    grid = ReferenceGrid(width_mm, depth_mm, int(shape[0]), int(shape[1]), origin_px)
    return pymust_envelope_on_grid(
        x_mm,
        z_mm,
        amplitude,
        x_grid_mm=grid.x_mm(cols),
        z_grid_mm=grid.z_mm(rows),
        width_mm=width_mm,
        probe=probe,
        fnumber=fnumber,
        fast=fast,
        workers=workers,
        timings=timings,
    )


def spectral_axial_fwhm_mm(probe: str = "L11-5v", *, iq_filter: bool = True) -> float:
    """Axial -6 dB width (mm) predicted from the spectra SIMUS and rf2iq use, without any simulation.

    Two-way spectrum ``S(f) = pulse(f) * probe(f)**2`` (``Param.getPulseSpectrumFunction`` and
    ``getProbeFunction``: a ``TXnow``-cycle windowed sine times the generalized-normal probe response),
    demodulated at fc and, with ``iq_filter``, multiplied by ``|H|**2`` of rf2iq's 5th-order Butterworth
    low-pass at ``bandwidth / 2`` (``filtfilt`` applies it twice). Envelope of ``∫ S(f) exp(2iπ(f-fc)t) df``
    at ``t = 2 z / c``.
    """
    param = make_param(probe)
    fc, fs = float(param.fc), float(param.fs)
    f = np.linspace(0.0, 3.0 * fc, 3001)
    w = 2 * np.pi * f
    spectrum = param.getPulseSpectrumFunction()(w) * param.getProbeFunction()(w) ** 2
    if iq_filter:
        b, a = scipy.signal.butter(5, float(param.bandwidth) / 100 * fc / fs)
        _, h = scipy.signal.freqz(b, a, worN=2 * np.pi * (f - fc) / fs)
        spectrum = spectrum * np.abs(h) ** 2
    step_mm = 0.005
    z_mm = np.arange(-100, 101) * step_mm
    t = 2 * z_mm * 1e-3 / float(param.c)
    env = np.abs(np.exp(2j * np.pi * np.outer(t, f - fc)) @ spectrum)
    return float(_fwhm_px(env, int(np.argmax(env))) * step_mm)


# --------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------


def _fwhm_px(profile: np.ndarray, peak: int, *, upsample: int = 64) -> float:
    """-6 dB full width (samples) of the lobe of ``profile`` around index ``peak``, cubic-interpolated."""
    n = profile.size
    lo, hi = max(peak - 40, 0), min(peak + 41, n)
    t = np.arange(lo, hi, dtype=np.float64)
    spline = scipy.interpolate.CubicSpline(t, profile[lo:hi])
    tf = np.linspace(lo, hi - 1, (hi - 1 - lo) * upsample + 1)
    pf = spline(tf)
    # refined maximum within one sample of the sampled peak
    near = np.abs(tf - peak) <= 1.0
    i_peak = int(np.flatnonzero(near)[np.argmax(pf[near])])
    half = pf[i_peak] / 2
    left = i_peak
    while left > 0 and pf[left] > half:
        left -= 1
    right = i_peak
    while right < pf.size - 1 and pf[right] > half:
        right += 1
    if pf[left] > half or pf[right] > half:
        raise ValueError("the -6 dB lobe is not contained in the profile (target too close to an edge?)")

    def crossing(i_out: int, i_in: int) -> float:
        p0, p1 = pf[i_out], pf[i_in]
        return tf[i_out] + (half - p0) / (p1 - p0) * (tf[i_in] - tf[i_out])

    return crossing(right, right - 1) - crossing(left, left + 1)


def profile_fwhm_mm(profile: np.ndarray, *, mm_per_px: float) -> float:
    """-6 dB full width (mm) of the main lobe of a 1-D linear-envelope profile (around its maximum)."""
    prof = np.asarray(profile, dtype=np.float64)
    if prof.ndim != 1 or prof.size < 4:
        raise ValueError(f"profile must be 1-D with at least 4 samples; got shape {prof.shape}")
    return float(_fwhm_px(prof, int(np.argmax(prof))) * mm_per_px)


def measure_psf_fwhm(
    envelope: np.ndarray,
    *,
    mm_per_px_x: float,
    mm_per_px_z: float,
    x_mm: float,
    z_mm: float,
    search_mm: float = 1.0,
    origin_px: float = 0.0,
) -> tuple[float, float]:
    """Axial and lateral -6 dB full widths (mm) of the point-spread function near ``(x_mm, z_mm)``.

    The peak is the envelope maximum within ``search_mm`` of the expected position; the axial width is
    measured along its column, the lateral width along its row. Each profile is interpolated with a cubic
    spline (1/64 pixel) and the half-maximum (linear envelope: -6 dB) crossings are located on it.

    Parameters
    ----------
    envelope : (R, C) ndarray
        Linear envelope (not log-compressed).
    mm_per_px_x, mm_per_px_z : float
        Pixel pitch laterally and in depth.
    x_mm, z_mm : float
        Expected target position; pixel ``(row, col)`` is at ``((col + origin_px) * mm_per_px_x,
        (row + origin_px) * mm_per_px_z)``.

    Returns
    -------
    axial_fwhm_mm, lateral_fwhm_mm : float
    """
    env = np.asarray(envelope, dtype=np.float64)
    if env.ndim != 2:
        raise ValueError(f"envelope must be 2-D (rows, cols); got shape {env.shape}")
    if np.any(env < 0):
        raise ValueError("envelope must be the linear envelope (>= 0), not log-compressed or RF")
    col0 = x_mm / mm_per_px_x - origin_px
    row0 = z_mm / mm_per_px_z - origin_px
    r_lo = max(int(math.floor(row0 - search_mm / mm_per_px_z)), 0)
    r_hi = min(int(math.ceil(row0 + search_mm / mm_per_px_z)) + 1, env.shape[0])
    c_lo = max(int(math.floor(col0 - search_mm / mm_per_px_x)), 0)
    c_hi = min(int(math.ceil(col0 + search_mm / mm_per_px_x)) + 1, env.shape[1])
    if r_lo >= r_hi or c_lo >= c_hi:
        raise ValueError(f"target ({x_mm} mm, {z_mm} mm) lies outside the envelope of shape {env.shape}")
    window = env[r_lo:r_hi, c_lo:c_hi]
    r, c = np.unravel_index(int(np.argmax(window)), window.shape)
    r, c = r + r_lo, c + c_lo
    axial = _fwhm_px(env[:, c], r) * mm_per_px_z
    lateral = _fwhm_px(env[r, :], c) * mm_per_px_x
    return float(axial), float(lateral)


def envelope_snr(envelope: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Envelope signal-to-noise ratio mean / std of the *linear* envelope within ``mask``.

    Fully developed speckle has a Rayleigh envelope: SNR = sqrt(pi / (4 - pi)) = 1.913 (Wagner et al.,
    "Statistics of speckle in ultrasound B-scans", IEEE Trans Sonics Ultrason 1983;30:156-163).
    """
    env = np.asarray(envelope, dtype=np.float64)
    values = env[np.asarray(mask, dtype=bool)] if mask is not None else env.ravel()
    if values.size < 2:
        raise ValueError(f"the mask selects {values.size} pixel(s); at least 2 are needed")
    std = float(values.std())
    if std == 0:
        raise ValueError("the envelope is constant within the mask: SNR is undefined")
    return float(values.mean() / std)


#: sqrt(pi / (4 - pi)): envelope SNR of fully developed speckle (Rayleigh), Wagner et al. 1983.
RAYLEIGH_SNR = math.sqrt(math.pi / (4 - math.pi))


def speckle_scatterers(
    n: int,
    *,
    x_range_mm: Sequence[float],
    z_range_mm: Sequence[float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` uniformly placed scatterers with Gaussian reflection coefficients (one seeded generator)."""
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    x = rng.uniform(x_range_mm[0], x_range_mm[1], n)
    z = rng.uniform(z_range_mm[0], z_range_mm[1], n)
    a = rng.standard_normal(n)
    return x, z, a
