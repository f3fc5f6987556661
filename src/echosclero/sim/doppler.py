"""Spectral Doppler simulation: slow-time IQ of one sample volume, a scanner's spectrogram, its grey display.

The chain follows what a duplex scanner does for a vein reflux test (distal compression, then release):

1. :func:`reflux_velocity_waveform` — the true axial velocity of the blood in the sample volume over time,
   antegrade (toward the heart) positive: a quiet baseline, an antegrade surge while the calf is squeezed,
   then, on release, retrograde flow lasting exactly ``reflux_ms`` (zero for a competent vein).
2. :func:`simulate_doppler_iq` — the slow-time complex (IQ) signal of that sample volume at the pulse
   repetition frequency: many scatterer groups with velocities spread below the maximum (the velocity
   profile across the sample volume), each with an amplitude that decorrelates as blood moves through the
   sample volume (Doppler speckle), plus strong slow tissue clutter, a wall (high-pass) filter and white
   noise. The Doppler shift of each group is ``f_d = 2 f0 v cos(theta) / c`` (the Doppler equation; e.g.
   Evans & McDicken, *Doppler Ultrasound*, 2nd ed., Wiley 2000, eq. 2.1).
3. :func:`doppler_spectrogram` — the scanner's short-time Fourier transform (Hann window), one spectrum per
   display column.
4. :func:`render_spectral_display` — log compression with gain and dynamic range into a uint8 grey (or
   tinted RGB) image, baseline shifted anywhere (the spectrum wraps around as on a scanner), a baseline
   line drawn across, and the :class:`~echosclero.frames.SpectralCalibration` a DICOM ultrasound region
   would carry (with either vendor sign of ``PhysicalDeltaY``).

:func:`simulate_spectral_display` runs the whole chain and returns the display with its ground truth.

Physical constants: speed of sound in soft tissue 1540 m/s (the value scanners assume; ICRU Report 61,
1998). The Nyquist velocity of the display is ``c * PRF / (4 * f0 * cos(theta))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import signal

from echosclero.errors import InputError
from echosclero.frames import SpectralCalibration

__all__ = [
    "SOUND_SPEED_M_S",
    "SpectralDisplay",
    "SpectralTruth",
    "doppler_spectrogram",
    "nyquist_velocity_cm_s",
    "reflux_velocity_waveform",
    "render_spectral_display",
    "simulate_doppler_iq",
    "simulate_spectral_display",
]

#: Speed of sound assumed by scanners in soft tissue, m/s (ICRU Report 61, 1998).
SOUND_SPEED_M_S = 1540.0


def nyquist_velocity_cm_s(*, prf_hz: float, f0_hz: float, angle_deg: float,
                          c_m_s: float = SOUND_SPEED_M_S) -> float:
    """Largest unaliased velocity, ``c * PRF / (4 f0 cos(theta))``, in cm/s (Doppler equation at f = PRF/2)."""
    if not (0 <= angle_deg < 89):
        raise InputError(f"angle_deg={angle_deg} must be in [0, 89) degrees (beam to vessel)")
    cos_theta = np.cos(np.deg2rad(angle_deg))
    return float(c_m_s * prf_hz / (4.0 * f0_hz * cos_theta) * 100.0)


def _doppler_hz_per_cm_s(*, f0_hz: float, angle_deg: float, c_m_s: float) -> float:
    """Doppler shift per cm/s of axial blood velocity: ``2 f0 cos(theta) / c`` (Doppler equation)."""
    return 2.0 * f0_hz * float(np.cos(np.deg2rad(angle_deg))) / c_m_s / 100.0


# --------------------------------------------------------------------------------------------------------
# 1. velocity waveform
# --------------------------------------------------------------------------------------------------------


def _raised_cosine_ramp(x: np.ndarray) -> np.ndarray:
    """0 for x <= 0, 1 for x >= 1, a raised cosine in between."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


@dataclass(frozen=True, slots=True)
class RefluxTimeline:
    """Event times of one compression-release manoeuvre, in seconds on the display's time axis."""

    augmentation_start_s: float
    release_s: float
    reflux_start_s: float
    reflux_end_s: float


def reflux_velocity_waveform(
    t_s: np.ndarray,
    *,
    reflux_ms: float,
    peak_antegrade_cm_s: float,
    peak_reflux_cm_s: float,
    augmentation_start_s: float = 0.6,
    augmentation_s: float = 0.9,
    reflux_delay_s: float = 0.03,
    baseline_flow_cm_s: float = 0.0,
) -> tuple[np.ndarray, RefluxTimeline]:
    """True maximum velocity in the sample volume during a compression-release reflux test.

    Parameters
    ----------
    t_s : (n,) ndarray
        Times in seconds.
    reflux_ms
        Duration of the retrograde flow after release, ms (0: competent vein, no retrograde flow).
    peak_antegrade_cm_s, peak_reflux_cm_s
        Peak speeds of the antegrade surge and of the retrograde flow, cm/s (both positive numbers).
    augmentation_start_s, augmentation_s
        When the distal compression starts and how long the antegrade surge lasts (release at the end).
    reflux_delay_s
        Time from release to the start of retrograde flow (flow reversal).
    baseline_flow_cm_s
        Steady antegrade flow before the compression (0 for a standing patient's quiet vein).

    Returns
    -------
    velocity_cm_s : (n,) ndarray
        Signed velocity, antegrade (toward the heart) positive.
    timeline : RefluxTimeline
        The event times; retrograde flow is exactly ``[reflux_start_s, reflux_end_s)``.
    """
    t = np.asarray(t_s, dtype=float)
    if reflux_ms < 0 or peak_antegrade_cm_s <= 0 or peak_reflux_cm_s < 0:
        raise InputError(
            f"reflux_ms ({reflux_ms}) and peak_reflux_cm_s ({peak_reflux_cm_s}) must be >= 0 and "
            f"peak_antegrade_cm_s ({peak_antegrade_cm_s}) > 0"
        )
    t_aug, t_rel = augmentation_start_s, augmentation_start_s + augmentation_s
    # antegrade surge: fast rise (120 ms), emptying decay while squeezed, stop within 60 ms of release
    rise = _raised_cosine_ramp((t - t_aug) / 0.12)
    fall = 1.0 - _raised_cosine_ramp((t - (t_rel - 0.06)) / 0.06)
    decay = np.exp(-np.clip(t - t_aug - 0.12, 0.0, None) / 0.6)
    surge = rise * fall * decay
    surge /= max(surge.max(), 1e-12)
    v = peak_antegrade_cm_s * surge
    before = t < t_aug
    v[before] += baseline_flow_cm_s
    v[~before] += baseline_flow_cm_s * (1 - _raised_cosine_ramp((t[~before] - t_aug) / 0.12))

    t0 = t_rel + reflux_delay_s
    duration_s = reflux_ms / 1000.0
    timeline = RefluxTimeline(t_aug, t_rel, t0, t0 + duration_s)
    if duration_s > 0 and peak_reflux_cm_s > 0:
        tau = t - t0
        inside = (tau >= 0) & (tau < duration_s)
        up_s = min(0.05, duration_s / 3)  # valve-free reversal: steep onset
        down_s = min(0.08, duration_s / 3)  # valve closure ends it
        up = _raised_cosine_ramp(tau / up_s)
        down = 1.0 - _raised_cosine_ramp((tau - (duration_s - down_s)) / down_s)
        # the column of blood decelerates: about 40 % of the peak remains near the end
        body = np.exp(-np.clip(tau - up_s, 0.0, None) / max(duration_s / np.log(2.5), 1e-3))
        shape = np.where(inside, up * down * body, 0.0)
        peak = shape.max() if shape.size else 0.0
        if peak > 0:
            v = v - peak_reflux_cm_s * shape / peak
    return v, timeline


# --------------------------------------------------------------------------------------------------------
# 2. slow-time IQ
# --------------------------------------------------------------------------------------------------------


def simulate_doppler_iq(velocity_cm_s: np.ndarray, **kwargs) -> np.ndarray:
    """Slow-time IQ signal of one PW sample volume (one complex sample per transmitted pulse).

    See :func:`_doppler_iq_and_fastest` for the parameters; this returns the IQ only.
    """
    return _doppler_iq_and_fastest(velocity_cm_s, **kwargs)[0]


def _doppler_iq_and_fastest(
    velocity_cm_s: np.ndarray,
    *,
    prf_hz: float,
    f0_hz: float,
    angle_deg: float,
    rng: np.random.Generator,
    velocity_spread: float = 0.5,
    snr_db: float = 12.0,
    clutter_db: float = 30.0,
    wall_filter_cm_s: float = 2.5,
    n_scatterer_groups: int = 48,
    sample_volume_mm: float = 4.0,
    c_m_s: float = SOUND_SPEED_M_S,
) -> tuple[np.ndarray, float]:
    """Slow-time IQ of one PW sample volume, and the speed of its fastest scatterers as a fraction of the maximum.

    Parameters
    ----------
    velocity_cm_s : (n,) ndarray
        The maximum axial blood velocity at each pulse (signed, positive toward the transducer's
        positive Doppler shift, i.e. antegrade in our convention).
    prf_hz, f0_hz, angle_deg
        Pulse repetition frequency, transmit centre frequency and insonation angle (beam to vessel).
    rng
        Random generator (amplitudes, noise); the result is a pure function of its state.
    velocity_spread
        Fraction of the maximum covered by the velocity profile: groups move at ``v * (1 - spread * u)``,
        ``u`` uniform in [0, 1] (0: plug flow; 1: a parabolic profile sampled across the whole lumen).
    snr_db
        Blood signal power over white noise power (whole band), dB.
    clutter_db
        Slow tissue clutter power over blood power before the wall filter, dB.
    wall_filter_cm_s
        Cut-off of the scanner's high-pass wall filter, expressed as a velocity, cm/s.
    n_scatterer_groups
        Number of independent scatterer groups (more: smoother velocity distribution).
    sample_volume_mm
        Sample volume length along the flow, which sets how fast the Doppler speckle decorrelates
        (transit time ``L / |v|``).

    Returns
    -------
    iq : (n,) complex128 ndarray
    fastest_fraction : float
        Speed of the fastest scatterer group over ``velocity_cm_s`` (the groups move at a fraction of it; the
        fastest is the clinical peak velocity, see :class:`SpectralTruth`).
    """
    v = np.asarray(velocity_cm_s, dtype=float)
    if v.ndim != 1 or v.size < 16:
        raise InputError(f"velocity_cm_s must be a 1-D waveform of >= 16 pulses, got shape {v.shape}")
    if not (0.0 <= velocity_spread <= 1.0):
        raise InputError(f"velocity_spread={velocity_spread} must be within [0, 1]")
    if prf_hz <= 0 or f0_hz <= 0:
        raise InputError(f"prf_hz ({prf_hz}) and f0_hz ({f0_hz}) must be positive")
    n = v.size
    k_hz = _doppler_hz_per_cm_s(f0_hz=f0_hz, angle_deg=angle_deg, c_m_s=c_m_s)
    fractions = 1.0 - velocity_spread * rng.uniform(0.0, 1.0, size=n_scatterer_groups)
    # phase of each group: integral of its Doppler frequency (time-varying velocity)
    f_hz = k_hz * fractions[:, None] * v[None, :]
    phase = 2.0 * np.pi * np.cumsum(f_hz, axis=1) / prf_hz
    phase += rng.uniform(0, 2 * np.pi, size=(n_scatterer_groups, 1))
    # Doppler speckle: each group's amplitude is a complex Gaussian process that decorrelates as blood
    # crosses the sample volume. Its clock is the number of transit times elapsed, integral(|v| / L) dt,
    # sampled on a grid of a quarter transit and smoothed over about half a transit.
    speed_mm_s = np.maximum(np.abs(v) * 10.0, 2.0)
    transits = np.cumsum(speed_mm_s / sample_volume_mm) / prf_hz
    step = 0.25
    warp_idx = transits / step
    n_coarse = int(np.ceil(warp_idx[-1])) + 20
    coarse = (rng.standard_normal((n_scatterer_groups, n_coarse))
              + 1j * rng.standard_normal((n_scatterer_groups, n_coarse)))
    sigma = 2.0
    kernel = np.exp(-0.5 * (np.arange(-8, 9) / sigma) ** 2)
    kernel /= np.sqrt(2.0 * np.sum(kernel**2))  # unit mean power per group
    coarse = signal.fftconvolve(coarse, kernel[None, :], mode="same", axes=1)
    i0 = np.minimum(np.floor(warp_idx).astype(int) + 10, n_coarse - 2)
    frac = (warp_idx - np.floor(warp_idx))[None, :]
    amp = coarse[:, i0] * (1 - frac) + coarse[:, i0 + 1] * frac
    blood = np.sum(amp * np.exp(1j * phase), axis=0) / np.sqrt(n_scatterer_groups)
    # clutter: strong, nearly stationary tissue echo with slow motion (a few mm/s)
    t = np.arange(n) / prf_hz
    clutter_v_cm_s = 0.3 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
    clutter_phase = 2 * np.pi * np.cumsum(k_hz * clutter_v_cm_s) / prf_hz
    clutter = 10 ** (clutter_db / 20.0) * np.exp(1j * clutter_phase)
    noise = 10 ** (-snr_db / 20.0) * (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)
    iq = blood + clutter + noise
    if wall_filter_cm_s > 0:
        cutoff_hz = wall_filter_cm_s * k_hz
        wn = min(cutoff_hz / (prf_hz / 2.0), 0.5)
        sos = signal.butter(4, wn, btype="highpass", output="sos")
        iq = signal.sosfiltfilt(sos, iq.real) + 1j * signal.sosfiltfilt(sos, iq.imag)
    return iq, float(fractions.max())


# --------------------------------------------------------------------------------------------------------
# 3. spectrogram
# --------------------------------------------------------------------------------------------------------


def doppler_spectrogram(
    iq: np.ndarray,
    *,
    prf_hz: float,
    hop_samples: int,
    window_samples: int = 128,
    n_fft: int = 128,
    start_sample: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Short-time power spectrum of slow-time IQ, as a scanner computes it (Hann window).

    Returns
    -------
    power : (n_fft, n_columns) ndarray
        Power per frequency bin (``fftshift`` order: most negative frequency first) and column.
    freqs_hz : (n_fft,) ndarray
        Bin frequencies, -PRF/2 .. PRF/2.
    centres : (n_columns,) ndarray
        Sample index at the centre of each column's window.
    """
    iq = np.asarray(iq)
    centres = np.arange(start_sample + window_samples // 2, iq.size - window_samples // 2, hop_samples)
    idx = centres[None, :] + np.arange(-(window_samples // 2), window_samples - window_samples // 2)[:, None]
    win = signal.windows.hann(window_samples, sym=False)
    segs = iq[idx] * win[:, None]
    spec = np.fft.fftshift(np.fft.fft(segs, n=n_fft, axis=0), axes=0)
    power = (np.abs(spec) ** 2) / np.sum(win**2)
    freqs = np.fft.fftshift(np.fft.fftfreq(n_fft, d=1.0 / prf_hz))
    return power, freqs, centres


# --------------------------------------------------------------------------------------------------------
# 4. display
# --------------------------------------------------------------------------------------------------------


def render_spectral_display(
    power: np.ndarray,
    freqs_hz: np.ndarray,
    *,
    prf_hz: float,
    hz_per_cm_s: float,
    n_rows: int,
    baseline_fraction: float,
    noise_power: float,
    gain_db: float = 6.0,
    dynamic_range_db: float = 40.0,
    antegrade_above: bool = True,
    draw_baseline: bool = True,
    tint_rgb: tuple[float, float, float] | None = None,
) -> tuple[np.ndarray, float, float]:
    """Log-compress a spectrogram into a scanner's display (velocity up/down, time across).

    Row ``r`` shows the velocity ``(baseline_row - r) * dv`` on the *displayed* axis (upper side positive);
    the spectrum is read with wrap-around, so a shifted baseline shows more of one direction exactly like
    a scanner's baseline shift. The grey level is
    ``(10 log10(P / noise_power) + gain_db) / dynamic_range_db`` clipped to [0, 1]: mean noise sits at
    ``gain_db / dynamic_range_db`` of full scale.

    Returns
    -------
    pixels : (n_rows, n_cols) or (n_rows, n_cols, 3) uint8 ndarray
    baseline_row : float
    cm_s_per_row : float
        Positive velocity step per row (the display's full height spans ``PRF / hz_per_cm_s``).
    """
    if not (0.05 <= baseline_fraction <= 0.95):
        raise InputError(f"baseline_fraction={baseline_fraction} must be within [0.05, 0.95] of the height")
    span_cm_s = prf_hz / hz_per_cm_s
    dv = span_cm_s / n_rows
    baseline_row = baseline_fraction * n_rows
    rows = np.arange(n_rows)
    v_up = (baseline_row - rows) * dv  # upper side positive
    v_flow = v_up if antegrade_above else -v_up
    f = v_flow * hz_per_cm_s
    f_wrapped = (f + prf_hz / 2) % prf_hz - prf_hz / 2
    # periodic linear interpolation over the bins
    df = freqs_hz[1] - freqs_hz[0]
    pos = (f_wrapped - freqs_hz[0]) / df
    i0 = np.floor(pos).astype(int) % power.shape[0]
    i1 = (i0 + 1) % power.shape[0]
    w = (pos - np.floor(pos))[:, None]
    p = power[i0] * (1 - w) + power[i1] * w
    db = 10.0 * np.log10(np.maximum(p, 1e-30) / noise_power)
    grey = np.clip((db + gain_db) / dynamic_range_db, 0.0, 1.0)
    if draw_baseline:
        b = int(round(baseline_row))
        if 0 <= b < n_rows:
            grey[b, :] = np.maximum(grey[b, :], 0.55)
    if tint_rgb is not None:
        rgb = grey[..., None] * np.asarray(tint_rgb, dtype=float)[None, None, :]
        pixels = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    else:
        pixels = np.round(grey * 255).astype(np.uint8)
    return pixels, float(baseline_row), float(dv)


# --------------------------------------------------------------------------------------------------------
# the whole chain
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class SpectralTruth:
    """Ground truth of a simulated reflux test, on the display's time axis (column ``c`` at ``c * s_per_px``).

    ``envelope_cm_s`` is the true maximum velocity per display column (signed, antegrade positive),
    averaged over the column's analysis window; ``velocity_cm_s`` is the instantaneous waveform at the
    column times.

    ``peak_antegrade_cm_s`` and ``peak_reflux_cm_s`` are the clinical peak velocities: the largest
    instantaneous speed of the fastest scatterers in the sample volume (the maximum of the maximum-velocity
    envelope of the flow, without the display's spectral broadening). The scatterer groups move at
    ``v * (1 - spread * u)``, ``u`` uniform, so the fastest group runs slightly below the waveform's maximum
    (by ``spread * min(u)`` of it, about ``spread / 49`` with 48 groups); the truth is that group's speed.
    """

    reflux_ms: float
    reflux_start_s: float
    reflux_end_s: float
    release_s: float
    augmentation_start_s: float
    peak_antegrade_cm_s: float
    peak_reflux_cm_s: float
    t_s: np.ndarray
    velocity_cm_s: np.ndarray
    envelope_cm_s: np.ndarray
    nyquist_cm_s: float

    def to_json(self) -> dict:
        return {
            "reflux_ms": self.reflux_ms,
            "reflux_start_s": self.reflux_start_s,
            "reflux_end_s": self.reflux_end_s,
            "release_s": self.release_s,
            "augmentation_start_s": self.augmentation_start_s,
            "peak_antegrade_velocity_cm_s": self.peak_antegrade_cm_s,
            "peak_reflux_velocity_cm_s": self.peak_reflux_cm_s,
            "trace": [[float(t), float(v)] for t, v in zip(self.t_s, self.envelope_cm_s, strict=True)],
        }


@dataclass(frozen=True, slots=True, eq=False)
class SpectralDisplay:
    """A simulated spectral Doppler display region with its calibration and ground truth.

    ``pixels`` is exactly the region a DICOM ultrasound region (PW) would delimit: (rows, cols) uint8, or
    (rows, cols, 3) uint8 when tinted. ``calibration.cm_s_per_px`` carries the vendor sign chosen.
    ``iq`` is the slow-time signal the display was computed from (after the wall filter), starting at
    :attr:`iq_start_s` on the display's time axis.
    """

    pixels: np.ndarray
    calibration: SpectralCalibration
    truth: SpectralTruth
    antegrade_above: bool
    prf_hz: float
    f0_hz: float
    angle_deg: float
    iq: np.ndarray | None = None
    window_ms: float = 20.0

    @property
    def iq_start_s(self) -> float:
        """Display time of the first IQ sample (half an analysis window before column 0)."""
        return -(max(16, int(round(self.window_ms / 1000.0 * self.prf_hz))) // 2) / self.prf_hz


def simulate_spectral_display(
    *,
    reflux_ms: float,
    peak_antegrade_cm_s: float,
    peak_reflux_cm_s: float,
    rng: np.random.Generator,
    prf_hz: float = 4000.0,
    f0_hz: float = 5.0e6,
    angle_deg: float = 60.0,
    sweep_s: float | None = None,
    n_rows: int = 200,
    n_cols: int | None = None,
    s_per_px: float = 0.01,
    baseline_fraction: float = 0.6,
    antegrade_above: bool = True,
    vendor_delta_y_sign: Literal[-1, 1] = -1,
    velocity_spread: float = 0.5,
    snr_db: float = 12.0,
    clutter_db: float = 30.0,
    wall_filter_cm_s: float = 2.5,
    gain_db: float = 6.0,
    dynamic_range_db: float = 40.0,
    window_ms: float = 20.0,
    augmentation_start_s: float = 0.6,
    augmentation_s: float = 0.9,
    baseline_flow_cm_s: float = 0.0,
    draw_baseline: bool = True,
    tint_rgb: tuple[float, float, float] | None = None,
) -> SpectralDisplay:
    """Simulate a scanner's spectral Doppler display of a compression-release reflux test.

    Parameters
    ----------
    reflux_ms
        True duration of retrograde flow after release, ms (0 for a competent vein).
    peak_antegrade_cm_s, peak_reflux_cm_s
        Peak speeds of the antegrade augmentation and of the reflux, cm/s.
    rng
        The random generator; the display is a pure function of its state and the parameters.
    prf_hz, f0_hz, angle_deg
        Pulse repetition frequency, Doppler transmit frequency, insonation angle. Together they fix the
        velocity scale: the display spans ``2 * c * PRF / (4 f0 cos(theta))`` top to bottom.
    sweep_s
        Time shown across the display; default: long enough for the manoeuvre plus 0.8 s (at least 4 s).
    n_rows, n_cols, s_per_px
        Display size in pixels and sweep speed (seconds per column); ``n_cols`` defaults to
        ``sweep_s / s_per_px``.
    baseline_fraction
        Position of the zero-velocity line from the top, as a fraction of the height.
    antegrade_above
        Flow toward the heart shown above the baseline (the usual default) or below (inverted display).
    vendor_delta_y_sign
        Sign written for the velocity step per row going down (vendors differ); the display is the same.
    velocity_spread, snr_db, clutter_db, wall_filter_cm_s
        See :func:`simulate_doppler_iq`.
    gain_db, dynamic_range_db
        Display gain and dynamic range (see :func:`render_spectral_display`).
    window_ms
        Length of the scanner's spectral analysis window.
    augmentation_start_s, augmentation_s, baseline_flow_cm_s
        See :func:`reflux_velocity_waveform`.
    draw_baseline, tint_rgb
        Draw the baseline line; colour the grey map (e.g. ``(1.0, 0.85, 0.6)``) to give an RGB display.

    Returns
    -------
    SpectralDisplay
    """
    if reflux_ms > 8000 or reflux_ms < 0:
        raise InputError(f"reflux_ms={reflux_ms} must be within [0, 8000] ms")
    if s_per_px <= 0:
        raise InputError(f"s_per_px={s_per_px} must be positive")
    nyquist_cm_s = nyquist_velocity_cm_s(prf_hz=prf_hz, f0_hz=f0_hz, angle_deg=angle_deg)  # checks the angle
    needed_s = augmentation_start_s + augmentation_s + 0.03 + reflux_ms / 1000.0 + 0.8
    if sweep_s is None:
        sweep_s = max(4.0, needed_s) if n_cols is None else n_cols * s_per_px
    if n_cols is None:
        n_cols = int(round(sweep_s / s_per_px))
    hz_per_cm_s = _doppler_hz_per_cm_s(f0_hz=f0_hz, angle_deg=angle_deg, c_m_s=SOUND_SPEED_M_S)
    window_samples = max(16, int(round(window_ms / 1000.0 * prf_hz)))
    n_fft = max(64, int(2 ** np.ceil(np.log2(window_samples))))
    hop = s_per_px * prf_hz
    # IQ timeline starts half a window before display column 0 (whose window is centred at t = 0)
    pad = window_samples // 2
    n_pulses = int(np.ceil(n_cols * hop)) + window_samples + 1
    t_iq_s = (np.arange(n_pulses) - pad) / prf_hz
    v_iq, timeline = reflux_velocity_waveform(
        t_iq_s,
        reflux_ms=reflux_ms,
        peak_antegrade_cm_s=peak_antegrade_cm_s,
        peak_reflux_cm_s=peak_reflux_cm_s,
        augmentation_start_s=augmentation_start_s,
        augmentation_s=augmentation_s,
        baseline_flow_cm_s=baseline_flow_cm_s,
    )
    iq, fastest_fraction = _doppler_iq_and_fastest(
        v_iq,
        prf_hz=prf_hz,
        f0_hz=f0_hz,
        angle_deg=angle_deg,
        rng=rng,
        velocity_spread=velocity_spread,
        snr_db=snr_db,
        clutter_db=clutter_db,
        wall_filter_cm_s=wall_filter_cm_s,
    )
    # columns: window centred on pulse pad + round(c * hop)
    centres = pad + np.round(np.arange(n_cols) * hop).astype(int)
    idx = centres[None, :] + np.arange(-(window_samples // 2), window_samples - window_samples // 2)[:, None]
    win = signal.windows.hann(window_samples, sym=False)
    spec = np.fft.fftshift(np.fft.fft(iq[idx] * win[:, None], n=n_fft, axis=0), axes=0)
    power = np.abs(spec) ** 2 / np.sum(win**2)
    freqs = np.fft.fftshift(np.fft.fftfreq(n_fft, d=1.0 / prf_hz))
    noise_power = 10 ** (-snr_db / 10.0)  # white noise per bin after the window-energy normalisation
    pixels, baseline_row, dv = render_spectral_display(
        power,
        freqs,
        prf_hz=prf_hz,
        hz_per_cm_s=hz_per_cm_s,
        n_rows=n_rows,
        baseline_fraction=baseline_fraction,
        noise_power=noise_power,
        gain_db=gain_db,
        dynamic_range_db=dynamic_range_db,
        antegrade_above=antegrade_above,
        draw_baseline=draw_baseline,
        tint_rgb=tint_rgb,
    )
    calibration = SpectralCalibration(
        s_per_px=float(s_per_px),
        cm_s_per_px=float(vendor_delta_y_sign) * dv,
        baseline_row=baseline_row,
        source="simulator",
        doppler_kind="PW",
    )
    t_cols = np.arange(n_cols) * s_per_px
    v_cols = v_iq[centres]
    # window-averaged envelope (what an ideal tracer could see at each column)
    env = np.sum(v_iq[idx] * win[:, None], axis=0) / np.sum(win)
    truth = SpectralTruth(
        reflux_ms=float(reflux_ms) if peak_reflux_cm_s > 0 else 0.0,
        reflux_start_s=timeline.reflux_start_s,
        reflux_end_s=timeline.reflux_end_s,
        release_s=timeline.release_s,
        augmentation_start_s=timeline.augmentation_start_s,
        # the clinical peak velocity: the fastest scatterers' (the fastest group moves at fastest_fraction of
        # the waveform's maximum; before issue 15 the truth was the maximum itself, which no scatterer reached)
        peak_antegrade_cm_s=float(peak_antegrade_cm_s) * fastest_fraction,
        peak_reflux_cm_s=float(peak_reflux_cm_s) * fastest_fraction if reflux_ms > 0 else 0.0,
        t_s=t_cols,
        velocity_cm_s=v_cols,
        envelope_cm_s=env,
        nyquist_cm_s=nyquist_cm_s,
    )
    return SpectralDisplay(
        pixels=pixels,
        calibration=calibration,
        truth=truth,
        antegrade_above=antegrade_above,
        prf_hz=float(prf_hz),
        f0_hz=float(f0_hz),
        angle_deg=float(angle_deg),
        iq=iq,
        window_ms=float(window_ms),
    )
