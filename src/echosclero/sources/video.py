"""Video source: ultrasound recorded to a video file, or a live capture device (frame grabber), via OpenCV.

A video carries no physical calibration, so the user must give the pixel pitch (``mm_per_px``, e.g.
measured from the depth scale on the screen) and, for a screen recording, the box of the imaging region
(``crop_px``). Frames are RGB ``uint8`` (OpenCV's BGR is converted); frame times come from the
container's frame rate (files) or the wall clock (capture devices).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from echosclero.errors import CalibrationMissingError, InputError
from echosclero.frames import Calibration, Frame
from echosclero.sources.base import Source, SourceInfo, check_crop_px, check_mm_per_px

__all__ = ["VIDEO_EXTENSIONS", "VideoSource"]

#: File name endings read as video (lower case).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def _cv2():
    import cv2

    try:  # OpenCV prints backend warnings on stderr when a device or file does not open
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # pragma: no cover - very old OpenCV
        pass
    return cv2


def parse_device(target: str | int) -> int | None:
    """The capture device index of ``video:N`` or an integer, else ``None``."""
    if isinstance(target, bool):
        return None
    if isinstance(target, int):
        return target
    text = str(target)
    if text.startswith("video:"):
        rest = text[len("video:") :]
        if rest.isdigit():
            return int(rest)
        raise InputError(
            f"capture device must be video:N with N a device number (e.g. video:0), got {text!r}"
        )
    return None


class VideoSource(Source):
    """Frames of a video file or capture device, with a user-supplied calibration.

    Parameters
    ----------
    target
        A video file path (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.webm``, ...), ``"video:N"`` or an
        integer ``N`` for capture device ``N``.
    mm_per_px
        Isotropic pixel pitch in millimetres. Required to produce frames (a video has no calibration):
        without it :meth:`frames` raises :class:`~echosclero.errors.CalibrationMissingError`;
        :meth:`info` works regardless.
    crop_px
        ``(x0, y0, x1, y1)``: inclusive pixel corners of the imaging region in the video (the DICOM
        ``RegionLocation`` convention); ``None`` keeps the whole picture.
    max_frames
        Stop after this many frames (useful for a capture device, which never ends).

    Raises
    ------
    InputError
        Missing file, a file or device OpenCV cannot open or decode, or a crop box outside the picture.
    """

    def __init__(
        self,
        target: str | os.PathLike | int,
        *,
        mm_per_px: float | None = None,
        crop_px: tuple[int, int, int, int] | None = None,
        max_frames: int | None = None,
    ) -> None:
        self.device = parse_device(target) if not isinstance(target, os.PathLike) else None
        self.live = self.device is not None
        self.path = None if self.live else Path(target)
        self.source_id = f"video:{self.device}" if self.live else str(target)
        self.mm_per_px = check_mm_per_px(mm_per_px)
        if max_frames is not None and int(max_frames) < 1:
            raise InputError(f"max_frames must be at least 1, got {max_frames!r}")
        self.max_frames = None if max_frames is None else int(max_frames)
        self._cap = None
        self._first: np.ndarray | None = None
        if self.path is not None:
            if not self.path.exists():
                raise InputError(f"no such file: {self.path}")
            if self.path.is_dir():
                raise InputError(f"{self.path} is a folder, not a video file")
        cap = self._open()
        try:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                what = "has no decodable video frames" if self.path is not None else "delivers no frames"
                raise InputError(f"{self.source_id}: {what}")
            cv2 = _cv2()
            self.rows, self.cols = int(bgr.shape[0]), int(bgr.shape[1])
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            self.fps = fps if math.isfinite(fps) and 0.0 < fps < 1000.0 else None
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self.n_frames = count if (count > 0 and not self.live) else None
            self.fourcc = _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
        except BaseException:
            cap.release()
            raise
        if self.live:
            self._cap, self._first = cap, bgr  # keep a device open: re-opening a grabber is slow
        else:
            cap.release()
        self.crop_px = check_crop_px(crop_px, rows=self.rows, cols=self.cols, source_id=self.source_id)

    def _open(self):
        cv2 = _cv2()
        if self.live:
            cap = cv2.VideoCapture(self.device)
            if not cap.isOpened():
                cap.release()
                raise InputError(
                    f"cannot open capture device {self.device} (video:{self.device}); check that the frame "
                    "grabber is connected and not used by another program"
                )
            return cap
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise InputError(
                f"{self.path}: not a video OpenCV can open (expected one of {', '.join(VIDEO_EXTENSIONS)})"
            )
        return cap

    @property
    def frame_time_s(self) -> float | None:
        return 1.0 / self.fps if self.fps else None

    @property
    def calibration(self) -> Calibration | None:
        if self.mm_per_px is None:
            return None
        return Calibration(
            mm_per_px_x=self.mm_per_px, mm_per_px_z=self.mm_per_px, source="user", region_px=self.crop_px
        )

    def frames(self) -> Iterator[Frame]:
        """Frames in order, RGB ``uint8``, cropped to ``crop_px``.

        Raises
        ------
        CalibrationMissingError
            Immediately when no ``mm_per_px`` was given.
        """
        calibration = self.calibration
        if calibration is None:
            raise CalibrationMissingError(
                f"{self.source_id}: a video carries no physical calibration; pass --mm-per-px with the "
                "pixel pitch in millimetres (e.g. measured from the depth scale on screen)"
            )
        return self._iterate(calibration)

    def _iterate(self, calibration: Calibration) -> Iterator[Frame]:
        cv2 = _cv2()
        cap = self._cap if self.live else self._open()
        pending = self._first if self.live else None
        self._first = None
        t0 = time.monotonic()
        index = 0
        try:
            while self.max_frames is None or index < self.max_frames:
                if pending is not None:
                    ok, bgr, pending = True, pending, None
                else:
                    ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                if bgr.shape[0] != self.rows or bgr.shape[1] != self.cols:
                    raise InputError(
                        f"{self.source_id}: frame {index} is {bgr.shape[1]} x {bgr.shape[0]} px, but the "
                        f"video started at {self.cols} x {self.rows} px"
                    )
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr
                if self.crop_px is not None:
                    x0, y0, x1, y1 = self.crop_px
                    rgb = np.ascontiguousarray(rgb[y0 : y1 + 1, x0 : x1 + 1])
                if self.live or not self.fps:
                    t_s = time.monotonic() - t0
                else:
                    t_s = index / self.fps
                yield Frame(
                    pixels=rgb, calibration=calibration, t_s=float(t_s), index=index, source_id=self.source_id
                )
                index += 1
        finally:
            if not self.live:
                cap.release()

    def info(self) -> SourceInfo:
        details = {
            "fps": self.fps,
            "fourcc": self.fourcc,
            "crop_px": list(self.crop_px) if self.crop_px is not None else None,
            "calibration": self.calibration.to_json() if self.calibration is not None else None,
        }
        if self.mm_per_px is None:
            details["calibration_note"] = (
                "uncalibrated (a video has no calibration; pass --mm-per-px to analyse)"
            )
        if self.crop_px is not None:
            x0, y0, x1, y1 = self.crop_px
            details["frame_shape"] = [y1 - y0 + 1, x1 - x0 + 1]
        else:
            details["frame_shape"] = [self.rows, self.cols]
        return SourceInfo(
            kind="capture" if self.live else "video",
            source_id=self.source_id,
            n_frames=self.n_frames,
            rows=self.rows,
            cols=self.cols,
            frame_time_s=self.frame_time_s,
            calibrated=self.mm_per_px is not None,
            details=details,
        )

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _fourcc_text(value: float) -> str:
    code = int(value or 0)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and code else ""
