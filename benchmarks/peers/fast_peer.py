"""The same U-Net run inside FAST (Smistad et al.; ``pyfast``): ``SegmentationNetwork`` on CPU.

FAST's model hub cannot be reached from here, so its ``SegmentationNetwork`` runs our own committed model
(``benchmarks/peers/unet_lumen.onnx``) through one of FAST's inference engines (``OpenVINO`` or
``ONNXRuntime``), fed from numpy with ``fast.Image.createFromArray``. Scale factor 1 (the model takes display
levels 0..255), threshold 0 and channel 0 the background class: FAST's labels are then the arg-max of the
probabilities, as :func:`benchmarks.peers.onnx_peer.labels_from_probabilities` (checked pixel by pixel by the
benchmark).

Install (not a default dependency; CI does not need it)::

    apt-get install -y libusb-1.0-0 pocl-opencl-icd     # FAST's shared libraries load only with these
    .uv/bin/uv sync --group peers                        # or: .uv/bin/uv pip install --python .venv/bin/python pyfast

FAST prints a banner, warns that no X display is available, and writes its settings and kernel cache to
``~/FAST``. Its threads cannot be set per network: :func:`run_child` limits the CPUs with
``os.sched_setaffinity`` before FAST is imported, in a child process (``python -m benchmarks.peers.fast_peer``),
which also keeps FAST's start-up and output away from the benchmark process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT / "src", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from benchmarks.peers.onnx_peer import FAST_THRESHOLD, MODEL_PATH  # noqa: E402
from echosclero.errors import InputError  # noqa: E402

__all__ = ["ENGINES", "FastPeer", "fast_available", "run_child"]

ENGINES = ("OpenVINO", "ONNXRuntime")


def fast_available() -> str | None:
    """``None`` when ``import fast`` works in a child process, else the reason (last line of its error)."""
    r = subprocess.run([sys.executable, "-c", "import fast"], capture_output=True, text=True, timeout=120,
                       cwd=tempfile.gettempdir())
    if r.returncode == 0:
        return None
    lines = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"import fast exited with {r.returncode}"


class FastPeer:
    """FAST's ``SegmentationNetwork`` on the committed ONNX model.

    Parameters
    ----------
    model_path
        The ONNX model (fixed input shape, as FAST requires).
    engine
        FAST inference engine: ``"OpenVINO"`` or ``"ONNXRuntime"`` (both on CPU here).
    """

    def __init__(self, model_path: Path | str = MODEL_PATH, *, engine: str = "OpenVINO") -> None:
        if engine not in ENGINES:
            raise InputError(f"engine {engine!r} is not one of {ENGINES}")
        try:
            import fast
        except ImportError as e:  # pyfast missing, or its shared libraries (libusb, OpenCL ICD) missing
            raise InputError(f"pyfast cannot be imported ({e}); install it with `.uv/bin/uv sync --group peers` "
                             "and Debian's libusb-1.0-0 pocl-opencl-icd") from e
        self._fast = fast
        self.engine = engine
        self.net = fast.SegmentationNetwork.create(str(model_path), scaleFactor=1.0, threshold=FAST_THRESHOLD,
                                                   hasBackgroundClass=True, inferenceEngine=engine)

    def segment(self, grey: np.ndarray) -> np.ndarray:
        """(rows, cols) uint8 labels for a (rows, cols) uint8 grey image (see ``masks.network_input``)."""
        img = self._fast.Image.createFromArray(np.ascontiguousarray(grey[..., None]))
        self.net.connect(img)
        seg = self.net.runAndGetOutputData()
        return np.asarray(seg)[..., 0].copy()


def _child(args: argparse.Namespace) -> int:
    if args.cpus:
        os.sched_setaffinity(0, set(range(args.cpus)))
    with np.load(args.frames) as z:
        grey = z["grey"]
    t0 = time.perf_counter()
    peer = FastPeer(args.model, engine=args.engine)
    for g in grey[: args.warmup]:
        peer.segment(g)
    t_load = time.perf_counter() - t0
    ms, cpu_ms, labels = [], [], []
    for g in grey:
        c, t = time.process_time(), time.perf_counter()
        labels.append(peer.segment(g))
        ms.append((time.perf_counter() - t) * 1e3)
        cpu_ms.append((time.process_time() - c) * 1e3)  # all of FAST's threads
    np.savez(args.out, ms=np.asarray(ms), cpu_ms=np.asarray(cpu_ms), labels=np.stack(labels))
    Path(args.out).with_suffix(".json").write_text(json.dumps({"engine": args.engine, "cpus": args.cpus,
                                                               "load_and_warmup_s": round(t_load, 2)}))
    return 0


def run_child(grey: np.ndarray, *, engine: str, cpus: int | None, warmup: int = 5, model_path: Path = MODEL_PATH,
              timeout_s: float = 600.0) -> dict:
    """Time FAST on ``grey`` frames in a child process limited to ``cpus`` CPUs.

    Parameters
    ----------
    grey : (N, rows, cols) uint8 ndarray
        Network inputs (``masks.network_input`` of each frame).
    engine
        ``"OpenVINO"`` or ``"ONNXRuntime"``.
    cpus
        CPUs the child may run on (``sched_setaffinity``); ``None`` for all.

    Returns
    -------
    dict
        ``ms``: (N,) per-frame times (image creation + inference + labels back in numpy), ``cpu_ms``: the
        process CPU time per frame (all of FAST's threads), ``labels``:
        (N, rows, cols) uint8, ``load_and_warmup_s``; or ``error`` (the child's last lines) when it failed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        frames, out = Path(tmp) / "frames.npz", Path(tmp) / "out.npz"
        np.savez(frames, grey=grey)
        cmd = [sys.executable, "-m", "benchmarks.peers.fast_peer", "--frames", str(frames), "--out", str(out),
               "--engine", engine, "--warmup", str(warmup), "--model", str(model_path)]
        if cpus:
            cmd += ["--cpus", str(cpus)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"FAST child did not finish within {timeout_s} s"}
        if r.returncode != 0 or not out.exists():
            tail = [ln for ln in (r.stderr + r.stdout).strip().splitlines() if ln.strip()][-3:]
            return {"error": " | ".join(tail) or f"exit code {r.returncode}"}
        with np.load(out) as z:
            res = {"ms": z["ms"], "cpu_ms": z["cpu_ms"], "labels": z["labels"]}
        res.update(json.loads(out.with_suffix(".json").read_text()))
        return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="time FAST's SegmentationNetwork on frames (child of bench_peers)")
    ap.add_argument("--frames", required=True, help=".npz with 'grey': (N, rows, cols) uint8")
    ap.add_argument("--out", required=True, help=".npz to write: 'ms', 'labels'")
    ap.add_argument("--engine", default="OpenVINO", choices=ENGINES)
    ap.add_argument("--cpus", type=int, default=0, help="limit to this many CPUs (0: all)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--model", default=str(MODEL_PATH))
    return _child(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
