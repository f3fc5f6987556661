"""Streams: memory per stream, a real scanner cine (JPEG) and a live OpenIGTLink stream at 60 frames/s.

Run: ``.venv/bin/python -m benchmarks.bench_stream`` (about a minute). Writes ``benchmarks/results/stream.json``
and regenerates ``docs/benchmarks-archive.md`` (with ``archive.json``).

(a) **Memory per stream** — in a fresh child process: RSS before any engine, after one engine has analysed its
    first ``WARM_FRAMES`` frames (the memory one stream costs), every 50 frames up to ``MEMORY_FRAMES`` (does it
    grow?), and after a second engine has analysed ``WARM_FRAMES`` frames beside the first (the cost of one more
    concurrent stream). The frames are 60 simulated frames replayed with increasing times, so that only the
    engine's own state could grow.
(b) **Real scanner cine** — ``color3d_jpeg_baseline.dcm`` of pydicom-data (SonoSite Turbo, 120 frames, JPEG
    baseline, YBR_FULL_422, calibrated by its ultrasound region): frames/s of decoding alone
    (``DicomSource.frames()``: JPEG decoding, colour conversion, crop), and of decoding + analysis
    (:func:`echosclero.batch.analyse_source`, as ``echosclero analyze FILE``).
(c) **Live** — a PLUS-like sender in a child process streams simulated frames at 60 frames/s for
    ``LIVE_DURATION_S``; :func:`echosclero.live.follow_stream` analyses the newest frame each time the engine is
    free: frames received and analysed per second, dropped, latency (arrival to result) median/p99, and the
    latency of the first and of the last second (a growing backlog would show there).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_archive import RESULTS, machine_info, write_page

MEMORY_FRAMES = 600
WARM_FRAMES = 100
LIVE_RATE_HZ = 60.0
LIVE_DURATION_S = 10.0
SCENARIO = "gsv_injection"


def rss_mb() -> float:
    """Resident set size of this process in MB (``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def _sim_frames(n: int, seed: int):
    from echosclero.sim import open_simulated_source

    source = open_simulated_source(SCENARIO, seed=seed)
    it = source.frames()
    frames = [next(it) for _ in range(n)]
    it.close()
    return frames


# ------------------------------------------------------------------------------------------------ (a)
def memory_child(n_frames: int, warm: int) -> dict:
    """Runs in a fresh process (``--memory-child``): RSS along one long stream, then a second stream."""
    from echosclero.guidance import Engine

    base = _sim_frames(60, seed=501)
    period_s = 0.05

    def frame(i: int):
        return dataclasses.replace(base[i % len(base)], index=i, t_s=i * period_s)

    rss_before = rss_mb()
    engine = Engine()
    every_50 = []
    rss_warm = None
    for i in range(n_frames):
        engine.process(frame(i))
        if (i + 1) == warm:
            rss_warm = rss_mb()
        if (i + 1) % 50 == 0:
            every_50.append(rss_mb())
    rss_end = rss_mb()
    second = Engine()
    for i in range(warm):
        second.process(frame(i))
        engine.process(frame(n_frames + i))
    rss_two = rss_mb()
    growth = rss_end - rss_warm
    per_100 = growth / ((n_frames - warm) / 100.0)
    return {"scenario": SCENARIO, "frames": n_frames, "warm_frames": warm, "rss_before_mb": rss_before,
            "rss_after_warm_mb": rss_warm, "rss_end_mb": rss_end, "mb_per_stream": rss_warm - rss_before,
            "growth_mb": growth, "growth_mb_per_100_frames": per_100, "grows": bool(per_100 > 1.0),
            "mb_second_stream": rss_two - rss_end, "rss_mb_every_50_frames": every_50}


def memory() -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_stream", "--memory-child"], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  (a) memory: {res['mb_per_stream']:.1f} MB per stream (second stream {res['mb_second_stream']:.1f} MB); "
          f"growth {res['growth_mb']:.1f} MB over frames {res['warm_frames']}-{res['frames']} "
          f"({res['growth_mb_per_100_frames']:.2f} MB/100 frames: {'grows' if res['grows'] else 'flat'})", flush=True)
    return res


# ------------------------------------------------------------------------------------------------ (b)
def scanner_file() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("data_store")  # pydicom-data, installed: no network
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / "color3d_jpeg_baseline.dcm"
        if path.is_file():
            return path
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("color3d_jpeg_baseline.dcm"))


def scanner_cine(repeats: int = 2) -> dict:
    from echosclero.batch import analyse_source
    from echosclero.sources.open import open_source

    path = scanner_file()
    with open_source(path) as src:
        info = src.info()
    decode_s, analyse_s, engine_ms = [], [], []
    for _ in range(repeats):
        with open_source(path) as src:
            t0 = time.perf_counter()
            n = sum(1 for _ in src.frames())
            decode_s.append(time.perf_counter() - t0)
        with open_source(path) as src:
            run = analyse_source(src, progress=False)
            analyse_s.append(run.elapsed_s)
            engine_ms.append(run.engine_ms / run.n_frames)
    region = info.details["calibration"]["region_px"]
    res = {"file": path.name, "frames": n, "image_px": [info.rows, info.cols],
           "region_px": [region[3] - region[1] + 1, region[2] - region[0] + 1],
           "mm_per_px": info.details["calibration"]["mm_per_px_x"],
           "transfer_syntax": info.details["transfer_syntax"],
           "photometric": info.details["photometric_interpretation"], "manufacturer": info.details["manufacturer"],
           "decode_frames_per_s": n / min(decode_s), "analyse_frames_per_s": n / min(analyse_s),
           "engine_ms_median": float(np.median(engine_ms)), "repeats": repeats}
    print(f"  (b) {path.name}: decoding {res['decode_frames_per_s']:.1f} frames/s, decoding + analysis "
          f"{res['analyse_frames_per_s']:.1f} frames/s (engine {res['engine_ms_median']:.1f} ms/frame)", flush=True)
    return res


# ------------------------------------------------------------------------------------------------ (c)
def sender_child(port: int, rate_hz: float, duration_s: float) -> None:
    """Runs in a child process (``--sender``): a PLUS-like server streaming simulated frames."""
    from echosclero.sources.igtl_sender import PlusLikeSender

    frames = _sim_frames(30, seed=77)
    cal = frames[0].calibration
    pixels = [f.pixels for f in frames]
    with PlusLikeSender(port) as sender:
        print("ready", flush=True)
        if not sender.wait_connected(30.0):
            print(json.dumps({"error": "no client"}), flush=True)
            return
        report = sender.stream(pixels, rate_hz=rate_hz, duration_s=duration_s, mm_per_px_x=cal.mm_per_px_x,
                               mm_per_px_z=cal.mm_per_px_z)
        print(json.dumps(dataclasses.asdict(report)), flush=True)
        time.sleep(0.5)


def live(rate_hz: float = LIVE_RATE_HZ, duration_s: float = LIVE_DURATION_S) -> dict:
    import socket

    from echosclero.guidance import Engine
    from echosclero.live import follow_stream
    from echosclero.sources.igtl import IgtlSource

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_stream", "--sender", str(port), str(rate_hz),
                               str(duration_s)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        if sender.stdout.readline().strip() != "ready":
            raise RuntimeError("the OpenIGTLink sender did not start")
        engine = Engine()
        engine_ms, shapes = [], []

        def on_result(frame, result, frame_json):
            engine_ms.append(result.processing_ms or 0.0)
            shapes.append(frame.pixels.shape[:2])

        source = IgtlSource("127.0.0.1", port, policy="newest", receive_timeout_s=5.0, max_reconnects=0)
        report = follow_stream(source, duration_s=duration_s - 0.5, engine=engine, on_result=on_result,
                               handle_signals=False)
        sent = json.loads(sender.stdout.readline())
    finally:
        sender.wait(30)
    lat = report.latency_ms
    # first and last second of the run, by result order (one analysed frame every ~1/analysed_per_s)
    per_s = max(1, int(round(report.analysed_per_s)))
    res = {"rate_hz": rate_hz, "duration_s": duration_s, "frame_px": list(shapes[0]), "sent": sent["images"],
           "received": report.received, "received_per_s": report.received / report.duration_s,
           "analysed": report.analysed, "analysed_per_s": report.analysed_per_s, "dropped": report.dropped,
           "dropped_fraction": report.dropped / max(report.received, 1), "malformed": report.malformed,
           "latency_ms_median": float(np.median(lat)), "latency_ms_p99": float(np.percentile(lat, 99)),
           "latency_ms_max": float(lat.max()), "latency_ms_first_s": float(np.median(lat[:per_s])),
           "latency_ms_last_s": float(np.median(lat[-per_s:])), "engine_ms_median": float(np.median(engine_ms)),
           "sender_late_max_s": sent["late_max_s"], "stopped": report.stopped}
    print(f"  (c) live at {rate_hz:.0f} frames/s: received {res['received_per_s']:.1f}/s, analysed "
          f"{res['analysed_per_s']:.1f}/s, dropped {100 * res['dropped_fraction']:.0f} %, latency median "
          f"{res['latency_ms_median']:.1f} ms, p99 {res['latency_ms_p99']:.1f} ms "
          f"(first s {res['latency_ms_first_s']:.1f}, last s {res['latency_ms_last_s']:.1f})", flush=True)
    return res


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description="streams: memory, real cine, live 60 frames/s")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sender", nargs=3, metavar=("PORT", "RATE_HZ", "DURATION_S"), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="shorter runs (a smoke run)")
    args = ap.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(MEMORY_FRAMES, WARM_FRAMES)))
        return None
    if args.sender:
        sender_child(int(args.sender[0]), float(args.sender[1]), float(args.sender[2]))
        return None
    info = machine_info()
    print(f"EchoSclero stream benchmark: {info['cpu_count']} cores, load {info['load_average_1_5_15_min']}",
          flush=True)
    result = {"machine": info}
    result["memory"] = memory()
    result["scanner_cine"] = scanner_cine(repeats=1 if args.quick else 2)
    result["live"] = live(duration_s=3.0 if args.quick else LIVE_DURATION_S)
    info["load_average_1_5_15_min_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stream.json").write_text(json.dumps(result, indent=1))
    write_page()
    return result


if __name__ == "__main__":
    main()
