"""The source contract: everything that yields calibrated :class:`~echosclero.frames.Frame` objects.

A *source* turns one input (a DICOM file, a video, a folder, an OpenIGTLink stream, the simulator) into
a sequence of calibrated frames, and describes itself with a :class:`SourceInfo` without decoding them.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal

from echosclero.errors import InputError
from echosclero.frames import Frame

__all__ = [
    "INFO_SCHEMA",
    "RegionInfo",
    "RegionKind",
    "RegionRole",
    "Source",
    "SourceInfo",
    "check_crop_px",
    "check_mm_per_px",
]

RegionKind = Literal["tissue", "color", "PW", "CW", "other"]
RegionRole = Literal["imaging", "spectral"]

#: Version tag of :meth:`SourceInfo.to_json` (bump on an incompatible change).
INFO_SCHEMA = "echosclero.source_info/1"

#: Largest ``--mm-per-px`` accepted; matches :class:`~echosclero.frames.Calibration`'s plausibility limit.
MAX_MM_PER_PX = 10.0


@dataclass(frozen=True, slots=True)
class RegionInfo:
    """One ultrasound region as a source sees it (DICOM Sequence of Ultrasound Regions, or implied).

    Parameters
    ----------
    index
        Position of the region in the file's Sequence of Ultrasound Regions (0-based).
    kind
        ``"tissue"``, ``"color"`` (colour flow), ``"PW"`` / ``"CW"`` (spectral Doppler) or ``"other"``
        (ECG trace, grey bar, ...; see ``label``).
    bbox_px
        ``(min_col, min_row, max_col, max_row)``, inclusive, in the image, as written in the file.
    mm_per_px_x, mm_per_px_z
        Pixel pitch of a 2-D region in millimetres (DICOM writes cm; converted on read).
    s_per_px, cm_s_per_px, baseline_row
        Calibration of a spectral region: seconds per column, cm/s per row (vendor sign kept) and the
        zero-velocity row relative to the region's top edge.
    data_type_code, spatial_format_code, units_x_code, units_y_code
        The raw DICOM codes ``RegionDataType``, ``RegionSpatialFormat``, ``PhysicalUnitsX/YDirection``.
    reference_px
        ``(ReferencePixelX0, ReferencePixelY0)``, relative to the region's top-left corner.
    label
        Human-readable name of the data type (``"ECG trace"``, ``"gray bar"``, ...).
    role
        ``"imaging"`` for the region the frames are cropped to, ``"spectral"`` for the spectral display
        attached to the frames, ``None`` for a region reported but not used.
    """

    index: int
    kind: RegionKind
    bbox_px: tuple[int, int, int, int]  # (min_col, min_row, max_col, max_row), inclusive, in the image
    mm_per_px_x: float | None = None
    mm_per_px_z: float | None = None
    s_per_px: float | None = None
    cm_s_per_px: float | None = None
    baseline_row: float | None = None
    data_type_code: int | None = None
    spatial_format_code: int | None = None
    units_x_code: int | None = None
    units_y_code: int | None = None
    reference_px: tuple[int, int] | None = None
    label: str = ""
    role: RegionRole | None = None

    @property
    def width_px(self) -> int:
        return self.bbox_px[2] - self.bbox_px[0] + 1

    @property
    def height_px(self) -> int:
        return self.bbox_px[3] - self.bbox_px[1] + 1

    @property
    def area_px(self) -> int:
        return max(self.width_px, 0) * max(self.height_px, 0)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source holds, found without decoding its frames.

    Parameters
    ----------
    kind
        ``"dicom"``, ``"video"``, ``"capture"``, ``"igtl"``, ``"simulator"`` or ``"folder"``.
    source_id
        The path, device or stream address.
    n_frames
        Number of frames; ``None`` for a live stream (or a video whose container does not say).
    rows, cols
        Size of the whole image in pixels (before cropping to the imaging region).
    frame_time_s
        Time between frames in seconds; ``None`` when unknown or for a single image.
    calibrated
        ``True`` when :meth:`Source.frames` can produce calibrated frames (scanner calibration, an
        OpenIGTLink spacing, ``--mm-per-px``, or a spectral display calibration).
    regions
        Every ultrasound region found (DICOM), in file order.
    details
        Source-specific, JSON-serialisable extras (transfer syntax, manufacturer, per-file errors...).
    """

    kind: str  # "dicom", "video", "igtl", "simulator", "folder"
    source_id: str
    n_frames: int | None  # None for a live stream
    rows: int
    cols: int
    frame_time_s: float | None
    calibrated: bool
    regions: tuple[RegionInfo, ...] = ()
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"schema": INFO_SCHEMA}
        out.update(asdict(self))
        out["regions"] = [asdict(r) for r in self.regions]
        return out


class Source(abc.ABC):
    """A producer of frames. ``frames()`` may be called once; ``close()`` releases files/sockets."""

    source_id: str = ""
    live: bool = False

    @abc.abstractmethod
    def frames(self) -> Iterator[Frame]: ...

    @abc.abstractmethod
    def info(self) -> SourceInfo: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_mm_per_px(mm_per_px: float | None) -> float | None:
    """Validate a user-supplied isotropic pixel pitch (``--mm-per-px``).

    Parameters
    ----------
    mm_per_px
        Millimetres per pixel, or ``None`` (not given).

    Returns
    -------
    float or None
        The value as a float.

    Raises
    ------
    InputError
        When the value is not a positive finite number below :data:`MAX_MM_PER_PX`.
    """
    if mm_per_px is None:
        return None
    try:
        value = float(mm_per_px)
    except (TypeError, ValueError):
        raise InputError(
            f"--mm-per-px must be a number of millimetres per pixel, got {mm_per_px!r}"
        ) from None
    if not (math.isfinite(value) and 0.0 < value <= MAX_MM_PER_PX):
        raise InputError(
            f"--mm-per-px must be a positive number of millimetres per pixel below {MAX_MM_PER_PX:g} "
            f"(ultrasound is typically 0.05-0.5 mm per pixel), got {mm_per_px!r}"
        )
    return value


def check_crop_px(
    crop_px: tuple[int, int, int, int] | list[int] | None, *, rows: int, cols: int, source_id: str
) -> tuple[int, int, int, int] | None:
    """Validate a crop box ``(x0, y0, x1, y1)`` — inclusive pixel corners — against an image size.

    Parameters
    ----------
    crop_px
        ``(min_col, min_row, max_col, max_row)``, inclusive (the DICOM ``RegionLocation`` convention), or
        ``None`` for the whole image.
    rows, cols
        Size of the image the box must fit in.
    source_id
        Named in the error message.

    Raises
    ------
    InputError
        When the box is malformed, empty, smaller than 2 x 2 pixels or outside the image.
    """
    if crop_px is None:
        return None
    try:
        x0, y0, x1, y1 = (int(v) for v in crop_px)
    except (TypeError, ValueError):
        raise InputError(
            f"crop box must be four integers x0,y0,x1,y1 (inclusive pixel corners), got {crop_px!r}"
        ) from None
    if not (0 <= x0 < x1 < cols and 0 <= y0 < y1 < rows):
        raise InputError(
            f"{source_id}: crop box {x0},{y0},{x1},{y1} does not fit the {cols} x {rows} px image "
            f"(need 0 <= x0 < x1 <= {cols - 1} and 0 <= y0 < y1 <= {rows - 1})"
        )
    return (x0, y0, x1, y1)


class CroppedSource(Source):
    """Another source's frames cut to a pixel box (``--roi``): a whole-screen capture's imaging area.

    ``box`` is ``(x0, y0, x1, y1)``, inclusive, in the frames as the source delivers them (for DICOM: inside its
    imaging region). Coordinates in the findings then start at the box's top-left corner.
    """

    def __init__(self, source: Source, box: tuple[int, int, int, int]) -> None:
        self.inner = source
        self.box = box
        self.source_id = getattr(source, "source_id", "")
        self.live = getattr(source, "live", False)

    def frames(self) -> Iterator[Frame]:
        import dataclasses

        x0, y0, x1, y1 = self.box
        for frame in self.inner.frames():
            rows, cols = frame.pixels.shape[:2]
            check_crop_px(self.box, rows=rows, cols=cols, source_id=f"{self.source_id} (--roi)")
            pixels = frame.pixels[y0:y1 + 1, x0:x1 + 1].copy()
            yield dataclasses.replace(frame, pixels=pixels)

    def info(self) -> SourceInfo:
        import dataclasses

        info = self.inner.info()
        details = dict(info.details)
        details["roi_px"] = list(self.box)
        return dataclasses.replace(info, details=details)

    def close(self) -> None:
        self.inner.close()
