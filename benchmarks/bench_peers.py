"""Peers of the guidance engine: a small U-Net (onnxruntime) and the same U-Net inside FAST, speed and accuracy.

Usage: ``python -m benchmarks.bench_peers [--seeds 5001,5002] [--timing-rate-hz 4] [--quick]``

Writes ``benchmarks/results/peers.json`` and ``docs/benchmarks-peers.md``. The model is the committed
``benchmarks/peers/unet_lumen.onnx`` (trained on simulator seeds 100-999 by ``benchmarks/peers/train_unet.py``);
every frame here comes from the held-out seeds (5000+), never seen in training or validation.

* speed (:func:`peer_timings`): per-frame time at 512 x 512 of the U-Net through onnxruntime (1 and 2
  intra-op threads) and through FAST's ``SegmentationNetwork`` (OpenVINO and ONNX Runtime engines, the FAST
  process limited to 1 and 2 CPUs), on the same frames; wall and CPU time, with the load average;
* accuracy (:func:`peer_accuracy`): the rules of ``benchmarks/bench_guidance.py`` (its ``_match``: vessel
  detection F1, diameter error on transverse vessels at rest, vein/artery accuracy at t >= 1 s) on every frame
  of every scenario, plus the pixel Dice of the lumen against the simulator's geometry;
* the guidance engine on the same frames and in the same run, for the ratios.

FAST is optional (``.uv/bin/uv sync --group peers`` plus Debian's libusb-1.0-0 and pocl-opencl-icd): without
it the FAST rows say why, and nothing is claimed for them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "src", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from benchmarks.peers.masks import lumen_labels, network_input  # noqa: E402
from benchmarks.peers.onnx_peer import MODEL_PATH, UnetPeer, model_info, vessels_from_labels  # noqa: E402
from echosclero.frames import Frame  # noqa: E402
from echosclero.sim import list_scenarios, open_simulated_source  # noqa: E402

__all__ = ["held_out_frames", "peer_accuracy", "peer_timings", "engine_timings"]

RESULTS = ROOT / "benchmarks" / "results" / "peers.json"
DOC = ROOT / "docs" / "benchmarks-peers.md"
HELD_OUT_SEED_MIN = 5000


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    seeds = [int(s) for s in seeds]
    bad = [s for s in seeds if s < HELD_OUT_SEED_MIN]
    if bad:
        raise ValueError(f"seeds {bad} may have been trained on (100-999); benchmark on seeds >= {HELD_OUT_SEED_MIN}")
    return seeds


def held_out_frames(seeds: Iterable[int] = (5001, 5002), *, sample_rate_hz: float = 4.0,
                    scenarios: Iterable[str] | None = None) -> list[Frame]:
    """Frames of every scenario (or ``scenarios``) for each held-out seed, sampled at ``sample_rate_hz``."""
    names = list(scenarios) if scenarios is not None else [n for n, _ in list_scenarios()]
    out = []
    for name in names:
        for seed in _check_seeds(seeds):
            out += list(open_simulated_source(name, seed=seed, frame_rate_hz=sample_rate_hz).frames())
    return out


def _q(a, p):
    return None if len(a) == 0 else round(float(np.percentile(a, p)), 3)


def _stats(ms: list[float], cpu_ms: list[float] | None = None) -> dict:
    out = {"median_ms": _q(ms, 50), "p99_ms": _q(ms, 99), "mean_ms": round(float(np.mean(ms)), 3)}
    if cpu_ms is not None:
        out["cpu_median_ms"] = _q(cpu_ms, 50)
    return out


def _pick(frames: list[Frame], n: int | None) -> list[Frame]:
    if n is None or n >= len(frames):
        return list(frames)
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in idx]


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _time_onnxruntime(frames: list[Frame], threads: int, warmup: int, model_path: Path
                      ) -> tuple[dict, list[np.ndarray]]:
    peer = UnetPeer(model_path, intra_op_threads=threads)
    for f in frames[:warmup]:
        peer.vessels(f)
    seg, post, total, cpu, labels = [], [], [], [], []
    load0 = _load()
    for f in frames:
        c0, t0 = time.process_time(), time.perf_counter()
        lab = peer.segment(f)
        t1 = time.perf_counter()
        vessels_from_labels(lab, f.calibration.mm_per_px_x, f.calibration.mm_per_px_z)
        t2 = time.perf_counter()
        cpu.append((time.process_time() - c0) * 1e3)
        seg.append((t1 - t0) * 1e3)
        post.append((t2 - t1) * 1e3)
        total.append((t2 - t0) * 1e3)
        labels.append(lab)
    res = {"intra_op_threads": threads, "segment": _stats(seg), "postprocess": _stats(post),
           "total": _stats(total, cpu), "load_average_1min": [load0, _load()]}
    return res, labels


def _agreement(a: list[np.ndarray], b: np.ndarray) -> dict:
    same = [float(np.mean(x == y)) for x, y in zip(a, b, strict=True)]
    inter = sum(int(np.count_nonzero((x > 0) & (y > 0))) for x, y in zip(a, b, strict=True))
    tot = sum(int(np.count_nonzero(x > 0)) + int(np.count_nonzero(y > 0)) for x, y in zip(a, b, strict=True))
    return {"pixel_agreement_min": round(min(same), 6), "pixel_agreement_mean": round(float(np.mean(same)), 6),
            "lumen_dice_vs_onnxruntime": round(2 * inter / tot, 5) if tot else 1.0}


def peer_timings(frames: list[Frame], n: int | None = 200, *, warmup: int = 5, fast: bool = True,
                 onnxruntime_threads: tuple[int, ...] = (1, 2), fast_cpus: tuple[int, ...] = (1, 2),
                 model_path: Path = MODEL_PATH) -> dict:
    """Per-frame time of the U-Net peers at 512 x 512, all on the same ``n`` frames.

    Parameters
    ----------
    frames
        Held-out frames (e.g. :func:`held_out_frames`); ``n`` of them, evenly spread, are timed.
    n
        Frames timed per configuration (``None``: all).
    warmup
        Untimed frames first (session start, OpenVINO compilation).
    fast
        Also time FAST (skipped, with the reason, when pyfast cannot be imported).
    onnxruntime_threads, fast_cpus
        The configurations: onnxruntime intra-op threads; CPUs the FAST process may use.
    model_path
        The ONNX model (default: the committed one).

    Returns
    -------
    dict
        ``onnxruntime``: ``{"1_threads": {...}, ...}`` with ``segment`` (pixels -> labels), ``postprocess``
        (labels -> vessels in mm) and ``total`` median / p99 / mean ms and the CPU time; ``fast``:
        ``{"OpenVINO": {"1_cpus": {...}}, "ONNXRuntime": {...}}`` (segmentation only: FAST has no vessel
        post-processing; add ``onnxruntime[...]["postprocess"]`` for the same output) and the pixel agreement of
        FAST's labels with onnxruntime's; ``fast_error`` when FAST could not run.
    """
    import onnxruntime as ort

    cv2.setNumThreads(1)
    sel = _pick(frames, n)
    out: dict = {"frames": len(sel), "size_px": list(sel[0].pixels.shape[:2]), "warmup_frames": warmup,
                 "onnxruntime_version": ort.__version__, "onnxruntime": {}, "fast": {}, "fast_error": None}
    ref_labels = None
    for th in onnxruntime_threads:
        res, labels = _time_onnxruntime(sel, th, warmup, model_path)
        out["onnxruntime"][f"{th}_threads"] = res
        if ref_labels is None:
            ref_labels = labels
    if not fast:
        out["fast_error"] = "not requested"
        return out
    from benchmarks.peers.fast_peer import ENGINES, fast_available, run_child

    why = fast_available()
    if why is not None:
        out["fast_error"] = f"import fast failed: {why}"
        return out
    grey = np.stack([network_input(f.pixels).astype(np.uint8) for f in sel])
    for engine in ENGINES:
        out["fast"][engine] = {}
        for cpus in fast_cpus:
            load0 = _load()
            r = run_child(grey, engine=engine, cpus=cpus, warmup=warmup, model_path=model_path)
            if "error" in r:
                out["fast"][engine][f"{cpus}_cpus"] = {"error": r["error"]}
                continue
            out["fast"][engine][f"{cpus}_cpus"] = {
                "cpus": cpus, **_stats(list(r["ms"]), list(r["cpu_ms"])), "load_and_warmup_s": r["load_and_warmup_s"],
                "load_average_1min": [load0, _load()], **_agreement(ref_labels, r["labels"])}
            row = out["fast"][engine][f"{cpus}_cpus"]
            # CPU time above wall time means more than one core worked: the affinity did not hold (FAST's ONNX
            # Runtime pins its own thread pool to cores).
            row["cpu_over_wall"] = round(float(np.sum(r["cpu_ms"]) / np.sum(r["ms"])), 2)
    try:
        from importlib.metadata import version

        out["pyfast_version"] = version("pyfast")
    except Exception:  # noqa: BLE001 - informative only
        out["pyfast_version"] = None
    return out


def engine_timings(frames: list[Frame], n: int | None = 200, *, warmup: int = 10) -> dict:
    """Per-frame time of the guidance engine (``Engine.process``, 1 OpenCV thread) on the same frames.

    The frames are sampled sparsely in time (tracking sees jumps), so this is the engine's cost per frame, not
    its accuracy; ``benchmarks/bench_guidance.py`` times it on consecutive frames.
    """
    from echosclero.guidance import Engine

    cv2.setNumThreads(1)
    sel = _pick(frames, n)
    eng = Engine()
    for f in sel[:warmup]:
        eng.process(f)
    eng.reset()
    ms, cpu = [], []
    load0 = _load()
    for f in sel:
        c0, t0 = time.process_time(), time.perf_counter()
        eng.process(f)
        ms.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return {"frames": len(sel), "opencv_threads": 1, **_stats(ms, cpu), "load_average_1min": [load0, _load()]}


def peer_accuracy(scenarios: Iterable[str] | None = None, seeds: Iterable[int] = (5001, 5002), *,
                  peer: UnetPeer | None = None, match: Callable | None = None, frame_stride: int = 1) -> dict:
    """Accuracy of the U-Net peer by the rules of ``benchmarks/bench_guidance.py``.

    Parameters
    ----------
    scenarios
        Scenario names (default: all).
    seeds
        Held-out seeds (>= 5000).
    peer
        The peer (default: :class:`UnetPeer` with 1 thread).
    match
        ``match(found, truth_vessels) -> ({truth_id: found}, n_false_positives)``; default
        ``benchmarks.bench_guidance._match``, so both are scored by the very same code.
    frame_stride
        Score every ``frame_stride``-th frame (1: every frame, as bench_guidance does).

    Returns
    -------
    dict
        ``overall`` and ``per_scenario``: ``vessel_f1``, ``tp``, ``fp``, ``fn``, ``diameter_err_median_mm``
        (transverse vessels at rest: no probe pressure, no foam), ``kind_accuracy`` (t >= 1 s),
        ``lumen_dice`` (pooled pixel Dice of any-vessel lumen against the simulator's geometry), ``frames``.
    """
    names = list(scenarios) if scenarios is not None else [n for n, _ in list_scenarios()]
    seeds = _check_seeds(seeds)
    peer = peer or UnetPeer(intra_op_threads=1)
    from benchmarks.bench_guidance import score_vessels

    keys = ("tp", "fp", "fn", "kind_ok", "kind_n", "inter", "area", "frames")
    allm = {k: 0 for k in keys} | {"derr": []}
    per = {}
    for name in names:
        m = {k: 0 for k in keys} | {"derr": []}
        for seed in seeds:
            src = open_simulated_source(name, seed=seed)
            for f in src.frames():
                if f.index % frame_stride:
                    continue
                truth_lab = lumen_labels(src.scene)
                lab = peer.segment(f)
                found = vessels_from_labels(lab, f.calibration.mm_per_px_x, f.calibration.mm_per_px_z,
                                            min_diameter_mm=peer.min_diameter_mm)
                score_vessels(m, found, f.meta["truth"], f.t_s, match)
                m["inter"] += int(np.count_nonzero((lab > 0) & (truth_lab > 0)))
                m["area"] += int(np.count_nonzero(lab > 0)) + int(np.count_nonzero(truth_lab > 0))
                m["frames"] += 1
        per[name] = _acc_summary(m)
        for k in allm:
            allm[k] = allm[k] + m[k]
    return {"seeds": seeds, "frame_stride": frame_stride, "overall": _acc_summary(allm), "per_scenario": per}


def _acc_summary(m: dict) -> dict:
    return {"vessel_f1": round(2 * m["tp"] / max(1, 2 * m["tp"] + m["fp"] + m["fn"]), 4), "tp": m["tp"],
            "fp": m["fp"], "fn": m["fn"], "diameter_err_median_mm": _q(m["derr"], 50),
            "diameter_err_p90_mm": _q(m["derr"], 90), "diameter_n": len(m["derr"]),
            "kind_accuracy": round(m["kind_ok"] / max(1, m["kind_n"]), 4),
            "lumen_dice": round(2 * m["inter"] / max(1, m["area"]), 4), "frames": m["frames"]}


def _engine_accuracy(scenarios: list[str], seeds: list[int]) -> dict:
    from benchmarks.bench_guidance import evaluate

    _, overall = evaluate(scenarios, seeds)
    keep = ("vessel_f1", "tp", "fp", "fn", "diameter_err_median_mm", "kind_accuracy", "frames")
    return {k: overall.get(k) for k in keep}


def _ratio(a, b):
    return None if a is None or b in (None, 0) else round(a / b, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="5001,5002")
    ap.add_argument("--timing-rate-hz", type=float, default=4.0, help="sampling of the timed frames (default 4 Hz)")
    ap.add_argument("--timing-frames", type=int, default=200)
    ap.add_argument("--no-fast", action="store_true", help="skip FAST")
    ap.add_argument("--no-engine", action="store_true", help="skip the guidance engine (no ratios)")
    ap.add_argument("--quick", action="store_true", help="one seed, 40 timed frames, every 4th frame scored")
    ap.add_argument("--md-only", action="store_true", help="rewrite the markdown from benchmarks/results/peers.json")
    args = ap.parse_args(argv)
    if args.md_only:
        _write_md(json.loads(RESULTS.read_text()), model_info()["provenance"] or {})
        return 0
    seeds = _check_seeds(int(s) for s in args.seeds.split(","))[: 1 if args.quick else None]
    n_time = 40 if args.quick else args.timing_frames
    scenarios = [n for n, _ in list_scenarios()]
    t0 = time.time()
    load_start = _load()
    print(f"load average {load_start}; rendering timing frames", flush=True)
    frames = held_out_frames(seeds, sample_rate_hz=args.timing_rate_hz)
    print(f"timing {min(n_time, len(frames))} of {len(frames)} frames", flush=True)
    timings = peer_timings(frames, n=n_time, fast=not args.no_fast)
    eng_t = None if args.no_engine else engine_timings(frames, n=n_time)
    print("accuracy (U-Net, onnxruntime)", flush=True)
    acc = peer_accuracy(scenarios, seeds, frame_stride=4 if args.quick else 1)
    eng_acc = None
    if not args.no_engine:
        print("accuracy (guidance engine, same frames)", flush=True)
        eng_acc = _engine_accuracy(scenarios, seeds)
    info = model_info()
    ort1 = timings["onnxruntime"].get("1_threads", {}).get("total", {})
    ratios = {}
    if eng_t is not None:
        ratios["unet_onnxruntime_1thread_over_engine_time"] = _ratio(ort1.get("median_ms"), eng_t["median_ms"])
        ratios["unet_onnxruntime_1thread_over_engine_cpu"] = _ratio(ort1.get("cpu_median_ms"), eng_t["cpu_median_ms"])
        for engine, rows in timings["fast"].items():
            r1 = rows.get("1_cpus", {})
            if "median_ms" in r1:
                ratios[f"fast_{engine.lower()}_1cpu_over_engine_time"] = _ratio(r1["median_ms"], eng_t["median_ms"])
    if eng_acc is not None:
        ratios["unet_f1_minus_engine_f1"] = round(acc["overall"]["vessel_f1"] - eng_acc["vessel_f1"], 4)
        ratios["unet_diameter_err_over_engine"] = _ratio(acc["overall"]["diameter_err_median_mm"],
                                                         eng_acc["diameter_err_median_mm"])
    res = {
        "date": _dt.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "opencv": cv2.__version__, "load_average_1min_at_start": load_start,
                    "load_average_1min_at_end": _load()},
        "model": {k: info[k] for k in ("path", "size_bytes", "sha256")} | {
            "parameters": (info["provenance"] or {}).get("architecture", {}).get("parameters"),
            "validation": (info["provenance"] or {}).get("validation")},
        "seeds": seeds, "timing_sample_rate_hz": args.timing_rate_hz,
        "timings": timings, "engine_timings": eng_t, "accuracy": acc, "engine_accuracy": eng_acc, "ratios": ratios,
        "wall_s": round(time.time() - t0, 1),
    }
    res["model"]["path"] = str(Path(res["model"]["path"]).relative_to(ROOT))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    _write_md(res, info["provenance"] or {})
    print(json.dumps({"timings": {k: v for k, v in timings.items() if k in ("onnxruntime", "fast", "fast_error")},
                      "engine_timings": eng_t, "accuracy": acc["overall"], "engine_accuracy": eng_acc,
                      "ratios": ratios}, indent=1, default=str))
    return 0


def _f(v, nd=3):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def _write_md(res: dict, prov: dict) -> None:
    t, acc, eng_acc, eng_t = res["timings"], res["accuracy"]["overall"], res["engine_accuracy"], res["engine_timings"]
    m = res["machine"]
    tr = prov.get("training", {})
    val = prov.get("validation", {})
    lines = [
        "# Peers of the guidance engine: a small U-Net (onnxruntime) and FAST",
        "",
        f"Date: {res['date']}. Machine: {m['platform']}, {m['cpus']} CPUs shared with other jobs "
        f"(1-min load average {m['load_average_1min_at_start']} at start, {m['load_average_1min_at_end']} at end), "
        f"Python {m['python']}, onnxruntime {t['onnxruntime_version']}, pyfast {t.get('pyfast_version') or '-'}. "
        "Produced by `benchmarks/bench_peers.py` (raw numbers: `benchmarks/results/peers.json`).",
        "",
        "## The model",
        "",
        f"`benchmarks/peers/unet_lumen.onnx`: {res['model']['size_bytes'] / 1e6:.2f} MB, "
        f"{res['model']['parameters']} parameters, sha256 `{res['model']['sha256'][:16]}...`. A 4-level U-Net "
        "(8-16-32-64 channels, 128 at the bottom) working at 256 x 256 inside a fixed 1 x 1 x 512 x 512 input "
        "(2 x 2 average pooling in, bilinear up-sampling out); output: probabilities of background / vein lumen "
        "/ artery lumen per pixel. Trained by `benchmarks/peers/train_unet.py` (`make train-unet`) from simulator "
        f"frames only: {tr.get('train_frames')} frames of every scenario, seeds {tr.get('train_seeds')}, "
        f"{tr.get('epochs')} epochs in {tr.get('train_s')} s on this machine, final loss {tr.get('final_loss')}; "
        f"validation on seeds {val.get('seeds')} ({val.get('frames')} frames): lumen Dice {val.get('lumen_dice')}, "
        f"vein {val.get('vein_dice')}, artery {val.get('artery_dice')}. Provenance: "
        "`benchmarks/peers/unet_lumen.json`. Run time needs onnxruntime only; nothing is downloaded.",
        "",
        f"## Speed (512 x 512, {t['frames']} held-out frames, seeds {res['seeds']}, all scenarios)",
        "",
        "| pipeline | median (ms) | p99 (ms) | CPU median (ms) | load avg (start, end) |",
        "| --- | --- | --- | --- | --- |",
    ]
    if eng_t is not None:
        lines.append(f"| guidance engine (`Engine.process`, 1 OpenCV thread) | {_f(eng_t['median_ms'], 1)} | "
                     f"{_f(eng_t['p99_ms'], 1)} | {_f(eng_t['cpu_median_ms'], 1)} | {eng_t['load_average_1min']} |")
    for r in t["onnxruntime"].values():
        th = r["intra_op_threads"]
        lines.append(f"| U-Net, onnxruntime, {th} thread{'s' if th > 1 else ''}: pixels -> labels -> vessels | "
                     f"{_f(r['total']['median_ms'], 1)} | {_f(r['total']['p99_ms'], 1)} | "
                     f"{_f(r['total']['cpu_median_ms'], 1)} | {r['load_average_1min']} |")
        lines.append(f"| &nbsp; of which inference (pixels -> labels) | {_f(r['segment']['median_ms'], 1)} | "
                     f"{_f(r['segment']['p99_ms'], 1)} | | |")
    for engine, rows in t["fast"].items():
        for key, r in rows.items():
            if "error" in r:
                lines.append(f"| FAST SegmentationNetwork, {engine}, {key.replace('_', ' ')} | not measured: "
                             f"{r['error']} | | | |")
                continue
            leak = (f"; CPU/wall {r['cpu_over_wall']}: the 1-CPU affinity did not hold"
                    if r["cpus"] == 1 and r["cpu_over_wall"] > 1.2 else "")
            lines.append(f"| FAST SegmentationNetwork, {engine}, {r['cpus']} CPU{'s' if r['cpus'] > 1 else ''} "
                         f"(labels only; same labels as onnxruntime on {100 * r['pixel_agreement_mean']:.3f} % of "
                         f"pixels{leak}) | {_f(r['median_ms'], 1)} | {_f(r['p99_ms'], 1)} | "
                         f"{_f(r['cpu_median_ms'], 1)} | {r['load_average_1min']} |")
    if t.get("fast_error"):
        lines.append(f"| FAST | not measured: {t['fast_error']} | | | |")
    lines += ["", "Ratios (same run): " + ", ".join(f"{k} = {v}" for k, v in res["ratios"].items()) + ".", "",
              f"## Accuracy (every frame of every scenario, seeds {res['seeds']}; rules of `bench_guidance.py`)", "",
              "| metric | U-Net (onnxruntime) | guidance engine |", "| --- | --- | --- |"]
    rows = [("vessel detection F1", "vessel_f1"), ("true / false positives, misses", None),
            ("diameter error median (mm), transverse at rest", "diameter_err_median_mm"),
            ("vein/artery accuracy (t >= 1 s)", "kind_accuracy"), ("lumen pixel Dice", "lumen_dice"),
            ("frames", "frames")]
    for label, k in rows:
        if k is None:
            u = f"{acc['tp']} / {acc['fp']} / {acc['fn']}"
            e = f"{eng_acc['tp']} / {eng_acc['fp']} / {eng_acc['fn']}" if eng_acc else "-"
        else:
            u = _f(acc.get(k))
            e = _f(eng_acc.get(k)) if eng_acc and k in eng_acc else "-"
        lines.append(f"| {label} | {u} | {e} |")
    lines += ["", "| scenario | U-Net F1 | diam. err. med. (mm) | kind acc. | lumen Dice |",
              "| --- | --- | --- | --- | --- |"]
    for name, s in res["accuracy"]["per_scenario"].items():
        lines.append(f"| {name} | {_f(s['vessel_f1'])} | {_f(s['diameter_err_median_mm'])} | "
                     f"{_f(s['kind_accuracy'])} | {_f(s['lumen_dice'])} |")
    lines += ["", "## Caveats", "",
              "- Timings were taken on a 2-core machine shared with other jobs: compare rows of the same run and "
              "read the load averages; CPU time is less sensitive to the sharing than wall time.",
              "- The U-Net is a per-frame segmenter: no tracking, no needle, no foam, no compressibility; its vein/"
              "artery call is per frame (the engine accumulates evidence over time). The engine's rows cover its "
              "whole pipeline (needle, foam, tracking, alerts), the U-Net rows only lumens.",
              "- FAST runs the same ONNX model (its hub is unreachable); its rows time image creation from numpy, "
              "inference and the label image back in numpy, without vessel post-processing (add the onnxruntime "
              "post-processing time for the same output). FAST has no per-network thread setting: its process is "
              "limited by CPU affinity; OpenVINO keeps to it, FAST's ONNX Runtime engine pins its own thread pool "
              "to both cores regardless (CPU time twice the wall time), so its 1-CPU row is really 2 threads. "
              "onnxruntime's own rows are limited by `intra_op_num_threads`.",
              "- The U-Net's post-processing (components of the vein and of the artery mask, rather than of their "
              "union) was chosen on validation seeds 900-901 (F1 0.875 against 0.831); touching lumens of the same "
              "class (the saphenofemoral junction) stay one component, so one of the two vessels counts as missed.",
              "- Where the U-Net is weak (seen in the per-scenario rows and by inspecting frames of seed 5001): "
              "echogenic (thrombosed) lumens and veins collapsed under the probe (`compression_thrombosis`), the "
              "junction and small dark fragments at the bottom edge of the image (`foam_deep_junction`).",
              "- Both the U-Net and the engine are scored on the simulator, which also produced the U-Net's training "
              "frames (other seeds): the U-Net has learnt this simulator's appearance; on real scanners neither "
              "figure transfers without real data.",
              "",
              "## Reproduce",
              "",
              "- `make train-unet`: creates `.venv-train` (CPU torch 2.13, onnx) and re-trains (about 6 min of "
              "training on an idle 2-core machine, plus about 4 min to simulate the frames the first time; several "
              "times longer when the cores are shared); rewrites `unet_lumen.onnx` and `unet_lumen.json`. Fixed "
              "seeds, a fixed number of steps and deterministic torch algorithms: a second run repeated the first "
              "epoch's losses to the last digit (a full second run was not compared).",
              "- `make bench-peers`: installs the `peers` dependency group (pyfast) and runs this benchmark; FAST also "
              "needs `apt-get install -y libusb-1.0-0 pocl-opencl-icd`.",
              ""]
    DOC.write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
