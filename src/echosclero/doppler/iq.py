"""Velocity envelopes straight from slow-time IQ data (one complex sample per pulse for one sample volume).

The spectrogram is computed here independently of the simulator's scanner model (Hann-windowed short-time
Fourier transform), converted to dB and traced by the same :func:`~echosclero.doppler.envelope.trace_spectrum`
as a display, so that the image path and the IQ path can be checked against each other.
Velocity of a Doppler frequency: ``v = f c / (2 f0 cos(theta))`` (the Doppler equation; Evans & McDicken,
*Doppler Ultrasound*, 2nd ed., Wiley 2000, eq. 2.1).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from echosclero.doppler.envelope import SpectralTrace, trace_spectrum
from echosclero.errors import InputError

__all__ = ["spectrogram_from_iq", "trace_iq"]

#: Speed of sound assumed by scanners in soft tissue, m/s (ICRU Report 61, 1998).
SOUND_SPEED_M_S = 1540.0


def spectrogram_from_iq(
    iq: np.ndarray,
    *,
    prf_hz: float,
    f0_hz: float,
    angle_deg: float,
    s_per_col: float = 0.01,
    window_ms: float = 20.0,
    c_m_s: float = SOUND_SPEED_M_S,
    antegrade_positive_doppler: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrogram of slow-time IQ in dB, on a signed velocity axis.

    Parameters
    ----------
    iq : (n,) complex ndarray
        Slow-time samples at ``prf_hz``.
    prf_hz, f0_hz, angle_deg
        Pulse repetition frequency, transmit frequency, insonation angle (degrees, < 90).
    s_per_col
        Time step between spectra (the display's sweep speed), seconds.
    window_ms
        Analysis window length.
    antegrade_positive_doppler
        Antegrade flow gives a positive Doppler shift (flow toward the transducer); ``False`` flips.

    Returns
    -------
    power_db : (n_bins, n_cols) ndarray
    velocity_cm_s : (n_bins,) ndarray
        Signed velocity of each bin, antegrade positive.
    t_s : (n_cols,) ndarray
        Centre time of each column's window, from the first sample.
    """
    iq = np.asarray(iq)
    if iq.ndim != 1 or not np.iscomplexobj(iq):
        raise InputError(f"IQ must be a 1-D complex array (slow time), got {iq.dtype} shape {iq.shape}")
    if not (prf_hz > 0 and f0_hz > 0 and 0 <= angle_deg < 90 and s_per_col > 0 and window_ms > 0):
        raise InputError(
            f"need prf_hz > 0 ({prf_hz}), f0_hz > 0 ({f0_hz}), 0 <= angle_deg < 90 ({angle_deg}), "
            f"s_per_col > 0 ({s_per_col}), window_ms > 0 ({window_ms})"
        )
    n_win = max(16, int(round(window_ms / 1000.0 * prf_hz)))
    if iq.size < 2 * n_win:
        raise InputError(f"IQ too short: {iq.size} samples for a {n_win}-sample window")
    n_fft = max(64, int(2 ** np.ceil(np.log2(n_win))))
    hop = s_per_col * prf_hz
    half = n_win // 2
    centres = np.round(half + np.arange(int((iq.size - n_win) / hop) + 1) * hop).astype(int)
    idx = centres[None, :] + np.arange(-half, n_win - half)[:, None]
    win = signal.windows.hann(n_win, sym=False)
    spec = np.fft.fftshift(np.fft.fft(iq[idx] * win[:, None], n=n_fft, axis=0), axes=0)
    power = np.abs(spec) ** 2 / np.sum(win**2)
    freqs = np.fft.fftshift(np.fft.fftfreq(n_fft, d=1.0 / prf_hz))
    hz_per_cm_s = 2.0 * f0_hz * np.cos(np.deg2rad(angle_deg)) / c_m_s / 100.0  # Doppler equation
    velocity = freqs / hz_per_cm_s
    if not antegrade_positive_doppler:
        velocity = -velocity
    power_db = 10.0 * np.log10(np.maximum(power, 1e-30))
    return power_db, velocity, (centres - half) / prf_hz


def trace_iq(
    iq: np.ndarray,
    *,
    prf_hz: float,
    f0_hz: float,
    angle_deg: float,
    s_per_col: float = 0.01,
    window_ms: float = 20.0,
    c_m_s: float = SOUND_SPEED_M_S,
    antegrade_positive_doppler: bool = True,
    dynamic_range_db: float = 50.0,
    min_velocity_cm_s: float | None = None,
) -> SpectralTrace:
    """Trace maximum and mean velocity envelopes from slow-time IQ (see :func:`spectrogram_from_iq`).

    The dB spectrogram is limited to ``dynamic_range_db`` starting 10 dB below its median (noise) bin,
    as a display's gain and dynamic range would, and traced with
    :func:`~echosclero.doppler.envelope.trace_spectrum`. Column times are the window starts, matching a
    display whose column ``c`` is at ``c * s_per_col``.
    """
    power_db, velocity, t_s = spectrogram_from_iq(
        iq, prf_hz=prf_hz, f0_hz=f0_hz, angle_deg=angle_deg, s_per_col=s_per_col, window_ms=window_ms,
        c_m_s=c_m_s, antegrade_positive_doppler=antegrade_positive_doppler,
    )
    # like a display's gain: the noise (the median bin of a spectrogram that is mostly noise) sits 10 dB
    # above the bottom of the dynamic range
    noise_db = float(np.median(power_db))
    clipped = np.clip(power_db, noise_db - 10.0, noise_db - 10.0 + dynamic_range_db)
    return trace_spectrum(
        clipped, velocity, t_s, min_velocity_cm_s=min_velocity_cm_s, full_scale=dynamic_range_db
    )
