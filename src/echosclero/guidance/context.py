"""What the engine knows about one frame, measured once at the top of :meth:`Engine.process
<echosclero.guidance.engine.Engine.process>` and read by every later stage (frozen: no stage changes it).

The per-vessel stages (:mod:`.foam_state`, :mod:`.compression_state`, :mod:`.kind_state`) take this context
instead of long lists of arguments; the frame's derived masks (the needle's, its shade, the acoustic shadow)
live here rather than under string keys of a cache.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from echosclero.guidance.needle import NeedleMeasurement
from echosclero.guidance.preprocess import Prepared

__all__ = ["FrameContext"]


@dataclass(frozen=True, slots=True, eq=False)
class FrameContext:
    """One frame's measurements shared by the stages.

    Attributes
    ----------
    prep
        The prepared frame (:func:`~echosclero.guidance.preprocess.prepare`).
    t_s
        Acquisition time of the frame (s).
    needle
        The needle as tracked (this frame's detection, or the last one held for a moment), or ``None``.
    needle_detected
        This frame's own detection (``None`` when not found: ``needle`` may then be held).
    needle_lost
        The tracker has just given up a needle seen before (the NEEDLE_LOST alert).
    exclude
        Working-resolution mask of the needle's shaft and reverberations (``None`` with no needle).
    near
        ``exclude`` grown by ~2 mm: where the needle moves the grey of a lumen's wall (``None`` with no needle).
    needle_shade
        What the needle hides from the foam reading: the shaft and the scan lines below it (``exclude`` with
        no needle; not computed under probe pressure, when foam is not read).
    shadow
        Acoustic shadows of this frame (:func:`~echosclero.guidance.shadows.acoustic_shadow`).
    strain
        Vertical tissue strain under the probe (dimensionless).
    pressed
        ``strain`` at or above :attr:`EngineConfig.pressed_strain`: the probe is compressing.
    probe_still
        The probe has not compressed the tissue for the foam rule's still time (``FOAM_STILL_S``).
    below_foam
        Where the image lies under a lumen holding foam (as of the last frame), after tracking; ``None``: none.
    systoles
        Systolic peak times (s) of the clearly pulsing arteries in view, after tracking (empty when every
        track is already decided: nobody needs them).
    """

    prep: Prepared
    t_s: float
    needle: NeedleMeasurement | None
    needle_detected: NeedleMeasurement | None
    needle_lost: bool
    exclude: np.ndarray | None
    near: np.ndarray | None
    needle_shade: np.ndarray | None
    shadow: np.ndarray
    strain: float
    pressed: bool
    probe_still: bool
    below_foam: np.ndarray | None = None
    systoles: tuple[float, ...] = ()

    @property
    def tip_mm(self) -> tuple[float, float] | None:
        """The needle tip (mm), or ``None``."""
        return self.needle.tip_mm if self.needle is not None else None

    def after_tracking(self, *, below_foam: np.ndarray | None, systoles: tuple[float, ...]) -> FrameContext:
        """The context completed with what depends on the tracks of this frame (the one later addition)."""
        return dataclasses.replace(self, below_foam=below_foam, systoles=systoles)
