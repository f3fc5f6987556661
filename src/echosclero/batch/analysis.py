"""One source through one guidance engine, into one ``echosclero.analysis/1`` document.

This is the unit of work of every non-live path: ``echosclero analyze FILE``, the in-process folder loop
and each Dask task of :mod:`echosclero.batch.archive`. A fresh :class:`~echosclero.guidance.Engine` is
made per source, so that tracked state (vessel ids, needle, probe-compression reference) never leaks
from one cine into the next.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from echosclero.errors import EchoScleroError
from echosclero.frames import ANALYSIS_SCHEMA
from echosclero.sources.base import Source

__all__ = ["SCHEMA", "SourceAnalysis", "analyse_source", "analysis_document"]

#: Version tag of the analysis document.
SCHEMA = ANALYSIS_SCHEMA


def analysis_document(source_id: str, calibration: dict | None, frames: list[dict] | None = None) -> dict:
    """The ``echosclero.analysis/1`` document: ``{"schema", "source", "calibration", "frames"}``, made here for
    files, folders, archives, live runs (whose writer streams it) and the demo alike. ``frames=None``: the header
    alone (a live writer's first line)."""
    doc = {"schema": SCHEMA, "source": source_id, "calibration": calibration}
    if frames is not None:
        doc["frames"] = frames
    return doc


@dataclass(frozen=True, slots=True)
class SourceAnalysis:
    """The analysis of one source.

    Attributes
    ----------
    document
        ``{"schema", "source", "calibration", "frames"}`` (``echosclero.analysis/1``), with the frames
        analysed before any failure.
    elapsed_s
        Wall time from the first frame request to the last result: decoding plus analysis.
    engine_ms
        Sum of the engine's own per-frame times (``FrameResult.processing_ms``), in milliseconds.
    error
        ``None`` when every frame was analysed; otherwise the one-line reason the source stopped
        (a truncated or undecodable frame), the frames before it being kept.
    """

    document: dict
    elapsed_s: float
    engine_ms: float
    error: str | None = None

    @property
    def n_frames(self) -> int:
        return len(self.document["frames"])


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__


def analyse_source(
    source: Source,
    *,
    max_frames: int | None = None,
    contours: bool = False,
    video=None,
    progress: bool | None = None,
    progress_desc: str = "analyse",
    keep_partial: bool = False,
) -> SourceAnalysis:
    """Run a fresh guidance engine over every frame of ``source``, in order.

    Parameters
    ----------
    source
        Any non-live source (file, simulator); not closed here.
    max_frames
        Analyse at most this many frames (``None``: all).
    contours
        Include vessel contours (mm) in the frames' JSON.
    video
        A :class:`~echosclero.render.VideoWriter` receiving one annotated picture per frame, or ``None``.
    progress
        Show a tqdm bar on stderr (``None``: only when stderr is a terminal).
    progress_desc
        Label of the bar.
    keep_partial
        When a frame cannot be read half-way through, return the frames analysed so far with
        :attr:`SourceAnalysis.error` set, instead of raising.

    Returns
    -------
    SourceAnalysis

    Raises
    ------
    EchoScleroError
        A frame that cannot be read (unless ``keep_partial``), or an unusable source.
    """
    from echosclero.guidance import Engine

    engine = Engine()
    frames_json: list[dict] = []
    calibration = None
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm import tqdm

        try:
            total = source.info().n_frames
        except EchoScleroError:  # the count only feeds the progress bar
            total = None
        if max_frames is not None:
            total = min(total or max_frames, max_frames)
        bar = tqdm(total=total, desc=progress_desc, unit="frame", file=sys.stderr, leave=False)
    engine_ms = 0.0
    error = None
    t0 = time.perf_counter()
    try:
        if max_frames is None or max_frames > 0:
            for frame in source.frames():
                if calibration is None and frame.calibration is not None:
                    calibration = frame.calibration.to_json()
                result = engine.process(frame)
                engine_ms += result.processing_ms or 0.0
                frames_json.append(result.to_json(contours=contours))
                if video is not None:
                    from echosclero.render import draw_overlay

                    video.write(draw_overlay(frame, result))
                if bar is not None:
                    bar.update(1)
                if max_frames is not None and len(frames_json) >= max_frames:
                    break
    except EchoScleroError as exc:
        if not keep_partial or not frames_json:
            raise
        error = f"stopped after {len(frames_json)} frame(s): {_one_line(exc)}"
    finally:
        if bar is not None:
            bar.close()
    elapsed_s = time.perf_counter() - t0
    document = analysis_document(source.source_id, calibration, frames_json)
    return SourceAnalysis(document=document, elapsed_s=elapsed_s, engine_ms=engine_ms, error=error)
