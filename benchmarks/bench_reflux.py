"""Accuracy benchmark of reflux timing on simulated spectral Doppler displays.

Run: ``.venv/bin/python -m benchmarks.bench_reflux [--cases N] [--seed S]``

Each case draws a reflux duration (0 to 4 s, with extra cases near the 500 ms and 1000 ms cut-offs),
peak velocities, noise level (SNR), display gain and dynamic range, baseline position, display orientation,
vendor sign of the velocity step, grey or tinted colour map and velocity spread; the velocity scale (PRF) is
set as a sonographer would, so that the peaks fill at most 70 % of their side of the display. The display is
simulated (:func:`echosclero.sim.doppler.simulate_spectral_display`), traced and measured
(:func:`echosclero.doppler.reflux.reflux_from_display`), and compared with the simulation truth.

Targets (issue #4): median |reflux_ms error| <= 50 ms; classification at the 500 ms and 1000 ms cut-offs
correct in >= 98 % of cases whose true duration lies outside a +-50 ms band around the cut-off.

Writes ``benchmarks/results/reflux.json`` and ``benchmarks/results/reflux_error_vs_duration.png`` and prints
a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from echosclero.doppler.reflux import reflux_from_display, reflux_from_iq
from echosclero.errors import InputError
from echosclero.sim.doppler import SOUND_SPEED_M_S, simulate_spectral_display

RESULTS = Path(__file__).resolve().parent / "results"
CUTOFFS_MS = (500.0, 1000.0)  # [guideline] SVS/AVF 2011; SVS/AVF/AVLS 2023 (superficial / proximal deep)
BAND_MS = 50.0
BINS_MS = ((0, 1), (1, 500), (500, 1000), (1000, 2000), (2000, 4001))


def draw_case(rng: np.random.Generator, i: int) -> dict:
    """Parameters of case ``i`` (a third near the cut-offs, a tenth competent, the rest uniform 0-4 s)."""
    kind = i % 10
    if kind == 0:
        reflux_ms = 0.0
    elif kind in (1, 2, 3):
        reflux_ms = float(rng.uniform(300, 1300))
    else:
        reflux_ms = float(rng.uniform(0, 4000))
    baseline_fraction = float(rng.uniform(0.3, 0.7))
    antegrade_above = bool(rng.random() < 0.8)
    peak_antegrade = float(rng.uniform(10, 60))
    peak_reflux = float(rng.uniform(8, 50))
    f0_hz = float(rng.choice([4.0e6, 5.0e6, 6.0e6]))
    angle_deg = float(rng.uniform(45, 65))
    up = baseline_fraction if antegrade_above else 1 - baseline_fraction  # antegrade side's share
    # scale: each peak at most 70 % of its side (span = 2 v_nyq)
    v_nyq = max(peak_antegrade / (0.7 * 2 * up), peak_reflux / (0.7 * 2 * (1 - up)))
    prf_hz = v_nyq / 100.0 * 4 * f0_hz * np.cos(np.deg2rad(angle_deg)) / SOUND_SPEED_M_S
    return {
        "reflux_ms": reflux_ms,
        "peak_antegrade_cm_s": peak_antegrade,
        "peak_reflux_cm_s": peak_reflux,
        "prf_hz": float(prf_hz),
        "f0_hz": f0_hz,
        "angle_deg": angle_deg,
        "baseline_fraction": baseline_fraction,
        "antegrade_above": antegrade_above,
        "vendor_delta_y_sign": int(rng.choice([-1, 1])),
        "velocity_spread": float(rng.uniform(0.2, 0.8)),
        "snr_db": float(rng.uniform(0, 25)),
        "gain_db": float(rng.uniform(-4, 14)),
        "dynamic_range_db": float(rng.uniform(30, 60)),
        "n_rows": int(rng.choice([160, 200, 256])),
        "s_per_px": float(rng.choice([0.005, 0.01, 0.015])),
        "tint_rgb": None if rng.random() < 0.6 else (1.0, 0.85, 0.6),
    }


def run(n_cases: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    t0 = time.perf_counter()
    for i in tqdm(range(n_cases), desc="reflux cases", unit="case"):
        params = draw_case(rng, i)
        disp = simulate_spectral_display(rng=np.random.default_rng([seed, i]), **params)
        row = {k: v for k, v in params.items() if k != "tint_rgb"}
        row["colour"] = params["tint_rgb"] is not None
        row["true_reflux_ms"] = disp.truth.reflux_ms
        t1 = time.perf_counter()
        try:
            m = reflux_from_display(disp.pixels, disp.calibration,
                                    reflux_above_baseline=not params["antegrade_above"])
            row.update(
                measured_reflux_ms=m.reflux_ms,
                peak_reflux_cm_s_measured=m.peak_reflux_velocity_cm_s,
                peak_antegrade_cm_s_measured=m.peak_antegrade_velocity_cm_s,
                error="",
            )
        except InputError as exc:
            row.update(measured_reflux_ms=None, error=str(exc))
        row["analysis_ms"] = (time.perf_counter() - t1) * 1000.0
        if i % 10 == 5 and disp.iq is not None:  # image path vs IQ path on a subset
            try:
                m_iq = reflux_from_iq(disp.iq, prf_hz=disp.prf_hz, f0_hz=disp.f0_hz, angle_deg=disp.angle_deg,
                                      s_per_col=params["s_per_px"])
                row["iq_reflux_ms"] = m_iq.reflux_ms
            except InputError as exc:
                row["iq_reflux_ms"] = None
                row["iq_error"] = str(exc)
        rows.append(row)
    wall_s = time.perf_counter() - t0
    return summarise(rows, wall_s=wall_s, seed=seed)


def summarise(rows: list[dict], *, wall_s: float, seed: int) -> dict:
    ok = [r for r in rows if r["measured_reflux_ms"] is not None]
    truth = np.array([r["true_reflux_ms"] for r in ok])
    meas = np.array([r["measured_reflux_ms"] for r in ok])
    err = meas - truth
    by_bin = []
    for lo, hi in BINS_MS:
        sel = (truth >= lo) & (truth < hi)
        if np.any(sel):
            by_bin.append({
                "true_ms": [lo, hi - 1 if hi == 1 else hi],
                "n": int(sel.sum()),
                "median_error_ms": float(np.median(err[sel])),
                "median_abs_error_ms": float(np.median(np.abs(err[sel]))),
                "p90_abs_error_ms": float(np.percentile(np.abs(err[sel]), 90)),
            })
    classification = []
    for cut in CUTOFFS_MS:
        sel = np.abs(truth - cut) > BAND_MS
        correct = (truth[sel] > cut) == (meas[sel] > cut)
        classification.append({
            "cutoff_ms": cut,
            "band_ms": BAND_MS,
            "n": int(sel.sum()),
            "correct_pct": float(100.0 * correct.mean()) if sel.any() else None,
            "n_wrong": int((~correct).sum()),
        })
    refl = np.array([r["true_reflux_ms"] > 0 and r.get("peak_reflux_cm_s_measured", 0) > 0 for r in ok])
    pr_err = np.array([r["peak_reflux_cm_s_measured"] / r["peak_reflux_cm_s"] - 1 for r, f in zip(ok, refl,
                                                                                                   strict=True)
                       if f and r["true_reflux_ms"] >= 200])
    pa_err = np.array([r["peak_antegrade_cm_s_measured"] / r["peak_antegrade_cm_s"] - 1 for r in ok])
    iq_pairs = [(r["measured_reflux_ms"], r["iq_reflux_ms"]) for r in ok if r.get("iq_reflux_ms") is not None]
    iq_diff = np.array([a - b for a, b in iq_pairs]) if iq_pairs else np.array([])
    return {
        "benchmark": "reflux timing on simulated spectral Doppler displays",
        "seed": seed,
        "n_cases": len(rows),
        "n_refused": len(rows) - len(ok),
        "refusals": [r["error"] for r in rows if r["measured_reflux_ms"] is None][:10],
        "reflux_ms_error": {
            "median_abs_ms": float(np.median(np.abs(err))),
            "median_signed_ms": float(np.median(err)),
            "p90_abs_ms": float(np.percentile(np.abs(err), 90)),
            "p99_abs_ms": float(np.percentile(np.abs(err), 99)),
            "max_abs_ms": float(np.max(np.abs(err))),
        },
        "by_true_duration": by_bin,
        "classification": classification,
        "peak_reflux_velocity_rel_error": {
            "median": float(np.median(pr_err)) if pr_err.size else None,
            "median_abs": float(np.median(np.abs(pr_err))) if pr_err.size else None,
        },
        "peak_antegrade_velocity_rel_error": {
            "median": float(np.median(pa_err)),
            "median_abs": float(np.median(np.abs(pa_err))),
        },
        "iq_vs_display": {
            "n": int(iq_diff.size),
            "median_abs_diff_ms": float(np.median(np.abs(iq_diff))) if iq_diff.size else None,
            "max_abs_diff_ms": float(np.max(np.abs(iq_diff))) if iq_diff.size else None,
        },
        "analysis_ms_per_display": {
            "median": float(np.median([r["analysis_ms"] for r in rows])),
            "p95": float(np.percentile([r["analysis_ms"] for r in rows], 95)),
        },
        "wall_s": wall_s,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "cases": rows,
    }


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in summary["cases"] if r["measured_reflux_ms"] is not None]
    truth = np.array([r["true_reflux_ms"] for r in ok])
    err = np.array([r["measured_reflux_ms"] for r in ok]) - truth
    snr = np.array([r["snr_db"] for r in ok])
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    sc = ax.scatter(truth / 1000.0, err, c=snr, s=10, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="SNR (dB)")
    for cut in CUTOFFS_MS:
        ax.axvline(cut / 1000.0, color="r", lw=0.8, ls="--")
    ax.axhline(0, color="k", lw=0.6)
    ax.axhspan(-50, 50, color="0.85", zorder=0, label="+-50 ms")
    ax.set_xlabel("true reflux duration (s)")
    ax.set_ylabel("measured - true reflux (ms)")
    e = summary["reflux_ms_error"]
    ax.set_title(f"reflux_ms error vs duration: {summary['n_cases']} simulated displays, median |error| "
                 f"{e['median_abs_ms']:.0f} ms, p90 {e['p90_abs_ms']:.0f} ms", fontsize=9)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def print_table(s: dict) -> None:
    e = s["reflux_ms_error"]
    print(f"\nreflux timing benchmark: {s['n_cases']} cases (seed {s['seed']}), {s['n_refused']} refused, "
          f"{s['wall_s']:.0f} s wall")
    print(f"reflux_ms error: median |e| {e['median_abs_ms']:.1f} ms (signed {e['median_signed_ms']:+.1f}), "
          f"p90 {e['p90_abs_ms']:.1f}, p99 {e['p99_abs_ms']:.1f}, max {e['max_abs_ms']:.1f} ms")
    print(f"{'true duration (ms)':>20} {'n':>5} {'median e':>9} {'median |e|':>11} {'p90 |e|':>8}")
    for b in s["by_true_duration"]:
        lo, hi = b["true_ms"]
        print(f"{f'{lo}-{hi}':>20} {b['n']:>5} {b['median_error_ms']:>9.1f} {b['median_abs_error_ms']:>11.1f} "
              f"{b['p90_abs_error_ms']:>8.1f}")
    for c in s["classification"]:
        print(f"classification at {c['cutoff_ms']:.0f} ms (outside +-{c['band_ms']:.0f} ms): "
              f"{c['correct_pct']:.2f} % correct of {c['n']} ({c['n_wrong']} wrong)")
    pr, pa = s["peak_reflux_velocity_rel_error"], s["peak_antegrade_velocity_rel_error"]
    print(f"peak reflux velocity: median rel. error {100 * pr['median']:+.1f} % (|.| {100 * pr['median_abs']:.1f} %); "
          f"peak antegrade {100 * pa['median']:+.1f} % (|.| {100 * pa['median_abs']:.1f} %)")
    iq = s["iq_vs_display"]
    if iq["n"]:
        print(f"IQ path vs display path: n={iq['n']}, median |diff| {iq['median_abs_diff_ms']:.1f} ms, "
              f"max {iq['max_abs_diff_ms']:.1f} ms")
    a = s["analysis_ms_per_display"]
    print(f"analysis time per display: median {a['median']:.1f} ms, p95 {a['p95']:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args(argv)
    summary = run(args.cases, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reflux.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(summary, RESULTS / "reflux_error_vs_duration.png")
    print_table(summary)
    print(f"\nwrote {RESULTS / 'reflux.json'} and {RESULTS / 'reflux_error_vs_duration.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
