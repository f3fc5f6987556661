"""The learned lumen detector: a small fully convolutional network on the working image (onnxruntime).

Fixed grey-level rules find the near-black lumens of a simulator; real lumens sit only 5-15 dB below the
tissue, with clutter inside, beside nerves, tendons and fat lobules that are dark too. What tells them apart is
the shape of the dark region and of its wall over several millimetres, which a small network learns from
examples of many appearances. This module runs it; ``scripts/train_lumen_net.py`` trains it (data, split and
provenance in ``models/lumen_net.json``). Everything after it (outlines, sizes, tracking, vein or artery) is
classical and lives in the other stages.

Input: the working image (:mod:`.preprocess`, 0.2 mm/px) reduced 2 x 2 to 0.4 mm/px, grey divided by the
median grey of the imaged area (gain-free), and the imaged area itself; output: the lumen probability, brought
back to the working grid by bilinear interpolation (the 0.5 level then falls between working pixels).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

__all__ = ["WIDTHS", "LumenNet", "network_input"]

#: Channel widths of the network's levels (0.4, 0.8, 1.6, 3.2 mm per pixel).
WIDTHS = (8, 16, 24, 32)
MODEL_DIR = Path(__file__).resolve().parent / "models"
MODEL_PATH = MODEL_DIR / "lumen_net.onnx"
#: Grey relative to the imaged area's median is clipped to this (bright specular echoes carry no lumen cue).
MAX_RELATIVE_GREY = 4.0


def _pool2(a: np.ndarray) -> np.ndarray:
    r, c = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    return cv2.resize(a[:r, :c], (c // 2, r // 2), interpolation=cv2.INTER_AREA)


def network_input(small: np.ndarray, imaged: np.ndarray | None) -> np.ndarray:
    """(2, rows // 2, cols // 2) float32: relative grey and imaged area at 0.4 mm/px."""
    g = small.astype(np.float32, copy=False)
    im = np.ones(g.shape, bool) if imaged is None else imaged
    sub = g[im][:: max(1, int(im.sum()) // 4096)] if im.any() else g.ravel()
    level = float(np.median(sub)) if sub.size else 1.0
    rel = np.minimum(g / max(level, 1e-3), MAX_RELATIVE_GREY) * im
    return np.stack([_pool2(rel.astype(np.float32)), _pool2(im.astype(np.float32))])


class LumenNet:
    """The lumen network, loaded once per process.

    >>> net = LumenNet.load()                    # doctest: +SKIP
    >>> prob = net.probability(prep.small, prep.imaged)
    """

    def __init__(self, path: Path = MODEL_PATH) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("ECHOSCLERO_NET_THREADS", "1"))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        prov = path.with_suffix(".json")
        self.provenance = json.loads(prov.read_text()) if prov.exists() else {}

    @staticmethod
    @lru_cache(maxsize=1)
    def load() -> LumenNet:
        return LumenNet()

    def probability(self, small: np.ndarray, imaged: np.ndarray | None) -> np.ndarray:
        """Lumen probability (0-1) on the working grid of ``small``."""
        x = network_input(small, imaged)
        _, r, c = x.shape
        r8, c8 = -(-r // 8) * 8, -(-c // 8) * 8
        if (r8, c8) != (r, c):
            x = np.pad(x, ((0, 0), (0, r8 - r), (0, c8 - c)))
        logit = self.session.run(None, {"x": x[None]})[0][0, 0, :r, :c]
        prob = 1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))
        rows, cols = small.shape
        # pixel centres: the coarse pixel k covers fine pixels 2k and 2k + 1
        out = cv2.resize(prob.astype(np.float32), (2 * c, 2 * r), interpolation=cv2.INTER_LINEAR)
        if out.shape != (rows, cols):
            out = np.pad(out, ((0, rows - out.shape[0]), (0, cols - out.shape[1])), mode="edge")
        if imaged is not None:
            out *= imaged
        return out
