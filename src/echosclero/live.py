"""Following a live ultrasound stream with the guidance engine, newest frame first.

Live guidance must never lag: a result about a frame that is a second old is a wrong picture of where the
needle is now. :func:`follow_stream` therefore takes frames from a source whose real-time policy is
*newest-frame-only* (:class:`~echosclero.sources.igtl.IgtlSource` with ``policy="newest"``): while the
engine works on one frame, the frames that arrive replace each other in a one-frame buffer, and the next
frame analysed is always the newest. The backlog cannot grow; a slow engine analyses fewer frames, each
with a bounded age, instead of falling further and further behind.

Accounting (:class:`LiveReport`): every frame the source decoded is either analysed or dropped —
``received == analysed + dropped``, where ``dropped`` counts the frames replaced by a newer one, the one
left in the buffer when the run stopped, and one handed out but interrupted before its result. Messages
the source could not use (not an IMAGE, a wrong body size, a bad CRC, ...) are counted as ``malformed``.

Latency: the age of a frame when its result is ready, from the moment its message had fully arrived on
this machine (``Frame.meta["received_monotonic_s"]``) to the end of :meth:`Engine.process`; it is the
waiting in the buffer plus the analysis. (The sender's own timestamp is on the sender's clock, which this
machine cannot compare with its own.)

Outputs (:class:`LiveJsonWriter`): the ``echosclero.analysis/1`` document written incrementally (constant
memory over a long session), or JSON lines for a pipe.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from echosclero.batch.analysis import analysis_document
from echosclero.errors import StreamError
from echosclero.sources.base import Source

__all__ = ["LiveJsonWriter", "LiveReport", "follow_stream"]


ResultCallback = Callable[[object, object, dict], None]


@dataclass
class LiveReport:
    """What a live run did.

    Attributes
    ----------
    source_id
        The stream address.
    received
        Frames the source decoded (IMAGE messages usable as frames).
    analysed
        Frames the engine analysed.
    dropped
        Frames never analysed: replaced by a newer one, left in the buffer at the end, or interrupted.
    malformed
        Messages skipped as unusable (see :class:`~echosclero.sources.igtl.IgtlCounters`).
    ignored_device
        IMAGE messages from another device than the one asked for.
    reconnects
        Reconnections after the first connection.
    policy
        The source's real-time policy (``"newest"`` for live guidance).
    latency_ms
        Age of each analysed frame when its result was ready (ms), in order.
    duration_s
        Wall time from the start of the run to its stop.
    stopped
        Why the run stopped: ``"max-frames"``, ``"duration"``, ``"interrupted"`` (Ctrl-C / SIGTERM),
        ``"end of stream"`` or ``"stream error"``.
    error
        The :class:`~echosclero.errors.StreamError` that stopped it, if any.
    alerts_by_code
        Analysed frames raising each alert code.
    """

    source_id: str
    received: int = 0
    analysed: int = 0
    dropped: int = 0
    malformed: int = 0
    ignored_device: int = 0
    reconnects: int = 0
    policy: str = "newest"
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duration_s: float = 0.0
    stopped: str = ""
    error: StreamError | None = None
    alerts_by_code: dict[str, int] = field(default_factory=dict)

    def latency_percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile of the latency in ms (``None`` before any result)."""
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms.size else None

    @property
    def analysed_per_s(self) -> float:
        return self.analysed / self.duration_s if self.duration_s > 0 else 0.0

    def to_json(self) -> dict:
        """The ``"stream"`` member of the live document."""

        def r(v: float | None, nd: int = 2) -> float | None:
            return None if v is None else round(v, nd)

        return {
            "received": self.received,
            "analysed": self.analysed,
            "dropped": self.dropped,
            "malformed": self.malformed,
            "ignored_device": self.ignored_device,
            "reconnects": self.reconnects,
            "policy": self.policy,
            "latency_ms": {
                "median": r(self.latency_percentile_ms(50)),
                "p99": r(self.latency_percentile_ms(99)),
                "max": r(float(self.latency_ms.max()) if self.latency_ms.size else None),
            },
            "analysed_per_s": r(self.analysed_per_s),
            "duration_s": r(self.duration_s, 3),
            "stopped": self.stopped,
            "error": None if self.error is None else str(self.error),
            "alerts_by_code": dict(sorted(self.alerts_by_code.items())),
        }

    def summary_line(self) -> str:
        """One line for the terminal: counts, latency, why it stopped, alerts."""
        med, p99 = self.latency_percentile_ms(50), self.latency_percentile_ms(99)
        latency = "no latency (nothing analysed)" if med is None else f"latency median {med:.0f} ms, p99 {p99:.0f} ms"
        alerts = ", ".join(f"{k} x{v}" for k, v in sorted(self.alerts_by_code.items())) or "no alerts"
        return (
            f"{self.source_id}: {self.received} frames received, {self.analysed} analysed "
            f"({self.analysed_per_s:.1f}/s), {self.dropped} dropped ({self.policy}-frame policy), "
            f"{self.malformed} malformed message(s); {latency}; {self.duration_s:.1f} s, stopped: {self.stopped}; "
            f"{alerts}"
        )


def follow_stream(
    source: Source,
    *,
    max_frames: int | None = None,
    duration_s: float | None = None,
    contours: bool = False,
    on_result: ResultCallback | None = None,
    engine=None,
    handle_signals: bool = True,
) -> LiveReport:
    """Analyse the newest frame of a live source, again and again, until told to stop.

    Parameters
    ----------
    source
        A live source, normally :class:`~echosclero.sources.igtl.IgtlSource` with ``policy="newest"``;
        it is started (connected) first and closed at the end.
    max_frames
        Stop after analysing this many frames.
    duration_s
        Stop once this many seconds have passed since the start (checked as frames are analysed).
    contours
        Include vessel contours in the frames' JSON.
    on_result
        Called as ``on_result(frame, result, frame_json)`` for each analysed frame; ``frame_json`` is the
        ``echosclero.analysis/1`` frame object plus ``latency_ms``.
    engine
        A :class:`~echosclero.guidance.Engine` (default: a new one).
    handle_signals
        In the main thread, make SIGINT (Ctrl-C) and SIGTERM stop the run cleanly: while waiting for a
        frame they stop it at once; while a frame is analysed and written they stop it right after, so
        that no output is left half-written. A second signal during a frame interrupts at once. The
        previous handlers are restored on return.

    Returns
    -------
    LiveReport
        Also on Ctrl-C (``stopped="interrupted"``) and on a stream failure (``stopped="stream error"``,
        the exception in :attr:`LiveReport.error`, not raised): the caller writes what was analysed first.
    """
    if engine is None:
        from echosclero.guidance import Engine

        engine = Engine()
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    report = LiveReport(source_id=source.source_id, policy=getattr(source, "policy", "all"))
    latencies = array("d")
    alerts: Counter = Counter()
    analysed = 0
    t_start = time.monotonic()
    frames = None
    state = {"busy": False, "stop": False}

    def on_signal(signum, _frame):
        if state["busy"] and not state["stop"]:
            state["stop"] = True  # finish this frame and its outputs, then stop
            return
        raise KeyboardInterrupt

    previous = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        start = getattr(source, "start", None)
        if start is not None:
            start()
        frames = source.frames()
        report.stopped = "end of stream"
        for frame in frames:
            state["busy"] = True
            result = engine.process(frame)
            ready_s = time.monotonic()
            analysed += 1
            frame_json = result.to_json(contours=contours)
            arrived_s = frame.meta.get("received_monotonic_s")
            if arrived_s is not None:
                latency_ms = (ready_s - arrived_s) * 1e3
                latencies.append(latency_ms)
                frame_json["latency_ms"] = round(latency_ms, 2)
            alerts.update({a["code"] for a in frame_json["alerts"]})
            if on_result is not None:
                on_result(frame, result, frame_json)
            state["busy"] = False
            if state["stop"]:
                report.stopped = "interrupted"
                break
            if max_frames is not None and analysed >= max_frames:
                report.stopped = "max-frames"
                break
            if duration_s is not None and ready_s - t_start >= duration_s:
                report.stopped = "duration"
                break
    except KeyboardInterrupt:
        report.stopped = "interrupted"
    except StreamError as exc:
        report.stopped = "stream error"
        report.error = exc
    finally:
        state["busy"] = True  # a signal from here on only asks to stop, which is under way
        state["stop"] = True
        try:
            if frames is not None and hasattr(frames, "close"):
                frames.close()
            source.close()  # joins the reader: the counters are final from here on
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    report.duration_s = time.monotonic() - t_start
    report.analysed = analysed
    report.latency_ms = np.frombuffer(latencies, dtype=np.float64).copy()
    report.alerts_by_code = dict(alerts)
    counters = getattr(source, "counters", None)
    if counters is not None:
        report.received = counters.received
        report.malformed = counters.malformed
        report.ignored_device = counters.ignored_device
        report.reconnects = counters.reconnects
        left = int(getattr(source, "queued_frames", 0))
        report.dropped = counters.dropped_stale + left + max(counters.delivered - analysed, 0)
    else:
        report.received = analysed
    return report


class LiveJsonWriter:
    """Write a live run as it goes: one ``echosclero.analysis/1`` document, or JSON lines.

    Parameters
    ----------
    fh
        An open text file (the caller closes it).
    lines
        ``False``: one JSON document ``{"schema", "source", "calibration", "frames": [...], "stream": {...}}``
        written incrementally (valid once :meth:`finish` has run). ``True``: JSON lines, flushed one by one —
        a header ``{"schema", "source", "calibration"}`` with the first frame, one line per analysed frame,
        and a last line ``{"stream": {...}}``.

    Notes
    -----
    ``calibration`` is the first frame's; a frame whose calibration differs (the sonographer changed the
    depth) carries its own ``"calibration"`` member.
    """

    def __init__(self, fh: IO[str], *, lines: bool, source_id: str) -> None:
        self.fh = fh
        self.lines = lines
        self.source_id = source_id
        self.calibration: dict | None = None
        self._started = False
        self.n_frames = 0

    def _header(self) -> dict:
        return analysis_document(self.source_id, self.calibration)

    def _start(self) -> None:
        self._started = True
        if self.lines:
            self._line(self._header())
        else:
            head = json.dumps(self._header(), separators=(",", ":"))
            self.fh.write(head[:-1] + ',"frames":[')

    def _line(self, obj: dict) -> None:
        self.fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.fh.flush()

    def add(self, frame, frame_json: dict) -> None:
        """Write one analysed frame (``frame`` gives the calibration)."""
        calibration = frame.calibration.to_json() if frame.calibration is not None else None
        if not self._started:
            self.calibration = calibration
            self._start()
        elif calibration != self.calibration:
            frame_json = {**frame_json, "calibration": calibration}
        if self.lines:
            self._line(frame_json)
        else:
            self.fh.write(("," if self.n_frames else "") + json.dumps(frame_json, separators=(",", ":")))
        self.n_frames += 1

    def finish(self, stream: dict) -> None:
        """Close the document (or write the last line) with the run's ``stream`` summary."""
        stream = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in stream.items()}
        if not self._started:
            self._start()
        if self.lines:
            self._line({"stream": stream})
        else:
            self.fh.write('],"stream":' + json.dumps(stream, separators=(",", ":")) + "}")
            self.fh.flush()
