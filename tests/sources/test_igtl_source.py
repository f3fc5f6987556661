"""IgtlSource against OpenIGTLink servers on loopback: pyigtl's server (as PLUS sends) and a raw one."""

from __future__ import annotations

import signal
import socket
import threading
import time

import numpy as np
import pytest

from echosclero.errors import InputError, StreamError
from echosclero.sources.igtl import IgtlSource, parse_igtl_url

pyigtl = pytest.importorskip("pyigtl")

SPACING_MM = (0.2, 0.3, 1.0)  # (x, y, z) = (i, j, k)


def image_message(
    value: int,
    *,
    k: int = 1,
    rows: int = 40,
    cols: int = 60,
    components: int = 0,
    t: float = 0.0,
    device: str = "Image_Reference",
) -> pyigtl.ImageMessage:
    """A PLUS-style IMAGE: voxels in (k, j, i[, c]) order, spacing on the matrix diagonal (x, y, z)."""
    shape = (k, rows, cols) + ((components,) if components else ())
    voxels = np.full(shape, value, np.uint8)
    voxels[:, 0, 0] = 255  # mark the first row/column to check the axis order
    matrix = np.diag([*SPACING_MM, 1.0])
    return pyigtl.ImageMessage(voxels, ijk_to_world_matrix=matrix, device_name=device, timestamp=1000.0 + t)


@pytest.fixture
def pyigtl_server(free_port):
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    server = pyigtl.OpenIGTLinkServer(port=free_port, local_server=True)
    yield server
    try:
        server.stop()
    except OSError:
        pass
    for sig, handler in handlers.items():  # pyigtl installs its own handlers: put ours back
        signal.signal(sig, handler)


class RawServer:
    """Accepts one client, sends the given bytes, keeps the connection until closed."""

    def __init__(self, port: int, payload: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.payload = payload
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(5)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.sendall(self.payload)
            self.done.wait(5)

    def close(self) -> None:
        self.done.set()
        self.thread.join(2)
        self.sock.close()


def test_frames_in_order_with_spacing_calibration(pyigtl_server, free_port):
    n = 6

    def send():
        deadline = time.monotonic() + 5
        while not pyigtl_server.is_connected() and time.monotonic() < deadline:
            time.sleep(0.005)
        for i in range(n):
            pyigtl_server.send_message(image_message(10 * i, t=0.05 * i), wait=True)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    src = IgtlSource(
        "127.0.0.1", free_port, policy="all", receive_timeout_s=2, max_reconnects=1, max_frames=n
    )
    frames = list(src.frames())
    sender.join(5)
    assert [int(f.pixels[5, 5]) for f in frames] == [0, 10, 20, 30, 40, 50]
    assert [f.index for f in frames] == list(range(n))
    assert [f.t_s for f in frames] == pytest.approx([0.05 * i for i in range(n)], abs=1e-6)
    first = frames[0]
    assert first.pixels.shape == (40, 60)  # rows = j (y), cols = i (x)
    assert first.pixels[0, 0] == 255 and first.pixels[1, 1] == 0
    cal = first.calibration
    assert cal.source == "igtl"
    assert cal.mm_per_px_x == pytest.approx(0.2, abs=1e-6)  # spacing x: columns
    assert cal.mm_per_px_z == pytest.approx(0.3, abs=1e-6)  # spacing y: rows (depth)
    assert first.meta["device_name"] == "Image_Reference"
    assert src.counters.received == n and src.counters.delivered == n
    assert src.counters.malformed == 0 and src.counters.dropped_stale == 0


def test_stopped_server_raises_stream_error_not_hang(pyigtl_server, free_port):
    pyigtl_server.stop()
    src = IgtlSource("127.0.0.1", free_port, receive_timeout_s=0.3, max_reconnects=2)
    start = time.monotonic()
    with pytest.raises(StreamError, match=r"cannot connect .*gave up after 3 attempt"):
        next(src.frames())
    assert time.monotonic() - start < 3


def test_server_that_stops_midway(free_port):
    payload = b"".join(image_message(i, t=0.1 * i).pack() for i in range(2))
    server = RawServer(free_port, payload)
    src = IgtlSource("127.0.0.1", free_port, policy="all", receive_timeout_s=0.5, max_reconnects=1)
    frames = src.frames()
    assert [int(next(frames).pixels[5, 5]) for _ in range(2)] == [0, 1]
    server.close()
    with pytest.raises(StreamError, match="igtl://127.0.0.1"):
        next(frames)


def test_silent_server_times_out_and_reconnects(free_port):
    server = socket.create_server(("127.0.0.1", free_port))  # accepts (backlog) but never sends
    try:
        src = IgtlSource("127.0.0.1", free_port, receive_timeout_s=0.2, max_reconnects=1)
        start = time.monotonic()
        with pytest.raises(StreamError, match=r"no IMAGE message within 0.2 s.*gave up after 2"):
            next(src.frames())
        assert 0.35 < time.monotonic() - start < 3
        assert src.counters.reconnects == 1
    finally:
        server.close()


def test_malformed_messages_are_skipped_and_counted(free_port):
    bad_crc = bytearray(image_message(7).pack())
    bad_crc[-1] ^= 0xFF  # corrupt the last voxel: the CRC no longer matches
    payload = b"".join(
        [
            pyigtl.StringMessage("hello", device_name="Image_Reference").pack(),  # not an IMAGE
            pyigtl.TransformMessage(np.eye(4), device_name="Image_Reference").pack(),  # not an IMAGE
            image_message(1, k=3).pack(),  # a 3-D volume
            image_message(2, components=2).pack(),  # two components per pixel
            bytes(bad_crc),
            image_message(3, device="Probe_Other").pack(),  # another device: ignored, not malformed
            image_message(4, components=3).pack(),  # valid RGB frame
        ]
    )
    server = RawServer(free_port, payload)
    try:
        src = IgtlSource(
            "127.0.0.1",
            free_port,
            device_name="Image_Reference",
            policy="all",
            receive_timeout_s=2,
            max_frames=1,
        )
        (frame,) = list(src.frames())
    finally:
        server.close()
    assert frame.pixels.shape == (40, 60, 3) and int(frame.pixels[5, 5, 0]) == 4
    assert src.counters.malformed == 5
    assert src.counters.ignored_device == 1
    assert src.counters.received == 1


def test_newest_policy_drops_stale_frames(free_port):
    n = 5
    payload = b"".join(image_message(i, t=0.05 * i).pack() for i in range(n))
    server = RawServer(free_port, payload)
    try:
        src = IgtlSource("127.0.0.1", free_port, policy="newest", receive_timeout_s=2)
        src.start()  # start reading before the consumer asks, as a busy consumer would
        deadline = time.monotonic() + 5
        while src.counters.received < n and time.monotonic() < deadline:
            time.sleep(0.01)
        frame = next(src.frames())
        src.close()
    finally:
        server.close()
    assert int(frame.pixels[5, 5]) == n - 1
    assert frame.t_s == pytest.approx(0.05 * (n - 1), abs=1e-6)  # relative to the first message received
    assert src.counters.dropped_stale == n - 1 and src.counters.delivered == 1


def test_info_peeks_the_first_frame(free_port):
    server = RawServer(free_port, image_message(9).pack() + image_message(10).pack())
    try:
        src = IgtlSource("127.0.0.1", free_port, policy="all", receive_timeout_s=2, max_frames=2)
        info = src.info()
        frames = [int(f.pixels[5, 5]) for f in src.frames()]
    finally:
        server.close()
    assert info.kind == "igtl" and (info.rows, info.cols) == (40, 60) and info.n_frames is None
    assert info.details["calibration"]["mm_per_px_x"] == pytest.approx(0.2, abs=1e-6)
    assert frames == [9, 10]  # the peeked frame is not lost


def test_url_parsing_and_argument_checks():
    assert parse_igtl_url("igtl://scanner.local:18945?device=Image_Reference&policy=all") == (
        "scanner.local",
        18945,
        {"device": "Image_Reference", "policy": "all"},
    )
    assert parse_igtl_url("igtl://10.0.0.2")[1] == 18944
    src = IgtlSource.from_url("igtl://127.0.0.1:5000?device=US&policy=all&timeout_s=0.5")
    assert (src.device_name, src.policy, src.receive_timeout_s) == ("US", "all", 0.5)
    with pytest.raises(InputError, match="port"):
        parse_igtl_url("igtl://host:99999")
    with pytest.raises(InputError, match="policy"):
        IgtlSource(policy="fastest")
    with pytest.raises(InputError, match="receive_timeout_s"):
        IgtlSource(receive_timeout_s=0)
