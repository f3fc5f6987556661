"""Fast B-mode image formation: a linear-array point-spread function applied to a scatterer field.

The model is the classical *convolution model* of ultrasound imaging (Bamber & Dickinson 1980; Meunier &
Bertrand 1995; Gao et al., IEEE TUFFC 2009, "A fast convolution-based methodology to simulate 2-D/3-D
cardiac ultrasound images"): the complex baseband (I/Q) image is the tissue's complex scatterer field
convolved with a separable PSF,

    IQ(x, z) = [ s(x, z) * h_ax(z) * h_lat(x) ] · A(z) + n(x, z)                                   (1)

then ``|IQ|`` is the envelope and a depth gain (TGC) and log compression map it to display grey levels.

The PSF is derived from the same parameters as the MUST toolbox / PyMUST (Garcia, "SIMUS: an open-source
simulator for medical ultrasound imaging", Comput Methods Programs Biomed 2022) so that both simulators
can image the same phantom:

* **axial**: the pulse-echo spectrum is the transmitted windowed sine of ``tx_cycles`` cycles
  (its spectrum ``i[sinc(T(ω-ωc)/2) - sinc(T(ω+ωc)/2)]``, T = cycles/fc) times the probe's two-way
  *generalized normal* response with the given −6 dB fractional bandwidth
  (``exp(-(|ω-ωc| / (ωB/2 / ln2^(1/p)))^p)``, ``p = ln 126 / ln(2ωc/ωB)``; PyMUST ``utils.getProbeFunction``);
  the baseband axial PSF is its inverse Fourier transform with t = 2z/c;
* **I/Q demodulation**: the scanner's baseband low-pass filter — as PyMUST ``rf2iq``: a 5th-order
  Butterworth cutting at half the bandwidth, applied forward and backward (``filtfilt``, gain ``|H|²``);
* **lateral**: plane-wave transmission and dynamic receive focusing over the aperture ``|x_e - x| <= z/(2F#)``
  (PyMUST ``dasmtx``), each element weighted by its directivity ``cos θ · sinc(w sin θ / λ)`` (soft baffle,
  element width ``w``; PyMUST ``pfield``): the lateral response is the Fourier transform of that weighted
  aperture in ``sin θ``, independent of depth at a fixed F#, averaged over the pulse spectrum.

Attenuation is ``alpha_db_cm_mhz`` (0.5 dB/cm/MHz for soft tissue; Szabo, *Diagnostic Ultrasound Imaging*,
2nd ed., table 4.1 lists 0.5–1 dB/cm/MHz for fat and muscle) over the round trip; TGC compensates the
nominal attenuation, so electronic noise, added before the TGC, rises with depth as on a scanner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from echosclero.errors import InputError

__all__ = [
    "BModeRenderer",
    "ImagingGrid",
    "Probe",
    "log_compress",
    "render_scatterers",
]


@dataclass(frozen=True, slots=True)
class Probe:
    """A linear-array probe and its imaging settings.

    Parameters
    ----------
    centre_frequency_hz
        Transmit centre frequency.
    fractional_bandwidth
        Two-way −6 dB bandwidth as a fraction of the centre frequency (0.77 = 77 %).
    pitch_mm, n_elements
        Element pitch and count: the aperture is ``pitch_mm * n_elements`` wide.
    f_number_rx
        Receive f-number (aperture width = depth / F#).
    tx_cycles
        Number of cycles of the transmitted windowed sine (PyMUST ``TXnow``).
    speed_of_sound_m_s
        Assumed speed of sound (1540 m/s, the scanner convention).
    alpha_db_cm_mhz
        Attenuation slope; 0 disables attenuation (as in a PSF test).
    """

    centre_frequency_hz: float = 7.6e6
    fractional_bandwidth: float = 0.77
    pitch_mm: float = 0.3
    n_elements: int = 128
    f_number_rx: float = 1.5
    element_width_mm: float = 0.27
    tx_cycles: float = 1.0
    demod_lowpass_fraction: float = 0.385  # I/Q low-pass cut-off / fc (PyMUST rf2iq: bandwidth / 2)
    speed_of_sound_m_s: float = 1540.0
    alpha_db_cm_mhz: float = 0.5

    def __post_init__(self) -> None:
        checks = {
            "centre_frequency_hz": (0.5e6, 50e6),
            "fractional_bandwidth": (0.05, 1.9),
            "pitch_mm": (0.01, 2.0),
            "f_number_rx": (0.3, 10.0),
            "element_width_mm": (0.01, 2.0),
            "demod_lowpass_fraction": (0.0, 2.0),
            "tx_cycles": (0.5, 20.0),
            "speed_of_sound_m_s": (1300.0, 1700.0),
            "alpha_db_cm_mhz": (0.0, 3.0),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not (lo <= value <= hi):
                raise InputError(f"Probe.{name}={value} is outside the plausible range [{lo}, {hi}]")

    @classmethod
    def l11_5v(cls, **changes) -> Probe:
        """The Verasonics L11-5v as described in PyMUST ``getparam('L11-5v')``: 128 elements, 0.3 mm pitch,
        7.6 MHz, 77 % bandwidth."""
        return cls(**changes)

    @property
    def wavelength_mm(self) -> float:
        return self.speed_of_sound_m_s / self.centre_frequency_hz * 1e3

    @property
    def aperture_mm(self) -> float:
        return self.pitch_mm * self.n_elements

    def pulse_echo_spectrum(self, f_hz: np.ndarray) -> np.ndarray:
        """Complex two-way spectrum at frequencies ``f_hz`` (PyMUST's pulse × probe² model)."""
        w = 2 * np.pi * np.asarray(f_hz, dtype=float)
        wc = 2 * np.pi * self.centre_frequency_hz
        t_pulse = self.tx_cycles / self.centre_frequency_hz
        pulse = 1j * (np.sinc(t_pulse * (w - wc) / 2 / np.pi) - np.sinc(t_pulse * (w + wc) / 2 / np.pi))
        wb = self.fractional_bandwidth * wc
        p = math.log(126) / math.log(2 * wc / wb)
        probe_sq = np.exp(-np.power(np.abs(w - wc) / (wb / 2 / math.log(2) ** (1 / p)), p))
        return pulse * probe_sq

    def demodulation_gain(self, f_hz: np.ndarray) -> np.ndarray:
        """|H|² of the I/Q low-pass (5th-order Butterworth, filtfilt) at offset ``f - fc`` from the carrier."""
        cut = self.demod_lowpass_fraction * self.centre_frequency_hz
        if cut <= 0:
            return np.ones_like(np.asarray(f_hz, dtype=float))
        return 1.0 / (1.0 + (np.abs(np.asarray(f_hz, dtype=float) - self.centre_frequency_hz) / cut) ** 10)


@dataclass(frozen=True, slots=True)
class ImagingGrid:
    """The displayed image: ``rows`` × ``cols`` pixels covering ``width_mm`` × ``depth_mm``.

    Pixel ``(r, c)`` has its centre at ``x_mm = (c + 0.5) * mm_per_px_x``, ``z_mm = (r + 0.5) * mm_per_px_z``;
    ``x = 0`` is the left edge of the image (the array's first element edge when the image spans the
    aperture) and ``z = 0`` the transducer face.
    """

    rows: int = 512
    cols: int = 512
    width_mm: float = 38.4
    depth_mm: float = 40.0

    def __post_init__(self) -> None:
        if not (16 <= self.rows <= 8192 and 16 <= self.cols <= 8192):
            raise InputError(f"image size {self.rows}x{self.cols} px is outside 16..8192")
        if not (1.0 <= self.width_mm <= 300.0 and 1.0 <= self.depth_mm <= 300.0):
            raise InputError(f"field of view {self.width_mm}x{self.depth_mm} mm is outside 1..300 mm")

    @property
    def mm_per_px_x(self) -> float:
        return self.width_mm / self.cols

    @property
    def mm_per_px_z(self) -> float:
        return self.depth_mm / self.rows

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    def x_mm(self) -> np.ndarray:
        return (np.arange(self.cols) + 0.5) * self.mm_per_px_x

    def z_mm(self) -> np.ndarray:
        return (np.arange(self.rows) + 0.5) * self.mm_per_px_z


def _axial_kernel(probe: Probe, dz_mm: float) -> np.ndarray:
    """Complex baseband axial PSF sampled every ``dz_mm`` (two-way time t = 2 z / c), peak normalised to 1."""
    fc = probe.centre_frequency_hz
    f = np.linspace(0.0, 3.0 * fc, 6001)
    spectrum = probe.pulse_echo_spectrum(f) * probe.demodulation_gain(f)
    c_mm_s = probe.speed_of_sound_m_s * 1e3
    # Extent: where the envelope has fallen below -60 dB, found on a fine grid.
    z_fine = np.linspace(-3.0, 3.0, 1201) * probe.wavelength_mm * max(1.0, probe.tx_cycles)
    env_fine = np.abs(_baseband(spectrum, f, fc, z_fine, c_mm_s))
    env_fine /= env_fine.max()
    support = z_fine[env_fine > 1e-3]
    half_mm = max(abs(support[0]), abs(support[-1]), 2 * dz_mm)
    n_half = int(math.ceil(half_mm / dz_mm))
    z = np.arange(-n_half, n_half + 1) * dz_mm
    h = _baseband(spectrum, f, fc, z, c_mm_s)
    # The peak of the two-way pulse is not at t = 0 (the windowed sine is causal): centre it.
    peak = z_fine[np.argmax(env_fine)]
    h = _baseband(spectrum, f, fc, z + peak, c_mm_s)
    # Remove the global phase (the windowed sine's spectrum carries a factor i): only relative phase matters.
    h_peak = h[n_half]
    h = h * (np.conj(h_peak) / np.abs(h_peak) ** 2)
    return _trim(h, 1e-2).astype(np.complex64)


def _trim(h: np.ndarray, floor: float) -> np.ndarray:
    """Drop symmetric tails below ``floor`` × peak (−40 dB for 1e-2): they change nothing visible."""
    keep = np.flatnonzero(np.abs(h) >= floor * np.abs(h).max())
    half = max(int(h.size // 2 - keep[0]), int(keep[-1] - h.size // 2), 1)
    mid = h.size // 2
    return h[mid - half: mid + half + 1]


def _baseband(spectrum: np.ndarray, f: np.ndarray, fc: float, z_mm: np.ndarray, c_mm_s: float) -> np.ndarray:
    t = 2.0 * z_mm / c_mm_s
    # h_bb(t) = ∫ S(f) exp(i 2π (f - fc) t) df over positive frequencies (analytic signal, demodulated)
    phase = np.exp(2j * np.pi * np.outer(t, f - fc))
    return phase @ spectrum * (f[1] - f[0])


def _lateral_kernel(probe: Probe, dx_mm: float) -> np.ndarray:
    """Real lateral PSF sampled every ``dx_mm``: the receive aperture's directivity-weighted transform,
    averaged over the pulse spectrum."""
    fc = probe.centre_frequency_hz
    f = np.linspace(0.25 * fc, 2.0 * fc, 61)
    weight = np.abs(probe.pulse_echo_spectrum(f) * probe.demodulation_gain(f))
    weight /= weight.sum()
    lam_mm = probe.speed_of_sound_m_s * 1e3 / f
    half_mm = 3.5 * probe.wavelength_mm * probe.f_number_rx
    n_half = max(2, int(math.ceil(half_mm / dx_mm)))
    x = np.arange(-n_half, n_half + 1) * dx_mm
    # aperture in sin(theta): |tan theta| <= 1 / (2 F#)
    theta_max = math.atan(1.0 / (2.0 * probe.f_number_rx))
    theta = np.linspace(-theta_max, theta_max, 201)
    s = np.sin(theta)
    h = np.zeros_like(x)
    for lam, w in zip(lam_mm, weight, strict=True):
        apod = np.cos(theta) * np.sinc(probe.element_width_mm * s / lam)
        # h(x) = ∫ a(s) exp(i 2π s x / λ) ds (real for a symmetric aperture); trapezoid in s
        h += w * np.trapezoid(apod[None, :] * np.cos(2 * np.pi * s[None, :] * x[:, None] / lam), s, axis=1)
    # side lobes beyond the third are below -30 dB and invisible after log compression: drop them
    return _trim(h / h.max(), 3e-2).astype(np.float32)


def _convolve_complex(field: np.ndarray, h_ax: np.ndarray, h_lat: np.ndarray) -> np.ndarray:
    """``field`` (rows, cols, 2) float32 [re, im] convolved with complex ``h_ax`` along rows and real ``h_lat``
    along columns. Returns (rows, cols, 2) float32.

    One lateral pass (real kernel, both channels at once), then the complex axial kernel as two short real
    passes: (a + ib) * (kr + i ki) = (a*kr - b*ki) + i (a*ki + b*kr).
    """
    # cv2 correlates; reversed kernels convolve.
    kx = np.ascontiguousarray(h_lat[::-1], dtype=np.float32)
    kr = np.ascontiguousarray(h_ax.real[::-1], dtype=np.float32)[:, None]
    ki = np.ascontiguousarray(h_ax.imag[::-1], dtype=np.float32)[:, None]
    lat = cv2.sepFilter2D(field, cv2.CV_32F, kx, _ONE, borderType=cv2.BORDER_CONSTANT)
    out = cv2.filter2D(lat, cv2.CV_32F, kr, borderType=cv2.BORDER_CONSTANT)
    if np.any(ki):
        b = cv2.filter2D(lat, cv2.CV_32F, ki, borderType=cv2.BORDER_CONSTANT)
        out[..., 0] -= b[..., 1]
        out[..., 1] += b[..., 0]
    return out


_ONE = np.ones(1, np.float32)
_SUM2 = np.ones((1, 2), np.float32)


def _magnitude(iq: np.ndarray) -> np.ndarray:
    """|re + i im| of a (rows, cols, 2) float32 array, without splitting channels."""
    return cv2.sqrt(cv2.transform(cv2.multiply(iq, iq), _SUM2))


class BModeRenderer:
    """Applies the PSF, attenuation, noise and TGC to complex scatterer fields on one :class:`ImagingGrid`.

    Kernels, depth gains and a bank of electronic noise are computed once; :meth:`envelope` is then a few
    vectorised OpenCV passes per frame.

    Parameters
    ----------
    probe, grid
        Acoustics and display geometry.
    noise_db
        Electronic noise level relative to the mean tissue echo at the skin (e.g. -55 dB); with TGC it rises
        by the round-trip attenuation at depth.
    tgc_mismatch_db_cm
        TGC slope error (dB per cm of depth): 0 means the TGC exactly compensates the nominal attenuation.
    rng
        Random generator for the noise bank.
    """

    def __init__(
        self,
        probe: Probe,
        grid: ImagingGrid,
        *,
        noise_db: float = -52.0,
        tgc_mismatch_db_cm: float = 0.0,
        rng: np.random.Generator | None = None,
        noise_bank_size: int = 6,
    ) -> None:
        self.probe = probe
        self.grid = grid
        self.h_ax = _axial_kernel(probe, grid.mm_per_px_z)
        self.h_lat = _lateral_kernel(probe, grid.mm_per_px_x)
        rng = rng if rng is not None else np.random.default_rng(0)
        z_cm = grid.z_mm() / 10.0
        f_mhz = probe.centre_frequency_hz / 1e6
        atten_db = 2.0 * probe.alpha_db_cm_mhz * f_mhz * z_cm  # round trip
        #: amplitude factor of the echoes from each row (before TGC)
        self.attenuation = (10 ** (-atten_db / 20)).astype(np.float32)
        tgc_db = atten_db + tgc_mismatch_db_cm * z_cm
        self.tgc = (10 ** (tgc_db / 20)).astype(np.float32)
        # Unit-variance complex scatterers give an echo power of sum|h|^2; noise is relative to that.
        echo_rms = float(np.sqrt((np.abs(self.h_ax) ** 2).sum() * (self.h_lat**2).sum()))
        noise_rms = echo_rms * 10 ** (noise_db / 20)
        self._noise = [
            (rng.standard_normal((grid.rows, grid.cols, 2), dtype=np.float32) * np.float32(noise_rms / math.sqrt(2)))
            for _ in range(noise_bank_size)
        ]
        self._echo_rms = echo_rms
        self._noise_i = 0
        # per-row gain applied to the scatterer field (attenuation) and after noise (TGC), as (rows, 1, 1)
        self._att3 = self.attenuation[:, None, None]
        self._tgc2 = (self.tgc / np.float32(echo_rms))[:, None]

    @property
    def psf_fwhm_mm(self) -> tuple[float, float]:
        """Theoretical −6 dB widths (axial, lateral) of this renderer's kernels, in mm."""
        return (
            _fwhm(np.abs(self.h_ax), self.grid.mm_per_px_z, upsample=32),
            _fwhm(np.abs(self.h_lat), self.grid.mm_per_px_x, upsample=32),
        )

    def envelope(self, field: np.ndarray, *, noise: bool = True, attenuate: bool = True) -> np.ndarray:
        """Envelope image, float32 (rows, cols), scaled so fully developed speckle of unit-variance
        scatterers has RMS 1 at every depth (TGC-compensated).

        ``field`` is (rows, cols, 2) float32 [re, im] scatterer amplitudes (modified in place when
        ``attenuate``).
        """
        if field.shape != (self.grid.rows, self.grid.cols, 2) or field.dtype != np.float32:
            raise InputError(
                f"scatterer field must be float32 of shape {(self.grid.rows, self.grid.cols, 2)}, "
                f"got {field.dtype} {field.shape}"
            )
        if attenuate:
            field *= self._att3
        iq = _convolve_complex(field, self.h_ax, self.h_lat)
        if noise:
            iq += self._noise[self._noise_i]
            self._noise_i = (self._noise_i + 1) % len(self._noise)
        env = _magnitude(iq)
        env *= self._tgc2 if attenuate else np.float32(1.0 / self._echo_rms)
        return env


def _fwhm(profile: np.ndarray, step_mm: float, *, upsample: int = 16) -> float:
    """Full width at half maximum (−6 dB of amplitude) of a 1-D non-negative profile, interpolated."""
    n = profile.size
    x = np.arange(n)
    xf = np.linspace(0, n - 1, (n - 1) * upsample + 1)
    pf = np.interp(xf, x, profile)
    peak = int(np.argmax(pf))
    half = pf[peak] / 2
    left = peak
    while left > 0 and pf[left] > half:
        left -= 1
    right = peak
    while right < pf.size - 1 and pf[right] > half:
        right += 1
    return (xf[right] - xf[left]) * step_mm


def log_compress(
    envelope: np.ndarray, *, dynamic_range_db: float = 60.0, gain_db: float = 0.0, reference: float = 1.0
) -> np.ndarray:
    """Log-compress a linear envelope to uint8 display grey levels.

    The top of the display (grey 255) is 24 dB above ``reference`` at ``gain_db = 0``: speckle of RMS
    ``reference`` shows at grey ``255 * (1 - 24/dynamic_range_db)`` (153 with a 60 dB range), leaving headroom
    for specular echoes; the display spans ``dynamic_range_db``.
    """
    if dynamic_range_db <= 0:
        raise InputError(f"dynamic_range_db must be positive, got {dynamic_range_db}")
    top = reference * 10 ** ((24.0 - gain_db) / 20)  # 0 dB on the display: 24 dB above the speckle RMS
    scale = np.float32(255.0 / dynamic_range_db * 20.0 / math.log(10))
    offset = np.float32(255.0 - scale * math.log(top))
    out = cv2.log(np.maximum(envelope, np.float32(1e-12)))
    out *= scale
    out += offset
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def splat_scatterers(
    x_mm: np.ndarray, z_mm: np.ndarray, amplitude: np.ndarray, *, probe: Probe, grid: ImagingGrid
) -> np.ndarray:
    """Put point scatterers on the grid as complex amplitudes (rows, cols, 2).

    Each scatterer is spread bilinearly over its four neighbouring pixels and carries the two-way phase
    ``exp(-i 2 k0 z)`` of its exact depth, so sub-pixel positions interfere correctly in the convolution model.
    """
    x_mm, z_mm, amplitude = (np.asarray(a, dtype=np.float64).ravel() for a in (x_mm, z_mm, amplitude))
    if not (x_mm.shape == z_mm.shape == amplitude.shape):
        raise InputError("x_mm, z_mm and amplitude must have the same length")
    col = x_mm / grid.mm_per_px_x - 0.5
    row = z_mm / grid.mm_per_px_z - 0.5
    k0 = 2 * np.pi / probe.wavelength_mm
    phase = np.exp(-2j * k0 * z_mm) * amplitude
    c0 = np.floor(col).astype(int)
    r0 = np.floor(row).astype(int)
    fc = col - c0
    fr = row - r0
    field = np.zeros((grid.rows, grid.cols), dtype=np.complex128)
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            rr, cc = r0 + dr, c0 + dc
            ok = (rr >= 0) & (rr < grid.rows) & (cc >= 0) & (cc < grid.cols)
            np.add.at(field, (rr[ok], cc[ok]), (phase * wr * wc)[ok])
    out = np.empty((grid.rows, grid.cols, 2), dtype=np.float32)
    out[..., 0] = field.real
    out[..., 1] = field.imag
    return out


def render_scatterers(
    x_mm: np.ndarray,
    z_mm: np.ndarray,
    amplitude: np.ndarray,
    *,
    probe: Probe | None = None,
    grid: ImagingGrid | None = None,
) -> np.ndarray:
    """Linear envelope (rows, cols) float32 of point scatterers, without attenuation, TGC or noise.

    The same phantom (scatterer positions and amplitudes) can be given to PyMUST's ``simus`` + DAS to
    compare the two simulators (``benchmarks/bench_psf.py``).
    """
    probe = probe or Probe.l11_5v()
    grid = grid or ImagingGrid()
    renderer = BModeRenderer(probe, grid, noise_bank_size=1)
    field = splat_scatterers(x_mm, z_mm, amplitude, probe=probe, grid=grid)
    return renderer.envelope(field, noise=False, attenuate=False)
