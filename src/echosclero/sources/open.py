"""One entry point from a user's PATH (or address) to the right :class:`~echosclero.sources.base.Source`.

========================  =====================================================================
spec                      source
========================  =====================================================================
``sim:NAME``              the leg ultrasound simulator, scenario ``NAME`` (seeded)
``igtl://HOST:PORT``      OpenIGTLink IMAGE stream (PLUS); ``?device=NAME&policy=all`` optional
``video:N``               capture device ``N`` (frame grabber)
a folder                  its DICOM, video and image files, in name order (with ``frame_time_s``: its
                          numbered images as one cine)
a file                    DICOM (``DICM`` marker, or parses as DICOM), video or PNG/JPEG/TIFF (by extension)
========================  =====================================================================
"""

from __future__ import annotations

import os
from pathlib import Path

from echosclero.errors import InputError
from echosclero.sources.base import Source

__all__ = ["open_file", "open_source"]

_EXPECTED = (
    "EchoSclero reads ultrasound DICOM files, video files ({exts}), folders of them, "
    "sim:SCENARIO, igtl://HOST:PORT and video:N"
)


def _expected() -> str:
    from echosclero.sources.video import VIDEO_EXTENSIONS

    return _EXPECTED.format(exts=", ".join(VIDEO_EXTENSIONS))


def open_file(
    path: str | os.PathLike,
    *,
    mm_per_px: float | None = None,
    crop_px: tuple[int, int, int, int] | None = None,
) -> Source:
    """Open one file as a DICOM or video source.

    A file with the DICOM ``DICM`` marker is DICOM; otherwise a known video extension makes it a video;
    otherwise it is tried as a DICOM dataset without preamble.

    Raises
    ------
    InputError
        Missing file, or a file that is neither DICOM nor video (the message names what was expected).
    """
    from echosclero.sources.dicom import DicomSource, NotDicomError, has_dicom_preamble
    from echosclero.sources.image import ImageSource, is_image
    from echosclero.sources.video import VIDEO_EXTENSIONS, VideoSource

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; open it with open_source")
    if has_dicom_preamble(path):
        return DicomSource(path, mm_per_px=mm_per_px)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return VideoSource(path, mm_per_px=mm_per_px, crop_px=crop_px)
    if is_image(path):
        return ImageSource(path, mm_per_px=mm_per_px, crop_px=crop_px)
    try:
        return DicomSource(path, mm_per_px=mm_per_px)
    except NotDicomError as exc:
        raise InputError(
            f"{path}: not a DICOM file (no 'DICM' marker, does not parse as DICOM) and not a video "
            f"file by its extension; {_expected()}"
        ) from exc


def open_source(
    spec: str | os.PathLike,
    *,
    mm_per_px: float | None = None,
    seed: int = 0,
    crop_px: tuple[int, int, int, int] | None = None,
    frame_time_s: float | None = None,
) -> Source:
    """Open what the user named: a file, a folder, ``sim:NAME``, ``igtl://HOST:PORT`` or ``video:N``.

    Parameters
    ----------
    spec
        The path or address (see the module table).
    mm_per_px
        Pixel pitch in millimetres for inputs without their own calibration (``--mm-per-px``).
    seed
        Seed of the simulator (``sim:``).
    crop_px
        ``(x0, y0, x1, y1)`` inclusive imaging-region box for video and image inputs.
    frame_time_s
        Read a folder of numbered images as one cine with this time between frames (``--frame-time-ms``);
        without it a folder is an archive of files.

    Returns
    -------
    Source
        Use it as a context manager to release files and sockets.

    Raises
    ------
    InputError
        ``no such file: ...`` for a missing path; a one-line reason for anything unusable.
    """
    text = os.fspath(spec)
    if text.startswith("sim:"):
        name = text[len("sim:") :]
        if not name:
            raise InputError(
                "sim: needs a scenario name, e.g. sim:gsv_injection (see `echosclero simulate --list`)"
            )
        from echosclero.sim import open_simulated_source

        return open_simulated_source(name, seed=seed)
    if text.startswith("igtl://"):
        from echosclero.sources.igtl import IgtlSource

        return IgtlSource.from_url(text, mm_per_px=mm_per_px)
    if text.startswith("video:"):
        from echosclero.sources.video import VideoSource

        return VideoSource(text, mm_per_px=mm_per_px, crop_px=crop_px)
    path = Path(text)
    if not path.exists():
        hint = f" (for capture device {text}, write video:{text})" if text.isdigit() else ""
        raise InputError(f"no such file: {path}{hint}")
    if path.is_dir() and frame_time_s is not None:
        from echosclero.sources.image import ImageSequenceSource

        return ImageSequenceSource(path, frame_time_s=frame_time_s, mm_per_px=mm_per_px, crop_px=crop_px)
    if path.is_dir():
        from echosclero.sources.folder import FolderSource

        return FolderSource(path, mm_per_px=mm_per_px, crop_px=crop_px)
    return open_file(path, mm_per_px=mm_per_px, crop_px=crop_px)
