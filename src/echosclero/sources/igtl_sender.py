"""A PLUS-like OpenIGTLink sender: ultrasound frames as IMAGE messages at a fixed rate, through pyigtl.

For tests, benchmarks and demonstrations of the live path without a scanner: it plays the part of a PLUS
server (``vtkPlusOpenIGTLinkServer``) sending ``Image_Reference`` IMAGE messages, with the geometry PLUS
uses (voxels ``(k=1, j=rows, i=cols)``, spacing ``(x, y, 1)`` mm on the IJK-to-world matrix; see
:mod:`echosclero.sources.igtl`).

The server is pyigtl's :class:`pyigtl.OpenIGTLinkServer` (one client at a time). pyigtl installs its own
SIGINT/SIGTERM handlers when a server starts; :class:`PlusLikeSender` puts the previous ones back, so
Ctrl-C keeps working in the process that hosts it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PlusLikeSender", "SendReport", "image_message", "truncated_image_message"]


def image_message(
    pixels: np.ndarray,
    mm_per_px_x: float,
    mm_per_px_z: float,
    *,
    timestamp_s: float,
    device_name: str = "Image_Reference",
):
    """A PLUS-style IMAGE message of one frame.

    Parameters
    ----------
    pixels : (rows, cols) or (rows, cols, 3) uint8 ndarray
        The frame (rows: depth, columns: lateral).
    mm_per_px_x, mm_per_px_z
        Pixel pitch laterally and in depth (mm), written as the IJK-to-world spacing.
    timestamp_s
        Sender timestamp (seconds, the sender's clock).
    device_name
        PLUS names its B-mode image ``Image_Reference``.
    """
    import pyigtl

    voxels = pixels[None, ...]  # (k=1, j=rows, i=cols[, c])
    matrix = np.diag([float(mm_per_px_x), float(mm_per_px_z), 1.0, 1.0])
    return pyigtl.ImageMessage(voxels, ijk_to_world_matrix=matrix, device_name=device_name, timestamp=timestamp_s)


def truncated_image_message(pixels: np.ndarray, *, missing_bytes: int = 100, device_name: str = "Image_Reference"):
    """A malformed IMAGE: its header announces ``rows x cols`` voxels, its body holds fewer bytes.

    The OpenIGTLink body size and CRC are those of the short body, so the message frames correctly on the
    wire and only its content is wrong (as a buggy sender would produce).
    """
    import pyigtl

    class _Truncated(pyigtl.ImageMessage):
        def _pack_content(self):
            return super()._pack_content()[:-missing_bytes]

    return _Truncated(pixels[None, ...], ijk_to_world_matrix=np.diag([0.1, 0.1, 1.0, 1.0]),
                      device_name=device_name, timestamp=time.time())


def _quiet_handler_class():
    """pyigtl's connection handler, ending quietly when the client leaves (pyigtl prints a traceback)."""
    from pyigtl.comm import TCPRequestHandler

    class QuietHandler(TCPRequestHandler):
        def handle(self) -> None:
            server = self.server
            server._connected = True
            self.request.settimeout(0.01)
            try:
                while not server.communication_thread_stop_requested:
                    while server._receive_message_from_socket(self.request):
                        if server.communication_thread_stop_requested:
                            break
                    while server._send_queued_message_from_socket(self.request):
                        pass
            except (OSError, ValueError):  # broken pipe, reset, or a garbled incoming message
                pass
            finally:
                server._communication_error_occurred()
                with server.lock_outgoing_messages:
                    server.outgoing_messages.clear()  # not for the next client

    return QuietHandler


@dataclass
class SendReport:
    """What a :meth:`PlusLikeSender.stream` sent.

    Attributes
    ----------
    images
        Valid IMAGE messages sent.
    extra
        Other messages sent (malformed or non-IMAGE ones inserted by the caller).
    duration_s
        From the first to the last message.
    late_max_s
        Largest delay of a message behind its schedule (the sender itself falling behind).
    """

    images: int = 0
    extra: int = 0
    duration_s: float = 0.0
    late_max_s: float = 0.0

    @property
    def rate_hz(self) -> float:
        return (self.images - 1) / self.duration_s if self.duration_s > 0 and self.images > 1 else 0.0


class PlusLikeSender:
    """An OpenIGTLink server on 127.0.0.1 that streams frames like PLUS.

    Parameters
    ----------
    port
        TCP port to listen on.
    device_name
        Device name of the IMAGE messages.

    Examples
    --------
    >>> sender = PlusLikeSender(18944)                            # doctest: +SKIP
    >>> sender.wait_connected(5.0)                                # doctest: +SKIP
    >>> sender.stream(frames, rate_hz=60, duration_s=3, mm_per_px_x=0.1, mm_per_px_z=0.1)  # doctest: +SKIP
    >>> sender.stop()                                             # doctest: +SKIP
    """

    def __init__(self, port: int, *, device_name: str = "Image_Reference") -> None:
        import pyigtl

        main = threading.current_thread() is threading.main_thread()
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        self.server = pyigtl.OpenIGTLinkServer(port=port, local_server=True)
        for sig, handler in handlers.items():  # pyigtl replaced them: put ours back
            signal.signal(sig, handler)
        # Looked up per connection, so replacing it before a client connects is enough.
        self.server.RequestHandlerClass = _quiet_handler_class()
        self.port = port
        self.device_name = device_name
        self._stopped = False

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until a client is connected; ``False`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not self.server.is_connected():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def send(self, message, *, wait: bool = True, timeout_s: float = 2.0) -> bool:
        """Queue one message; with ``wait``, until pyigtl's server thread has taken it.

        Returns ``False`` when the client left (or ``timeout_s`` passed) before the message was taken.
        """
        server = self.server
        server.send_message(message, wait=False)
        if not wait:
            return True
        deadline = time.monotonic() + timeout_s
        while True:
            with server.lock_outgoing_messages:
                if not server.outgoing_messages:
                    return True
            if not server.is_connected() or time.monotonic() > deadline:
                return False
            time.sleep(0.0005)

    def stream(
        self,
        frames: Sequence[np.ndarray],
        *,
        rate_hz: float,
        duration_s: float,
        mm_per_px_x: float,
        mm_per_px_z: float,
        extra: dict[int, object] | None = None,
        stop: threading.Event | None = None,
    ) -> SendReport:
        """Send ``frames`` (cycled) at ``rate_hz`` for ``duration_s``, on a fixed schedule.

        Parameters
        ----------
        frames
            The frames to send, in order, again from the first when all were sent.
        rate_hz
            Messages per second.
        duration_s
            How long to send.
        mm_per_px_x, mm_per_px_z
            Pixel pitch written into each message.
        extra
            ``{i: message}``: also send ``message`` just before the ``i``-th IMAGE (malformed ones,
            TRANSFORMs...).
        stop
            Set to stop early.

        Returns
        -------
        SendReport
            Sending also stops when the client disconnects.
        """
        extra = extra or {}
        n = max(1, int(round(duration_s * rate_hz)))
        report = SendReport()
        period_s = 1.0 / rate_hz
        t0 = time.monotonic()
        first = last = None
        for i in range(n):
            if stop is not None and stop.is_set():
                break
            due = t0 + i * period_s
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                report.late_max_s = max(report.late_max_s, now - due)
            if i in extra:
                self.send(extra[i], wait=False)
                report.extra += 1
            pixels = frames[i % len(frames)]
            sent = self.send(image_message(pixels, mm_per_px_x, mm_per_px_z, timestamp_s=time.time(),
                                           device_name=self.device_name), wait=True)
            if not sent:  # the client left
                break
            last = time.monotonic()
            first = first if first is not None else last
            report.images += 1
        report.duration_s = (last - first) if first is not None else 0.0
        return report

    def stop(self) -> None:
        """Close the connection and the server (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.server.stop()
        except OSError:
            pass

    def __enter__(self) -> PlusLikeSender:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
