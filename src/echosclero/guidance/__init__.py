"""Ultrasound guidance: per-frame vessels, needle, foam, compressibility and alerts, in millimetres.

``Engine().process(frame) -> FrameResult``; ``FrameResult.to_json()`` is one frame of the
``echosclero.analysis/1`` document (``shared/DESIGN.md``).
"""

from __future__ import annotations

from echosclero.guidance.engine import Engine, EngineConfig
from echosclero.guidance.findings import Alert, FoamFinding, FrameResult, NeedleFinding, VesselFinding

__all__ = ["Alert", "Engine", "EngineConfig", "FoamFinding", "FrameResult", "NeedleFinding", "VesselFinding",
           "SCHEMA"]

SCHEMA = "echosclero.analysis/1"
