"""Reflux timing from a traced spectrum: augmentation, release, and the retrograde flow that follows.

A duplex reflux test (standing, distal compression then release, or Valsalva) shows an antegrade surge
while the calf is squeezed; on release, flow in an incompetent vein reverses and stays retrograde until the
valves close or the column empties. The reflux duration is the time from the start to the end of that
retrograde flow (SVS/AVF 2011 guideline, Gloviczki et al., J Vasc Surg 2011;53:2S-48S: "reflux is
retrograde flow ... measured after release of compression"). Whether a duration is pathological depends on
the segment: see :mod:`echosclero.clinic.reflux`.

Algorithm on a :class:`~echosclero.doppler.envelope.SpectralTrace`:

1. the augmentation is the run of antegrade-dominant columns (speckle dropouts of up to ``max_gap_ms``
   bridged) carrying the most flow signal (summed excess brightness of the spectrum);
2. the reflux is the retrograde-dominant run (dropouts bridged likewise) with the largest velocity-time
   integral among those that start after the augmentation peak and no later than
   ``search_after_release_s`` after the augmentation ends;
3. without a detectable augmentation (a Valsalva manoeuvre, or a sweep that starts after release) the
   longest retrograde run is taken, and a warning says so;
4. the run's start and end are moved onto its edges in time: where the retrograde strength (the
   spectrum's plateau above the noise floor) crosses ``TIME_EDGE_LEVEL`` of its median over the run,
   interpolated between columns (the analysis window and the smoothing spread an abrupt start or end over
   a few columns that the low detection threshold would all count); ``reflux_ms`` is end minus start.

The trace is refused, with a message naming the way out, when it holds no flow at all, or when the
envelope runs into the edge of the display (aliasing: the velocity scale is too small).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from echosclero.doppler.envelope import ENVELOPE_DEFINITION, SpectralTrace, trace_display
from echosclero.doppler.iq import trace_iq
from echosclero.errors import InputError
from echosclero.frames import SpectralCalibration

__all__ = [
    "PEAK_VELOCITY_DEFINITION",
    "AliasingError",
    "EmptySpectrumError",
    "RefluxMeasurement",
    "measure_reflux",
    "reflux_from_display",
    "reflux_from_iq",
]

REFLUX_SCHEMA = "echosclero.reflux/1"

#: The start and end of the reflux: where the retrograde spectrum's strength (its plateau above the noise
#: floor, displayed scale) crosses this fraction of its median over the run. Higher values cut an abrupt
#: end's blur more closely but also cut a slowing tail that fades into the wall-filter band; 0.2 keeps both
#: families' median error within 30 ms (docs/benchmarks-reflux.md).
TIME_EDGE_LEVEL = 0.2


#: What the reported peak velocities are, with the definition of the quantity they estimate (written into the JSON).
PEAK_VELOCITY_DEFINITION = {
    "estimates": (
        "the clinical peak velocity: the largest instantaneous speed of the fastest scatterers in the sample "
        "volume, i.e. the maximum of the flow's maximum-velocity envelope, without the display's spectral "
        "broadening"
    ),
    "reported_as": (
        "peak_antegrade_velocity_cm_s: the largest value of the edge-level envelope (see envelope) over the "
        "augmentation run; peak_reflux_velocity_cm_s: the same over the timed reflux (between reflux_start_s "
        "and reflux_end_s)"
    ),
    "known_bias": (
        "the edge level keeps part of the broadening (analysis window, transit time, geometry): the error "
        "depends on the shape of the velocity distribution in the sample volume; measured per display family "
        "in docs/benchmarks-reflux.md (issue 15: not yet within 2 cm/s on every display)"
    ),
    "source": (
        "maximum-frequency envelope and spectral broadening: Evans DH, McDicken WN, Doppler Ultrasound: "
        "Physics, Instrumentation and Signal Processing, 2nd ed., Wiley 2000; Newhouse VL et al., IEEE Trans "
        "Sonics Ultrason 1980;27:50-59"
    ),
}


class EmptySpectrumError(InputError):
    """The spectral display shows no Doppler signal."""


class AliasingError(InputError):
    """The spectrum wraps around the velocity scale."""


@dataclass(frozen=True, slots=True, eq=False)
class RefluxMeasurement:
    """Result of a reflux test on one spectral trace (times in s on the trace's axis, speeds in cm/s)."""

    reflux_ms: float
    reflux_start_s: float | None
    reflux_end_s: float | None
    peak_reflux_velocity_cm_s: float
    peak_antegrade_velocity_cm_s: float
    augmentation_start_s: float | None
    augmentation_end_s: float | None
    trace: SpectralTrace
    warnings: tuple[str, ...] = field(default=())

    @property
    def augmentation_found(self) -> bool:
        return self.augmentation_start_s is not None

    def to_json(self) -> dict:
        """The public ``echosclero.reflux/1`` document (extra keys beyond the contract are additive)."""
        tr = self.trace
        return {
            "schema": REFLUX_SCHEMA,
            "reflux_ms": round(float(self.reflux_ms), 1),
            "peak_reflux_velocity_cm_s": round(float(self.peak_reflux_velocity_cm_s), 2),
            "peak_antegrade_velocity_cm_s": round(float(self.peak_antegrade_velocity_cm_s), 2),
            "trace": [[round(float(t), 4), round(float(v), 2)] for t, v in zip(tr.t_s, tr.max_velocity_cm_s,
                                                                               strict=True)],
            "mean_trace": [[round(float(t), 4), round(float(v), 2)]
                           for t, v in zip(tr.t_s, tr.mean_velocity_cm_s, strict=True)],
            "reflux_start_s": None if self.reflux_start_s is None else round(self.reflux_start_s, 4),
            "reflux_end_s": None if self.reflux_end_s is None else round(self.reflux_end_s, 4),
            "augmentation_start_s": None if self.augmentation_start_s is None
            else round(self.augmentation_start_s, 4),
            "augmentation_end_s": None if self.augmentation_end_s is None else round(self.augmentation_end_s, 4),
            "velocity_scale_cm_s": {
                "antegrade": round(tr.antegrade_limit_cm_s, 2),
                "retrograde": round(tr.retrograde_limit_cm_s, 2),
            },
            "warnings": list(self.warnings),
            "envelope": {**ENVELOPE_DEFINITION, "time_edge_level": TIME_EDGE_LEVEL,
                         "traced_as": tr.envelope_definition},
            "peak_velocity": dict(PEAK_VELOCITY_DEFINITION),
        }


def _refine_run_ends(level: np.ndarray, flag: np.ndarray, first: int, last: int, t0_s: float, s_per_col: float,
                     fraction: float, max_trim_s: float) -> tuple[float, float]:
    """Start and end times of a flow run, where its strength crosses ``fraction`` x its median (sub-column).

    The display's time blur (analysis window, smoothing) spreads an abrupt start or end over a few columns
    where the spectrum fades; the low-threshold detection counts all of them. The crossing of a fixed
    fraction of the run's own strength is the same place on that edge whatever the gain.

    Column ``c`` covers ``[t0 + c * dt, t0 + (c + 1) * dt)``; a crossing between columns ``c`` and ``c + 1``
    at the fraction ``x`` of the way lies at ``t0 + (c + 1 + x) * dt``.
    """
    run = level[first:last + 1][flag[first:last + 1]]
    start_s = t0_s + first * s_per_col
    end_s = t0_s + (last + 1) * s_per_col
    if run.size < 3 or not np.any(run > 0):
        return start_s, end_s
    thr = fraction * float(np.median(run))
    lv = np.where(flag, level, 0.0)
    max_cols = int(round(max_trim_s / s_per_col))
    c = first
    while c < min(last, first + max_cols) and lv[c] < thr:
        c += 1
    before = lv[c - 1] if c - 1 >= 0 else 0.0
    if not (c == first and before >= thr):
        x = (thr - before) / (lv[c] - before) if lv[c] > before else 1.0
        start_s = t0_s + (c + float(np.clip(x, 0.0, 1.0))) * s_per_col
    c = last
    while c > max(first, last - max_cols) and lv[c] < thr:
        c -= 1
    after = lv[c + 1] if c + 1 < lv.size else 0.0
    if not (c == last and after >= thr):
        x = (lv[c] - thr) / (lv[c] - after) if lv[c] > after else 1.0
        end_s = t0_s + (c + 1 + float(np.clip(x, 0.0, 1.0))) * s_per_col
    return start_s, max(end_s, start_s + s_per_col)


def _runs(flag: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) index runs of True, merging runs separated by <= max_gap False columns."""
    idx = np.flatnonzero(flag)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def measure_reflux(
    trace: SpectralTrace,
    *,
    max_gap_ms: float = 60.0,
    search_after_release_s: float = 1.0,
    min_augmentation_cm_s: float = 5.0,
    aliasing_tolerance: float = 0.02,
    time_edge_level: float | None = TIME_EDGE_LEVEL,
    max_trim_ms: float = 600.0,
) -> RefluxMeasurement:
    """Find the augmentation and the reflux that follows release; measure its duration and velocities.

    Parameters
    ----------
    trace
        Envelopes from :func:`~echosclero.doppler.envelope.trace_display` or
        :func:`~echosclero.doppler.iq.trace_iq`.
    max_gap_ms
        Speckle dropouts up to this long do not end a flow run.
    search_after_release_s
        The reflux must start within this time after the augmentation ends.
    min_augmentation_cm_s
        A smaller antegrade peak is not taken as an augmentation.
    aliasing_tolerance
        Fraction of flow columns allowed to touch the display edge before the spectrum is refused as
        aliased.
    time_edge_level
        The reflux starts and ends where the retrograde spectrum's strength crosses this fraction of its
        median strength over the run (see :data:`TIME_EDGE_LEVEL`); ``None``: whole flagged columns.
    max_trim_ms
        The start and the end move inward by at most this much from the detected run (600 ms: a causal wall
        filter's ringing after an abrupt valve closure can trail the flow by half a second at a fraction of its
        strength; docs/benchmarks-reflux.md).

    Raises
    ------
    EmptySpectrumError
        No flow anywhere in the trace.
    AliasingError
        The envelope runs into the edge of the velocity scale.
    """
    s_per_col = trace.s_per_col
    if s_per_col <= 0:
        raise InputError("the trace needs at least two columns with increasing times")
    present = trace.signal_present
    n_flow = int(np.count_nonzero(present))
    if n_flow < 3:
        raise EmptySpectrumError(
            "no Doppler signal found in the spectral display (empty or noise-only spectrum); check that "
            "the file shows a spectral trace, and the gain"
        )
    n_clipped = int(np.count_nonzero(trace.clipped_antegrade | trace.clipped_retrograde))
    if n_clipped >= 3 and n_clipped > aliasing_tolerance * n_flow:
        raise AliasingError(
            f"the spectrum is aliased: the envelope reaches the edge of the velocity scale in {n_clipped} "
            f"columns (scale {trace.antegrade_limit_cm_s:.0f} cm/s antegrade, "
            f"{trace.retrograde_limit_cm_s:.0f} cm/s retrograde); re-acquire with a higher velocity scale "
            "(PRF) or shift the baseline"
        )
    max_gap = int(round(max_gap_ms / 1000.0 / s_per_col))
    warnings: list[str] = []
    ante = trace.antegrade_dominant
    retro = trace.retrograde_dominant
    a_env = np.where(ante, trace.antegrade_max_cm_s, 0.0)
    r_env = np.where(retro, trace.retrograde_max_cm_s, 0.0)

    def area(run: tuple[int, int], env: np.ndarray) -> float:
        return float(env[run[0]:run[1] + 1].sum())

    aug: tuple[int, int] | None = None
    a_runs = [r for r in _runs(ante, max_gap) if a_env[r[0]:r[1] + 1].max() >= min_augmentation_cm_s]
    if a_runs:
        # the augmentation is the antegrade run carrying the most flow signal (the spectrum's summed excess
        # brightness over the run), not the highest single column nor the largest velocity-time integral: a
        # speckle spike has a high peak but no area, and a faint broadband flash (a wall filter settling at
        # the start of a sweep) reaches the edge of the scale with hardly any strength
        a_pow = np.where(ante, trace.antegrade_power, 0.0)
        aug = max(a_runs, key=lambda r: area(r, a_pow))
    reflux: tuple[int, int] | None = None
    runs = _runs(retro, max_gap)
    if aug is not None:
        i_peak = aug[0] + int(np.argmax(a_env[aug[0]:aug[1] + 1]))
        limit = aug[1] + int(round(search_after_release_s / s_per_col))
        candidates = [(max(f, i_peak + 1), la) for f, la in runs if la > i_peak and f <= limit]
        if candidates:
            reflux = max(candidates, key=lambda r: area(r, r_env))
    else:
        warnings.append("no antegrade augmentation found; the longest retrograde run was measured")
        if runs:
            reflux = max(runs, key=lambda r: area(r, r_env))

    if reflux is not None:
        first, last = reflux
        # a run must hold retrograde flow in at least half its columns (bridged gaps are the rest)
        if np.count_nonzero(retro[first:last + 1]) < 0.5 * (last - first + 1):
            reflux = None
    if reflux is None:
        reflux_ms, start_s, end_s, peak_r = 0.0, None, None, 0.0
    else:
        first, last = reflux
        start_s = float(trace.t_s[first])
        end_s = float(trace.t_s[last] + s_per_col)
        if trace.retrograde_level is not None and time_edge_level is not None:
            start_s, end_s = _refine_run_ends(trace.retrograde_level, retro, first, last, float(trace.t_s[0]),
                                              s_per_col, time_edge_level, max_trim_ms / 1000.0)
        reflux_ms = (end_s - start_s) * 1000.0
        i0 = max(first, int(np.floor((start_s - trace.t_s[0]) / s_per_col)))
        i1 = min(last, int(np.ceil((end_s - trace.t_s[0]) / s_per_col)) - 1)
        peak_r = float(r_env[i0:i1 + 1].max()) if i1 >= i0 else float(r_env[first:last + 1].max())
    if aug is not None:
        aug_start, aug_end = float(trace.t_s[aug[0]]), float(trace.t_s[aug[1]] + s_per_col)
        peak_a = float(a_env[aug[0]:aug[1] + 1].max())
    else:
        peak_a = float(a_env.max()) if a_env.size else 0.0
        aug_start = aug_end = None
    if reflux is not None and reflux[1] >= trace.t_s.size - 1:
        warnings.append("the retrograde flow runs to the end of the sweep: reflux_ms is a lower bound")
    return RefluxMeasurement(
        reflux_ms=float(reflux_ms),
        reflux_start_s=start_s,
        reflux_end_s=end_s,
        peak_reflux_velocity_cm_s=peak_r,
        peak_antegrade_velocity_cm_s=peak_a,
        augmentation_start_s=aug_start,
        augmentation_end_s=aug_end,
        trace=trace,
        warnings=tuple(warnings),
    )


def reflux_from_display(
    pixels: np.ndarray,
    calibration: SpectralCalibration,
    *,
    reflux_above_baseline: bool = False,
    **options,
) -> RefluxMeasurement:
    """Trace a calibrated spectral display and measure its reflux (see :func:`measure_reflux`).

    Parameters
    ----------
    pixels : (rows, cols) or (rows, cols, 3) ndarray
        The spectral region only (grey or colour).
    calibration
        Its calibration; above/below the baseline is read by display position, whatever the vendor's
        sign of the velocity step.
    reflux_above_baseline
        ``False`` (default): antegrade above the baseline, reflux below.
    **options
        Passed to :func:`measure_reflux`.
    """
    trace = trace_display(pixels, calibration, reflux_above_baseline=reflux_above_baseline)
    return measure_reflux(trace, **options)


def reflux_from_iq(
    iq: np.ndarray,
    *,
    prf_hz: float,
    f0_hz: float,
    angle_deg: float,
    s_per_col: float = 0.01,
    window_ms: float = 20.0,
    antegrade_positive_doppler: bool = True,
    **options,
) -> RefluxMeasurement:
    """Measure reflux from slow-time IQ (see :func:`~echosclero.doppler.iq.trace_iq`)."""
    trace = trace_iq(iq, prf_hz=prf_hz, f0_hz=f0_hz, angle_deg=angle_deg, s_per_col=s_per_col,
                     window_ms=window_ms, antegrade_positive_doppler=antegrade_positive_doppler)
    return measure_reflux(trace, **options)
