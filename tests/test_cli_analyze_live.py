"""``echosclero analyze igtl://HOST:PORT``: following a live OpenIGTLink stream sent by a pyigtl server (as PLUS).

The sender plays simulator frames at 60 frames/s. The analysis must keep up by dropping stale frames, never by
queueing them: latency bounded and flat from the first to the last second, ``analysed + dropped == received``,
malformed messages counted and skipped. The control case (``policy="all"``, every frame queued) shows that the
latency test does catch a lag.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from echosclero.cli import main

pyigtl = pytest.importorskip("pyigtl")

from echosclero.sources.igtl_sender import PlusLikeSender, truncated_image_message  # noqa: E402

RATE_HZ = 60.0


@pytest.fixture(scope="module")
def sim_frames():
    """30 distinct simulated frames (``gsv_injection``: vessels and a needle), replayed in a loop."""
    from echosclero.sim import open_simulated_source

    source = open_simulated_source("gsv_injection", seed=21)
    frames = source.frames()
    picked = [next(frames) for _ in range(30)]
    frames.close()
    cal = picked[0].calibration
    return [f.pixels for f in picked], cal.mm_per_px_x, cal.mm_per_px_z


@pytest.fixture
def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Streamer:
    """A PLUS-like sender on a thread: waits for the client, then streams until ``stop`` or ``duration_s``."""

    def __init__(self, port, frames, *, duration_s, extra=None):
        pixels, mm_x, mm_z = frames
        self.sender = PlusLikeSender(port)
        self.stop = threading.Event()
        self.report = None
        self.connected = threading.Event()

        def run():
            if not self.sender.wait_connected(10.0):
                return
            self.connected.set()
            self.report = self.sender.stream(pixels, rate_hz=RATE_HZ, duration_s=duration_s, mm_per_px_x=mm_x,
                                             mm_per_px_z=mm_z, extra=extra, stop=self.stop)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.sender.stop()


def _malformed_messages(pixels):
    return {
        12: truncated_image_message(pixels),  # IMAGE whose body is shorter than its header says
        24: pyigtl.StringMessage("probe: L12-5", device_name="Image_Reference"),  # not an IMAGE
        36: pyigtl.TransformMessage(np.eye(4), device_name="ProbeToTracker"),  # not an IMAGE
    }


def _flat_latency(frames):
    """Median latency (ms) of the results made ready in the first and in the last second of the run."""
    lat = np.array([f["latency_ms"] for f in frames])
    ready_s = np.array([f["t_s"] for f in frames]) + lat / 1e3  # on the sender's clock (same machine)
    first = lat[ready_s <= ready_s[0] + 1.0]
    last = lat[ready_s >= ready_s[-1] - 1.0]
    return float(np.median(first)), float(np.median(last))


def test_live_stream_keeps_up_at_60_fps(sim_frames, port, tmp_path, capsys):
    out = tmp_path / "live.json"
    streamer = Streamer(port, sim_frames, duration_s=6.0, extra=_malformed_messages(sim_frames[0][0]))
    try:
        rc = main(["analyze", f"igtl://127.0.0.1:{port}", "--duration-s", "2.5", "--stream-timeout-s", "5",
                   "--json", str(out)])
    finally:
        streamer.close()
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    doc = json.loads(out.read_text())
    stream = doc["stream"]
    assert doc["schema"] == "echosclero.analysis/1" and doc["source"] == f"igtl://127.0.0.1:{port}"
    assert doc["calibration"]["source"] == "igtl"
    assert doc["calibration"]["mm_per_px_x"] == pytest.approx(sim_frames[1], rel=1e-5)
    assert stream["stopped"] == "duration" and stream["error"] is None
    # every frame received is accounted for: analysed or dropped, nothing queued behind
    assert stream["analysed"] == len(doc["frames"]) > 0
    assert stream["analysed"] + stream["dropped"] == stream["received"]
    assert stream["received"] >= 0.7 * RATE_HZ * 2.5 - 20  # the sender really streamed at ~60 frames/s
    assert stream["malformed"] == 3
    indices = [f["index"] for f in doc["frames"]]
    assert indices == sorted(set(indices)) and indices[-1] < stream["received"]
    # keeping up: the age of a frame when its result is ready stays bounded and does not grow
    assert stream["latency_ms"]["p99"] < 500
    first_s, last_s = _flat_latency(doc["frames"])
    assert last_s < first_s + 100, (first_s, last_s)
    # the summary line
    line = captured.out.strip().splitlines()[-1]
    assert f"{stream['received']} frames received, {stream['analysed']} analysed" in line
    assert f"{stream['dropped']} dropped" in line and "3 malformed message(s)" in line
    assert "latency median" in line and "p99" in line and "stopped: duration" in line
    assert captured.err == ""


class SlowEngine:
    """The real engine plus a fixed delay: a 50 ms/frame engine cannot analyse 60 frames/s."""

    def __init__(self, delay_s=0.05):
        from echosclero.guidance import Engine

        self.engine = Engine()
        self.delay_s = delay_s

    def process(self, frame):
        time.sleep(self.delay_s)
        return self.engine.process(frame)


@pytest.mark.parametrize("policy", ["newest", "all"])
def test_slow_engine_drops_instead_of_lagging(sim_frames, port, policy):
    from echosclero.live import follow_stream
    from echosclero.sources.igtl import IgtlSource

    results = []
    streamer = Streamer(port, sim_frames, duration_s=6.0)
    try:
        source = IgtlSource("127.0.0.1", port, policy=policy, receive_timeout_s=5, max_reconnects=0)
        report = follow_stream(source, duration_s=2.0, engine=SlowEngine(),
                               on_result=lambda frame, result, fj: results.append(fj))
    finally:
        streamer.close()
    assert report.stopped == "duration" and report.analysed == len(results) and report.policy == policy
    assert report.analysed + report.dropped == report.received
    first_s, last_s = _flat_latency(results)
    if policy == "newest":  # live guidance: most frames dropped, latency bounded by ~2 analysis times
        assert report.dropped > 0.4 * report.received
        assert report.latency_percentile_ms(99) < 500
        assert last_s < first_s + 100, (first_s, last_s)
    else:  # control: queueing every frame makes the results lag further and further behind
        assert last_s > first_s + 300, (first_s, last_s)


def test_stream_that_stops_ends_with_one_line_and_keeps_the_frames(sim_frames, port, tmp_path, capsys):
    out = tmp_path / "live.json"
    streamer = Streamer(port, sim_frames, duration_s=1.0)  # then silent, connection left open
    try:
        rc = main(["analyze", f"igtl://127.0.0.1:{port}", "--stream-timeout-s", "0.5", "--json", str(out)])
    finally:
        streamer.close()
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "no IMAGE message within 0.5 s" in captured.err and f"are in {out}" in captured.err
    doc = json.loads(out.read_text())
    assert doc["stream"]["stopped"] == "stream error" and "no IMAGE message" in doc["stream"]["error"]
    assert len(doc["frames"]) == doc["stream"]["analysed"] > 0
    assert "stopped: stream error" in captured.out


def test_unreachable_server_one_line_exit_2(port, tmp_path, capsys):
    out = tmp_path / "live.json"
    t0 = time.monotonic()
    rc = main(["analyze", f"igtl://127.0.0.1:{port}", "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 2 and time.monotonic() - t0 < 5
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"echosclero: error: igtl://127.0.0.1:{port}: cannot connect")
    doc = json.loads(out.read_text())  # written all the same: nothing analysed, and why
    assert doc["frames"] == [] and doc["stream"]["received"] == 0 and "cannot connect" in doc["stream"]["error"]


def test_json_lines_on_stdout(sim_frames, port, capsys):
    streamer = Streamer(port, sim_frames, duration_s=5.0)
    try:
        rc = main(["analyze", f"igtl://127.0.0.1:{port}", "--json", "-", "--max-frames", "5"])
    finally:
        streamer.close()
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == ""
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 7  # header, 5 frames, stream summary: nothing else on stdout
    assert lines[0]["schema"] == "echosclero.analysis/1" and lines[0]["calibration"]["source"] == "igtl"
    assert all({"index", "t_s", "vessels", "needle", "foam", "alerts", "latency_ms"} <= set(f) for f in lines[1:6])
    assert lines[6]["stream"]["analysed"] == 5 and lines[6]["stream"]["stopped"] == "max-frames"


def test_ctrl_c_stops_cleanly_and_writes_json_and_video(sim_frames, port, tmp_path):
    out, video = tmp_path / "live.json", tmp_path / "live.mp4"
    streamer = Streamer(port, sim_frames, duration_s=30.0)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "echosclero", "analyze", f"igtl://127.0.0.1:{port}", "--json", str(out),
         "--video", str(video)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert streamer.connected.wait(20), "the command never connected"
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        streamer.close()
    assert proc.returncode == 0, stderr
    assert stderr == ""
    assert "stopped: interrupted" in stdout
    doc = json.loads(out.read_text())
    assert doc["stream"]["stopped"] == "interrupted"
    assert len(doc["frames"]) == doc["stream"]["analysed"] > 0
    assert doc["stream"]["analysed"] + doc["stream"]["dropped"] == doc["stream"]["received"]
    assert video.stat().st_size > 1000


def test_live_json_writer_document_and_lines():
    import io

    from echosclero.frames import Calibration, Frame
    from echosclero.live import LiveJsonWriter

    def frame(mm):
        return Frame(np.zeros((4, 4), np.uint8), Calibration(mm, mm, source="igtl"))

    frames = [(frame(0.1), {"index": 0}), (frame(0.1), {"index": 3}), (frame(0.2), {"index": 5})]
    fh = io.StringIO()
    writer = LiveJsonWriter(fh, lines=False, source_id="igtl://h:1")
    for f, fj in frames:
        writer.add(f, fj)
    writer.finish({"received": 6, "latency_ms": {"median": 1.0}})
    doc = json.loads(fh.getvalue())
    assert doc["schema"] == "echosclero.analysis/1" and doc["calibration"]["mm_per_px_x"] == 0.1
    assert [f["index"] for f in doc["frames"]] == [0, 3, 5]
    assert "calibration" not in doc["frames"][1]
    assert doc["frames"][2]["calibration"]["mm_per_px_x"] == 0.2  # the depth changed: the frame says so
    assert doc["stream"]["received"] == 6

    fh = io.StringIO()
    writer = LiveJsonWriter(fh, lines=True, source_id="igtl://h:1")
    writer.finish({"received": 0})  # nothing analysed: still a header and the stream line
    lines = [json.loads(line) for line in fh.getvalue().splitlines()]
    assert lines == [{"schema": "echosclero.analysis/1", "source": "igtl://h:1", "calibration": None},
                     {"stream": {"received": 0}}]
