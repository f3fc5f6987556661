"""Still images and numbered image sequences: PNG, JPEG and TIFF screenshots of a scanner.

Screenshots carry no calibration: the pixel pitch comes from ``--mm-per-px`` (read it off the depth scale on
screen: the distance in pixels between two depth ticks, divided into their distance in millimetres).

* :class:`ImageSource`: one file, one frame (a multi-page TIFF: one frame per page, a cine when
  ``frame_time_s`` is given).
* :class:`ImageSequenceSource`: a folder of numbered images read as **one cine** (``frame_0001.png``,
  ``frame_0002.png``, ...; ordered by the number in the name, so ``10`` follows ``9``), one frame every
  ``frame_time_s``. Without it a folder of images is an archive of stills (:class:`~.folder.FolderSource`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from echosclero.errors import CalibrationMissingError, InputError
from echosclero.frames import Calibration, Frame
from echosclero.sources.base import Source, SourceInfo, check_crop_px, check_mm_per_px

__all__ = ["IMAGE_EXTENSIONS", "ImageSequenceSource", "ImageSource", "is_image"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _check_frame_time(frame_time_s: float | None) -> float | None:
    if frame_time_s is None:
        return None
    if not (isinstance(frame_time_s, (int, float)) and np.isfinite(frame_time_s) and 0 < frame_time_s <= 10):
        raise InputError(f"frame time must be between 0 and 10 000 ms, got {frame_time_s * 1e3!r} ms")
    return float(frame_time_s)


def _read_pages(path: Path) -> list[np.ndarray]:
    """Pixels of every page: grey (rows, cols) or RGB (rows, cols, 3) uint8."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not an image Pillow can read ({exc.__class__.__name__}); expected "
                         f"{', '.join(IMAGE_EXTENSIONS)}") from None
    pages = []
    try:
        for k in range(getattr(img, "n_frames", 1)):
            img.seek(k)
            page = img
            if page.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(page, dtype=np.float64)
                hi = float(a.max()) or 1.0
                pages.append((a * (255.0 / hi)).astype(np.uint8))
                continue
            if page.mode not in ("L", "RGB"):
                page = page.convert("RGB")
            a = np.asarray(page)
            if a.ndim == 3 and np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]):
                a = a[..., 0]  # grey stored as RGB
            pages.append(np.ascontiguousarray(a))
    except OSError as exc:
        raise InputError(f"{path}: the image is truncated or corrupt ({exc}); re-export it from the scanner") from None
    if not pages or min(pages[0].shape[:2]) < 8:
        raise InputError(f"{path}: the image is smaller than 8 x 8 pixels")
    return pages


class ImageSource(Source):
    """One screenshot (or the pages of a multi-page TIFF) as frames, calibrated by ``mm_per_px``."""

    live = False

    def __init__(self, path: str | os.PathLike, *, mm_per_px: float | None = None,
                 crop_px: tuple[int, int, int, int] | None = None, frame_time_s: float | None = None) -> None:
        self.path = Path(path)
        self.source_id = str(path)
        if not self.path.exists():
            raise InputError(f"no such file: {self.path}")
        self.mm_per_px = check_mm_per_px(mm_per_px)
        self.frame_time_s = _check_frame_time(frame_time_s)
        self._pages = _read_pages(self.path)
        rows, cols = self._pages[0].shape[:2]
        self.rows, self.cols = rows, cols
        self.crop_px = check_crop_px(crop_px, rows=rows, cols=cols, source_id=self.source_id)

    @property
    def calibration(self) -> Calibration | None:
        if self.mm_per_px is None:
            return None
        return Calibration(self.mm_per_px, self.mm_per_px, source="user", region_px=self.crop_px)

    def frames(self) -> Iterator[Frame]:
        cal = self.calibration
        if cal is None:
            raise CalibrationMissingError(
                f"{self.source_id}: a screenshot carries no physical calibration; pass --mm-per-px with the pixel "
                "pitch in millimetres (the distance between two depth ticks in mm over their distance in pixels)")
        dt = self.frame_time_s or 0.0
        for k, page in enumerate(self._pages):
            if page.shape[:2] != (self.rows, self.cols):
                raise InputError(f"{self.source_id}: page {k} is not the size of page 0")
            yield Frame(pixels=_crop(page, self.crop_px), calibration=cal, t_s=k * dt, index=k,
                        source_id=self.source_id)

    def info(self) -> SourceInfo:
        return SourceInfo(kind="image", source_id=self.source_id, n_frames=len(self._pages), rows=self.rows,
                          cols=self.cols, frame_time_s=self.frame_time_s, calibrated=self.mm_per_px is not None,
                          details={"format": self.path.suffix.lower().lstrip("."),
                                   "crop_px": list(self.crop_px) if self.crop_px else None})


def _crop(a: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    if box is None:
        return a
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(a[y0:y1 + 1, x0:x1 + 1])


def _number_key(p: Path) -> tuple:
    """Natural order: the numbers in the name compared as numbers (frame9 before frame10)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


class ImageSequenceSource(Source):
    """A folder of numbered images as one cine: one frame every ``frame_time_s``, in the names' number order."""

    live = False

    def __init__(self, path: str | os.PathLike, *, frame_time_s: float | None, mm_per_px: float | None = None,
                 crop_px: tuple[int, int, int, int] | None = None) -> None:
        self.path = Path(path)
        self.source_id = str(path)
        if not self.path.is_dir():
            raise InputError(f"{self.path} is not a folder (a cine of numbered images is a folder of them)")
        if frame_time_s is None:
            raise InputError(f"{self.path}: a folder read as one cine needs --frame-time-ms (the time between "
                             "two images, e.g. 50 for 20 frames/s)")
        self.frame_time_s = _check_frame_time(frame_time_s)
        self.mm_per_px = check_mm_per_px(mm_per_px)
        self.files = sorted((p for p in self.path.iterdir() if p.is_file() and is_image(p)
                             and not p.name.startswith(".")), key=_number_key)
        if not self.files:
            raise InputError(f"{self.path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
        first = _read_pages(self.files[0])[0]
        self.rows, self.cols = first.shape[:2]
        self.crop_px = check_crop_px(crop_px, rows=self.rows, cols=self.cols, source_id=self.source_id)

    def frames(self) -> Iterator[Frame]:
        if self.mm_per_px is None:
            raise CalibrationMissingError(
                f"{self.source_id}: images carry no physical calibration; pass --mm-per-px with the pixel pitch")
        cal = Calibration(self.mm_per_px, self.mm_per_px, source="user", region_px=self.crop_px)
        for k, path in enumerate(self.files):
            page = _read_pages(path)[0]
            if page.shape[:2] != (self.rows, self.cols):
                raise InputError(f"{path}: {page.shape[1]} x {page.shape[0]} px, but the cine started at "
                                 f"{self.cols} x {self.rows} px ({self.files[0].name})")
            yield Frame(pixels=_crop(page, self.crop_px), calibration=cal, t_s=k * self.frame_time_s, index=k,
                        source_id=str(path))

    def info(self) -> SourceInfo:
        return SourceInfo(kind="image-sequence", source_id=self.source_id, n_frames=len(self.files),
                          rows=self.rows, cols=self.cols, frame_time_s=self.frame_time_s,
                          calibrated=self.mm_per_px is not None,
                          details={"first": self.files[0].name, "last": self.files[-1].name})
