"""OpenIGTLink source: live ultrasound IMAGE messages from a PLUS server (or any OpenIGTLink server).

EchoSclero connects as a *client*. Messages are decoded with pyigtl's codec (``pyigtl.ImageMessage``);
the transport is our own small socket reader so that the real-time policy, timeouts, reconnection and
malformed-message accounting are explicit (pyigtl's client keeps one message per device and never
notices a closed connection).

Real-time policy (as FAST's streamers name it):

* ``policy="newest"`` — live guidance: frames that arrive while the consumer is busy are dropped
  (counted in ``counters.dropped_stale``); the consumer always gets the newest frame.
* ``policy="all"`` — every frame in order (recording, tests); the reader stops reading the socket while
  its queue is full, so TCP back-pressure slows the sender instead of losing frames.

Each frame carries its position in the stream (``Frame.index``, gaps where frames were dropped) and
the :func:`time.monotonic` time its message arrived (``Frame.meta["received_monotonic_s"]``), from which a
consumer measures the latency of its results.

Timeouts and reconnection (as PLUS and FAST do): when no IMAGE message arrives within
``receive_timeout_s``, or the server closes the connection, the source reconnects; after
``max_reconnects`` consecutive failures it raises :class:`~echosclero.errors.StreamError`. Nothing is
printed or warned on the way (debug-level logging only).

Geometry of an IMAGE message (OpenIGTLink v2 IMAGE, and pyigtl): the voxel array is in ``(k, j, i)``
order (``(k, j, i, components)`` for colour) and the spacing is ``(i, j, k)`` = ``(x, y, z)`` in mm, the
norms of the columns of the IJK-to-world matrix. A 2-D ultrasound frame from PLUS has ``k = 1``: rows are
``j`` (depth, spacing y) and columns ``i`` (lateral, spacing x). pyigtl's own 2-D arrays arrive with
``i = 1`` instead (rows ``k``, columns ``j``); both are accepted.
"""

from __future__ import annotations

import collections
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np

from echosclero.errors import InputError, StreamError
from echosclero.frames import Calibration, Frame
from echosclero.sources.base import MAX_MM_PER_PX, Source, SourceInfo, check_mm_per_px

__all__ = ["IgtlCounters", "IgtlSource", "parse_igtl_url"]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 18944  # the OpenIGTLink port registered with IANA, PLUS's default
HEADER_SIZE = 58  # OpenIGTLink header: version, type, device, timestamp, body size, CRC
#: Largest body accepted (a 4k RGB frame is 25 MB); anything bigger means the stream is out of sync.
MAX_BODY_BYTES = 256 * 1024 * 1024
_POLL_S = 0.05  # how often the reader thread checks for a stop request

Policy = Literal["newest", "all"]


@dataclass
class IgtlCounters:
    """What the source has seen so far (all counts since it was created).

    Attributes
    ----------
    received
        IMAGE messages decoded into a frame (whether handed out or dropped).
    delivered
        Frames handed out by :meth:`IgtlSource.frames`.
    dropped_stale
        Frames replaced by a newer one before the consumer asked (``policy="newest"``).
    malformed
        Messages skipped because they could not be used: unreadable header or body, CRC mismatch,
        not an IMAGE (e.g. TRANSFORM, STRING), a 3-D volume, an unsupported component count, a frame
        smaller than 2 x 2 px, or an implausible spacing.
    ignored_device
        IMAGE messages from a device other than ``device_name``.
    reconnects
        Connection attempts after the first.
    """

    received: int = 0
    delivered: int = 0
    dropped_stale: int = 0
    malformed: int = 0
    ignored_device: int = 0
    reconnects: int = 0

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True, slots=True)
class _Image:
    pixels: np.ndarray
    calibration: Calibration
    timestamp_s: float
    device_name: str
    received_monotonic_s: float  # time.monotonic() when the whole message had arrived
    seq: int  # position among the IMAGE messages decoded into frames (0-based)


class _Malformed(Exception):
    pass


def parse_igtl_url(url: str) -> tuple[str, int, dict[str, str]]:
    """Split ``igtl://HOST[:PORT][?device=NAME&policy=all]`` into host, port and options.

    Raises
    ------
    InputError
        A URL without host or with a bad port.
    """
    parts = urlsplit(url)
    if parts.scheme != "igtl":
        raise InputError(f"an OpenIGTLink address looks like igtl://HOST:PORT, got {url!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise InputError(f"{url}: the port must be a number 1-65535 (PLUS uses {DEFAULT_PORT})") from None
    if not parts.hostname:
        raise InputError(f"{url}: no host; write igtl://HOST:PORT, e.g. igtl://127.0.0.1:{DEFAULT_PORT}")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return parts.hostname, port, options


def image_from_message(message) -> tuple[np.ndarray, float, float]:
    """Pixels ``(rows, cols[, 3])`` and spacing ``(mm_per_px_x, mm_per_px_z)`` of a pyigtl ImageMessage.

    The spacing is returned as found; the caller judges its plausibility.

    Raises
    ------
    _Malformed
        A volume, an unsupported number of components or a tiny frame.
    """
    voxels = np.asarray(message.image)
    if voxels.ndim not in (3, 4):
        raise _Malformed(f"IMAGE with {voxels.ndim} dimensions")
    components = voxels.shape[3] if voxels.ndim == 4 else 1
    k, j, i = voxels.shape[:3]
    matrix = np.asarray(message.ijk_to_world_matrix, dtype=float)
    spacing_i, spacing_j, spacing_k = (float(np.linalg.norm(matrix[:3, axis])) for axis in range(3))
    if k == 1:  # PLUS: one slice; rows are j (depth), columns i (lateral)
        pixels, mm_x, mm_z = voxels[0], spacing_i, spacing_j
    elif i == 1:  # pyigtl 2-D convention: rows k, columns j
        pixels, mm_x, mm_z = voxels[:, :, 0], spacing_j, spacing_k
    else:
        raise _Malformed(f"IMAGE is a 3-D volume of {i} x {j} x {k} voxels, not a 2-D frame")
    if components == 1:
        if pixels.ndim == 3:
            pixels = pixels[..., 0]
    elif components in (3, 4):
        pixels = pixels[..., :3]
    else:
        raise _Malformed(f"IMAGE with {components} components per pixel (expected 1, 3 or 4)")
    if pixels.shape[0] < 2 or pixels.shape[1] < 2:
        raise _Malformed(f"IMAGE of {pixels.shape[:2]} px is too small")
    native = pixels.dtype.newbyteorder("=")
    return np.ascontiguousarray(pixels, dtype=native), mm_x, mm_z


class _Connection:
    """One TCP connection and its reader thread, feeding decoded frames to a bounded buffer."""

    def __init__(self, owner: IgtlSource, sock: socket.socket) -> None:
        self.owner = owner
        self.sock = sock
        self.stop = threading.Event()
        self.closed = threading.Event()
        self.reason = ""
        self.thread = threading.Thread(target=self._run, name="echosclero-igtl-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        buffer = bytearray()
        try:
            while not self.stop.is_set():
                try:
                    chunk = self.sock.recv(1 << 20)
                except TimeoutError:
                    continue
                except OSError as exc:
                    self.reason = f"connection lost ({exc.strerror or exc})"
                    return
                if not chunk:
                    self.reason = "the server closed the connection"
                    return
                buffer += chunk
                while len(buffer) >= HEADER_SIZE:
                    body_size, crc = struct.unpack_from(">QQ", buffer, HEADER_SIZE - 16)
                    if body_size > MAX_BODY_BYTES:
                        self.owner._count("malformed")
                        self.reason = f"stream out of sync (a message claims a {body_size}-byte body)"
                        return
                    end = HEADER_SIZE + body_size
                    if len(buffer) < end:
                        break
                    arrived_s = time.monotonic()
                    header, body = bytes(buffer[:HEADER_SIZE]), bytes(buffer[HEADER_SIZE:end])
                    del buffer[:end]
                    self.owner._on_message(header, body, crc, self.stop, arrived_s=arrived_s)
        finally:
            self.closed.set()
            with self.owner._cond:
                self.owner._cond.notify_all()

    def close(self) -> None:
        self.stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.owner._cond:
            self.owner._cond.notify_all()
        self.thread.join(timeout=2.0)


class IgtlSource(Source):
    """Live frames from an OpenIGTLink server (PLUS), calibrated by the IMAGE message spacing.

    Parameters
    ----------
    host, port
        The server (PLUS listens on 18944 by default).
    device_name
        Only IMAGE messages from this device are used (PLUS: e.g. ``"Image_Reference"``); ``None``
        accepts any device.
    policy
        ``"newest"`` (live guidance: always the newest frame, stale ones dropped) or ``"all"``.
    receive_timeout_s
        Longest wait for the next IMAGE message before reconnecting.
    connect_timeout_s
        Longest wait for the TCP connection; defaults to ``receive_timeout_s``.
    max_reconnects
        Consecutive failed attempts (connect or receive) tolerated before
        :class:`~echosclero.errors.StreamError`; a received frame resets the count.
    max_frames
        Stop after this many frames (``None``: run until closed).
    mm_per_px
        Pixel pitch used only for messages whose spacing is unusable (zero, non-finite, > 10 mm).
    max_queued_frames
        Buffer of decoded frames for ``policy="all"``.
    """

    live = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        device_name: str | None = None,
        policy: Policy = "newest",
        receive_timeout_s: float = 5.0,
        connect_timeout_s: float | None = None,
        max_reconnects: int = 3,
        max_frames: int | None = None,
        mm_per_px: float | None = None,
        max_queued_frames: int = 256,
    ) -> None:
        if policy not in ("newest", "all"):
            raise InputError(
                f"policy must be 'newest' (live guidance) or 'all' (every frame), got {policy!r}"
            )
        if not (isinstance(port, int) and 0 < port < 65536):
            raise InputError(f"port must be 1-65535, got {port!r}")
        for name, value in (
            ("receive_timeout_s", receive_timeout_s),
            ("connect_timeout_s", connect_timeout_s),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a positive number of seconds, got {value!r}")
        if int(max_reconnects) < 0:
            raise InputError(f"max_reconnects must be >= 0, got {max_reconnects!r}")
        self.host, self.port = host, port
        self.source_id = f"igtl://{host}:{port}"
        self.device_name = device_name or None
        self.policy: Policy = policy
        self.receive_timeout_s = float(receive_timeout_s)
        self.connect_timeout_s = float(connect_timeout_s or receive_timeout_s)
        self.max_reconnects = int(max_reconnects)
        self.max_frames = None if max_frames is None else int(max_frames)
        self.user_mm_per_px = check_mm_per_px(mm_per_px)
        self.max_queued_frames = max(1, int(max_queued_frames))
        self.counters = IgtlCounters()
        self._cond = threading.Condition()
        self._queue: collections.deque[_Image] = collections.deque()
        self._conn: _Connection | None = None
        self._t0_s: float | None = None
        self._peeked: _Image | None = None
        self._attempts = 0
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **kwargs) -> IgtlSource:
        """Open ``igtl://HOST:PORT[?device=NAME&policy=newest|all&timeout_s=S]``."""
        host, port, options = parse_igtl_url(url)
        if "device" in options:
            kwargs.setdefault("device_name", options["device"])
        if "policy" in options:
            kwargs.setdefault("policy", options["policy"])
        if "timeout_s" in options:
            try:
                kwargs.setdefault("receive_timeout_s", float(options["timeout_s"]))
            except ValueError:
                raise InputError(f"{url}: timeout_s must be a number of seconds") from None
        return cls(host, port, **kwargs)

    # ------------------------------------------------------------- reader side
    def _count(self, name: str, n: int = 1) -> None:
        with self._cond:
            setattr(self.counters, name, getattr(self.counters, name) + n)

    def _on_message(
        self, header: bytes, body: bytes, crc: int, stop: threading.Event, *, arrived_s: float | None = None
    ) -> None:
        from pyigtl.messages import CRC64, ImageMessage, MessageBase

        try:
            fields = MessageBase.parse_header(header)
            if crc and CRC64(body) != crc:  # a zero CRC means "not computed" (allowed by some senders)
                raise _Malformed("CRC mismatch")
            if fields["message_type"] != "IMAGE":
                raise _Malformed(f"{fields['message_type'] or 'untyped'} message, not IMAGE")
            if self.device_name is not None and fields["device_name"] != self.device_name:
                self._count("ignored_device")
                return
            message = ImageMessage()
            message.unpack(fields, body)
            pixels, mm_x, mm_z = image_from_message(message)
            calibration = self._calibration(mm_x, mm_z)
        except _Malformed as exc:
            logger.debug("skipping an OpenIGTLink message from %s: %s", self.source_id, exc)
            self._count("malformed")
            return
        except Exception as exc:  # noqa: BLE001 - pyigtl raises many types on garbage
            logger.debug("skipping an undecodable OpenIGTLink message from %s: %r", self.source_id, exc)
            self._count("malformed")
            return
        if arrived_s is None:
            arrived_s = time.monotonic()
        with self._cond:
            image = _Image(
                pixels, calibration, float(fields["timestamp"]), fields["device_name"], arrived_s,
                self.counters.received,
            )
            self.counters.received += 1
            if self._t0_s is None:
                self._t0_s = image.timestamp_s
            if self.policy == "newest":
                self.counters.dropped_stale += len(self._queue)
                self._queue.clear()
            else:
                while len(self._queue) >= self.max_queued_frames and not stop.is_set():
                    self._cond.wait(_POLL_S)
            self._queue.append(image)
            self._cond.notify_all()

    def _calibration(self, mm_x: float, mm_z: float) -> Calibration:
        plausible = all(math.isfinite(v) and 0.0 < v <= MAX_MM_PER_PX for v in (mm_x, mm_z))
        if plausible:
            return Calibration(mm_per_px_x=mm_x, mm_per_px_z=mm_z, source="igtl")
        if self.user_mm_per_px is not None:
            return Calibration.isotropic(self.user_mm_per_px, source="user")
        raise _Malformed(f"IMAGE spacing {mm_x:g} x {mm_z:g} mm is not a plausible pixel pitch")

    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        sock.settimeout(_POLL_S)
        self._conn = _Connection(self, sock)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _next_image(self) -> _Image:
        """Wait for the next frame, reconnecting as needed; raise StreamError when out of attempts."""
        if self._peeked is not None:
            image, self._peeked = self._peeked, None
            return image
        failures = 0
        while True:
            if self._closed:
                raise StreamError(f"{self.source_id}: the source was closed")
            if self._conn is None:
                if self._attempts > 0:
                    self.counters.reconnects += 1
                self._attempts += 1
                try:
                    self._connect()
                except OSError as exc:
                    reason = f"cannot connect ({exc.strerror or exc})"
                    failures += 1
                    self._give_up_if(failures, reason)
                    time.sleep(min(0.1 * failures, self.receive_timeout_s))
                    continue
            conn = self._conn
            with self._cond:
                self._cond.wait_for(
                    lambda conn=conn: self._queue or conn.closed.is_set(), timeout=self.receive_timeout_s
                )
                if self._queue:
                    image = self._queue.popleft()
                    self._cond.notify_all()
                    return image
            reason = (
                conn.reason
                if conn.closed.is_set()
                else (f"no IMAGE message{self._device_text()} within {self.receive_timeout_s:g} s")
            )
            logger.debug("%s: %s; reconnecting", self.source_id, reason)
            self._drop_connection()
            failures += 1
            self._give_up_if(failures, reason)

    def _device_text(self) -> str:
        return f" from device {self.device_name!r}" if self.device_name else ""

    def _give_up_if(self, failures: int, reason: str) -> None:
        if failures > self.max_reconnects:
            self._drop_connection()
            raise StreamError(
                f"{self.source_id}: {reason}; gave up after {failures} attempt(s) "
                f"({self.max_reconnects} reconnect(s) allowed); check that the PLUS/OpenIGTLink server "
                f"is running and sending IMAGE messages{self._device_text()}"
            )

    def _frame(self, image: _Image) -> Frame:
        return Frame(
            pixels=image.pixels,
            calibration=image.calibration,
            t_s=float(image.timestamp_s - (self._t0_s if self._t0_s is not None else image.timestamp_s)),
            index=image.seq,
            source_id=self.source_id,
            meta={
                "device_name": image.device_name,
                "timestamp_s": image.timestamp_s,
                "received_monotonic_s": image.received_monotonic_s,
            },
        )

    # ------------------------------------------------------------- public
    def start(self) -> None:
        """Connect now and start buffering frames (otherwise the first :meth:`frames` step connects).

        Raises
        ------
        StreamError
            When the server cannot be reached.
        """
        if self._conn is None:
            self._attempts += 1
            try:
                self._connect()
            except OSError as exc:
                raise StreamError(
                    f"{self.source_id}: cannot connect ({exc.strerror or exc}); check that the "
                    "PLUS/OpenIGTLink server is running"
                ) from exc

    @property
    def queued_frames(self) -> int:
        """Frames received and buffered but not handed out yet (after :meth:`close`: never handed out)."""
        with self._cond:
            return len(self._queue) + (self._peeked is not None)

    def frames(self) -> Iterator[Frame]:
        """Frames as they arrive (see the class's real-time ``policy``); ends after ``max_frames``.

        ``Frame.index`` is the frame's position in the stream (IMAGE messages decoded into frames, from 0):
        with ``policy="newest"`` the indices of dropped frames are skipped. ``Frame.meta`` holds the
        sender's ``timestamp_s``, the ``device_name`` and ``received_monotonic_s`` (``time.monotonic()``
        when the message had fully arrived: the start of the frame's age on this machine).

        Raises
        ------
        StreamError
            From the iterator, when the server cannot be reached or stops sending for longer than
            ``max_reconnects`` attempts of ``receive_timeout_s`` each.
        """
        return self._iterate()

    def _iterate(self) -> Iterator[Frame]:
        index = 0
        try:
            while self.max_frames is None or index < self.max_frames:
                image = self._next_image()
                with self._cond:
                    self.counters.delivered += 1
                yield self._frame(image)
                index += 1
        finally:
            self.close()

    def info(self) -> SourceInfo:
        """Connect, wait for the first frame (kept for :meth:`frames`) and describe the stream.

        Raises
        ------
        StreamError
            When no frame arrives (see :meth:`frames`).
        """
        if self._peeked is None:
            self._peeked = self._next_image()
        image = self._peeked
        calibration = image.calibration
        return SourceInfo(
            kind="igtl",
            source_id=self.source_id,
            n_frames=None,
            rows=int(image.pixels.shape[0]),
            cols=int(image.pixels.shape[1]),
            frame_time_s=None,
            calibrated=True,
            details={
                "device_name": image.device_name,
                "policy": self.policy,
                "calibration": calibration.to_json(),
                "dtype": str(image.pixels.dtype),
                "channels": 1 if image.pixels.ndim == 2 else int(image.pixels.shape[2]),
                "counters": self.counters.to_json(),
            },
        )

    def close(self) -> None:
        self._closed = True
        self._drop_connection()
