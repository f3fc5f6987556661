"""Draw a :class:`~echosclero.guidance.FrameResult` over its frame: vessel contours coloured by kind, the
needle and its tip, foam, the alert banner and a millimetre scale bar."""

from __future__ import annotations

import cv2
import numpy as np

from echosclero.frames import Frame
from echosclero.media import draw_scale_bar

__all__ = ["KIND_COLOURS", "draw_overlay"]

#: RGB colours of vessel contours by kind.
KIND_COLOURS = {"vein": (60, 140, 255), "artery": (255, 60, 60), "unknown": (255, 220, 0)}
SEVERITY_COLOURS = {"critical": (200, 0, 0), "warning": (230, 140, 0), "info": (60, 60, 60)}


def _rgb(frame: Frame) -> np.ndarray:
    p = frame.pixels
    if p.dtype != np.uint8:
        g = frame.gray() if p.ndim == 2 else None
        p = (np.clip(g, 0, 1) * 255).astype(np.uint8) if g is not None else np.clip(p, 0, 255).astype(np.uint8)
    if p.ndim == 2:
        return np.repeat(p[..., None], 3, axis=2).copy()
    return np.ascontiguousarray(p[..., :3]).copy()


def draw_overlay(frame: Frame, result, *, scale: int = 1) -> np.ndarray:
    """An RGB uint8 image of ``frame`` with ``result`` drawn over it.

    Parameters
    ----------
    frame
        The analysed frame (its calibration converts mm to pixels).
    result
        The engine's :class:`~echosclero.guidance.FrameResult` for this frame.
    scale
        Integer up-scaling of the output (text stays legible on small frames).
    """
    img = _rgb(frame)
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    cal = frame.calibration
    if cal is None:
        return img
    sx, sz = scale / cal.mm_per_px_x, scale / cal.mm_per_px_z

    def px(x_mm: float, z_mm: float) -> tuple[int, int]:
        return int(round(x_mm * sx)), int(round(z_mm * sz))

    h, w = img.shape[:2]
    foam_ids = {f.vessel_id for f in result.foam}
    for v in result.vessels:
        colour = KIND_COLOURS.get(v.kind, KIND_COLOURS["unknown"])
        if v.contour_mm is not None and len(v.contour_mm) >= 3:
            pts = np.round(v.contour_mm * np.array([sx, sz])).astype(np.int32)
            cv2.polylines(img, [pts], True, colour, 1 if v.coasting else 2, cv2.LINE_AA)
        cx, cz = px(*v.center_mm)
        label = f"{v.id} {v.kind[0].upper()} {v.diameter_mm:.1f}mm"
        if v.id in foam_ids:
            label += " foam"
        cv2.putText(img, label, (cx + 4, max(10, cz - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * max(1, scale), colour, 1,
                    cv2.LINE_AA)
    for f in result.foam:
        if f.front_mm is not None:
            cv2.drawMarker(img, px(*f.front_mm), (255, 255, 255), cv2.MARKER_DIAMOND, 8 * scale, 1, cv2.LINE_AA)
    n = result.needle
    if n is not None:
        cv2.line(img, px(*n.entry_mm), px(*n.tip_mm), (0, 255, 0), 1, cv2.LINE_AA)
        cv2.drawMarker(img, px(*n.tip_mm), (0, 255, 0), cv2.MARKER_CROSS, 12 * scale, 2, cv2.LINE_AA)
    draw_scale_bar(img, px_per_mm=sx, width_mm=frame.width_mm)
    cv2.putText(img, f"t={result.t_s:.2f}s", (w - 80, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    if result.alerts:
        worst = max(result.alerts, key=lambda a: {"critical": 2, "warning": 1}.get(a.severity, 0))
        cv2.rectangle(img, (0, 0), (w, 18), SEVERITY_COLOURS.get(worst.severity, (60, 60, 60)), -1)
        text = " | ".join(a.code for a in result.alerts)
        cv2.putText(img, text[:90], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return img
