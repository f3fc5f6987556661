"""Helpers for guidance tests: match engine vessels to simulator truth (seeds here were never used in tuning)."""

from __future__ import annotations

import cv2
import numpy as np

from echosclero.frames import Calibration, Frame

#: mm per pixel of the synthetic frames
SYNTH_MM = 0.1


def speckle(rows=400, cols=400, seed=0):
    """A synthetic speckle image (Rayleigh amplitude, log-compressed) as float32 grey."""
    rng = np.random.default_rng(seed)
    amp = np.abs(rng.normal(size=(rows, cols)) + 1j * rng.normal(size=(rows, cols)))
    img = 20 * np.log10(amp + 1e-3)
    return np.clip((img + 20) / 35 * 180, 0, 255).astype(np.float32)


def synth_frame(img, index=0, t=0.0):
    """A calibrated frame (:data:`SYNTH_MM` per pixel) from a float grey image."""
    return Frame(pixels=np.clip(img, 0, 255).astype(np.uint8), index=index, t_s=t,
                 calibration=Calibration(mm_per_px_x=SYNTH_MM, mm_per_px_z=SYNTH_MM))


def match(found, truth_vessels, *, tol_mm: float = 2.0):
    """Greedy match of found VesselFindings to truth vessel dicts: {truth_id: finding}."""
    out = {}
    used = set()
    for v in truth_vessels:
        if not v.get("visible", True):
            continue
        for j, f in enumerate(found):
            if j in used:
                continue
            d = float(np.hypot(*(np.asarray(f.center_mm) - v["center_mm"])))
            inside = f.contour_mm is not None and cv2.pointPolygonTest(
                f.contour_mm.astype(np.float32), tuple(map(float, v["center_mm"])), True) > -1.0
            if d < max(tol_mm, 0.5 * v["diameter_mm"]) or inside:
                out[v["id"]] = f
                used.add(j)
                break
    return out
