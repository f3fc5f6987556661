"""Calibrated ultrasound frames: the one object every source produces and every analysis consumes.

A :class:`Frame` is pixels **plus** the physics that turns them into millimetres (and, for a spectral
Doppler display, a column into seconds and a row into cm/s), plus a timestamp.

Conventions (see ``docs/design.md``):

* pixel arrays are indexed ``(row, col)``; physical positions are ``(x_mm, z_mm)`` — ``x`` lateral from the
  left edge of the imaging region, ``z`` depth below its top edge (the skin line);
* a :class:`Calibration` describes one rectangular *imaging region* of the frame (a DICOM ultrasound
  region); ``Frame.pixels`` always holds just that region, already cropped, so ``x_mm = col * mm_per_px_x``;
* every quantity carries its unit in its name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from echosclero.errors import InputError

__all__ = [
    "ANALYSIS_SCHEMA",
    "Calibration",
    "CalibrationError",
    "Frame",
    "SpectralCalibration",
]


#: Version tag of the analysis document (``analyze --json``, live runs, the simulator's truth), defined here once.
ANALYSIS_SCHEMA = "echosclero.analysis/1"


class CalibrationError(InputError):
    """A frame or file has no usable physical calibration."""


CalibrationSource = Literal["dicom", "igtl", "user", "simulator", "unknown"]


@dataclass(frozen=True, slots=True)
class Calibration:
    """Spatial calibration of a 2-D imaging region.

    Parameters
    ----------
    mm_per_px_x, mm_per_px_z
        Pixel pitch laterally (columns) and in depth (rows), in millimetres. Both strictly positive.
    source
        Where the calibration came from: ``"dicom"`` (Sequence of Ultrasound Regions), ``"igtl"``
        (OpenIGTLink IMAGE spacing), ``"user"`` (``--mm-per-px``), ``"simulator"``.
    region_px
        The region's bounding box in the *original* image, ``(min_col, min_row, max_col, max_row)``
        inclusive, as written in DICOM ``RegionLocationMin/Max``; ``None`` when the region is the whole
        image.
    """

    mm_per_px_x: float
    mm_per_px_z: float
    source: CalibrationSource = "unknown"
    region_px: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("mm_per_px_x", "mm_per_px_z"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise CalibrationError(f"{name} must be a positive finite number of millimetres, got {value!r}")
            if value > 10.0:
                raise CalibrationError(
                    f"{name}={value} mm per pixel is not a plausible ultrasound pixel pitch "
                    "(expected well below 10 mm); check that the value is in millimetres, not micrometres"
                )

    @classmethod
    def isotropic(cls, mm_per_px: float, *, source: CalibrationSource = "user") -> Calibration:
        return cls(mm_per_px_x=float(mm_per_px), mm_per_px_z=float(mm_per_px), source=source)

    def px_to_mm(self, row: float | np.ndarray, col: float | np.ndarray) -> tuple:
        """Pixel ``(row, col)`` (may be fractional) to physical ``(x_mm, z_mm)`` of the pixel centre."""
        return (np.asarray(col) * self.mm_per_px_x, np.asarray(row) * self.mm_per_px_z)

    def mm_to_px(self, x_mm: float | np.ndarray, z_mm: float | np.ndarray) -> tuple:
        """Physical ``(x_mm, z_mm)`` to fractional pixel ``(row, col)``."""
        return (np.asarray(z_mm) / self.mm_per_px_z, np.asarray(x_mm) / self.mm_per_px_x)

    @property
    def pixel_area_mm2(self) -> float:
        return self.mm_per_px_x * self.mm_per_px_z

    def to_json(self) -> dict:
        return {
            "mm_per_px_x": self.mm_per_px_x,
            "mm_per_px_z": self.mm_per_px_z,
            "source": self.source,
            "region_px": list(self.region_px) if self.region_px is not None else None,
        }


@dataclass(frozen=True, slots=True)
class SpectralCalibration:
    """Calibration of a spectral (PW/CW) Doppler display region.

    ``s_per_px`` is the sweep time per column. ``cm_s_per_px`` is the velocity step per row *going down the
    display*, signed as the vendor wrote it; use :meth:`velocity_cm_s` rather than the raw sign.
    ``baseline_row`` is the zero-velocity row within the (cropped) region.
    ``flow_to_heart_above`` says on which side antegrade flow is shown (the usual default: above).
    """

    s_per_px: float
    cm_s_per_px: float
    baseline_row: float
    source: CalibrationSource = "unknown"
    region_px: tuple[int, int, int, int] | None = None
    doppler_kind: Literal["PW", "CW"] = "PW"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.s_per_px) and self.s_per_px > 0):
            raise CalibrationError(f"s_per_px must be positive seconds per column, got {self.s_per_px!r}")
        if not (math.isfinite(self.cm_s_per_px) and self.cm_s_per_px != 0):
            raise CalibrationError(f"cm_s_per_px must be a non-zero velocity step, got {self.cm_s_per_px!r}")
        if not math.isfinite(self.baseline_row):
            raise CalibrationError(f"baseline_row must be finite, got {self.baseline_row!r}")

    def speed_cm_s(self, row: float | np.ndarray) -> np.ndarray:
        """Unsigned speed shown at ``row`` (distance from the baseline times the step)."""
        return np.abs(np.asarray(row, dtype=float) - self.baseline_row) * abs(self.cm_s_per_px)

    def velocity_above_positive_cm_s(self, row: float | np.ndarray) -> np.ndarray:
        """Velocity with the display's *upper* side positive, whatever sign the vendor wrote."""
        return (self.baseline_row - np.asarray(row, dtype=float)) * abs(self.cm_s_per_px)

    def time_s(self, col: float | np.ndarray) -> np.ndarray:
        return np.asarray(col, dtype=float) * self.s_per_px

    def to_json(self) -> dict:
        return {
            "s_per_px": self.s_per_px,
            "cm_s_per_px": self.cm_s_per_px,
            "baseline_row": self.baseline_row,
            "source": self.source,
            "region_px": list(self.region_px) if self.region_px is not None else None,
            "doppler_kind": self.doppler_kind,
        }


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One calibrated ultrasound image.

    Parameters
    ----------
    pixels : (rows, cols) or (rows, cols, 3) ndarray
        The imaging region only (already cropped from the screen), grey (uint8/float) or RGB.
    calibration
        Spatial calibration of ``pixels``; ``None`` only for a frame that is purely a spectral display.
    t_s
        Acquisition time in seconds from the start of the sequence.
    index
        Position in its sequence (0-based).
    spectral, spectral_pixels
        An optional spectral Doppler display shown on the same screen, with its own calibration.
    source_id
        Free text naming where the frame came from (file path, stream address, ``sim:NAME``).
    """

    pixels: np.ndarray
    calibration: Calibration | None
    t_s: float = 0.0
    index: int = 0
    spectral: SpectralCalibration | None = None
    spectral_pixels: np.ndarray | None = None
    source_id: str = ""
    meta: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        pixels = self.pixels
        if not isinstance(pixels, np.ndarray):
            raise TypeError(f"Frame.pixels must be a numpy array, got {type(pixels).__name__}")
        if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
            raise ValueError(f"Frame.pixels must be (rows, cols) or (rows, cols, 3), got shape {pixels.shape}")
        if pixels.shape[0] < 2 or pixels.shape[1] < 2:
            raise ValueError(f"Frame.pixels is too small to be an image: shape {pixels.shape}")
        if self.calibration is None and self.spectral is None:
            raise CalibrationError("a Frame needs a spatial or a spectral calibration")

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    @property
    def width_mm(self) -> float:
        return self.shape[1] * self._cal().mm_per_px_x

    @property
    def depth_mm(self) -> float:
        return self.shape[0] * self._cal().mm_per_px_z

    def _cal(self) -> Calibration:
        if self.calibration is None:
            raise CalibrationError("this frame has no spatial calibration")
        return self.calibration

    def gray(self) -> np.ndarray:
        """The pixels as a float32 grey image in [0, 1] (uint8 scaled by 1/255; float passed through).

        Colour is converted with the Rec. 601 luma weights. Other integer types are scaled by their
        dtype's maximum — never by the image's own range (no silent contrast stretching).
        """
        p = self.pixels
        if p.ndim == 3:
            p = p[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            if self.pixels.dtype == np.uint8:
                p = p / 255.0
            return p.astype(np.float32, copy=False)
        if p.dtype == np.uint8:
            return p.astype(np.float32) * np.float32(1 / 255.0)
        if np.issubdtype(p.dtype, np.integer):
            return p.astype(np.float32) / np.float32(np.iinfo(p.dtype).max)
        return p.astype(np.float32, copy=False)

    def with_(self, **changes) -> Frame:
        return dataclasses.replace(self, **changes)
