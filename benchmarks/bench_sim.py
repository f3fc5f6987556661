"""Simulator speed: 512x512 B-mode frames with ground truth per second, and PyMUST on the same phantom.

Run: ``.venv/bin/python -m benchmarks.bench_sim`` (about a minute). Writes ``benchmarks/results/sim.json``.

* ours: every scenario, ``FRAMES`` consecutive frames each, one process (OpenCV may use both cores),
  timing ``SimulatedSource.frames()`` end to end: phantom, imaging, log compression, colour Doppler and the
  ground-truth dictionary.
* PyMUST: the phantom of one ``gsv_injection`` frame (``Scene.maps``) sampled as ``N_SCATTERERS`` point
  scatterers (amplitude = local reflectivity x Gaussian; specular structures as dense points), imaged with
  ``simus`` (one plane wave) + ``rf2iq`` + DAS on the same 512x512 grid (``benchmarks/pymust_reference.py``).
  ``N_SCATTERERS`` is far below the ~2e5 needed for fully developed speckle over the whole image, so the
  PyMUST time is a *lower bound* of its cost for this phantom.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.bench_archive import cpu_model
from echosclero.sim import list_scenarios, open_simulated_source

FRAMES = 100
N_SCATTERERS = 8000  # plus up to N/4 points on specular structures
RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    return {"date_utc": datetime.now(UTC).isoformat(timespec="seconds"), "nproc": os.cpu_count(),
            "cpu_model": cpu_model(), "python": platform.python_version()}


def bench_ours() -> list[dict]:
    rows = []
    # Warm up the process once (thread pools, first-touch page faults of the large buffers): the first
    # ~20 frames of a fresh process run at half speed, whatever the scenario.
    warm = open_simulated_source("gsv_injection", seed=99, duration_s=2.0).frames()
    for _ in range(40):
        next(warm)
    for name, _ in list_scenarios():
        src = open_simulated_source(name, seed=100, duration_s=FRAMES / 20.0 + 0.5)
        it = src.frames()
        next(it)  # warm-up (kernels, caches)
        times = []
        cpu0 = time.process_time()
        t_prev = time.perf_counter()
        for _ in range(FRAMES):
            frame = next(it)
            now = time.perf_counter()
            times.append(now - t_prev)
            t_prev = now
            assert frame.meta["truth"]["vessels"]
        cpu_ms = (time.process_time() - cpu0) / FRAMES * 1e3
        ms = np.array(times) * 1e3
        rows.append({"scenario": name, "frames": FRAMES, "median_ms": float(np.median(ms)),
                     "p99_ms": float(np.percentile(ms, 99)), "frames_per_s": float(1e3 / ms.mean()),
                     "cpu_ms_per_frame": cpu_ms, "colour": bool(src.scene.color)})
        print(f"  {name:24s} {rows[-1]['frames_per_s']:7.1f} frames/s  median {rows[-1]['median_ms']:.2f} ms"
              f"  p99 {rows[-1]['p99_ms']:.2f} ms  CPU {cpu_ms:.2f} ms/frame (all threads)")
    return rows


def phantom_scatterers(n: int, rng: np.random.Generator):
    src = open_simulated_source("gsv_injection", seed=100)
    refl, spec, _truth = src.scene.maps(1.0)
    g = src.grid
    x = rng.uniform(0, g.width_mm, n)
    z = rng.uniform(0, g.depth_mm, n)
    r = np.clip((z / g.mm_per_px_z).astype(int), 0, g.rows - 1)
    c = np.clip((x / g.mm_per_px_x).astype(int), 0, g.cols - 1)
    amp = refl[r, c] * rng.standard_normal(n)
    rr, cc = np.nonzero(spec > 0.5)
    pick = rng.choice(rr.size, size=min(rr.size, n // 4), replace=False)
    xs = (cc[pick] + 0.5) * g.mm_per_px_x
    zs = (rr[pick] + 0.5) * g.mm_per_px_z
    return (np.concatenate([x, xs]), np.concatenate([z, zs]),
            np.concatenate([amp, spec[rr[pick], cc[pick]] * 0.3]))


def bench_pymust() -> dict:
    from benchmarks.pymust_reference import pymust_bmode

    rng = np.random.default_rng(7)
    x, z, a = phantom_scatterers(N_SCATTERERS, rng)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    env = pymust_bmode(x, z, a, timings=timings)
    total = time.perf_counter() - t0
    assert env.shape == (512, 512) and np.isfinite(env).all()
    # The DAS matrix is built once per grid and reused across frames: not a per-frame cost.
    per_frame = total - timings.get("das_build_s", 0.0)
    print(f"  pymust simus+rf2iq+DAS, {x.size} scatterers: {per_frame:.1f} s per frame "
          f"(+ {timings.get('das_build_s', 0.0):.1f} s once for the DAS matrix)")
    return {"scatterers": int(x.size), "seconds_per_frame": per_frame, "das_build_s": timings.get("das_build_s"),
            "timings_s": timings}


def main() -> dict:
    print("EchoSclero simulator benchmark")
    info = machine()
    load = os.getloadavg()[0]
    info["load_average_1min_at_start"] = load
    print(f"  machine: {info['nproc']} cores, {info['cpu_model']}, {info['date_utc']}, load {load:.2f}")
    ours = bench_ours()
    peer = bench_pymust()
    ours_ms = float(np.median([r["median_ms"] for r in ours]))
    ratio = peer["seconds_per_frame"] * 1e3 / ours_ms
    print(f"  ratio PyMUST / ours (per frame, same phantom, {peer['scatterers']} scatterers for PyMUST): "
          f"{ratio:,.0f}x")
    result = {"machine": info, "ours": ours, "pymust": peer, "ours_median_ms_over_scenarios": ours_ms,
              "ratio_pymust_over_ours": ratio}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sim.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
