"""Folder source: the DICOM and video files of a folder, in name order, as one sequence of frames.

A file that cannot be used (not DICOM or video, corrupt, not ultrasound, uncalibrated without
``--mm-per-px``, undecodable frame) does not stop the others: it is recorded in
:attr:`FolderSource.errors` as ``(name, reason)`` and skipped. Hidden files (``.name``) are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from echosclero.errors import EchoScleroError, InputError
from echosclero.frames import Frame
from echosclero.sources.base import Source, SourceInfo, check_mm_per_px

__all__ = ["FileProblem", "FolderSource"]


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file of the folder that was skipped, and why (one line, ready to show a user)."""

    name: str
    reason: str

    def to_json(self) -> dict:
        return {"name": self.name, "reason": self.reason}


class FolderSource(Source):
    """Frames of every usable DICOM and video file of a folder, file after file, in name order.

    Parameters
    ----------
    path
        The folder (not searched recursively unless ``recursive``).
    mm_per_px
        Passed to each file (used only by files without their own calibration).
    crop_px
        Passed to video files.
    recursive
        Also read sub-folders (paths sorted as a whole).

    Notes
    -----
    Each frame's ``source_id`` names its file; ``Frame.index`` and ``Frame.t_s`` restart at each file.
    """

    live = False

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        mm_per_px: float | None = None,
        crop_px: tuple[int, int, int, int] | None = None,
        recursive: bool = False,
    ) -> None:
        self.path = Path(path)
        self.source_id = str(path)
        if not self.path.exists():
            raise InputError(f"no such folder: {self.path}")
        if not self.path.is_dir():
            raise InputError(f"{self.path} is not a folder")
        self.mm_per_px = check_mm_per_px(mm_per_px)
        self.crop_px = crop_px
        pattern = "**/*" if recursive else "*"
        self.files = sorted(
            p
            for p in self.path.glob(pattern)
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts)
        )
        self._problems: dict[Path, str] = {}

    def _name(self, path: Path) -> str:
        return str(path.relative_to(self.path))

    @property
    def errors(self) -> list[FileProblem]:
        """Files skipped so far (by :meth:`sources`, :meth:`frames` or :meth:`info`), in name order."""
        return [FileProblem(self._name(p), reason) for p, reason in sorted(self._problems.items())]

    def _record(self, path: Path, exc: BaseException) -> None:
        from echosclero.sources.dicom import NotDicomError

        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, NotDicomError) or isinstance(exc.__cause__, NotDicomError):
            reason = "not a DICOM or video file"
        prefix = f"{path}: "
        if reason.startswith(prefix):  # the file name is already in FileProblem.name
            reason = reason[len(prefix) :]
        self._problems.setdefault(path, reason)

    def sources(self) -> Iterator[tuple[Path, Source]]:
        """Each usable file opened as a source (the caller closes it); unusable ones are recorded."""
        from echosclero.sources.open import open_file

        for path in self.files:
            try:
                source = open_file(path, mm_per_px=self.mm_per_px, crop_px=self.crop_px)
            except EchoScleroError as exc:
                self._record(path, exc)
                continue
            yield path, source

    def frames(self) -> Iterator[Frame]:
        """All frames of all usable files; a file failing half-way keeps the frames already given."""
        return self._iterate()

    def _iterate(self) -> Iterator[Frame]:
        for path, source in self.sources():
            with source:
                try:
                    yield from source.frames()
                except EchoScleroError as exc:
                    self._record(path, exc)

    def info(self) -> SourceInfo:
        """Summary of the folder: per-file kind, frame count and calibration, and the skipped files."""
        files = []
        n_frames = 0
        all_known = True
        first: SourceInfo | None = None
        for path, source in self.sources():
            with source:
                try:
                    info = source.info()
                except EchoScleroError as exc:
                    self._record(path, exc)
                    continue
            first = first or info
            if info.n_frames is None:
                all_known = False
            else:
                n_frames += info.n_frames
            files.append(
                {
                    "name": self._name(path),
                    "kind": info.kind,
                    "n_frames": info.n_frames,
                    "rows": info.rows,
                    "cols": info.cols,
                    "frame_time_s": info.frame_time_s,
                    "calibrated": info.calibrated,
                    "calibration": info.details.get("calibration"),
                }
            )
        return SourceInfo(
            kind="folder",
            source_id=self.source_id,
            n_frames=n_frames if all_known else None,
            rows=first.rows if first else 0,
            cols=first.cols if first else 0,
            frame_time_s=None,
            calibrated=bool(files) and all(f["calibrated"] for f in files),
            details={"files": files, "errors": [p.to_json() for p in self.errors]},
        )
