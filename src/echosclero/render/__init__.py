"""Overlay drawing and video writing for guidance results (used by ``analyze --video`` and ``demo``)."""

from __future__ import annotations

from echosclero.render.overlay import draw_overlay
from echosclero.render.video import VideoWriter

__all__ = ["VideoWriter", "draw_overlay"]
