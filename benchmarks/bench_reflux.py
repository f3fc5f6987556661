"""Accuracy benchmark of reflux timing on simulated spectral Doppler displays, two families.

Run: ``.venv/bin/python -m benchmarks.bench_reflux [--family sim|model|all] [--cases N] [--model-cases M]
[--window-cases K] [--workers W] [--seed S]``

Family ``sim``: our own simulator (below). Family ``model``: the independent scatterer model of
:mod:`benchmarks.doppler_model`, each screen written as a DICOM file with a PW region and read back through
the command line's loader (exactly what ``echosclero reflux FILE`` traces), plus a sweep over the STFT
window length (8-32 ms, ``--window-cases`` displays per length).

Each case draws a reflux duration (0 to 4 s, with extra cases near the 500 ms and 1000 ms cut-offs),
peak velocities, noise level (SNR), display gain and dynamic range, baseline position, display orientation,
vendor sign of the velocity step, grey or tinted colour map and velocity spread; the velocity scale (PRF) is
set as a sonographer would, so that the peaks fill at most 70 % of their side of the display. The display is
simulated (:func:`echosclero.sim.doppler.simulate_spectral_display`), traced and measured
(:func:`echosclero.doppler.reflux.reflux_from_display`), and compared with the simulation truth.

Targets (issue #15, each family): median |reflux_ms error| <= 30 ms and <= 80 ms on every display;
classification at the 500 ms and 1000 ms cut-offs correct in >= 98 % of cases whose true duration lies
outside a +-50 ms band around the cut-off; peak reflux and antegrade velocity within 2 cm/s.

Writes ``benchmarks/results/reflux.json`` (sim), ``reflux_model.json`` (model and window sweep) and the
figures ``reflux_error_vs_duration.png``, ``reflux_model_error_vs_duration.png``,
``reflux_model_error_vs_window.png``, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
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
        row["true_peak_reflux_cm_s"] = disp.truth.peak_reflux_cm_s
        row["true_peak_antegrade_cm_s"] = disp.truth.peak_antegrade_cm_s
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


def _model_one(args: tuple[int, int, float | None]) -> dict:
    """One display of the independent model, through a DICOM file and the command line's loader."""
    import tempfile

    from benchmarks.doppler_model import draw_model_case, render_screen, write_dicom
    from echosclero.commands.reflux import _load_spectral

    seed, i, window_ms = args
    rng = np.random.default_rng([seed, i, 0 if window_ms is None else int(window_ms)])
    case = draw_model_case(rng, i, window_ms=window_ms)
    screen = render_screen(case)
    row = case.to_json()
    row.update(true_reflux_ms=screen.truth["reflux_ms"],
               true_peak_reflux_cm_s=screen.truth["peak_reflux_velocity_cm_s"],
               true_peak_antegrade_cm_s=screen.truth["peak_antegrade_velocity_cm_s"],
               colour=case.tint is not None)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_dicom(Path(tmp) / "screen.dcm", screen, grey=case.tint is None,
                           vendor_sign=int(rng.choice([-1, 1])))
        pixels, calibration = _load_spectral(str(path), None)
    t1 = time.perf_counter()
    try:
        m = reflux_from_display(pixels, calibration, reflux_above_baseline=not case.antegrade_above)
        row.update(measured_reflux_ms=m.reflux_ms, peak_reflux_cm_s_measured=m.peak_reflux_velocity_cm_s,
                   peak_antegrade_cm_s_measured=m.peak_antegrade_velocity_cm_s, error="")
    except InputError as exc:
        row.update(measured_reflux_ms=None, error=str(exc))
    row["analysis_ms"] = (time.perf_counter() - t1) * 1000.0
    return row


def run_model(n_cases: int, seed: int, *, window_ms: float | None = None, workers: int = 1,
              desc: str = "model cases") -> list[dict]:
    jobs = [(seed, i, window_ms) for i in range(n_cases)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            return list(tqdm(ex.map(_model_one, jobs), total=len(jobs), desc=desc, unit="case"))
    return [_model_one(j) for j in tqdm(jobs, desc=desc, unit="case")]


def velocity_errors(rows: list[dict]) -> dict:
    """Absolute errors of the peak velocities against the truth, cm/s (reflux: true reflux >= 200 ms)."""
    ok = [r for r in rows if r["measured_reflux_ms"] is not None]
    pr = np.array([r["peak_reflux_cm_s_measured"] - r["true_peak_reflux_cm_s"] for r in ok
                   if r["true_reflux_ms"] >= 200])
    pa = np.array([r["peak_antegrade_cm_s_measured"] - r["true_peak_antegrade_cm_s"] for r in ok])
    out = {}
    for name, e in (("peak_reflux", pr), ("peak_antegrade", pa)):
        out[name] = {
            "n": int(e.size),
            "median_signed_cm_s": float(np.median(e)) if e.size else None,
            "median_abs_cm_s": float(np.median(np.abs(e))) if e.size else None,
            "p90_abs_cm_s": float(np.percentile(np.abs(e), 90)) if e.size else None,
            "within_2_cm_s_pct": float(100 * np.mean(np.abs(e) <= 2.0)) if e.size else None,
        }
    return out


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
    pr_err = np.array([r["peak_reflux_cm_s_measured"] / r["true_peak_reflux_cm_s"] - 1
                       for r, f in zip(ok, refl, strict=True) if f and r["true_reflux_ms"] >= 200])
    pa_err = np.array([r["peak_antegrade_cm_s_measured"] / r["true_peak_antegrade_cm_s"] - 1 for r in ok])
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
        "peak_velocity_abs_error": velocity_errors(rows),
        "iq_vs_display": {
            "n": int(iq_diff.size),
            "median_abs_diff_ms": float(np.median(np.abs(iq_diff))) if iq_diff.size else None,
            "max_abs_diff_ms": float(np.max(np.abs(iq_diff))) if iq_diff.size else None,
        },
        "analysis_ms_per_display": {
            "median": float(np.median([r["analysis_ms"] for r in rows])),
            "p95": float(np.percentile([r["analysis_ms"] for r in rows], 95)),
        },
        "date": time.strftime("%Y-%m-%d"),
        "wall_s": wall_s,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "cases": rows,
    }


def plot(summary: dict, path: Path, *, what: str = "simulated displays") -> None:
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
    ax.set_title(f"reflux_ms error vs duration: {summary['n_cases']} {what}, median |error| "
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
    for name, v in s["peak_velocity_abs_error"].items():
        print(f"{name} velocity: median error {v['median_signed_cm_s']:+.2f} cm/s, median |e| "
              f"{v['median_abs_cm_s']:.2f}, p90 |e| {v['p90_abs_cm_s']:.2f} cm/s, within 2 cm/s "
              f"{v['within_2_cm_s_pct']:.1f} % (n={v['n']})")
    iq = s["iq_vs_display"]
    if iq["n"]:
        print(f"IQ path vs display path: n={iq['n']}, median |diff| {iq['median_abs_diff_ms']:.1f} ms, "
              f"max {iq['max_abs_diff_ms']:.1f} ms")
    a = s["analysis_ms_per_display"]
    print(f"analysis time per display: median {a['median']:.1f} ms, p95 {a['p95']:.1f} ms")


def window_sweep(rows_by_window: dict[float, list[dict]]) -> list[dict]:
    out = []
    for w, rows in sorted(rows_by_window.items()):
        ok = [r for r in rows if r["measured_reflux_ms"] is not None]
        err = np.array([r["measured_reflux_ms"] - r["true_reflux_ms"] for r in ok])
        vel = velocity_errors(rows)
        out.append({
            "window_ms": w, "n": len(rows), "n_refused": len(rows) - len(ok),
            "median_abs_error_ms": float(np.median(np.abs(err))), "median_signed_error_ms": float(np.median(err)),
            "p90_abs_error_ms": float(np.percentile(np.abs(err), 90)), "max_abs_error_ms": float(np.abs(err).max()),
            "peak_reflux_median_abs_cm_s": vel["peak_reflux"]["median_abs_cm_s"] or float("nan"),
            "peak_antegrade_median_abs_cm_s": vel["peak_antegrade"]["median_abs_cm_s"] or float("nan"),
        })
    return out


def plot_window(sweep: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = [r["window_ms"] for r in sweep]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(w, [r["median_abs_error_ms"] for r in sweep], "o-", label="median |error|")
    ax.plot(w, [r["median_signed_error_ms"] for r in sweep], "s--", label="median signed error")
    ax.plot(w, [r["p90_abs_error_ms"] for r in sweep], "^:", label="p90 |error|")
    ax.axhline(30, color="r", lw=0.8, ls="--", label="target median 30 ms")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("STFT window length (ms)")
    ax.set_ylabel("reflux_ms error (ms)")
    ax.set_title(f"independent model: reflux_ms error vs window length ({sweep[0]['n']} displays per length)",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["sim", "model", "all"], default="all",
                        help="our simulator, the independent model, or both (default)")
    parser.add_argument("--cases", type=int, default=600, help="displays of our simulator")
    parser.add_argument("--model-cases", type=int, default=200, help="displays of the independent model")
    parser.add_argument("--window-cases", type=int, default=20,
                        help="model displays per STFT window length in the sweep (0: no sweep)")
    parser.add_argument("--workers", type=int, default=1, help="processes for the model family")
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.family in ("sim", "all"):
        summary = run(args.cases, args.seed)
        (RESULTS / "reflux.json").write_text(json.dumps(summary, indent=1) + "\n")
        plot(summary, RESULTS / "reflux_error_vs_duration.png")
        print("\n== family: our simulator (echosclero.sim.doppler)")
        print_table(summary)
    if args.family in ("model", "all"):
        t0 = time.perf_counter()
        rows = run_model(args.model_cases, args.seed, workers=args.workers)
        summary = summarise(rows, wall_s=time.perf_counter() - t0, seed=args.seed)
        summary["benchmark"] = "reflux timing on the independent spectral Doppler model (benchmarks/doppler_model.py)"
        by_window = {}
        for w in (8.0, 12.0, 16.0, 20.0, 24.0, 32.0) if args.window_cases > 0 else ():
            by_window[w] = run_model(args.window_cases, args.seed + int(w), window_ms=w, workers=args.workers,
                                     desc=f"window {w:g} ms")
        summary["window_sweep"] = window_sweep(by_window) if by_window else []
        summary["window_sweep_cases"] = {str(k): v for k, v in by_window.items()}
        (RESULTS / "reflux_model.json").write_text(json.dumps(summary, indent=1) + "\n")
        plot(summary, RESULTS / "reflux_model_error_vs_duration.png", what="independent-model DICOM screens")
        print("\n== family: independent model (benchmarks/doppler_model.py)")
        print_table(summary)
        if summary["window_sweep"]:
            plot_window(summary["window_sweep"], RESULTS / "reflux_model_error_vs_window.png")
            print(f"{'window (ms)':>12} {'n':>4} {'median |e|':>11} {'median e':>9} {'p90 |e|':>8} {'max |e|':>8} "
                  f"{'peak refl |e|':>14} {'peak ante |e|':>14}")
            for r in summary["window_sweep"]:
                print(f"{r['window_ms']:>12g} {r['n']:>4} {r['median_abs_error_ms']:>11.1f} "
                      f"{r['median_signed_error_ms']:>9.1f} {r['p90_abs_error_ms']:>8.1f} "
                      f"{r['max_abs_error_ms']:>8.1f} "
                      f"{r['peak_reflux_median_abs_cm_s']:>14.2f} {r['peak_antegrade_median_abs_cm_s']:>14.2f}")
    print(f"\nwrote {RESULTS}/reflux*.json and figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
