"""Velocity envelopes traced through the speckle of a Doppler spectrum.

The core, :func:`trace_spectrum`, works on any intensity image of a spectrum — a scanner's grey or colour
display (:func:`trace_display`) or a spectrogram computed from IQ in dB (:mod:`echosclero.doppler.iq`) —
given the signed velocity of every row (antegrade, toward the heart, positive) and the time of every column.

Method (a threshold method with a per-column noise floor, in the family reviewed by Mo et al., "Comparison
of four digital maximum frequency estimators for Doppler ultrasound", Ultrasound Med Biol 1988;14:355-63,
and Kathpalia et al., "Adaptive spectral envelope estimation for Doppler ultrasound", IEEE TUFFC
2016;63:1825-38):

1. static display furniture is removed: rows or columns bright across (nearly) the whole image, such as
   the baseline line, grid lines or a sweep marker, are replaced by their neighbours;
2. the image is smoothed a little (Gaussian, about one velocity bin and 12 ms) to tame speckle;
3. per column, the noise floor and its spread are estimated from the lower percentiles of the rows away
   from the baseline (the spectrum of flow fills a minority of rows), then smoothed over time — so display
   gain, dynamic range and time-gain changes are measured from the display itself, never assumed;
4. a pixel is *signal* when it exceeds ``floor + max(k * spread, min_contrast)``, or a lower
   hysteresis threshold while connected to such pixels; rows next to the baseline that are signal in
   nearly every column (the clutter the wall filter let through) are left out, and so is what reaches only
   the row next to that band while the other side of the baseline shows it as brightly (leakage and clutter
   are symmetric about zero velocity, blood flow is one-sided); on each side of the
   baseline the *detection* envelope is the outermost signal row that is backed by a mostly-filled run
   toward the baseline (isolated noise blobs are not);
5. the *maximum-velocity* envelope is then read on the spectrum's outer edge, inside the detection
   envelope, where the smoothed display crosses ``floor + EDGE_LEVEL * (plateau - floor)``, the plateau
   being the 90th percentile of the column's own signal pixels (refined to a sub-row crossing). The
   outermost signal pixel carries the display's spectral broadening (analysis window, transit time and
   geometry: Newhouse et al., IEEE Trans Sonics Ultrason 1980;27:50-59) and the noise tail, and moves
   with gain; a level set between the spectrum's own plateau and the noise floor (the "modified threshold
   crossing" family of Mo et al. 1988) is the same place on the edge whatever the gain and the dynamic
   range of a log-compressed display (both shift or scale floor and plateau alike). The per-column
   strength ``plateau - floor`` is kept so that flow runs can be placed on their edges in time too
   (:mod:`echosclero.doppler.reflux`);
6. a 5-column median removes spikes of one or two columns; the mean velocity is the excess-intensity-weighted mean
   of the signal rows inside the detection envelope (an intensity-weighted mean of a log-compressed display,
   not a power-weighted mean frequency).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from echosclero.errors import InputError
from echosclero.frames import SpectralCalibration

__all__ = [
    "BAND_MARGIN_ROWS",
    "EDGE_LEVEL",
    "ENVELOPE_DEFINITION",
    "SpectralTrace",
    "display_intensity",
    "trace_display",
    "trace_spectrum",
]

#: Level of the spectrum's outer edge where the maximum velocity is read: this fraction of the way from the
#: noise floor to the spectrum's plateau (the 90th percentile of its own pixels in that column), on the
#: displayed (log-compressed) scale. Gain shifts floor and plateau alike and the dynamic range scales both,
#: so the level is the same place on the edge whatever the display settings; 0.8 sits near the half-power
#: point of a broadened edge for displays of 6-30 dB SNR (the true edge of a flat spectrum blurred by a
#: symmetric kernel lies at half its power). Benchmarked in docs/benchmarks-reflux.md.
EDGE_LEVEL = 0.8

#: Flow must reach at least this many rows beyond the innermost traced row of its side to count: what shows
#: only next to the baseline / wall-filter band is the band's own leakage (a causal wall filter's ringing
#: after an abrupt valve closure, slow clutter), present with or without blood flow. Benchmarked in
#: docs/benchmarks-reflux.md (issue 15: a competent vein's false 524 ms reflux, ringing counted as flow).
BAND_MARGIN_ROWS = 1.0

#: ... and there it counts only where the other side of the baseline, at the same speeds, holds less than this
#: fraction of its excess brightness (blood flows one way; leakage is symmetric about zero velocity).
BAND_SYMMETRY = 0.6

#: The definition written into the JSON, with its sources.
ENVELOPE_DEFINITION = {
    "name": "edge-level maximum velocity",
    "definition": (
        "per column, the outermost velocity where the smoothed display reaches noise_floor + edge_level x "
        "(plateau - noise_floor), plateau = 90th percentile of the spectrum's own pixels, on the displayed "
        "(log) scale; columns only count as flow where this lies above the baseline / wall-filter band, and, "
        "within band_margin_rows of the band's edge, only where the mirrored speeds on the other side of the "
        "baseline hold less than band_symmetry x its excess brightness (wall-filter leakage and clutter are "
        "symmetric about zero, blood flow is one-sided); a flow run starts and ends where its strength (plateau "
        "above floor) crosses time_edge_level x its median over the run"
    ),
    "edge_level": EDGE_LEVEL,
    "band_margin_rows": BAND_MARGIN_ROWS,
    "band_symmetry": BAND_SYMMETRY,
    "source": (
        "threshold relative to the spectrum's own level, searched outward (modified threshold crossing): Mo LYL, "
        "Yun LCM, Cobbold RSC, Ultrasound Med Biol 1988;14:355-63; spectral broadening by transit time and "
        "geometry, which the outermost pixel carries: Newhouse VL et al., IEEE Trans Sonics Ultrason "
        "1980;27:50-59"
    ),
}


@dataclass(frozen=True, slots=True, eq=False)
class SpectralTrace:
    """Envelopes of a spectrum, one value per column; velocities in cm/s, antegrade positive.

    Attributes
    ----------
    t_s : (n,) ndarray
        Column times.
    antegrade_max_cm_s, retrograde_max_cm_s : (n,) ndarray
        Maximum speed on each side (>= 0; 0 where that side shows no flow).
    antegrade_mean_cm_s, retrograde_mean_cm_s : (n,) ndarray
        Intensity-weighted mean speed on each side (0 where no flow).
    antegrade_power, retrograde_power : (n,) ndarray
        Summed excess intensity of the signal on each side (arbitrary units), used to decide which
        direction dominates a column.
    clipped_antegrade, clipped_retrograde : (n,) bool ndarray
        The envelope reached the edge of the display on that side (possible aliasing).
    noise_floor, noise_spread : (n,) ndarray
        Per-column noise statistics in the units of the traced intensity.
    antegrade_limit_cm_s, retrograde_limit_cm_s
        The largest speeds the display shows on each side.
    antegrade_level, retrograde_level : (n,) ndarray or None
        Strength of the spectrum on each side: its plateau level above the noise floor, in the units of the
        traced intensity (0 where that side shows no flow); used to place the start and end of a flow run
        at the half-way level in time, as the envelope is placed in velocity.
    envelope_definition
        Which level of the spectrum's edge the maximum-velocity envelope follows (text for the JSON).
    """

    t_s: np.ndarray
    antegrade_max_cm_s: np.ndarray
    retrograde_max_cm_s: np.ndarray
    antegrade_mean_cm_s: np.ndarray
    retrograde_mean_cm_s: np.ndarray
    antegrade_power: np.ndarray
    retrograde_power: np.ndarray
    clipped_antegrade: np.ndarray
    clipped_retrograde: np.ndarray
    noise_floor: np.ndarray
    noise_spread: np.ndarray
    antegrade_limit_cm_s: float
    retrograde_limit_cm_s: float
    antegrade_level: np.ndarray | None = None
    retrograde_level: np.ndarray | None = None
    envelope_definition: str = "outermost signal"

    @property
    def s_per_col(self) -> float:
        return float(np.median(np.diff(self.t_s))) if self.t_s.size > 1 else 0.0

    @property
    def retrograde_dominant(self) -> np.ndarray:
        """Columns whose flow is retrograde (retrograde signal present and stronger than antegrade)."""
        return (self.retrograde_max_cm_s > 0) & (self.retrograde_power > self.antegrade_power)

    @property
    def antegrade_dominant(self) -> np.ndarray:
        return (self.antegrade_max_cm_s > 0) & (self.antegrade_power >= self.retrograde_power)

    @property
    def signal_present(self) -> np.ndarray:
        return (self.antegrade_max_cm_s > 0) | (self.retrograde_max_cm_s > 0)

    @property
    def max_velocity_cm_s(self) -> np.ndarray:
        """Signed maximum-velocity envelope: the dominant direction's maximum, antegrade positive."""
        return np.where(
            self.retrograde_dominant,
            -self.retrograde_max_cm_s,
            np.where(self.antegrade_dominant, self.antegrade_max_cm_s, 0.0),
        )

    @property
    def mean_velocity_cm_s(self) -> np.ndarray:
        """Signed mean-velocity trace of the dominant direction, antegrade positive."""
        return np.where(
            self.retrograde_dominant,
            -self.retrograde_mean_cm_s,
            np.where(self.antegrade_dominant, self.antegrade_mean_cm_s, 0.0),
        )


def display_intensity(pixels: np.ndarray) -> np.ndarray:
    """Brightness of a grey or colour spectral display as float in [0, 1], with colour overlays blanked.

    Grey uint8 is scaled by 1/255 (other integer types by their dtype's maximum; floats are taken as
    already in [0, 1]). For RGB(A), the brightness is the largest channel, which is monotonic for the tinted
    grey maps scanners use (bronze, blue, green). Pixels whose colour direction departs strongly from the
    display's own tint (a scanner's auto-trace line, cursors, coloured text) are returned as NaN so that
    the tracer treats them as unknown, not as flow.

    Parameters
    ----------
    pixels : (rows, cols) or (rows, cols, 3|4) ndarray

    Returns
    -------
    (rows, cols) float ndarray
    """
    p = np.asarray(pixels)
    if p.ndim not in (2, 3) or (p.ndim == 3 and p.shape[2] not in (3, 4)):
        raise InputError(f"a spectral display must be (rows, cols) or (rows, cols, 3), got shape {p.shape}")
    if np.issubdtype(p.dtype, np.integer):
        scale = float(np.iinfo(p.dtype).max)
    elif np.issubdtype(p.dtype, np.floating):
        scale = 1.0
    else:
        raise InputError(f"unsupported pixel type {p.dtype} for a spectral display")
    f = p.astype(np.float32) / np.float32(scale)
    if f.ndim == 2:
        return f
    rgb = f[..., :3]
    value = rgb.max(axis=2)
    bright = value > 0.25
    if np.count_nonzero(bright) < 20:
        return value
    direction = rgb / np.maximum(value, 1e-6)[..., None]
    # the display's tint is read from the spectrum, not from furniture drawn across the whole region (a
    # white or coloured baseline line, a grid line): on a dim spectrum such a line holds most bright pixels
    furniture = (bright.mean(axis=1) > 0.8)[:, None] | (bright.mean(axis=0) > 0.8)[None, :]
    spectrum = bright & ~furniture
    tint = np.median(direction[spectrum if np.count_nonzero(spectrum) >= 20 else bright], axis=0)
    deviation = np.linalg.norm(direction - tint[None, None, :], axis=2)
    overlay = bright & (deviation > 0.35)
    if np.count_nonzero(overlay) > 0.5 * np.count_nonzero(bright):  # no single tint: a true colour map
        return value
    out = value.copy()
    out[overlay] = np.nan
    return out


def _remove_static_lines(img: np.ndarray, full_scale: float) -> np.ndarray:
    """Replace rows/columns that are brighter than their neighbours across the whole image."""
    out = img.copy()
    rows, cols = out.shape
    for axis in (0, 1):
        n = out.shape[axis]
        if n < 5:
            continue
        a = np.moveaxis(out, axis, 0)
        pad = np.pad(a, ((2, 2), (0, 0)), mode="edge")
        neighbours = 0.5 * (pad[:-4] + pad[4:])
        excess = a - neighbours
        static = np.median(excess, axis=1) > 0.08 * full_scale
        static &= np.mean(excess > 0.03 * full_scale, axis=1) > 0.85
        if np.any(static):
            a[static] = neighbours[static]
    del rows, cols
    return out


def trace_spectrum(
    intensity: np.ndarray,
    row_velocity_cm_s: np.ndarray,
    col_time_s: np.ndarray,
    *,
    min_velocity_cm_s: float | None = None,
    k_sigma: float = 4.0,
    min_contrast: float | None = None,
    full_scale: float | None = None,
    smooth_time_ms: float = 12.0,
    hysteresis: float = 0.7,
    min_area_fraction: float = 1.0,
    edge_level: float | None = EDGE_LEVEL,
    band_margin_cm_s: float | None = None,
) -> SpectralTrace:
    """Trace the maximum and mean velocity envelopes of a spectrum image.

    Parameters
    ----------
    intensity : (rows, cols) float ndarray
        Brightness (display) or power in dB (spectrogram); larger is more signal. NaN marks unknown
        pixels (overlays), filled from the column's noise floor.
    row_velocity_cm_s : (rows,) ndarray
        Signed velocity of each row, antegrade positive (any order: a display runs downward).
    col_time_s : (cols,) ndarray
        Time of each column.
    min_velocity_cm_s
        Rows with a smaller speed (the baseline, the wall-filter band) are ignored. Default: three rows
        or 2 cm/s, whichever is larger.
    k_sigma
        Signal threshold above the noise floor, in noise spreads.
    min_contrast
        Minimum threshold above the floor (guards a display whose noise is clipped to black); default
        4 % of ``full_scale``.
    full_scale
        Range of the intensity units (1 for a display scaled to [0, 1]); default: the image's
        0.1-99.9 percentile range.
    hysteresis
        Pixels above ``floor + hysteresis * (threshold - floor)`` count as signal when connected to
        pixels above the threshold (1: no hysteresis).
    min_area_fraction
        Connected signal patches smaller than this fraction of 40 ms x 5 cm/s are dropped as speckle.
    smooth_time_ms
        Standard deviation of the Gaussian smoothing along time (at least 0.8 column).
    edge_level
        Where the maximum-velocity envelope sits on the spectrum's outer edge, as a fraction of the way from
        the noise floor to the spectrum's own plateau level in that column (see :data:`EDGE_LEVEL`);
        ``None``: the outermost signal pixel (the detection envelope, broadening included).
    band_margin_cm_s
        A column counts as flow on a side only where its edge-level envelope lies at least this far beyond
        the innermost traced row of that side (the edge of the baseline / wall-filter band); default:
        :data:`BAND_MARGIN_ROWS` rows; 0: no margin.

    Returns
    -------
    SpectralTrace
    """
    img = np.asarray(intensity, dtype=float)
    v = np.asarray(row_velocity_cm_s, dtype=float)
    t = np.asarray(col_time_s, dtype=float)
    if img.ndim != 2 or img.shape[0] < 16 or img.shape[1] < 8:
        raise InputError(f"a spectrum to trace must be at least 16 rows x 8 columns, got shape {img.shape}")
    if v.shape != (img.shape[0],) or t.shape != (img.shape[1],):
        raise InputError(
            f"row velocities {v.shape} and column times {t.shape} must match the spectrum {img.shape}"
        )
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(t))):
        raise InputError("row velocities and column times must be finite")
    finite = np.isfinite(img)
    if not np.any(finite):
        raise InputError("the spectral display holds no finite pixels")
    if full_scale is None:
        lo, hi = np.percentile(img[finite], [0.1, 99.9])
        full_scale = float(hi - lo) if hi > lo else 1.0
    if min_contrast is None:
        min_contrast = 0.04 * full_scale
    dv = float(np.median(np.abs(np.diff(v))))
    if min_velocity_cm_s is None:
        min_velocity_cm_s = max(3.0 * dv, 2.0)

    valid_rows = np.abs(v) >= min_velocity_cm_s
    if np.count_nonzero(valid_rows) < 8:
        raise InputError("the spectral display has too few rows away from the baseline to trace")
    # fill unknown pixels with their column's median before anything else
    if not np.all(finite):
        any_finite = finite.any(axis=0)
        col_med = np.full(img.shape[1], float(np.median(img[finite])))
        col_med[any_finite] = np.nanmedian(img[:, any_finite], axis=0)
        img = np.where(finite, img, col_med[None, :])
    img = _remove_static_lines(img, full_scale)
    sigma_rows = max(1.0, img.shape[0] / 150.0)
    s_per_col = float(np.median(np.diff(t))) if t.size > 1 else 0.01
    sigma_cols = max(0.8, smooth_time_ms / 1000.0 / max(s_per_col, 1e-6))
    smooth = ndimage.gaussian_filter(img, sigma=(sigma_rows, sigma_cols), mode="nearest")

    # 3. per-column noise floor from the lower percentiles (Gaussian: p35 = mu - 0.385 s, p10 = mu - 1.2816 s)
    vals = smooth[valid_rows]
    p10, p35 = np.percentile(vals, [10, 35], axis=0)
    spread = (p35 - p10) / (1.2816 - 0.3853)
    floor = p35 + 0.3853 * spread
    size = int(min(31, max(3, (img.shape[1] // 4) | 1)))
    floor = ndimage.median_filter(floor, size=size, mode="nearest")
    spread = ndimage.median_filter(spread, size=size, mode="nearest")
    threshold = floor + np.maximum(k_sigma * spread, min_contrast)
    first_pass = (smooth > (floor + np.maximum(k_sigma * spread, 0.15 * full_scale))[None, :]) & valid_rows[:, None]
    # second pass: the upper tail of the noise itself, from the pixels away from the first-pass signal, in
    # blocks of columns (a display whose noise is clipped to black has no lower tail to measure)
    near_signal = ndimage.binary_dilation(first_pass, structure=np.ones((7, 7), bool))
    noise_px = valid_rows[:, None] & ~near_signal
    block = 24
    n_blocks = int(np.ceil(img.shape[1] / block))
    tail = np.full(n_blocks, np.nan)
    for b in range(n_blocks):
        sl = slice(b * block, min((b + 1) * block, img.shape[1]))
        vals_b = smooth[:, sl][noise_px[:, sl]]
        if vals_b.size >= 200:
            tail[b] = np.percentile(vals_b, 99.7)
    floor_b = np.array([np.median(floor[b * block:(b + 1) * block]) for b in range(n_blocks)])
    tail_excess = tail - floor_b
    if np.any(np.isfinite(tail_excess)):
        # the noise is stationary over a sweep; the lower quartile over blocks ignores blocks where weak
        # flow escaped the first pass
        threshold = np.maximum(threshold, floor + 1.3 * float(np.nanpercentile(tail_excess, 25)))
    threshold = np.maximum(threshold, floor + min_contrast)
    strong = (smooth > threshold[None, :]) & valid_rows[:, None]
    # the wall-filter / clutter band: rows next to the baseline that show "signal" in nearly every column
    # (flow comes and goes; a band that never leaves is the tissue echo the wall filter let through)
    persistent = np.mean(strong, axis=1) > 0.85
    for sign in (1.0, -1.0):
        rows_side = np.flatnonzero(valid_rows & (np.sign(v) == sign))
        rows_side = rows_side[np.argsort(np.abs(v[rows_side]))]  # from the baseline outward
        n_band = int(np.argmax(~persistent[rows_side])) if rows_side.size and not persistent[rows_side].all() else 0
        if 0 < n_band < rows_side.size // 3:
            valid_rows[rows_side[:n_band]] = False
            strong[rows_side[:n_band]] = False
    # hysteresis (as in Canny's edge linking): weaker pixels count as signal where they connect to strong
    # ones, which keeps a faint, decelerating reflux continuous through speckle dropouts
    weak = (smooth > (floor + hysteresis * (threshold - floor))[None, :]) & valid_rows[:, None]
    labels, n_labels = ndimage.label(weak, structure=np.ones((3, 3), bool))
    keep = np.zeros(n_labels + 1, bool)
    keep[np.unique(labels[strong])] = True
    # a flow pattern covers at least ~40 ms x 5 cm/s; a speckle blob that crossed the threshold does not
    area = np.bincount(labels.ravel(), minlength=n_labels + 1)
    min_area_px = max(12.0, (0.040 / max(s_per_col, 1e-6)) * (5.0 / max(dv, 1e-6)) * min_area_fraction)
    keep &= area >= min_area_px
    keep[0] = False
    linked = keep[labels]
    strong &= linked
    weak_threshold = floor + hysteresis * (threshold - floor)
    excess = np.clip(smooth - floor[None, :], 0.0, None)
    run_rows = max(3, int(round(img.shape[0] / 50.0)))

    def side(rows_sel: np.ndarray, mask: np.ndarray, threshold: np.ndarray) -> tuple:
        idx = np.flatnonzero(rows_sel)
        if idx.size == 0:
            zeros = np.zeros(img.shape[1])
            return zeros, zeros, zeros, np.zeros(img.shape[1], bool), 0.0
        order = idx[np.argsort(-np.abs(v[idx]))]  # outermost (fastest) first
        m = mask[order]
        cs = np.vstack([np.zeros((1, m.shape[1])), np.cumsum(m, axis=0)])
        n = m.shape[0]
        ends = np.minimum(np.arange(n) + run_rows, n)
        dens = (cs[ends] - cs[:n]) / (ends - np.arange(n))[:, None]
        qualify = m & (dens >= 0.6)
        any_q = qualify.any(axis=0)
        first = np.argmax(qualify, axis=0)
        speeds = np.abs(v[order])
        env = np.where(any_q, speeds[first], 0.0)
        # sub-row refinement: interpolate the threshold crossing between the first signal row and the
        # row just outside it
        cols = np.arange(m.shape[1])
        outer = np.maximum(first - 1, 0)
        g_in = smooth[order[first], cols]
        g_out = smooth[order[outer], cols]
        denom = g_in - g_out
        frac = np.where(denom > 1e-12, (g_in - threshold) / np.where(denom > 1e-12, denom, 1.0), 0.0)
        frac = np.clip(frac, 0.0, 1.0)
        env = np.where(any_q & (first > 0), env + frac * (speeds[outer] - speeds[first]), env)
        clipped = any_q & (first == 0)
        # mean and power over the signal rows inside the envelope
        inside = np.arange(n)[:, None] >= first[None, :]
        w = excess[order] * m * inside
        power = w.sum(axis=0)
        mean = np.where(power > 0, (w * speeds[:, None]).sum(axis=0) / np.maximum(power, 1e-12), 0.0)
        mean = np.where(any_q, mean, 0.0)
        return env, mean, np.where(any_q, power, 0.0), clipped, float(speeds[0])

    def both(rows_sel: np.ndarray) -> tuple:
        # the strong mask gives the envelope wherever it finds flow; the hysteresis mask only fills the
        # columns where the strong one dropped out (so it cannot push envelopes outward into the noise)
        env, mean, power, clipped, lim = side(rows_sel, strong, threshold)
        env_h, mean_h, power_h, _, _ = side(rows_sel, linked, weak_threshold)
        fill = (env == 0) & (env_h > 0)
        return (np.where(fill, env_h, env), np.where(fill, mean_h, mean), np.where(fill, power_h, power),
                clipped, lim)

    def edge(rows_sel: np.ndarray, outer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The edge-level envelope inside the detected (outer) one, and the plateau level per column."""
        idx = np.flatnonzero(rows_sel)
        if idx.size == 0 or edge_level is None:
            return outer, np.full(img.shape[1], np.nan)
        order = idx[np.argsort(-np.abs(v[idx]))]
        speeds = np.abs(v[order])
        s = smooth[order]
        inside = (speeds[:, None] <= outer[None, :] + 1e-9) & (outer[None, :] > 0)
        sig = inside & linked[order]
        # the plateau: the upper part of the spectrum's own level in the column (robust to speckle peaks)
        vals = np.where(sig, s, np.nan)
        plateau = np.full(s.shape[1], np.nan)
        has = sig.any(axis=0)
        if np.any(has):
            plateau[has] = np.nanpercentile(vals[:, has], 90, axis=0)
        level = floor + edge_level * (plateau - floor)
        above = inside & (s >= level[None, :])
        n = above.shape[0]
        cs = np.vstack([np.zeros((1, above.shape[1])), np.cumsum(above, axis=0)])
        ends = np.minimum(np.arange(n) + run_rows, n)
        dens = (cs[ends] - cs[:n]) / (ends - np.arange(n))[:, None]
        qualify = above & (dens >= 0.6)
        any_q = qualify.any(axis=0) & np.isfinite(level)
        first = np.argmax(qualify, axis=0)
        cols = np.arange(n_cols_all)
        env = np.where(any_q, speeds[first], 0.0)
        outer_row = np.maximum(first - 1, 0)
        g_in = s[first, cols]
        g_out = s[outer_row, cols]
        denom = g_in - g_out
        frac = np.where(denom > 1e-12, (g_in - level) / np.where(denom > 1e-12, denom, 1.0), 0.0)
        frac = np.clip(frac, 0.0, 1.0)
        env = np.where(any_q & (first > 0), env + frac * (speeds[outer_row] - speeds[first]), env)
        # flow slower than the rows traced (the baseline / wall-filter band) is no flow
        env = np.where(env >= min_velocity_cm_s, env, 0.0)
        # near the band's edge, what shows as brightly at the mirrored speeds on the other side of the
        # baseline is not directional flow: the wall filter's ringing after flow stops abruptly, clutter
        # motion and the filter's transition band are symmetric about zero; blood flow is one-sided
        near = (env > 0) & (env < float(speeds.min()) + band_margin)
        if np.any(near):
            ex = np.clip(s - floor[None, :], 0.0, None)
            ex_mirror = np.clip(smooth[mirror[order]] - floor[None, :], 0.0, None)
            band = (speeds[:, None] <= env[None, :] + 1e-9) & near[None, :]
            own = np.sum(ex * band, axis=0)
            other = np.sum(ex_mirror * band, axis=0)
            env = np.where(near & (other >= BAND_SYMMETRY * own), 0.0, env)
        return np.minimum(env, outer), plateau

    n_cols_all = img.shape[1]
    band_margin = BAND_MARGIN_ROWS * dv if band_margin_cm_s is None else float(band_margin_cm_s)
    # the row showing the opposite velocity of each row (nearest), for the symmetry test near the band
    by_v = np.argsort(v)
    mirror = by_v[np.clip(np.searchsorted(v[by_v], -v), 0, v.size - 1)]
    alt = by_v[np.clip(np.searchsorted(v[by_v], -v) - 1, 0, v.size - 1)]
    mirror = np.where(np.abs(v[alt] + v) < np.abs(v[mirror] + v), alt, mirror)
    a_out, a_mean, a_pow, a_clip, a_lim = both(valid_rows & (v > 0))
    r_out, r_mean, r_pow, r_clip, r_lim = both(valid_rows & (v < 0))
    a_max, a_plateau = edge(valid_rows & (v > 0), a_out)
    r_max, r_plateau = edge(valid_rows & (v < 0), r_out)
    a_clip &= a_max > 0
    r_clip &= r_max > 0
    # 5. one-column spikes
    a_max = ndimage.median_filter(a_max, 5, mode="constant", cval=0.0)
    r_max = ndimage.median_filter(r_max, 5, mode="constant", cval=0.0)
    a_mean = np.where(a_max > 0, ndimage.median_filter(a_mean, 5, mode="nearest"), 0.0)
    r_mean = np.where(r_max > 0, ndimage.median_filter(r_mean, 5, mode="nearest"), 0.0)
    a_level = np.nan_to_num(a_plateau - floor, nan=0.0).clip(0.0)
    r_level = np.nan_to_num(r_plateau - floor, nan=0.0).clip(0.0)
    a_level = np.where(a_max > 0, ndimage.median_filter(a_level, 5, mode="nearest"), 0.0)
    r_level = np.where(r_max > 0, ndimage.median_filter(r_level, 5, mode="nearest"), 0.0)
    a_pow = np.where(a_max > 0, a_pow, 0.0)
    r_pow = np.where(r_max > 0, r_pow, 0.0)
    return SpectralTrace(
        t_s=t,
        antegrade_max_cm_s=a_max,
        retrograde_max_cm_s=r_max,
        antegrade_mean_cm_s=np.minimum(a_mean, a_max),
        retrograde_mean_cm_s=np.minimum(r_mean, r_max),
        antegrade_power=a_pow,
        retrograde_power=r_pow,
        clipped_antegrade=a_clip & (a_max > 0),
        clipped_retrograde=r_clip & (r_max > 0),
        noise_floor=floor,
        noise_spread=spread,
        antegrade_level=a_level,
        retrograde_level=r_level,
        envelope_definition=("outermost signal" if edge_level is None else
                             f"edge level {edge_level:g} (noise floor to plateau, displayed scale)"),
        antegrade_limit_cm_s=a_lim,
        retrograde_limit_cm_s=r_lim,
    )


def row_velocities_cm_s(
    calibration: SpectralCalibration, n_rows: int, *, reflux_above_baseline: bool = False
) -> np.ndarray:
    """Signed velocity of each display row, antegrade positive, read by display position.

    The vendor's sign of ``PhysicalDeltaY`` is ignored: a row above the baseline is on the upper side,
    whatever the sign. ``reflux_above_baseline`` says the display is inverted (retrograde shown above).
    """
    v_up = calibration.velocity_above_positive_cm_s(np.arange(n_rows))
    return -v_up if reflux_above_baseline else v_up


def trace_display(
    pixels: np.ndarray,
    calibration: SpectralCalibration,
    *,
    reflux_above_baseline: bool = False,
    min_velocity_cm_s: float | None = None,
    k_sigma: float = 4.0,
    edge_level: float | None = EDGE_LEVEL,
) -> SpectralTrace:
    """Trace a calibrated spectral Doppler display (the cropped PW/CW region).

    Parameters
    ----------
    pixels : (rows, cols) or (rows, cols, 3) ndarray
        The spectral region only, as displayed (grey or colour).
    calibration
        Its :class:`~echosclero.frames.SpectralCalibration` (time per column, velocity per row, baseline).
    reflux_above_baseline
        ``False`` (default): flow toward the heart is shown above the baseline, reflux below.
        ``True``: the display is inverted.
    min_velocity_cm_s, k_sigma, edge_level
        See :func:`trace_spectrum`.
    """
    img = display_intensity(pixels)
    n_rows, n_cols = img.shape
    if not (-0.5 <= calibration.baseline_row <= n_rows - 0.5):
        raise InputError(
            f"the spectral baseline (row {calibration.baseline_row:g}) lies outside the region's "
            f"{n_rows} rows; the region's ReferencePixelY0 may be wrong"
        )
    v = row_velocities_cm_s(calibration, n_rows, reflux_above_baseline=reflux_above_baseline)
    t = calibration.time_s(np.arange(n_cols))
    return trace_spectrum(img, v, t, min_velocity_cm_s=min_velocity_cm_s, k_sigma=k_sigma, full_scale=1.0,
                          edge_level=edge_level)
