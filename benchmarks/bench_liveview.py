"""The live procedure view in headless Chromium: frames drawn per second and the latency a frame gains from
leaving the engine to being drawn in the page, measured from timestamps in the page.

Run: ``.venv/bin/python -m benchmarks.bench_liveview`` (a few minutes; needs Debian's ``chromium``). Writes
``benchmarks/results/liveview.json``; the figures go to ``docs/benchmarks-liveview.md``.

The workstation serves from a thread of this process on 127.0.0.1:9350; Chromium (``/usr/bin/chromium``,
headless, via Playwright) signs in and opens the live page of a patient, which draws each frame (512 x 512 grey,
sent raw) and the engine's overlays on a canvas, then acknowledges it. Latency per frame: the page's clock at
the end of drawing, minus the server's clock when the frame left the engine (``t_ready_ms``), corrected by the
offset between the two clocks measured with WebSocket pings (the quickest round trip: 5 pings at the start,
then one every 2 s); its parts: waiting on
the server for the page's acknowledgement of the previous frame, on the wire (sent to received by the page), in
the page (received to drawn). Runs (``--runs``, all by default):

- **view** (``precomputed=1``): the engine analyses the scenario first, then the frames leave at 60 frames/s,
  so that the figures are the view's (transport, decoding, drawing), not the engine's speed;
- **live** (the default of the page): the engine analyses each frame in the loop, paced at 30 frames/s; measured
  once the scenario has played through once, so that its frames come from memory as a probe's would (the
  simulator rendered them during the first pass, ahead of the engine in a thread of its own);
- **live-render**: as live with the rendered scenario never kept: the simulator renders every frame, ahead of the
  engine in its thread, which is the first pass of a scenario.

Frames the engine cannot keep up with are never produced, and the page shows what it gets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PORT = 9350
OUT = Path(__file__).parent / "results" / "liveview.json"
#: run name -> the live page's query, and whether the run starts once the scenario has played through once
RUNS = {"view": ("precomputed=1&rate_hz=60", False), "live": ("rate_hz=30", True),
        "live-render": ("rate_hz=30", False)}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def _played_through(page, timeout_s: float = 300) -> None:
    """Wait until the frame index on screen goes back: the scenario has been played through once."""
    top = -1
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        i = page.evaluate("() => esLive.index")
        if i is not None and i < top:
            return
        top = max(top, i if i is not None else -1)
        time.sleep(0.05)
    raise SystemExit(f"the scenario did not play through in {timeout_s:g} s")


def run_view(page, base: str, pid: int, query: str, seconds: float, warm_s: float, *,
             played_through: bool = False) -> dict:
    page.goto(f"{base}/patients/{pid}/live?{query}")
    page.get_by_label("Scenario").select_option("gsv_injection")
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_function("() => window.esLive && window.esLive.drawn >= 5 && window.esLive.offsetMs !== null",
                           timeout=180_000)
    if played_through:
        _played_through(page)
    time.sleep(warm_s)
    print(f"measuring {query} for {seconds:g} s", flush=True)
    start = page.evaluate("() => ({drawn: esLive.drawn, n: esLive.latencies.length, t: esLive.lastMs, "
                          "dropped: esLive.dropped, analysed: esLive.analysed})")
    time.sleep(seconds)
    end = page.evaluate("() => ({drawn: esLive.drawn, lat: esLive.latencies, t: esLive.lastMs, rtt: esLive.rttMs, "
                        "draw: esLive.drawMs, dropped: esLive.dropped, analysed: esLive.analysed, "
                        "slot: esLive.slotMs, wire: esLive.wireMs, pg: esLive.pageMs})")
    page.get_by_role("button", name="Stop").click()
    lat = end["lat"][start["n"]:]
    draw = end["draw"][start["drawn"]:]
    fps = (end["drawn"] - start["drawn"]) / ((end["t"] - start["t"]) / 1e3)
    return {
        "frames_drawn": end["drawn"] - start["drawn"],
        "seconds": round((end["t"] - start["t"]) / 1e3, 2),
        "drawn_per_s": round(fps, 1),
        "latency_ms": {"median": round(statistics.median(lat), 1), "p95": round(_pct(lat, 95), 1),
                       "p99": round(_pct(lat, 99), 1), "max": round(max(lat), 1)},
        "latency_parts_ms_median": {part: round(statistics.median(end[key][start["n"]:]), 1)
                                    for part, key in (("waiting_on_the_server", "slot"), ("on_the_wire", "wire"),
                                                      ("in_the_page", "pg"))},
        "draw_ms_median": round(statistics.median(draw), 2),
        "ping_rtt_ms": round(end["rtt"], 2),
        "dropped_by_newest_frame_policy": end["dropped"] - start["dropped"],
        "left_the_engine": end["analysed"] - start["analysed"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="measured time per run (default 15)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--runs", default=",".join(RUNS), help=f"which runs, comma-separated (default {','.join(RUNS)})")
    args = ap.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if args.seconds <= 0:
        raise SystemExit(f"--seconds {args.seconds:g} must be positive")
    if not runs or set(runs) - set(RUNS):
        raise SystemExit(f"--runs {args.runs!r}: choose from {', '.join(RUNS)}")

    from playwright.sync_api import sync_playwright
    from sqlalchemy.orm import Session

    from echosclero.api.app import create_app
    from echosclero.api.security import hash_password
    from echosclero.api.settings import Settings
    from echosclero.store.db import make_engine
    from echosclero.store.migrate import upgrade
    from echosclero.store.models import Patient, User
    from echosclero.web import live
    from echosclero.web.threaded import ThreadedServer

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: `apt-get install -y chromium`")
    with tempfile.TemporaryDirectory(prefix="bench-liveview-") as tmp:
        url = f"sqlite:///{tmp}/clinic.db"
        engine = make_engine(url)
        upgrade(engine)
        with Session(engine) as db:
            db.add(User(username="doc", role="physician", password_hash=hash_password("bench password 123"),
                        active=True))
            p = Patient(family_name="Bench", given_name="Live", birth_date=datetime(1970, 1, 1).date(),
                        sex="female", weight_kg=70.0)
            db.add(p)
            db.commit()
            pid = p.id
        app = create_app(Settings(database_url=url, secret_key="bench-secret-0123456789-abcdefghijklmnop"),
                         engine=engine, migrate=False)
        app.state.keyframe_dir = Path(tmp) / "keyframes"
        results = {}
        keep = live.RENDERED_BYTES
        with ThreadedServer(app, port=PORT) as srv, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.goto(f"{srv.base}/login")
            page.get_by_label("User name").fill("doc")
            page.get_by_label("Password").fill("bench password 123")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/patients")
            version = browser.version
            for name in runs:
                query, played_through = RUNS[name]
                live._rendered.clear()
                live.RENDERED_BYTES = 0 if name == "live-render" else keep
                results[name] = run_view(page, srv.base, pid, query, args.seconds, 2.0,
                                         played_through=played_through)
                results[name]["load_average_1_5_15_min"] = [round(x, 2) for x in os.getloadavg()]
                print(name, json.dumps(results[name]))
            browser.close()
        engine.dispose()
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "chromium": version,
        "frame": ("sim:gsv_injection, 512 x 512 x 1 uint8 (265 kB) sent raw over the WebSocket (no permessage-deflate),"
                  " with the contours; one frame unacknowledged at most"),
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
