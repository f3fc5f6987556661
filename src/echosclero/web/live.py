"""The live procedure view: ultrasound frames and the engine's findings over a WebSocket, newest frame only.

``/ws/live?source=SPEC`` (``SPEC`` as ``echosclero analyze`` takes it: ``sim:NAME``, a DICOM cine or video
path, ``igtl://HOST:PORT``, ``video:N``). A worker thread reads the source, runs the guidance engine
(:class:`echosclero.guidance.Engine`, its public ``process``) on each frame and leaves the result in a
one-frame slot; the socket sends the newest result once the page has acknowledged drawing the previous one.
A page slower than the probe therefore sees fewer frames, never older ones: a frame replaced in the slot
before it was sent is counted as dropped, and the backlog cannot grow.

Message to the page (binary): a 4-byte little-endian header length, the header as JSON (frame geometry and
calibration, the ``echosclero.analysis/1`` frame with contours, ``t_ready_ms``: the server's wall clock when
the engine's result was ready, and the counters), then the pixels (rows x cols x channels, uint8). At most
:data:`IN_FLIGHT` frames are unacknowledged at any time. Text
messages: ``{"type": "error", "message": ...}``, ``{"type": "end", ...}``, ``{"type": "pong", ...}`` (with the
counters: frames ``published`` by the engine, ``sent``, ``dropped``).
From the page: ``{"type": "ack"}`` after drawing, ``{"type": "ping", "t_page_ms": ...}`` to measure the
offset between the two clocks (the benchmark's latency), ``{"type": "stop"}``.

Files and the simulator are paced at their frame rate (``rate_hz`` for the simulator); ``precomputed=1``
analyses a file or scenario first and then plays it, so that the view runs at full rate whatever the
engine's speed (the live benchmark uses it to measure the view alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace

import jwt
import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from echosclero.api.deps import audit_row, insert_audit, load_user
from echosclero.api.security import decode_token
from echosclero.clinic.roles import Permission, can
from echosclero.errors import EchoScleroError
from echosclero.store.db import commit
from echosclero.web.session import COOKIE

__all__ = ["Feed", "encode_frame", "router"]

router = APIRouter()

MAX_RATE_HZ = 120.0
#: Frames sent and not yet acknowledged by the page. One: the next frame is chosen when the page has drawn the
#: last, so it is the newest there is. Two kept the pipe busier but the second frame waited in the page's socket
#: while the first was drawn (measured, headless Chromium on 2 cores: latency median 37-47 ms with two in
#: flight against 21-22 ms with one, at the same ~35-40 frames/s).
IN_FLIGHT = 1


def encode_frame(pixels: np.ndarray, header: dict) -> bytes:
    """One binary message: header length, JSON header, uint8 pixels (rows x cols x channels)."""
    px = pixels
    if px.dtype != np.uint8:
        hi = float(px.max()) if px.size else 1.0
        px = np.clip(np.rint(px.astype(np.float32) * (255.0 / (hi or 1.0))), 0, 255).astype(np.uint8)
    if px.ndim == 3 and px.shape[2] == 4:
        px = px[:, :, :3]
    channels = 1 if px.ndim == 2 else px.shape[2]
    head = json.dumps({**header, "rows": px.shape[0], "cols": px.shape[1], "channels": channels},
                      separators=(",", ":")).encode()
    return struct.pack("<I", len(head)) + head + np.ascontiguousarray(px).tobytes()


#: Frames a file or the simulator is read ahead of the engine (in a thread, while the engine analyses).
AHEAD = 4
#: Memory for scenarios rendered in full and kept for replay (a 6 s scenario at 30 frames/s: 47 MB).
RENDERED_BYTES = 256 * 2**20


def _read_ahead(frames, ahead: int, stop: threading.Event):
    """``frames`` (an iterator) read in a thread of its own, at most ``ahead`` frames ahead of the caller; an
    error in the reader is raised here. Closing this generator stops the reader and waits for it: the frame it is
    reading is finished first (on a loaded machine a scenario's first frame takes seconds), so that nobody closes
    the source under a reader still inside it."""
    q: queue.Queue = queue.Queue(maxsize=ahead)
    done = object()
    quit_ = threading.Event()

    def put(x) -> bool:
        while not (quit_.is_set() or stop.is_set()):
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, which reports it
            put(exc)

    reader = threading.Thread(target=read, name="echosclero-live-reader", daemon=True)
    reader.start()
    try:
        while True:
            try:
                x = q.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            if x is done:
                return
            if isinstance(x, BaseException):
                raise x
            yield x
    finally:
        quit_.set()
        reader.join()


class _Rendered:
    """Scenarios rendered in full, newest kept first, within :data:`RENDERED_BYTES` (the frames are read-only:
    the same arrays go to every socket)."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def nbytes(frames) -> int:
        return sum(f.pixels.nbytes + (f.spectral_pixels.nbytes if f.spectral_pixels is not None else 0)
                   for f in frames)

    def get(self, key: tuple) -> tuple | None:
        with self._lock:
            frames = self._items.get(key)
            if frames is not None:
                self._items.move_to_end(key)
            return frames

    def put(self, key: tuple, frames: list) -> None:
        size = self.nbytes(frames)
        if not frames or size > RENDERED_BYTES:
            return
        for f in frames:
            f.pixels.setflags(write=False)
            if f.spectral_pixels is not None:
                f.spectral_pixels.setflags(write=False)
        with self._lock:
            self._items[key] = tuple(frames)
            self._items.move_to_end(key)
            while sum(self.nbytes(v) for v in self._items.values()) > RENDERED_BYTES:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_rendered = _Rendered()


@dataclass
class _Item:
    pixels: np.ndarray
    header: dict


class Feed:
    """Source -> engine in a thread; the newest result waits in a one-frame slot for :meth:`take`."""

    def __init__(self, spec: str, *, seed: int = 0, rate_hz: float | None = None, loop: bool = True,
                 mm_per_px: float | None = None, precomputed: bool = False, max_frames: int | None = None,
                 notify=None) -> None:
        self.spec, self.seed, self.rate_hz, self.loop = spec, seed, rate_hz, loop
        self.mm_per_px, self.precomputed, self.max_frames = mm_per_px, precomputed, max_frames
        self.notify = notify or (lambda: None)
        self._slot: _Item | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.analysed = 0
        self.published = 0
        self.taken = 0
        self.dropped = 0
        self.error: str | None = None
        self.ended = False
        self.live = spec.startswith(("igtl://", "video:"))
        self._thread = threading.Thread(target=self._run, name="echosclero-live-feed", daemon=True)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def take(self) -> _Item | None:
        with self._lock:
            item, self._slot = self._slot, None
        if item is not None:
            self.taken += 1
        return item

    def _publish(self, item: _Item) -> None:
        with self._lock:
            if self._slot is not None:
                self.dropped += 1  # never sent: a newer frame replaced it
            self._slot = item
            self.published += 1
        self.notify()

    def _open(self):
        from echosclero.sources.open import open_source

        if self.spec.startswith("sim:") and self.rate_hz is not None:
            from echosclero.sim import open_simulated_source

            return open_simulated_source(self.spec[4:], seed=self.seed, frame_rate_hz=self.rate_hz)
        return open_source(self.spec, seed=self.seed, mm_per_px=self.mm_per_px)

    def _frames(self):
        """The source's frames in order. A file or the simulator is read (rendered) in a thread of its own up to
        :data:`AHEAD` frames ahead of the engine, so that reading the next frame and analysing this one overlap;
        a scenario rendered once in full is kept (:data:`RENDERED_BYTES`) and replayed without rendering. A live
        stream is read as it comes, newest first (its source drops what the engine cannot keep up with)."""
        key = (self.spec, self.seed, self.rate_hz) if self.spec.startswith("sim:") else None
        cached = _rendered.get(key) if key is not None else None
        if cached is not None:
            yield from cached
            return
        with self._open() as source:
            start = getattr(source, "start", None)
            if start is not None:
                start()
            if self.live:
                yield from source.frames()
                return
            kept: list | None = [] if key is not None else None
            kept_bytes = 0
            ahead = _read_ahead(source.frames(), AHEAD, self._stop)
            try:
                for frame in ahead:
                    if kept is not None:
                        kept.append(frame)
                        kept_bytes += _Rendered.nbytes((frame,))
                        if kept_bytes > RENDERED_BYTES:
                            kept = None  # too long a scenario to keep: rendered on every pass
                    yield frame
            finally:
                ahead.close()  # stops the reader before the source closes
            if kept is not None and not self._stop.is_set():
                _rendered.put(key, kept)

    def _analysed(self):
        """(pixels, header) of each frame as the engine finishes it."""
        from echosclero.guidance import Engine

        while not self._stop.is_set():
            engine = Engine()
            n = 0
            frames = self._frames()
            try:
                for frame in frames:
                    if self._stop.is_set():
                        return
                    result = engine.process(frame)
                    self.analysed += 1
                    n += 1
                    cal = frame.calibration
                    header = {
                        "type": "frame",
                        "source": self.spec,
                        "index": frame.index,
                        "t_s": round(float(frame.t_s), 4),
                        "mm_per_px_x": cal.mm_per_px_x if cal else None,
                        "mm_per_px_z": cal.mm_per_px_z if cal else None,
                        "result": result.to_json(contours=True),
                        "processing_ms": result.processing_ms,
                    }
                    yield frame.pixels, header, float(frame.t_s)
                    if self.max_frames is not None and n >= self.max_frames:
                        break
            finally:
                frames.close()
            if not self.loop or self.live:
                return

    def _paced(self, items):
        """Yield at the frames' own times (files, simulator); a live source paces itself."""
        t0_wall = t0_frame = None
        for pixels, header, t_s in items:
            if not self.live and self.rate_hz != 0:
                now = time.monotonic()
                if t0_wall is None or t_s < t0_frame:  # first frame, or the cine looped
                    t0_wall, t0_frame = now, t_s
                wait = t0_wall + (t_s - t0_frame) - now
                if wait > 0:
                    self._stop.wait(wait)
                elif wait < -0.25:  # behind by more than a quarter second: catch up, do not burst
                    t0_wall, t0_frame = now, t_s
            if self._stop.is_set():
                return
            yield pixels, header

    def _replayed(self):
        frames = list(self._analysed_once())
        if not frames:
            return
        period = 1.0 / (self.rate_hz or 30.0)
        t_next = time.monotonic()
        while not self._stop.is_set():
            for pixels, header in frames:
                wait = t_next - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                if self._stop.is_set():
                    return
                t_next = max(t_next + period, time.monotonic() - period)
                yield pixels, header
            if not self.loop:
                return

    def _analysed_once(self):
        loop, self.loop = self.loop, False
        try:
            for pixels, header, _t in self._analysed():
                yield pixels, header
        finally:
            self.loop = loop

    def _run(self) -> None:
        try:
            items = self._replayed() if self.precomputed else self._paced(self._analysed())
            for pixels, header in items:
                self._publish(_Item(pixels, {**header, "t_ready_ms": time.time() * 1e3}))
        except EchoScleroError as exc:
            self.error = str(exc)
        except OSError as exc:
            self.error = f"{self.spec}: {exc}"
        except Exception as exc:  # noqa: BLE001 - the page gets one line, the server keeps running
            self.error = f"{self.spec}: the live view stopped: {type(exc).__name__}: {exc}"
        finally:
            self.ended = True
            self.notify()


def _origin_ok(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser (a browser always sends Origin on a WebSocket)
    host = ws.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _audit(ws: WebSocket, user, detail: dict) -> None:
    shim = SimpleNamespace(method="GET", url=ws.url, client=ws.client, headers=ws.headers, app=ws.app)
    with ws.app.state.sessionmaker() as db:
        insert_audit(db, [audit_row(shim, user, "read", "live_stream", detail=detail)])  # type: ignore[arg-type]
        commit(db)


def _user(ws: WebSocket):
    token = ws.cookies.get(COOKIE)
    if not token:
        return None
    try:
        claims = decode_token(token, secret=ws.app.state.settings.secret_key)
        user_id = int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError, KeyError):
        return None
    with ws.app.state.sessionmaker() as db:
        user = load_user(db, user_id)
    return user if user is not None and user.active else None


def _float(v: str | None, default: float | None, lo: float, hi: float, name: str) -> float | None:
    if v in (None, ""):
        return default
    try:
        x = float(v)
    except ValueError:
        raise EchoScleroError(f"{name}={v!r} is not a number") from None
    if not lo <= x <= hi:
        raise EchoScleroError(f"{name}={x:g} must be from {lo:g} to {hi:g}")
    return x


@router.websocket("/ws/live")
async def live(ws: WebSocket) -> None:
    if not _origin_ok(ws):
        await ws.close(code=1008, reason="cross-site WebSocket refused")
        return
    user = await asyncio.to_thread(_user, ws)
    await ws.accept()
    if user is None:
        await ws.send_json({"type": "error", "message": "sign in first: the session has expired"})
        await ws.close(code=1008)
        return
    if not can(user.role, Permission.CLINICAL_READ):
        await ws.send_json({"type": "error", "message": f"your role ({user.role}) cannot view a procedure"})
        await ws.close(code=1008)
        return
    q = ws.query_params
    spec = (q.get("source") or "sim:gsv_injection").strip()
    try:
        rate = _float(q.get("rate_hz"), 30.0 if spec.startswith("sim:") else None, 1, MAX_RATE_HZ, "rate_hz")
        mm = _float(q.get("mm_per_px"), None, 0.001, 10, "mm_per_px")
        seed = int(_float(q.get("seed"), 0, 0, 2**31 - 1, "seed"))
    except EchoScleroError as exc:
        await ws.send_json({"type": "error", "message": str(exc)})
        await ws.close()
        return
    await asyncio.to_thread(_audit, ws, user, {"source": spec[:200]})
    loop = asyncio.get_running_loop()
    fresh = asyncio.Event()
    acked = asyncio.Event()  # set while fewer than IN_FLIGHT frames await the page's acknowledgement
    acked.set()
    unacked = 0

    def notify() -> None:
        with contextlib.suppress(RuntimeError):  # the socket's event loop has already ended
            loop.call_soon_threadsafe(fresh.set)

    feed = Feed(spec, seed=seed, rate_hz=rate, mm_per_px=mm, loop=q.get("loop", "1") != "0",
                precomputed=q.get("precomputed") == "1", notify=notify)

    async def receive() -> None:
        nonlocal unacked
        while True:
            msg = json.loads(await ws.receive_text())
            kind = msg.get("type")
            if kind == "ack":
                unacked = max(0, unacked - 1)
                acked.set()
            elif kind == "ping":
                now_ms = time.time() * 1e3
                await ws.send_json({"type": "pong", "t_page_ms": msg.get("t_page_ms"), "t_server_ms": now_ms,
                                    "published": feed.published, "sent": feed.taken, "dropped": feed.dropped})
            elif kind == "stop":
                return

    async def until(event: asyncio.Event) -> bool:
        """Wait for ``event``; False when the page went away or asked to stop first."""
        waiter = asyncio.create_task(event.wait())
        await asyncio.wait({waiter, receiver}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return not receiver.done()

    receiver = asyncio.create_task(receive())
    feed.start()
    try:
        while await until(fresh):
            fresh.clear()
            if feed.ended and feed._slot is None:
                if feed.error:
                    await ws.send_json({"type": "error", "message": feed.error})
                else:
                    await ws.send_json({"type": "end", "analysed": feed.analysed, "dropped": feed.dropped})
                break
            if not await until(acked):
                break
            item = feed.take()  # the newest: whatever arrived while the page drew the previous ones
            if item is None:
                continue
            unacked += 1
            if unacked >= IN_FLIGHT:
                acked.clear()
            header = {**item.header, "analysed": feed.analysed, "dropped": feed.dropped, "sent": feed.taken,
                      "t_sent_ms": time.time() * 1e3}
            await ws.send_bytes(encode_frame(item.pixels, header))
            if feed._slot is not None or feed.ended:
                fresh.set()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver
        await asyncio.to_thread(feed.stop)
        with contextlib.suppress(Exception):
            await ws.close()
