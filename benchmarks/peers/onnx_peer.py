"""The U-Net peer through onnxruntime: frame -> lumen labels -> vessels in millimetres.

Only onnxruntime, numpy and OpenCV are needed at run time; the model is the committed
``benchmarks/peers/unet_lumen.onnx`` (trained by :mod:`benchmarks.peers.train_unet`, provenance in
``unet_lumen.json``). Nothing is downloaded.

Decision rule: the most probable class per pixel. FAST's ``SegmentationNetwork`` gives the same labels with
``threshold=0`` (it labels a pixel ``c >= 1`` when ``p_c`` exceeds both the threshold and every lower class's
probability, so with a zero threshold it is the arg-max, ties going to the lower class).

Post-processing, deliberately simple (what a user of a plain segmentation network would write): connected
components (8-connected) of the vein mask and of the artery mask, each vessel taking its mask's kind;
components smaller than a 1 mm equivalent diameter are dropped; a component whose minimum-area
rectangle is at least 3 times longer than wide is a longitudinal view (diameter = area / length), otherwise a
transverse one (diameter = equivalent-circle diameter). Positions are pixel centres:
``x_mm = (col + 0.5) * mm_per_px_x``, ``z_mm = (row + 0.5) * mm_per_px_z``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from benchmarks.peers.masks import ARTERY, VEIN, network_input
from echosclero.errors import InputError
from echosclero.frames import Frame

__all__ = ["MODEL_PATH", "PROVENANCE_PATH", "PeerVessel", "UnetPeer", "labels_from_probabilities", "model_info",
           "vessels_from_labels"]

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "unet_lumen.onnx"
PROVENANCE_PATH = HERE / "unet_lumen.json"
#: FAST ``SegmentationNetwork`` threshold that makes its labels the arg-max of the probabilities.
FAST_THRESHOLD = 0.0
#: Smallest equivalent diameter kept as a vessel (mm).
MIN_DIAMETER_MM = 1.0
#: A component this many times longer than wide is a vessel seen in long axis (as in the guidance engine).
LONGITUDINAL_ELONGATION = 3.0


@dataclass(eq=False)
class PeerVessel:
    """One vessel found by a peer in one frame (the fields the benchmark's matching reads).

    ``contour_mm`` (N, 2) is the outline in ``(x_mm, z_mm)``; ``coasting`` is always False (no tracking).
    """

    center_mm: tuple[float, float]
    diameter_mm: float
    area_mm2: float
    kind: Literal["vein", "artery"]
    view: Literal["transverse", "longitudinal"]
    contour_mm: np.ndarray | None = field(default=None, repr=False)
    coasting: bool = False


def model_info(path: Path = MODEL_PATH) -> dict:
    """Size, sha256 and the recorded provenance of an ONNX model (its ``.json`` beside it)."""
    blob = Path(path).read_bytes()
    prov_path = Path(path).with_suffix(".json")
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else None
    return {"path": str(path), "size_bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
            "provenance": prov}


def labels_from_probabilities(prob: np.ndarray) -> np.ndarray:
    """(C, H, W) class probabilities -> (H, W) uint8 labels: the most probable class (ties: the lower one)."""
    return prob.argmax(axis=0).astype(np.uint8)


def vessels_from_labels(labels: np.ndarray, mm_per_px_x: float, mm_per_px_z: float, *,
                        min_diameter_mm: float = MIN_DIAMETER_MM) -> list[PeerVessel]:
    """Connected lumen components of a label image as :class:`PeerVessel` (see the module docstring).

    Parameters
    ----------
    labels : (rows, cols) uint8 ndarray
        0 background, 1 vein, 2 artery.
    mm_per_px_x, mm_per_px_z
        Pixel pitch of ``labels`` (mm).
    min_diameter_mm
        Components with a smaller equivalent-circle diameter are dropped.
    """
    px_area_mm2 = mm_per_px_x * mm_per_px_z
    min_area_px = math.pi * (min_diameter_mm / 2) ** 2 / px_area_mm2
    out = []
    for kind, value in (("vein", VEIN), ("artery", ARTERY)):
        out += _components(labels == value, kind, mm_per_px_x, mm_per_px_z, min_area_px)
    return out


def _components(mask: np.ndarray, kind: str, mm_per_px_x: float, mm_per_px_z: float, min_area_px: float
                ) -> list[PeerVessel]:
    n, comp, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    px_area_mm2 = mm_per_px_x * mm_per_px_z
    out = []
    for i in range(1, n):
        x0, y0, w, h, area_px = (int(v) for v in stats[i])
        if area_px < min_area_px:
            continue
        sub = comp[y0:y0 + h, x0:x0 + w] == i
        contours, _ = cv2.findContours(sub.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        pts = max(contours, key=len).reshape(-1, 2).astype(np.float64)
        contour_mm = np.stack([(pts[:, 0] + x0 + 0.5) * mm_per_px_x, (pts[:, 1] + y0 + 0.5) * mm_per_px_z], 1)
        area_mm2 = area_px * px_area_mm2
        (_, _), (rw, rh), _ = cv2.minAreaRect(contour_mm.astype(np.float32))
        length_mm, width_mm = max(rw, rh), max(min(rw, rh), 1e-6)
        longitudinal = length_mm >= LONGITUDINAL_ELONGATION * width_mm
        diameter_mm = area_mm2 / length_mm if longitudinal else 2.0 * math.sqrt(area_mm2 / math.pi)
        cx, cz = centroids[i]
        out.append(PeerVessel(center_mm=(float((cx + 0.5) * mm_per_px_x), float((cz + 0.5) * mm_per_px_z)),
                              diameter_mm=float(diameter_mm), area_mm2=float(area_mm2), kind=kind,
                              view="longitudinal" if longitudinal else "transverse", contour_mm=contour_mm))
    return out


class UnetPeer:
    """The committed U-Net run by onnxruntime on CPU.

    Parameters
    ----------
    model_path
        The ONNX model (fixed input ``(1, 1, 512, 512)`` float32 grey levels 0..255, output
        ``(1, 3, 512, 512)`` probabilities of background / vein / artery).
    intra_op_threads
        onnxruntime intra-op threads (1 compares with the single-threaded guidance engine).
    min_diameter_mm
        Smallest vessel reported by :meth:`vessels`.

    Notes
    -----
    Frames of another size are resized to the network's 512 x 512 (area interpolation) and the labels resized
    back (nearest), so positions stay in the frame's own calibration. Stateless: every frame is independent.
    """

    def __init__(self, model_path: Path | str = MODEL_PATH, *, intra_op_threads: int = 1,
                 min_diameter_mm: float = MIN_DIAMETER_MM) -> None:
        import onnxruntime as ort

        if not (isinstance(intra_op_threads, int) and intra_op_threads >= 1):
            raise InputError(f"intra_op_threads must be an integer >= 1, got {intra_op_threads!r}")
        path = Path(model_path)
        if not path.exists():
            raise InputError(f"ONNX model {path} not found; train it with `make train-unet`")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_hw = (int(inp.shape[2]), int(inp.shape[3]))
        self.intra_op_threads = intra_op_threads
        self.min_diameter_mm = float(min_diameter_mm)
        self.model_path = path

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(3, rows, cols) float32 class probabilities at the network's size for a frame's pixels."""
        grey = network_input(pixels)
        if grey.shape != self.input_hw:
            grey = cv2.resize(grey, self.input_hw[::-1], interpolation=cv2.INTER_AREA)
        return self.session.run(None, {self.input_name: grey[None, None]})[0][0]

    def segment(self, frame: Frame | np.ndarray) -> np.ndarray:
        """(rows, cols) uint8 labels (0 background, 1 vein lumen, 2 artery lumen) at the frame's size."""
        pixels = frame.pixels if isinstance(frame, Frame) else frame
        labels = labels_from_probabilities(self.probabilities(pixels))
        if labels.shape != pixels.shape[:2]:
            labels = cv2.resize(labels, pixels.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        return labels

    def vessels(self, frame: Frame) -> list[PeerVessel]:
        """Vessels in millimetres from :meth:`segment`, with the frame's calibration."""
        cal = frame.calibration
        return vessels_from_labels(self.segment(frame), cal.mm_per_px_x, cal.mm_per_px_z,
                                   min_diameter_mm=self.min_diameter_mm)
