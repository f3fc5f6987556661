"""Leg cross-section phantoms: tissue layers, vessels, needle and foam, with exact geometry for ground truth.

A phantom is described in millimetres (``x`` lateral from the image's left edge, ``z`` depth below the skin
line) and rasterised onto an :class:`~echosclero.sim.acoustics.ImagingGrid` as two maps:

* ``reflectivity`` — RMS amplitude of the diffuse (random-phase) scatterers per pixel: 1.0 is ordinary soft
  tissue (mid-grey), blood ≈ 0.01 (−40 dB, anechoic), fat ≈ 0.3, fascia ≈ 2;
* ``specular`` — amplitude of coherent (constant-phase) reflectors: fascial planes, vessel walls, the
  needle shaft; these render as continuous bright lines, not speckle.

Echogenicity ratios follow the usual sonographic appearance of the leg (e.g. Cavezzi et al., "Duplex
ultrasound investigation of the veins in chronic venous disease of the lower limbs — UIP consensus
document", Eur J Vasc Endovasc Surg 2006;31:288-99; Caggiati, "Fascial relationships of the long saphenous
vein", Circulation 1999;100:2547-49 for the "saphenous eye"). Values are display-level approximations,
not measured backscatter coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from echosclero.sim.acoustics import ImagingGrid

VesselKind = Literal["vein", "artery"]
View = Literal["transverse", "longitudinal"]

# Diffuse scatterer amplitudes (RMS; 1.0 = reference soft tissue). Display-level approximations.
REFLECT_DERMIS = 1.8
REFLECT_FAT = 0.32
REFLECT_MUSCLE = 0.75
REFLECT_BLOOD = 0.008
REFLECT_THROMBUS = 0.45
REFLECT_FOAM = 3.2
# Coherent (specular) amplitudes, in the same units, per unit of line.
SPEC_SKIN = 3.0
SPEC_FASCIA = 2.6
SPEC_SEPTUM = 1.1
SPEC_WALL_ARTERY = 2.4
SPEC_WALL_VEIN = 1.1
SPEC_NEEDLE = 14.0
# Fraction of the acoustic amplitude transmitted through 1 mm of foam (strong shadow; microbubbles
# scatter and absorb most of the beam).
FOAM_TRANSMISSION_PER_MM = 0.72
NEEDLE_TRANSMISSION = 0.35


@dataclass
class Vessel:
    """A vessel in the image plane.

    Transverse: the lumen is an ellipse with semi-axes ``a`` (lateral) and ``b`` (depth) perturbed by a few
    low harmonics (``shape``), centred at ``centre``. Longitudinal: a tube whose centreline is the polyline
    ``path_mm`` and whose radius is ``radius_mm`` (semi-axis ``b`` is used as the radius).
    """

    id: str
    kind: VesselKind
    segment: str
    deep: bool
    centre_mm: tuple[float, float]
    radius_mm: float  # equivalent radius at rest
    aspect: float = 1.0  # lateral / depth semi-axis ratio at rest
    wall_mm: float = 0.3
    thrombosed: bool = False
    target: bool = False
    shape: tuple[tuple[float, float], ...] = ()  # (relative amplitude, phase) for harmonics k = 2, 3, ...
    path_mm: np.ndarray | None = None  # longitudinal centreline (N, 2)
    peak_velocity_cm_s: float = 15.0
    # dynamic state (set per frame)
    a_mm: float = 0.0
    b_mm: float = 0.0
    centre_now_mm: tuple[float, float] = (0.0, 0.0)
    foam_fill: float = 0.0
    foam_front_mm: tuple[float, float] | None = None
    velocity_cm_s: float = 0.0
    _poly_cache: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.a_mm = self.radius_mm * math.sqrt(self.aspect)
        self.b_mm = self.radius_mm / math.sqrt(self.aspect)
        self.centre_now_mm = self.centre_mm

    @property
    def longitudinal(self) -> bool:
        return self.path_mm is not None

    def invalidate(self) -> None:
        """Forget cached geometry (call after changing the dynamic state)."""
        self._poly_cache = None

    def lumen_polygon(self) -> np.ndarray:
        """The current lumen outline (180 points), cached until :meth:`invalidate`."""
        if self._poly_cache is None:
            self._poly_cache = self.polygon_mm(180)
        return self._poly_cache

    def polygon_mm(self, n: int = 180, *, grow_mm: float = 0.0) -> np.ndarray:
        """Lumen outline (n, 2) in mm for a transverse vessel (``grow_mm`` > 0 gives the outer wall)."""
        theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
        rel = np.ones_like(theta)
        for k, (amp, phase) in enumerate(self.shape, start=2):
            rel += amp * np.cos(k * theta + phase)
        cx, cz = self.centre_now_mm
        return np.stack(
            [cx + (self.a_mm * rel + grow_mm) * np.cos(theta), cz + (self.b_mm * rel + grow_mm) * np.sin(theta)],
            axis=1,
        )

    def area_mm2(self) -> float:
        if self.longitudinal:
            return math.pi * self.b_mm**2
        return polygon_area(self.lumen_polygon())

    def diameter_mm(self) -> float:
        """Equivalent-circle diameter of the lumen (longitudinal: the tube's diameter)."""
        if self.longitudinal:
            return 2.0 * self.b_mm
        return 2.0 * math.sqrt(self.area_mm2() / math.pi)

    def contains(self, x_mm: float, z_mm: float) -> bool:
        if self.longitudinal:
            return _distance_to_polyline(np.array([[x_mm, z_mm]]), self.path_now())[0] <= self.b_mm
        poly = self.lumen_polygon().astype(np.float32)
        return cv2.pointPolygonTest(poly, (float(x_mm), float(z_mm)), False) >= 0

    def path_now(self) -> np.ndarray:
        assert self.path_mm is not None
        dx = self.centre_now_mm[0] - self.centre_mm[0]
        dz = self.centre_now_mm[1] - self.centre_mm[1]
        return self.path_mm + np.array([dx, dz])


def polygon_area(points: np.ndarray) -> float:
    x, z = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(z, -1)) - np.dot(z, np.roll(x, -1))))


def _distance_to_polyline(p: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Distance (mm) from points p (M, 2) to the polyline path (N, 2), vectorised over both."""
    a, b = path[:-1], path[1:]  # (S, 2) segments
    ab = b - a
    ap = p[:, None, :] - a[None, :, :]  # (M, S, 2)
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    d = np.linalg.norm(ap - t[..., None] * ab, axis=-1)
    return d.min(axis=1)


@dataclass
class Needle:
    """A needle: in-plane (a shaft from ``entry_mm`` towards ``direction``) or out-of-plane (a dot)."""

    in_plane: bool = True
    entry_mm: tuple[float, float] = (0.0, 0.0)  # where the shaft crosses the image edge / skin
    angle_deg: float = 30.0  # below the horizontal (in-plane)
    direction: int = 1  # +1: advancing to the right, -1: to the left
    length_mm: float = 0.0  # inserted length visible in the image
    diameter_mm: float = 0.7  # 22 G ≈ 0.72 mm outer diameter
    visible: bool = True
    dot_mm: tuple[float, float] | None = None  # out-of-plane crossing point

    @property
    def unit(self) -> np.ndarray:
        a = math.radians(self.angle_deg)
        return np.array([self.direction * math.cos(a), math.sin(a)])

    @property
    def tip_mm(self) -> tuple[float, float]:
        if not self.in_plane:
            assert self.dot_mm is not None
            return self.dot_mm
        p = np.array(self.entry_mm) + self.length_mm * self.unit
        return float(p[0]), float(p[1])


@dataclass
class Layers:
    """Static tissue maps of one section (before per-frame vessels, needle and foam)."""

    reflectivity: np.ndarray  # (rows, cols) float32
    specular: np.ndarray  # (rows, cols) float32
    skin_mm: float
    deep_fascia_mm: np.ndarray  # depth of the deep fascia per column (mm)
    notes: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# rasterisation helpers (all in mm on an ImagingGrid)


class Raster:
    """Draws mm-space shapes into float32 maps of one grid (sub-pixel coordinates via cv2's shift)."""

    SHIFT = 4

    def __init__(self, grid: ImagingGrid) -> None:
        self.grid = grid
        self._scale = np.array([1 / grid.mm_per_px_x, 1 / grid.mm_per_px_z])

    def px(self, pts_mm: np.ndarray) -> np.ndarray:
        """mm (N, 2) -> fixed-point pixel coordinates for cv2 drawing (pixel centres at +0.5)."""
        p = np.asarray(pts_mm, dtype=np.float64) * self._scale - 0.5
        return np.round(p * (1 << self.SHIFT)).astype(np.int32)

    def fill_polygon(self, img: np.ndarray, pts_mm: np.ndarray, value: float) -> None:
        cv2.fillPoly(img, [self.px(pts_mm)], float(value), lineType=cv2.LINE_8, shift=self.SHIFT)

    def polyline(self, img: np.ndarray, pts_mm: np.ndarray, value: float, thickness_mm: float) -> None:
        t = max(1, int(round(thickness_mm / self.grid.mm_per_px_z)))
        cv2.polylines(img, [self.px(pts_mm)], False, float(value), thickness=t, lineType=cv2.LINE_8,
                      shift=self.SHIFT)

    def mask_polygon(self, pts_mm: np.ndarray) -> np.ndarray:
        m = np.zeros(self.grid.shape, np.uint8)
        cv2.fillPoly(m, [self.px(pts_mm)], 1, lineType=cv2.LINE_8, shift=self.SHIFT)
        return m.astype(bool)


def _smooth_curve(rng: np.random.Generator, x: np.ndarray, *, amplitude_mm: float, scale_mm: float) -> np.ndarray:
    """A smooth random curve z(x) with the given amplitude and correlation length."""
    n_knots = max(3, int(np.ptp(x) / scale_mm) + 3)
    knots_x = np.linspace(x.min() - scale_mm, x.max() + scale_mm, n_knots)
    knots_z = rng.normal(0.0, amplitude_mm, n_knots)
    return np.interp(x, knots_x, knots_z)


def build_layers(grid: ImagingGrid, *, region: Literal["thigh", "calf"], view: View,
                 rng: np.random.Generator, skin_mm: float, deep_fascia_mm: float,
                 saphenous_centre_mm: tuple[float, float] | None, saphenous_radius_mm: float) -> Layers:
    """Skin, subcutaneous fat with septa, the saphenous fascia (the "saphenous eye"), deep fascia and muscle."""
    rows, cols = grid.shape
    x = grid.x_mm()
    z = grid.z_mm()
    zz = z[:, None]
    raster = Raster(grid)

    refl = np.empty((rows, cols), np.float32)
    spec = np.zeros((rows, cols), np.float32)

    # deep (muscular) fascia: a gently undulating surface
    fascia = deep_fascia_mm + _smooth_curve(rng, x, amplitude_mm=0.5, scale_mm=15.0)
    skin = skin_mm + _smooth_curve(rng, x, amplitude_mm=0.08, scale_mm=10.0)

    # layers by depth
    refl[:] = REFLECT_MUSCLE
    refl[zz < fascia[None, :]] = REFLECT_FAT
    refl[zz < skin[None, :]] = REFLECT_DERMIS

    # muscle texture: transverse -> speckled perimysium dots; longitudinal -> oblique striations
    tex = rng.standard_normal((rows, cols)).astype(np.float32)
    if view == "transverse":
        tex = cv2.GaussianBlur(tex, (0, 0), sigmaX=3.0, sigmaY=2.0)
    else:
        k = np.zeros((1, 41), np.float32)
        k[0, :] = 1.0 / 41
        tex = cv2.filter2D(tex, -1, k)  # long lateral correlation: fibres along x
        tex = cv2.GaussianBlur(tex, (0, 0), sigmaX=1.0, sigmaY=0.8)
        # pennation: shear the striations
        shear = cv2.getAffineTransform(
            np.float32([[0, 0], [cols, 0], [0, rows]]), np.float32([[0, 0], [cols, 0], [cols * 0.25, rows]])
        )
        tex = cv2.warpAffine(tex, shear, (cols, rows), borderMode=cv2.BORDER_REFLECT)
    tex /= max(float(tex.std()), 1e-6)
    muscle = zz >= fascia[None, :]
    refl[muscle] *= np.exp(0.35 * tex[muscle]).astype(np.float32)

    # skin entry echo and dermis/fat interface
    raster.polyline(spec, np.stack([x, np.full_like(x, 0.25)], 1), SPEC_SKIN, 0.15)
    raster.polyline(spec, np.stack([x, skin], 1), SPEC_SKIN * 0.5, 0.12)

    # subcutaneous septa: thin oblique bright lines in the fat
    fat_depth = float(np.median(fascia - skin))
    for _ in range(int(rng.integers(4, 9))):
        z0 = float(np.median(skin)) + rng.uniform(0.15, 0.9) * fat_depth
        curve = z0 + _smooth_curve(rng, x, amplitude_mm=0.6, scale_mm=8.0) + rng.uniform(-0.05, 0.05) * (x - x.mean())
        x0, x1 = sorted(rng.uniform(x.min() - 5, x.max() + 5, 2))
        keep = (x >= x0) & (x <= x1) & (curve > skin + 0.3) & (curve < fascia - 0.3)
        if keep.sum() > 4:
            raster.polyline(spec, np.stack([x[keep], curve[keep]], 1), SPEC_SEPTUM * rng.uniform(0.6, 1.2), 0.1)

    # deep fascia line
    raster.polyline(spec, np.stack([x, fascia], 1), SPEC_FASCIA, 0.25)

    # saphenous fascia: arches over the saphenous vein and joins the deep fascia laterally ("saphenous eye")
    if saphenous_centre_mm is not None:
        cx, cz = saphenous_centre_mm
        if view == "transverse":
            half_w = saphenous_radius_mm * 3.2
            arch_top = cz - saphenous_radius_mm - 1.2
            xs = x[(x > cx - half_w) & (x < cx + half_w)]
            u = (xs - cx) / half_w
            fz = np.interp(xs, x, fascia)
            arch = arch_top + (fz - arch_top) * np.abs(u) ** 1.6
            raster.polyline(spec, np.stack([xs, arch], 1), SPEC_FASCIA * 0.7, 0.2)
            # saphenous compartment fat is a little brighter than the subcutaneous fat
            comp = np.concatenate([np.stack([xs, arch], 1), np.stack([xs[::-1], fz[::-1]], 1)])
            raster.fill_polygon(refl, comp, REFLECT_FAT * 1.5)
        else:
            line = np.stack([x, np.full_like(x, cz - saphenous_radius_mm - 1.2)], 1)
            line[:, 1] += _smooth_curve(rng, x, amplitude_mm=0.2, scale_mm=12.0)
            raster.polyline(spec, line, SPEC_FASCIA * 0.8, 0.3)

    return Layers(reflectivity=refl, specular=spec, skin_mm=float(np.median(skin)), deep_fascia_mm=fascia,
                  notes={"region": region, "view": view})


def draw_vessel_wall(raster: Raster, refl: np.ndarray, spec: np.ndarray, vessel: Vessel) -> None:
    """Draw a vessel's wall: a ring of bright diffuse echoes with a coherent (specular) component.

    Walls of all vessels are drawn before any lumen so that where lumens meet (a junction) no wall remains.
    """
    wall_value = SPEC_WALL_ARTERY if vessel.kind == "artery" else SPEC_WALL_VEIN
    if vessel.longitudinal:
        path = vessel.path_now()
        for sign in (-1, 1):
            normal = _normals(path) * sign
            raster.polyline(spec, path + normal * (vessel.b_mm + vessel.wall_mm / 2), wall_value, vessel.wall_mm)
        return
    outer = vessel.polygon_mm(grow_mm=vessel.wall_mm)
    raster.fill_polygon(spec, outer, wall_value * 0.35)
    raster.polyline(spec, np.vstack([outer, outer[:1]]), wall_value * 0.6, max(vessel.wall_mm * 0.6, 0.1))
    raster.fill_polygon(refl, outer, 1.4 if vessel.kind == "artery" else 1.1)


def draw_vessel_lumen(raster: Raster, refl: np.ndarray, spec: np.ndarray, vessel: Vessel) -> None:
    """Fill the lumen: anechoic blood, or echogenic thrombus in a thrombosed vein."""
    lumen_value = REFLECT_THROMBUS if vessel.thrombosed else REFLECT_BLOOD
    if vessel.longitudinal:
        path = vessel.path_now()
        _fill_tube(raster, refl, path, vessel.b_mm, lumen_value)
        _fill_tube(raster, spec, path, vessel.b_mm, 0.0)
        return
    inner = vessel.lumen_polygon()
    raster.fill_polygon(refl, inner, lumen_value)
    raster.fill_polygon(spec, inner, 0.0)


def _normals(path: np.ndarray) -> np.ndarray:
    d = np.gradient(path, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.stack([-d[:, 1], d[:, 0]], axis=1)


def tube_polygon(path: np.ndarray, r: float) -> np.ndarray:
    """Outline (mm) of a tube of radius ``r`` along ``path``: a vessel seen in long axis."""
    n = _normals(path)
    return np.vstack([path + n * r, (path - n * r)[::-1]])


def _fill_tube(raster: Raster, img: np.ndarray, path: np.ndarray, r: float, value: float) -> None:
    raster.fill_polygon(img, tube_polygon(path, r), value)


def foam_region_transverse(vessel: Vessel, fill: float) -> np.ndarray | None:
    """Polygon (mm) of the part of a transverse lumen filled by foam.

    Foam is lighter than blood and rises to the non-dependent (anterior, i.e. shallow with the patient supine)
    part of the lumen: the filled region is the lumen above a level chosen so its area fraction is ``fill``.
    """
    if fill <= 0:
        return None
    poly = vessel.lumen_polygon()
    if fill >= 0.999:
        return poly
    # area above a level = integral of the chord width; widths of all levels at once (lumens are convex-ish)
    z_lo, z_hi = poly[:, 1].min(), poly[:, 1].max()
    levels = np.linspace(z_lo, z_hi, 257)
    p0, p1 = poly, np.roll(poly, -1, axis=0)
    dz = p1[:, 1] - p0[:, 1]
    t = (levels[:, None] - p0[None, :, 1]) / np.where(np.abs(dz) < 1e-12, np.nan, dz)[None, :]
    hit = (t >= 0) & (t < 1)
    x = np.where(hit, p0[None, :, 0] + t * (p1 - p0)[None, :, 0], np.nan)
    with np.errstate(all="ignore"):
        width = np.nan_to_num(np.nanmax(x, axis=1) - np.nanmin(x, axis=1))
    area = np.concatenate([[0.0], np.cumsum(0.5 * (width[1:] + width[:-1]) * np.diff(levels))])
    level = float(np.interp(fill * area[-1], area, levels))
    return clip_polygon_above(poly, level)


def clip_polygon_above(poly: np.ndarray, z_level: float) -> np.ndarray:
    """Sutherland–Hodgman clip of a polygon to the half-plane z <= z_level."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        pin, qin = p[1] <= z_level, q[1] <= z_level
        if pin:
            out.append(p)
        if pin != qin:
            t = (z_level - p[1]) / (q[1] - p[1])
            out.append(p + t * (q - p))
    return np.array(out) if out else np.zeros((0, 2))


def polygon_area_above(poly: np.ndarray, z_level: float) -> float:
    clipped = clip_polygon_above(poly, z_level)
    return polygon_area(clipped) if len(clipped) >= 3 else 0.0
