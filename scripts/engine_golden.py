"""Golden output of the guidance engine: record it, then check a refactor left it bit-identical.

Runs :class:`~echosclero.guidance.Engine` over four simulator scenarios (seed 5001, the first 120 frames each),
the cached PyMUST cines (``benchmarks/data/pymust/*.npz``, gitignored: copy them from a checkout that has them)
and 30 real usgra-dev frames (0.07 mm/px, a fresh engine per still as ``bench_real`` does), and writes every
frame's full result, unrounded (vessels with contours, kinds, probabilities, needle, foam, alerts, strain), to
one JSON file. ``processing_ms`` is left out (wall time).

Usage::

    python scripts/engine_golden.py record golden.json
    python scripts/engine_golden.py check golden.json     # exit 1 and the first differences when not identical
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "src"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from echosclero.frames import Calibration, Frame  # noqa: E402
from echosclero.guidance import Engine  # noqa: E402

SCENARIOS = ("gsv_injection", "artery_near_miss", "compression_thrombosis", "gsv_foam_unseen_needle")
SEED = 5001  # a held-out simulator seed (not a tuning seed)
N_SIM_FRAMES = 120
USGRA_DIR = Path("/work/shared/data/real/usgra-dev")
USGRA_MM = 0.07  # the usgra-dev pitch used by bench_real
N_USGRA = 30
PYMUST_DIR = ROOT / "benchmarks" / "data" / "pymust"


def _plain(obj):
    """A result as plain JSON values: floats kept exact (JSON writes repr), arrays as nested lists."""
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "processing_ms"}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        return sorted(_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _run_cine(frames) -> list:
    engine = Engine()
    return [_plain(engine.process(f)) for f in frames]


def golden() -> dict:
    from echosclero.sim.scenarios import SimulatedSource

    out: dict = {}
    for name in SCENARIOS:
        src = SimulatedSource(name, seed=SEED)
        frames = []
        for f in src.frames():
            frames.append(f)
            if len(frames) >= N_SIM_FRAMES:
                break
        out[f"sim:{name}"] = _run_cine(frames)
        print(f"sim:{name}: {len(frames)} frames", file=sys.stderr, flush=True)
    cines = sorted(p for p in PYMUST_DIR.glob("*.npz") if not p.name.startswith("calibration"))
    if not cines:
        raise SystemExit(f"no PyMUST cines under {PYMUST_DIR}: copy benchmarks/data/pymust/*.npz from main")
    from benchmarks.pymust_scenes import load_cine

    for path in cines:
        out[f"pymust:{path.stem}"] = _run_cine(load_cine(path))
        print(f"pymust:{path.stem}", file=sys.stderr, flush=True)
    import cv2

    paths = sorted(glob.glob(str(USGRA_DIR / "images" / "*.png")))[:N_USGRA]
    if len(paths) < N_USGRA:
        raise SystemExit(f"fewer than {N_USGRA} usgra frames under {USGRA_DIR}")
    stills = []
    for path in paths:
        grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        frame = Frame(grey, Calibration(USGRA_MM, USGRA_MM, source="user"), source_id=os.path.basename(path))
        stills.append(_plain(Engine().process(frame)))
    out["usgra"] = stills
    return out


def _diff(a, b, path: str, out: list, limit: int = 20) -> None:
    if len(out) >= limit:
        return
    if type(a) is not type(b):
        out.append(f"{path}: {a!r} != {b!r}")
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'new' if k not in a else 'golden'}")
            else:
                _diff(a[k], b[k], f"{path}.{k}", out, limit)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}[{i}]", out, limit)
    elif a != b and not (isinstance(a, float) and a != a and b != b):
        out.append(f"{path}: {a!r} != {b!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("record", "check"))
    ap.add_argument("path", type=Path)
    a = ap.parse_args(argv)
    new = json.loads(json.dumps(golden()))  # through JSON, as the recorded file is
    if a.mode == "record":
        a.path.write_text(json.dumps(new))
        n = sum(len(v) for v in new.values())
        print(f"recorded {n} frames of {len(new)} sources to {a.path}")
        return 0
    old = json.loads(a.path.read_text())
    diffs: list[str] = []
    _diff(old, new, "", diffs)
    if diffs:
        print("NOT identical:\n  " + "\n  ".join(diffs))
        return 1
    print(f"identical: {sum(len(v) for v in new.values())} frames of {len(new)} sources")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
