"""An independent spectral Doppler model: moving scatterers through a 3-D sample volume, a scanner's STFT,
vendor-like screens written as DICOM with a spectral ultrasound region.

Written apart from :mod:`echosclero.sim.doppler` (it shares no code or parameters with it) so that the
reflux tracer can be checked on displays made another way. Only the DICOM writer of the package is used,
to put the screen into a file the command line reads.

Physics (pulsed-wave Doppler of one range gate, e.g. Jensen, *Estimation of Blood Velocities Using
Ultrasound*, Cambridge University Press 1996, ch. 4-5):

* the vessel is a cylinder of radius ``R`` along ``x``; blood moves along ``x`` with the profile
  ``v(r, t) = v_max(t) * (1 - (r / R) ** n)`` (``n = 2``: parabolic; larger ``n``: blunted towards plug flow);
* the beam makes the angle ``theta`` with the vessel; the sample volume is a 3-D Gaussian weight (gate
  length along the beam, beam width across it and in elevation) centred on the axis;
* a few hundred point scatterers on fixed streamlines cross the sample volume; each one that leaves is
  replaced, on the same streamline, by a new one with a random amplitude and phase. The slow-time signal
  is ``sum_k a_k W(p_k(t)) exp(j 4 pi f0 u_k(t) / c)`` with ``u`` the coordinate along the beam: the
  Doppler shift ``2 f0 v cos(theta) / c`` and the transit-time broadening (finite time in the sample
  volume) and geometric broadening come out of the sum, nothing is imposed on the spectrum;
* tissue clutter (slow wall motion, 10-30 dB above blood), a wall filter (IIR Butterworth of order 2 or
  4, or a Chebyshev type II of order 4, applied causally as a scanner does), complex white noise at a given SNR;
* the scanner's spectrum: windowed FFT (Hann, Hamming, Blackman or Gaussian window, 8-32 ms), optional
  averaging of neighbouring spectra, log compression with a gain, a dynamic range and a grey map
  (gamma, reject level), grey or tinted RGB, the baseline anywhere (wrap-around as on a scanner), either
  side up, display rows resampled from the FFT bins.

The screen: a black 600 x 800 or 768 x 1024 screen with a B-mode box, header text, the velocity scale
with tick marks and numbers beside the spectrum, the time axis below it, a parameter block, a coloured
baseline line and tick marks at the spectrum's edge; the DICOM holds a tissue region and a PW region.

Truth: the centre-line velocity ``v_max(t)``; the reflux lasts exactly the time it is negative after
release.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

C_M_S = 1540.0  # speed of sound assumed by scanners (ICRU Report 61, 1998)


@dataclass
class ModelCase:
    """All parameters of one display of the independent model (drawn by :func:`draw_model_case`)."""

    reflux_ms: float
    peak_antegrade_cm_s: float
    peak_reflux_cm_s: float
    reflux_shape: str  # "decay", "plateau", "linear"
    end_fraction: float  # speed left just before valve closure, as a fraction of the peak reflux
    closure_ms: float  # valve closure: fall from end_fraction * peak to 0
    augmentation_start_s: float
    augmentation_s: float
    release_delay_ms: float
    resting_flow_cm_s: float
    f0_hz: float
    angle_deg: float
    prf_hz: float
    vessel_radius_mm: float
    profile_n: float
    gate_mm: float
    beam_width_mm: float
    n_scatterers: int
    snr_db: float
    clutter_db: float
    wall_filter: str  # "butter2", "butter4", "cheby2"
    wall_cutoff_hz: float
    window: str
    window_ms: float
    n_fft: int
    average_spectra: int
    s_per_col: float
    n_rows: int
    baseline_fraction: float
    antegrade_above: bool
    gain_db: float
    dynamic_range_db: float
    gamma: float
    reject: float
    tint: tuple[float, float, float] | None
    layout: str  # "wide", "duplex"
    sweep_s: float
    seed: int

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["tint"] = None if self.tint is None else list(self.tint)
        return d


def nyquist_cm_s(prf_hz: float, f0_hz: float, angle_deg: float) -> float:
    return C_M_S * prf_hz / (4 * f0_hz * np.cos(np.deg2rad(angle_deg))) * 100.0


def draw_model_case(rng: np.random.Generator, i: int, *, window_ms: float | None = None) -> ModelCase:
    """Parameters of case ``i``: a tenth competent, 40 % near the 500 / 1000 ms cut-offs, the rest 0.1-3.5 s."""
    kind = i % 10
    if kind == 0:
        reflux_ms = 0.0
    elif kind in (1, 2, 3, 4):
        reflux_ms = float(rng.uniform(300, 1300))
    else:
        reflux_ms = float(rng.uniform(100, 3500))
    peak_a = float(rng.uniform(10, 70))
    peak_r = float(rng.uniform(8, 50))
    f0 = float(rng.choice([3.0e6, 4.0e6, 5.0e6, 6.25e6]))
    angle = float(rng.uniform(40, 65))
    baseline_fraction = float(rng.uniform(0.25, 0.75))
    antegrade_above = bool(rng.random() < 0.75)
    up = baseline_fraction if antegrade_above else 1 - baseline_fraction
    # the sonographer's scale: the peaks fill 40-70 % of their side (no clipping); PRF follows
    fill = float(rng.uniform(0.4, 0.7))
    v_nyq = max(peak_a / (fill * 2 * up), peak_r / (fill * 2 * (1 - up)), 12.0)
    prf = v_nyq / 100.0 * 4 * f0 * np.cos(np.deg2rad(angle)) / C_M_S
    k_hz_per_cm_s = 2 * f0 * np.cos(np.deg2rad(angle)) / C_M_S / 100.0
    wall_cm_s = float(rng.uniform(1.0, 4.0))
    shape = str(rng.choice(["decay", "plateau", "linear"]))
    w_ms = float(rng.choice([8.0, 12.0, 16.0, 20.0, 24.0, 32.0])) if window_ms is None else float(window_ms)
    win_samples = w_ms / 1000 * prf
    n_fft = int(max(128, 2 ** np.ceil(np.log2(win_samples))))
    s_per_col = float(rng.choice([0.004, 0.006, 0.008, 0.010, 0.012]))
    aug_start = float(rng.uniform(0.4, 1.0))
    aug_s = float(rng.uniform(0.5, 1.3))
    delay = float(rng.uniform(0, 60))
    sweep = aug_start + aug_s + delay / 1000 + reflux_ms / 1000 + float(rng.uniform(0.6, 1.2))
    sweep = max(sweep, 3.0)
    return ModelCase(
        reflux_ms=reflux_ms, peak_antegrade_cm_s=peak_a, peak_reflux_cm_s=peak_r, reflux_shape=shape,
        end_fraction=float(rng.uniform(0.25, 0.6)), closure_ms=float(rng.uniform(15, 60)),
        augmentation_start_s=aug_start, augmentation_s=aug_s, release_delay_ms=delay,
        resting_flow_cm_s=float(rng.choice([0.0, rng.uniform(0.5, 4.0)])),
        f0_hz=f0, angle_deg=angle, prf_hz=float(prf),
        vessel_radius_mm=float(rng.uniform(1.5, 5.0)), profile_n=float(rng.choice([2.0, 2.0, 4.0, 8.0])),
        gate_mm=float(rng.uniform(1.0, 4.0)), beam_width_mm=float(rng.uniform(0.8, 2.0)),
        n_scatterers=int(rng.integers(500, 1000)), snr_db=float(rng.uniform(6, 30)),
        clutter_db=float(rng.uniform(10, 30)), wall_filter=str(rng.choice(["butter2", "butter4", "cheby2"])),
        wall_cutoff_hz=float(wall_cm_s * k_hz_per_cm_s), window=str(rng.choice(["hann", "hamming", "blackman",
                                                                                 "gaussian"])),
        window_ms=w_ms, n_fft=n_fft, average_spectra=int(rng.choice([1, 1, 2, 3])), s_per_col=s_per_col,
        n_rows=int(rng.choice([128, 160, 200, 240, 300])), baseline_fraction=baseline_fraction,
        antegrade_above=antegrade_above, gain_db=float(rng.uniform(-6, 10)),
        dynamic_range_db=float(rng.uniform(25, 60)), gamma=float(rng.uniform(0.7, 1.4)),
        reject=float(rng.uniform(0.0, 0.12)),
        tint=None if rng.random() < 0.5 else tuple(float(x) for x in [(1.0, 0.82, 0.55), (0.55, 0.8, 1.0),
                                                                      (0.7, 1.0, 0.75)][int(rng.integers(3))]),
        layout=str(rng.choice(["wide", "duplex"])), sweep_s=float(sweep), seed=int(rng.integers(2**31)),
    )


# ------------------------------------------------------------------------------------------------ flow


def centreline_velocity_cm_s(case: ModelCase, t_s: np.ndarray) -> np.ndarray:
    """The true centre-line velocity over time, antegrade positive; negative exactly on the reflux."""
    t = np.asarray(t_s, float)
    v = np.full_like(t, case.resting_flow_cm_s)
    ta, te = case.augmentation_start_s, case.augmentation_start_s + case.augmentation_s
    # augmentation: a gamma-variate surge, squeezed flow until release, then a 40-90 ms fall to zero
    tau = np.clip(t - ta, 0, None)
    rise_s = 0.08 + 0.15 * (case.augmentation_s - 0.5) / 0.8
    surge = (tau / rise_s) ** 2 * np.exp(2 * (1 - tau / rise_s))
    surge = surge / max(np.max(surge[(t >= ta) & (t < te)], initial=1e-9), 1e-9)
    inside = (t >= ta) & (t < te)
    v[inside] = case.resting_flow_cm_s * (1 - np.clip(tau[inside] / 0.1, 0, 1)) + case.peak_antegrade_cm_s * surge[
        inside]
    # release: the antegrade flow stops over the release delay (linear to 0)
    t0 = te + case.release_delay_ms / 1000.0
    v_rel = v[np.searchsorted(t, te) - 1] if np.any(t < te) else 0.0
    fall = (t >= te) & (t < t0)
    if case.release_delay_ms > 0:
        v[fall] = v_rel * (1 - (t[fall] - te) / (t0 - te))
    d_s = case.reflux_ms / 1000.0
    after = t >= t0
    v[after] = 0.0
    if d_s > 0:
        x = t - t0
        r = (x >= 0) & (x < d_s)
        c_s = min(case.closure_ms / 1000.0, d_s / 3)
        onset_s = min(0.06, d_s / 4)
        xr = x[r]
        if case.reflux_shape == "decay":
            body = case.end_fraction ** (np.clip(xr - onset_s, 0, None) / max(d_s - onset_s - c_s, 1e-3))
        elif case.reflux_shape == "plateau":
            body = 1 - (1 - case.end_fraction) * np.clip((xr - onset_s) / max(d_s - onset_s - c_s, 1e-3), 0,
                                                         1) ** 3
        else:  # linear decline
            body = 1 - (1 - case.end_fraction) * np.clip((xr - onset_s) / max(d_s - onset_s - c_s, 1e-3), 0, 1)
        up = np.sin(0.5 * np.pi * np.clip(xr / onset_s, 0, 1))
        close = np.clip((d_s - xr) / c_s, 0, 1)  # linear fall to 0 at exactly d_s
        v[r] = np.minimum(-case.peak_reflux_cm_s * up * body * close, -1e-3)  # strictly negative inside
    # flow resumes gently (respiratory antegrade flow) after the reflux
    t1 = t0 + d_s
    back = t >= t1 + 0.3
    v[back] = case.resting_flow_cm_s * np.clip((t[back] - t1 - 0.3) / 0.4, 0, 1)
    return v


# --------------------------------------------------------------------------------------------- echoes


def slow_time_iq(case: ModelCase, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Slow-time IQ of the range gate (after the wall filter) and the pulse times (s)."""
    prf = case.prf_hz
    n = int(np.ceil((case.sweep_s + 0.2) * prf))
    t = np.arange(n) / prf - 0.1
    vmax = centreline_velocity_cm_s(case, t) / 100.0  # m/s
    th = np.deg2rad(case.angle_deg)
    R = case.vessel_radius_mm / 1000
    sig_u = case.gate_mm / 1000 / 2.355  # FWHM -> sigma
    sig_l = case.beam_width_mm / 1000 / 2.355
    sig_z = sig_l * 1.5
    k = case.n_scatterers
    # streamlines: uniform over the part of the cross-section the sample volume reaches (3 sigma)
    ry = min(R, 3 * max(sig_u * abs(np.sin(th)) + sig_l * abs(np.cos(th)), sig_l))
    rz = min(R, 3 * sig_z)
    y = rng.uniform(-ry, ry, 4 * k)
    z = rng.uniform(-rz, rz, 4 * k)
    keep = np.flatnonzero(y ** 2 + z ** 2 < R ** 2)[:k]
    y, z = y[keep], z[keep]
    # the box scatterers cycle through along x: it must hold the sample volume's footprint for every
    # streamline (the beam crosses the vessel obliquely: at height y the gate sits at x = y / tan(theta)),
    # so that a scatterer is replaced where the weight is nil (no click in the signal)
    lx = 2 * (ry / max(abs(np.tan(th)), 0.05) + 4.5 * max(sig_u, sig_l, sig_z)) + 1e-3
    k = y.size
    rr = np.hypot(y, z)
    frac = 1 - (rr / R) ** case.profile_n  # v(r) / v_max
    disp = np.cumsum(vmax) / prf  # centre-line displacement (m), per pulse
    x0 = rng.uniform(-lx / 2, lx / 2, k)
    max_wraps = int(np.ceil(np.max(np.abs(disp)) / lx)) + 3
    amp = (rng.standard_normal((k, 2 * max_wraps + 1)) + 1j * rng.standard_normal((k, 2 * max_wraps + 1)))
    k0 = 4 * np.pi * case.f0_hz / C_M_S
    out = np.zeros(n, complex)
    for a in range(0, n, 4096):
        b = min(n, a + 4096)
        x = x0[:, None] + frac[:, None] * disp[None, a:b]
        wrap = np.floor((x + lx / 2) / lx).astype(int)
        xw = x - wrap * lx
        u = xw * np.cos(th) + y[:, None] * np.sin(th)
        lat = -xw * np.sin(th) + y[:, None] * np.cos(th)
        w = np.exp(-0.5 * ((u / sig_u) ** 2 + (lat / sig_l) ** 2 + (z[:, None] / sig_z) ** 2))
        ai = np.take_along_axis(amp, np.clip(wrap + max_wraps, 0, 2 * max_wraps), axis=1)
        # the phase follows the *unwrapped* path along the beam (a scatterer's echo moves with it); a wrap
        # starts a new scatterer, whose random amplitude carries its own random phase
        out[a:b] = np.sum(ai * w * np.exp(1j * k0 * (x * np.cos(th))), axis=0)
    p_blood = np.mean(np.abs(out) ** 2)
    # clutter: two wall echoes moving slowly (0.1-0.6 mm/s: a quiet vein wall) with the pulse
    tc = t
    clutter = np.zeros(n, complex)
    for _ in range(2):
        vw = rng.uniform(0.1, 0.6) / 1000
        pos = vw / (2 * np.pi * 1.1) * np.sin(2 * np.pi * 1.1 * tc + rng.uniform(0, 6.3))
        clutter += np.exp(1j * (k0 * pos + rng.uniform(0, 6.3)))
    clutter *= np.sqrt(p_blood * 10 ** (case.clutter_db / 10) / 2)
    noise = np.sqrt(p_blood * 10 ** (-case.snr_db / 10) / 2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    iq = out + clutter + noise
    wn = case.wall_cutoff_hz / (prf / 2)
    if case.wall_filter == "cheby2":
        sos = signal.cheby2(4, 40, wn, btype="highpass", output="sos")
        iq = signal.sosfilt(sos, iq)
    else:
        order = 2 if case.wall_filter == "butter2" else 4
        sos = signal.butter(order, wn, btype="highpass", output="sos")
        iq = signal.sosfilt(sos, iq)
    return iq, t


# --------------------------------------------------------------------------------------------- display


def _window(name: str, n: int) -> np.ndarray:
    if name == "gaussian":
        return signal.windows.gaussian(n, std=n / 6)
    return signal.get_window(name, n, fftbins=True)


def spectrum_display(case: ModelCase, iq: np.ndarray, t_iq: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The spectral region as displayed: uint8 (rows, cols[, 3]), the baseline row and the cm/s per row."""
    prf = case.prf_hz
    nw = max(8, int(round(case.window_ms / 1000 * prf)))
    win = _window(case.window, nw)
    n_cols = int(round(case.sweep_s / case.s_per_col))
    t_cols = np.arange(n_cols) * case.s_per_col
    centre = np.searchsorted(t_iq, t_cols)
    hop = case.s_per_col * prf
    offs = np.arange(nw) - nw // 2
    # averaging: the mean of spectra whose windows are spread over one column
    power = np.zeros((case.n_fft, n_cols))
    for j in range(case.average_spectra):
        shift = int(round((j - (case.average_spectra - 1) / 2) * hop / max(case.average_spectra, 1)))
        idx = np.clip(centre[None, :] + shift + offs[:, None], 0, iq.size - 1)
        spec = np.fft.fft(iq[idx] * win[:, None], n=case.n_fft, axis=0)
        power += np.abs(spec) ** 2
    power /= case.average_spectra * np.sum(win ** 2)
    freqs = np.fft.fftfreq(case.n_fft, 1 / prf)
    k_hz = 2 * case.f0_hz * np.cos(np.deg2rad(case.angle_deg)) / C_M_S / 100.0
    v_nyq = prf / 2 / k_hz
    rows = np.arange(case.n_rows)
    baseline_row = float(round(case.baseline_fraction * (case.n_rows - 1)))  # DICOM stores a whole row
    dv = 2 * v_nyq / case.n_rows
    v_up = (baseline_row - rows) * dv
    v_flow = v_up if case.antegrade_above else -v_up
    f = v_flow * k_hz
    fb = (f / prf * case.n_fft) % case.n_fft  # fractional FFT bin (wraps: baseline shift)
    i0 = np.floor(fb).astype(int) % case.n_fft
    i1 = (i0 + 1) % case.n_fft
    w = (fb - np.floor(fb))[:, None]
    p = power[i0] * (1 - w) + power[i1] * w
    db = 10 * np.log10(np.maximum(p, 1e-30))
    noise_db = 10 * np.log10(np.median(power))  # the scanner's reference: a level near the noise
    level = (db - noise_db + case.gain_db) / case.dynamic_range_db
    level = np.clip((level - case.reject) / (1 - case.reject), 0, 1) ** case.gamma
    del freqs
    return level, float(baseline_row), float(dv)


def _put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, colour=(220, 220, 220)):
    import cv2

    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


@dataclass
class ModelScreen:
    screen: np.ndarray  # uint8 (rows, cols, 3) or (rows, cols)
    region_px: tuple[int, int, int, int]  # spectral region (min_col, min_row, max_col, max_row)
    s_per_col: float
    cm_s_per_row: float
    baseline_row: float
    truth: dict


def render_screen(case: ModelCase) -> ModelScreen:
    """The whole screen: B-mode box, texts, scales, the spectrum; with the truth of the manoeuvre."""
    rng = np.random.default_rng(case.seed)
    iq, t_iq = slow_time_iq(case, rng)
    level, baseline_row, dv = spectrum_display(case, iq, t_iq)
    n_rows, n_cols = level.shape
    if case.layout == "wide":
        h, wd = 768, max(1024, n_cols + 200)
    else:
        h, wd = 600, max(800, n_cols + 170)
    h = max(h, n_rows + 330)
    screen = np.zeros((h, wd, 3), np.uint8)
    tint = np.array(case.tint if case.tint is not None else (1.0, 1.0, 1.0))
    r0, c0 = h - n_rows - 45, 60
    spec = np.round(level[..., None] * tint * 255).astype(np.uint8)
    screen[r0:r0 + n_rows, c0:c0 + n_cols] = spec
    # B-mode box with speckle
    bh, bw = r0 - 70, min(420, wd - 300)
    screen[40:40 + bh, 160:160 + bw] = (rng.rayleigh(40, size=(bh, bw, 1))).clip(0, 255).astype(np.uint8)
    _put_text(screen, "EchoModel  L12-4  PW 5.0MHz", (10, 18))
    _put_text(screen, "2026/11/30 10:42:07   MI 0.6  TIs 0.4", (10, 34), 0.4)
    # parameter block
    for j, line in enumerate([f"PRF {case.prf_hz / 1000:.1f} kHz", f"WF {case.wall_cutoff_hz:.0f} Hz",
                              f"Gn {case.gain_db:.0f}", f"DR {case.dynamic_range_db:.0f}", "SV 2.0 mm",
                              f"Angle {case.angle_deg:.0f}"]):
        _put_text(screen, line, (wd - 120, 60 + 18 * j), 0.42)
    # baseline line (green or white) across the spectrum
    b = int(round(baseline_row))
    line_colour = (40, 220, 60) if case.layout == "duplex" else (200, 200, 200)
    screen[r0 + b, c0:c0 + n_cols] = line_colour
    # velocity scale: ticks at the right edge of the spectrum (inside the region) and numbers outside
    step = 10 if dv * n_rows < 120 else 20
    v_top = baseline_row * dv
    sign = 1 if case.antegrade_above else -1
    for val in np.arange(-int(n_rows * dv), int(n_rows * dv) + 1, step):
        row = baseline_row - val / dv
        if 2 <= row < n_rows - 2:
            rr = r0 + int(round(row))
            screen[rr, c0 + n_cols - 4:c0 + n_cols] = (230, 230, 230)
            _put_text(screen, f"{int(sign * val)}", (c0 + n_cols + 6, rr + 4), 0.4)
    _put_text(screen, "cm/s", (c0 + n_cols + 6, r0 - 6), 0.4)
    del v_top
    # time axis: ticks each second below the spectrum, labels
    for s in range(int(case.sweep_s) + 1):
        cc = c0 + int(round(s / case.s_per_col))
        if cc < c0 + n_cols:
            screen[r0 + n_rows + 2:r0 + n_rows + 8, cc] = 220
            _put_text(screen, f"{s - int(case.sweep_s)}", (cc - 6, r0 + n_rows + 22), 0.4)
    t_cols = np.arange(n_cols) * case.s_per_col
    v_true = centreline_velocity_cm_s(case, t_cols)
    t_fine = np.arange(0, case.sweep_s, 1e-4)
    v_fine = centreline_velocity_cm_s(case, t_fine)
    te = case.augmentation_start_s + case.augmentation_s
    t0 = te + case.release_delay_ms / 1000
    aug = (t_fine >= case.augmentation_start_s) & (t_fine < te)
    truth = {
        "reflux_ms": case.reflux_ms,
        "reflux_start_s": t0,
        "reflux_end_s": t0 + case.reflux_ms / 1000,
        "peak_reflux_velocity_cm_s": float(max(0.0, -v_fine[t_fine >= t0].min())) if case.reflux_ms > 0 else 0.0,
        "peak_antegrade_velocity_cm_s": float(v_fine[aug].max()),
        "t_s": t_cols,
        "velocity_cm_s": v_true,
    }
    return ModelScreen(screen=screen, region_px=(c0, r0, c0 + n_cols - 1, r0 + n_rows - 1),
                       s_per_col=case.s_per_col, cm_s_per_row=dv, baseline_row=baseline_row, truth=truth)


def write_dicom(path: str | Path, ms: ModelScreen, *, grey: bool, vendor_sign: int = -1) -> Path:
    """The screen as a DICOM US image with a tissue region and a calibrated PW region."""
    from echosclero.interop.usdicom import UltrasoundRegion, write_us_dicom

    img = ms.screen.max(axis=2) if grey else ms.screen
    regions = [
        UltrasoundRegion((160, 40, 580, 200), "tissue", mm_per_px_x=0.1, mm_per_px_z=0.1),
        UltrasoundRegion(ms.region_px, "PW", s_per_px=ms.s_per_col, cm_s_per_px=vendor_sign * ms.cm_s_per_row,
                         baseline_row=ms.baseline_row),
    ]
    return write_us_dicom(path, img[None], regions=regions, frame_time_s=None, seed_uid="1.2.826.0.1.3680043.15")
