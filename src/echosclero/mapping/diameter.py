"""Vein diameters from a transverse vessel contour (as the guidance engine segments it).

A contour is an ``(N, 2)`` array of ``(x_mm, z_mm)`` points (lateral, depth) around the lumen, in order,
not repeated at the end. Measures:

* area by the shoelace formula; **equivalent diameter** ``2 sqrt(A / pi)`` (the circle of equal area);
* **major/minor axes** of the ellipse with the same second moments of area as the polygon (for a filled
  ellipse of semi-axes a, b the central moments are ``pi a^3 b / 4`` and ``pi a b^3 / 4``, so the axis
  along an eigenvector is ``4 sqrt(lambda / A)``); these equal the true axes for an elliptical lumen and
  are robust to a jagged outline;
* **Feret (caliper) diameters**, maximum and minimum, from the convex hull;
* the depth of the lumen centre and the orientation of the major axis.

Clinics usually report the transverse diameter of a saphenous trunk as the anteroposterior (depth)
diameter or the larger axis; which one is a clinic choice, so all are given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from echosclero.errors import InputError

__all__ = ["TransverseDiameters", "transverse_diameters"]


@dataclass(frozen=True, slots=True)
class TransverseDiameters:
    area_mm2: float
    equivalent_diameter_mm: float
    major_axis_mm: float
    minor_axis_mm: float
    max_feret_mm: float
    min_feret_mm: float
    depth_extent_mm: float  # anteroposterior extent (z max - z min)
    centre_mm: tuple[float, float]
    orientation_deg: float  # major axis angle from the lateral (x) axis, in [0, 180)
    perimeter_mm: float

    def to_json(self) -> dict:
        out = asdict(self)
        out["centre_mm"] = list(self.centre_mm)
        return out


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain; counter-clockwise hull without the repeated first point."""
    pts = np.unique(points, axis=0)
    if len(pts) < 3:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in pts[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def transverse_diameters(contour_mm: np.ndarray) -> TransverseDiameters:
    """Diameters of a transverse lumen contour.

    Parameters
    ----------
    contour_mm : (N, 2) ndarray
        Ordered ``(x_mm, z_mm)`` points around the lumen, N >= 3 (closed implicitly).

    Returns
    -------
    TransverseDiameters

    Raises
    ------
    InputError
        Wrong shape, non-finite points, or a degenerate (zero-area) contour.
    """
    p = np.asarray(contour_mm, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 3:
        raise InputError(f"a contour must be an (N, 2) array of (x_mm, z_mm) points with N >= 3, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise InputError("the contour has non-finite points")
    if np.allclose(p[0], p[-1]) and p.shape[0] > 3:
        p = p[:-1]
    x, z = p[:, 0], p[:, 1]
    xn, zn = np.roll(x, -1), np.roll(z, -1)
    cross = x * zn - xn * z
    a_signed = 0.5 * cross.sum()  # shoelace
    area = abs(a_signed)
    if area < 1e-9:
        raise InputError("the contour encloses no area (collinear or repeated points)")
    cx = ((x + xn) * cross).sum() / (6 * a_signed)
    cz = ((z + zn) * cross).sum() / (6 * a_signed)
    # second moments of area about the centroid (polygon formulas, Steger 1996 "On the calculation of
    # arbitrary moments of polygons")
    xx = ((x**2 + x * xn + xn**2) * cross).sum() / (12 * a_signed) * area - area * cx**2
    zz = ((z**2 + z * zn + zn**2) * cross).sum() / (12 * a_signed) * area - area * cz**2
    xz = ((x * zn + 2 * x * z + 2 * xn * zn + xn * z) * cross).sum() / (24 * a_signed) * area - area * cx * cz
    evals, evecs = np.linalg.eigh(np.array([[xx, xz], [xz, zz]]))
    evals = np.clip(evals, 0.0, None)
    minor, major = 4.0 * np.sqrt(evals / area)
    vx, vz = evecs[:, 1]
    orientation = float(np.degrees(np.arctan2(vz, vx)) % 180.0)
    hull = _convex_hull(p)
    d = hull[:, None, :] - hull[None, :, :]
    max_feret = float(np.sqrt((d**2).sum(axis=2)).max())
    # minimum caliper width: over hull edges, the largest distance of any hull point from the edge line
    widths = []
    for i in range(len(hull)):
        a, b = hull[i], hull[(i + 1) % len(hull)]
        e = b - a
        n = np.hypot(*e)
        if n == 0:
            continue
        rel = hull - a
        widths.append(np.abs(e[0] * rel[:, 1] - e[1] * rel[:, 0]).max() / n)
    perimeter = float(np.hypot(xn - x, zn - z).sum())
    return TransverseDiameters(
        area_mm2=float(area),
        equivalent_diameter_mm=float(2.0 * np.sqrt(area / np.pi)),
        major_axis_mm=float(major),
        minor_axis_mm=float(minor),
        max_feret_mm=max_feret,
        min_feret_mm=float(min(widths)) if widths else 0.0,
        depth_extent_mm=float(z.max() - z.min()),
        centre_mm=(float(cx), float(cz)),
        orientation_deg=orientation,
        perimeter_mm=perimeter,
    )
