"""Vein / artery classification from evidence gathered over time.

Cues (each a log-odds contribution, summed; positive = artery):

* colour-flow pulsatility — arterial flow flashes with each systole (colour fraction swings between ~0 and
  a large part of the lumen), venous flow is steady and abolished by compression;
* lumen pulsatility — arterial diameter swings ~5-10 % with the cardiac cycle, a vein's does not;
* compressibility — a lumen that collapses (> 70 % area loss) under the probe is a vein (Lensing et al.,
  NEJM 1989;320:342-45); arteries barely deform;
* wall echogenicity — arterial walls (media) are thicker and brighter than venous walls.

A still frame gives only the wall cue; the kind stays ``"unknown"`` until the summed evidence is decisive.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from echosclero.guidance._quantile import median, percentile

__all__ = ["DECIDE_LOGIT", "artery_logit"]

#: |log-odds| needed to call a vessel artery or vein.
DECIDE_LOGIT = 2.0
#: Wall ratio (75th percentile of grey / tissue level in a 0.2-1.0 mm ring) separating the two kinds.
WALL_SPLIT = 1.45
#: Window over which pulsatility is judged (s); a cardiac cycle is 0.5-1.5 s.
PULSE_WINDOW_S = 1.5
#: Shortest series in which a pulse, once seen, counts (s): a systolic distension and its fall.
MIN_PULSE_SPAN_S = 0.5
#: Series length (s) from which the *absence* of a pulse counts in full: one whole cardiac cycle at 50 per
#: minute, so that a systole cannot fall outside it; shorter quiet series count in proportion (from half of
#: it). Calling an artery a vein silences TIP_IN_ARTERY, so this side waits longer.
MIN_QUIET_SPAN_S = 1.2
#: A diameter swing is a pulse above both bounds: 2 % of the diameter (arteries: 5-10 %) and 0.12 mm.
PULSE_REL = 0.02
PULSE_MM = 0.12
#: Log-odds (vein) of a lumen found filled with echoes (thrombus).
ECHOGENIC_LOGIT = 2.0
#: Pulse score (swing over the bounds above) at which the cue is neutral: an artery scores 2-5 (its 5-10 %
#: swing), a still lumen 0-0.6 (segmentation noise, more where part of it is hidden and its width inferred).
PULSE_SCORE_MID = 0.7
#: The three-frame median (against one-frame segmentation glitches) is applied only while three frames last
#: less than a systolic distension (~0.15 s): at 14 frames/s and above.
GLITCH_FILTER_MAX_DT_S = 0.07
#: Running-median window (s) whose output is taken as the slow baseline of the diameter series.
BASELINE_S = 0.5
#: Two systolic peaks of one series are at least this far apart (s): a cycle lasts 0.4 s even at 150 per minute.
SYSTOLE_SEPARATION_S = 0.33
#: A lumen was watched through a systole seen elsewhere when its series starts at least this long (s) before the
#: peak (the distension rises over ~0.1 s) and runs on this long after it (it falls over ~0.3 s).
SYSTOLE_BEFORE_S = 0.1
SYSTOLE_AFTER_S = 0.15


def _window(hist, t_now: float, span: float) -> np.ndarray:
    """Finite values of a time-ordered ``(t, value)`` history within ``span`` of ``t_now``."""
    return np.asarray([v for (_, v) in _recent(hist, t_now, span, positive=False)], dtype=float)


def _running_median(x: np.ndarray, k: int) -> np.ndarray:
    """Median over a centred window of odd length ``k`` (edges padded with the end values)."""
    half = k // 2
    padded = np.concatenate((np.full(half, x[0]), x, np.full(half, x[-1])))
    return np.partition(np.lib.stride_tricks.sliding_window_view(padded, k), half, axis=1)[:, half]


def _median3(x: np.ndarray) -> np.ndarray:
    """Running median of three (the output is two samples shorter)."""
    a, b, c = x[:-2], x[1:-1], x[2:]
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def diameter_swing(areas, t_now: float, span_s: float = PULSE_WINDOW_S) -> tuple[float, float] | None:
    """Cardiac swing of a lumen: (peak-to-peak in mm, relative to the mean diameter) over the last ``span_s``.

    The equivalent diameter series is high-passed by subtracting its running median over
    :data:`BASELINE_S` (slow drift, respiration, probe motion, and slow deformations such as a needle or its
    ring-down indenting the wall, change over seconds; the systolic distension of an artery rises within
    ~0.1 s and falls back within the cycle), then median-filtered over three frames at frame rates where a
    distension lasts several frames (a one-frame segmentation glitch is not a pulse) before taking its range.
    ``None`` while the series covers less than :data:`MIN_PULSE_SPAN_S` or has fewer than 8 samples.
    """
    sw = _swing(areas, t_now, span_s)
    return None if sw is None else sw[:2]


def _residual(areas, t_now: float, span_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """The high-passed equivalent-diameter series of :func:`diameter_swing`, not yet glitch-filtered:
    (times s, residual mm, diameters mm, median frame interval s).

    ``None`` while the series covers less than :data:`MIN_PULSE_SPAN_S` or has fewer than 8 samples."""
    pts = _recent(areas, t_now, span_s)
    if len(pts) < 8:
        return None
    arr = np.array(pts)
    t = arr[:, 0]
    if t[-1] - t[0] < MIN_PULSE_SPAN_S:
        return None
    d = 2.0 * np.sqrt(arr[:, 1] / math.pi)
    dt = statistics.median([b - a for a, b in zip(t[:-1].tolist(), t[1:].tolist(), strict=True)])
    k = max(3, int(round(BASELINE_S / max(dt, 1e-3))) | 1)
    return t, d - _running_median(d, min(k, (d.size - 1) | 1)), d, dt


def _swing_of(res: np.ndarray, d: np.ndarray, dt: float) -> tuple[float, float]:
    """(swing mm, relative swing) of a residual series (see :func:`diameter_swing`)."""
    # a one-frame glitch is not a pulse, but at low frame rates a systole may only show in one frame
    sm = _median3(res) if dt <= GLITCH_FILTER_MAX_DT_S else res
    base = float(median(sm))
    up, down = float(sm.max()) - base, base - float(sm.min())
    # an artery distends in systole: a brief rise above its diastolic width. A lumen that narrows briefly
    # instead (a vein squeezed by the artery beside it, a needle tapping) is not pulsing itself: only its
    # rise counts then
    swing = up + down if up >= down else up
    return swing, swing / float(d.mean())


def _swing(areas, t_now: float, span_s: float = PULSE_WINDOW_S) -> tuple[float, float, float] | None:
    """:func:`diameter_swing` and the time the series spans (s)."""
    r = _residual(areas, t_now, span_s)
    if r is None:
        return None
    t, res, d, dt = r
    return (*_swing_of(res, d, dt), float(t[-1] - t[0]))


def _score(swing_mm: float, rel: float) -> float:
    return min(rel / PULSE_REL, swing_mm / PULSE_MM)


def pulse_score(areas, t_now: float) -> float | None:
    """Swing of the lumen over the pulse bounds (:data:`PULSE_REL`, :data:`PULSE_MM`): an artery scores 2-5."""
    sw = _swing(areas, t_now)
    return None if sw is None else _score(sw[0], sw[1])


def _peaks(t: np.ndarray, res: np.ndarray) -> list[float]:
    base = float(median(res))
    top = float(res.max())
    if top <= base:
        return []
    level = base + 0.5 * (top - base)
    out = []
    for i in np.flatnonzero(res >= level).tolist():
        near = np.abs(t - t[i]) <= SYSTOLE_SEPARATION_S
        if res[i] >= res[near].max() and not (res[near & (t < t[i])] >= res[i]).any():
            out.append(float(t[i]))
    return out


def systole_times(areas, t_now: float, span_s: float = PULSE_WINDOW_S, *, min_score: float = 0.0) -> list[float]:
    """Times (s) of the systolic peaks in a pulsing lumen's width series over the last ``span_s``; none unless
    its pulse scores at least ``min_score`` (:func:`pulse_score`).

    A peak is the highest residual (see :func:`diameter_swing`; not median-filtered, the series is known to
    pulse) within a third of a second either side of it (shorter than any cardiac cycle), the first of equal
    ones, and above half the swing; one series gives one peak per cycle.
    """
    r = _residual(areas, t_now, span_s)
    if r is None:
        return []
    t, res, d, dt = r
    if min_score > 0 and _score(*_swing_of(res, d, dt)) < min_score:
        return []
    return _peaks(t, res)


def pulsatility_logit(areas, t_now: float, systoles=()) -> float:
    """Log-odds (artery positive) from the cardiac swing of the lumen diameter.

    Arterial diameter swings ~5-10 % over the cardiac cycle (femoral and popliteal distension); a leg vein
    does not pulse at the cardiac rate. A swing counts as pulsation when it exceeds both
    :data:`PULSE_REL` of the diameter and :data:`PULSE_MM` (the smallest change segmentation resolves),
    so a small vessel's pixel noise is not read as a pulse.

    ``systoles``: times (s) of systolic peaks seen in another vessel of the same image (:func:`systole_times`
    of a pulsing artery). All arteries in one image distend within a few hundredths of a second of each other,
    so a quiet series that was watched through one of them did not fall between two systoles: its absence of
    a pulse counts in full however short the series.
    """
    sw = _swing(areas, t_now)
    if sw is None:
        return 0.0
    swing_mm, rel, span = sw
    score = _score(swing_mm, rel)
    logit = float(np.clip(8.0 * (score - PULSE_SCORE_MID), -3.0, 4.0))
    if logit < 0:
        # no pulse seen: as strong as the series is long, since a short one may fall between two systoles
        # (full weight from MIN_QUIET_SPAN_S, a whole cycle at 50 per minute; none below half of it), unless a
        # systole seen elsewhere fell within it
        if not _watched_through(areas, t_now, systoles):
            logit *= float(np.clip((span - 0.5 * MIN_QUIET_SPAN_S) / (0.5 * MIN_QUIET_SPAN_S), 0, 1))
    return logit


def _watched_through(areas, t_now: float, systoles) -> bool:
    """Whether the lumen's series covers a systole seen elsewhere, from :data:`SYSTOLE_BEFORE_S` before its
    peak to :data:`SYSTOLE_AFTER_S` after it, with samples on both sides of the peak."""
    if not systoles:
        return False
    times = [t for t, _ in _recent(areas, t_now, PULSE_WINDOW_S)]
    if len(times) < 2:
        return False
    for ts in systoles:
        if (times[0] <= ts - SYSTOLE_BEFORE_S and times[-1] >= ts + SYSTOLE_AFTER_S
                and any(ts - SYSTOLE_BEFORE_S <= t <= ts for t in times)
                and any(ts < t <= ts + SYSTOLE_AFTER_S for t in times)):
            return True
    return False


def _recent(hist, t_now: float, span_s: float, *, positive: bool = True) -> list[tuple[float, float]]:
    """The valid (finite; positive if asked) ``(t, value)`` samples of a time-ordered history within
    ``span_s`` of ``t_now``, oldest first (walked from the newest end: the window is short, the history long)."""
    out = []
    for t, v in reversed(hist):
        if t_now - t > span_s:
            break
        if v is not None and math.isfinite(v) and (v > 0 or not positive):
            out.append((t, v))
    out.reverse()
    return out


def artery_logit(*, t_now: float, t_first: float, areas, colour, walls, max_compressibility: float | None,
                 echogenic_fraction: float = 0.0, systoles=()) -> tuple[float, bool]:
    """Summed artery log-odds and whether the evidence is enough to decide.

    ``areas``, ``colour``, ``walls``: sequences of ``(t_s, value)``; colour values are ``None`` on grey frames.
    ``echogenic_fraction``: share of the frames in which the lumen was filled with echoes (no foam injected).
    ``systoles``: systolic peak times seen in another vessel (:func:`pulsatility_logit`).
    """
    logit = 0.0
    span = t_now - t_first
    w = _window(walls, t_now, HISTORY_ALL)
    if w.size:  # a weak cue (scanner and depth dependent): never decisive alone
        logit += float(np.clip((median(w) - WALL_SPLIT) * 3.0, -1.0, 1.0)) * min(1.0, 0.4 + 0.1 * w.size)
    c = _window(colour, t_now, PULSE_WINDOW_S)
    if c.size >= 6 and span >= 0.6:
        hi, lo = float(percentile(c, 95)), float(percentile(c, 10))
        if hi > 0.15:
            swing = (hi - lo) / hi
            logit += 4.0 * (swing - 0.6) / 0.3
        elif span >= 1.0:
            logit -= 0.5  # no flow shown at all: a thrombosed vein or slow venous flow below the colour scale
    logit += pulsatility_logit(areas, t_now, systoles)
    if max_compressibility is not None:
        if max_compressibility >= 0.7:
            logit -= 6.0
    if echogenic_fraction >= 0.5:
        # a lumen filled with echoes (not sclerosant) is thrombus: acute superficial or deep vein thrombosis
        # is the common finding in a vein clinic (CLINICAL.md, compression ultrasound); an occluded artery is
        # rare there and keeps its thick, bright wall (the wall cue)
        logit -= ECHOGENIC_LOGIT
    decided = abs(logit) >= DECIDE_LOGIT and span >= 0.45
    return logit, decided


HISTORY_ALL = 1e9
