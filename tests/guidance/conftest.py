"""Helpers for guidance tests: match engine vessels to simulator truth (seeds here were never used in tuning)."""

from __future__ import annotations

import cv2
import numpy as np


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
