"""Per-track state of the compression test: the lumen's area at rest and how much of it the probe takes away.

One :meth:`CompressionState.update` per frame and track (:class:`~echosclero.guidance.tracking.Track` holds one).
A vein collapses under the probe (compressibility near 1); an artery, and a vein filled with thrombus, do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from echosclero.guidance.context import FrameContext
    from echosclero.guidance.tracking import Track

__all__ = ["CompressionState"]

#: The resting area follows the lumen while the strain stays below this (the estimator's second step: the probe
#: resting on the skin, not pressing).
REST_STRAIN = 0.008
#: ... and while the lumen holds less foam than this fraction (foam changes the outline read).
REST_MAX_FOAM_FILL = 0.05
#: The resting area follows the lumen with this weight per frame (an exponential mean over ~5 frames).
REST_AREA_WEIGHT = 0.2
#: A lumen seen shrinking by at least this fraction under the probe and then gone is taken as collapsed.
COLLAPSE_SEEN = 0.5


@dataclass(eq=False)
class CompressionState:
    """The compression evidence of one tracked lumen.

    Attributes
    ----------
    rest_area_mm2
        Lumen area with the probe at rest (exponential mean), ``None`` until seen at rest.
    max_compressibility
        Largest fraction of the resting area lost under the probe so far (0-1), ``None`` before any compression.
    last_pressed_compressibility
        During the current compression, while the lumen is still seen: the fraction lost now.
    """

    rest_area_mm2: float | None = None
    max_compressibility: float | None = None
    last_pressed_compressibility: float | None = None

    def update(self, tr: Track, ctx: FrameContext) -> float | None:
        """The compressibility measured in this frame (``None``: not under pressure, or no evidence).

        A lumen seen shrinking to less than half and then lost under the probe collapsed (area and diameter of
        the track set to 0); one lost without having been seen to shrink is no evidence."""
        strain, pressed = ctx.strain, ctx.pressed
        if not pressed:
            self.last_pressed_compressibility = None
            if tr.seen_now and strain < REST_STRAIN and tr.foam_fill < REST_MAX_FOAM_FILL:
                self.rest_area_mm2 = tr.area_now_mm2 if self.rest_area_mm2 is None else \
                    (1.0 - REST_AREA_WEIGHT) * self.rest_area_mm2 + REST_AREA_WEIGHT * tr.area_now_mm2
            return None
        if self.rest_area_mm2 is None or self.rest_area_mm2 <= 0:
            return None
        if tr.seen_now:
            c = float(np.clip(1.0 - tr.area_now_mm2 / self.rest_area_mm2, 0.0, 1.0))
            self.last_pressed_compressibility = c
        elif self.last_pressed_compressibility is not None and self.last_pressed_compressibility >= COLLAPSE_SEEN:
            # seen shrinking under the probe, now gone: collapsed
            tr.area_now_mm2 = 0.0
            tr.diameter_now_mm = 0.0
            c = 1.0
        else:
            # lost under pressure without having been seen to shrink (the probe moved, an artery shifted
            # aside): not evidence of collapse
            return None
        self.max_compressibility = c if self.max_compressibility is None else max(self.max_compressibility, c)
        return c
