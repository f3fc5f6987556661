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

import numpy as np

__all__ = ["DECIDE_LOGIT", "artery_logit"]

#: |log-odds| needed to call a vessel artery or vein.
DECIDE_LOGIT = 2.0
#: Wall ratio (75th percentile of grey / tissue level in a 0.2-1.0 mm ring) separating the two kinds.
WALL_SPLIT = 1.45
#: Window over which pulsatility is judged (s); a cardiac cycle is 0.5-1.5 s.
PULSE_WINDOW_S = 1.5


def _window(hist, t_now: float, span: float) -> np.ndarray:
    vals = [v for (t, v) in hist if t_now - t <= span and v is not None and math.isfinite(v)]
    return np.asarray(vals, dtype=float)


def artery_logit(*, t_now: float, t_first: float, areas, colour, walls, max_compressibility: float | None
                 ) -> tuple[float, bool]:
    """Summed artery log-odds and whether the evidence is enough to decide.

    ``areas``, ``colour``, ``walls``: sequences of ``(t_s, value)``; colour values are ``None`` on grey frames.
    """
    logit = 0.0
    span = t_now - t_first
    w = _window(walls, t_now, HISTORY_ALL)
    if w.size:
        logit += float(np.clip((np.median(w) - WALL_SPLIT) * 6.0, -2.0, 2.0)) * min(1.0, 0.4 + 0.1 * w.size)
    c = _window(colour, t_now, PULSE_WINDOW_S)
    if c.size >= 6 and span >= 0.6:
        hi, lo = float(np.percentile(c, 95)), float(np.percentile(c, 10))
        if hi > 0.15:
            swing = (hi - lo) / hi
            logit += 4.0 * (swing - 0.6) / 0.3
        elif span >= 1.0:
            logit -= 0.5  # no flow shown at all: a thrombosed vein or slow venous flow below the colour scale
    a = _window(areas, t_now, PULSE_WINDOW_S)
    if a.size >= 8 and span >= 0.8 and a.mean() > 0:
        rel = float(np.std(np.diff(a)) / a.mean())
        logit += float(np.clip((rel - 0.03) * 40.0, -1.0, 1.5))
    if max_compressibility is not None:
        if max_compressibility >= 0.7:
            logit -= 6.0
    decided = abs(logit) >= DECIDE_LOGIT and span >= 0.45
    return logit, decided


HISTORY_ALL = 1e9
