"""Ultrasound guidance: per-frame vessels, needle, foam, compressibility and alerts, in millimetres.

``Engine().process(frame) -> FrameResult``; ``FrameResult.to_json()`` is one frame of the
``echosclero.analysis/1`` document (``docs/design.md``).
"""

from __future__ import annotations

from echosclero.frames import ANALYSIS_SCHEMA
from echosclero.guidance.engine import Engine, EngineConfig
from echosclero.guidance.findings import Alert, FoamFinding, FrameResult, NeedleFinding, VesselFinding

__all__ = ["Alert", "Engine", "EngineConfig", "FoamFinding", "FrameResult", "NeedleFinding", "VesselFinding",
           "SCHEMA"]

SCHEMA = ANALYSIS_SCHEMA
