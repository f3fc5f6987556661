"""MP4 writing: H.264 (libx264, yuv420p) through imageio-ffmpeg's bundled ffmpeg; OpenCV ``mp4v`` fallback."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from echosclero.errors import InputError

__all__ = ["VideoWriter"]


class VideoWriter:
    """Write RGB uint8 frames to an MP4 file: ``write(rgb)`` per frame, then ``close()``.

    The first frame fixes the size (odd sizes are padded to even for yuv420p).
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        if not (0 < float(fps) <= 1000):
            raise InputError(f"video frame rate must be in (0, 1000] frames/s, got {fps!r}")
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise InputError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self.fps = float(fps)
        self._gen = None
        self._cv = None
        self._size: tuple[int, int] | None = None
        self.backend: str | None = None
        self.frames_written = 0

    def _open(self, h: int, w: int) -> None:
        self._size = (h, w)
        try:
            import imageio_ffmpeg

            self._gen = imageio_ffmpeg.write_frames(str(self.path), (w, h), fps=self.fps, codec="libx264",
                                                    pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=7,
                                                    macro_block_size=1, ffmpeg_log_level="error")
            self._gen.send(None)
            self.backend = "ffmpeg-libx264"
        except Exception:  # noqa: BLE001 - no ffmpeg: fall back to OpenCV
            import cv2

            self._gen = None
            self._cv = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._cv.isOpened():
                raise InputError(f"cannot open {self.path} for writing video") from None
            self.backend = "opencv-mp4v"

    def write(self, rgb: np.ndarray) -> None:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(f"video frames must be (rows, cols, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        h2, w2 = h + (h % 2), w + (w % 2)
        if (h2, w2) != (h, w):
            rgb = np.pad(rgb, ((0, h2 - h), (0, w2 - w), (0, 0)))
        if self._size is None:
            self._open(h2, w2)
        elif self._size != (h2, w2):
            import cv2

            rgb = cv2.resize(rgb, (self._size[1], self._size[0]))
        if self._gen is not None:
            self._gen.send(np.ascontiguousarray(rgb))
        else:
            self._cv.write(np.ascontiguousarray(rgb[..., ::-1]))
        self.frames_written += 1

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
