"""The committed U-Net peer (``benchmarks/peers/unet_lumen.onnx``): integrity, provenance and accuracy.

Needs onnxruntime only. The accuracy check runs the model on freshly simulated frames of a held-out seed
(5003: never used in training, 100-999, nor by the peers benchmark, 5001-5002) and compares its lumen mask
with the simulator's exact geometry. The Dice bound is far above what an untrained network gives (all
background: 0; all lumen: 0.30, checked below; the same architecture after 10 training steps: 0.30) and
below what the committed model reaches on the validation seeds (see ``unet_lumen.json``), so the test fails when
the weights are lost or wrong, not on small retraining noise.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # benchmarks/ is a top-level package of the repository, not installed
    sys.path.insert(0, str(_ROOT))

from benchmarks.peers.masks import lumen_labels  # noqa: E402
from benchmarks.peers.onnx_peer import MODEL_PATH, PROVENANCE_PATH, UnetPeer  # noqa: E402

from echosclero.errors import InputError  # noqa: E402
from echosclero.sim import open_simulated_source  # noqa: E402

MAX_MODEL_BYTES = 10 * 1024 * 1024
#: Pooled lumen Dice the model must reach on the held-out frames below.
MIN_LUMEN_DICE = 0.8
HELD_OUT_SEED = 5003
#: (scenario, time in s): transverse and longitudinal views, grey and colour Doppler, needle, foam.
CASES = (("gsv_injection", 0.0), ("artery_near_miss", 2.0), ("foam_deep_junction", 2.5),
         ("compression_thrombosis", 0.0))


def _provenance() -> dict:
    return json.loads(PROVENANCE_PATH.read_text())


def test_model_is_committed_small_and_matches_its_provenance():
    blob = MODEL_PATH.read_bytes()
    prov = _provenance()
    assert len(blob) < MAX_MODEL_BYTES, f"{MODEL_PATH.name} is {len(blob)} bytes, limit {MAX_MODEL_BYTES}"
    assert hashlib.sha256(blob).hexdigest() == prov["sha256"], "ONNX file differs from unet_lumen.json: re-train"
    assert len(blob) == prov["size_bytes"]


def test_provenance_never_used_held_out_seeds():
    prov = _provenance()
    lo, hi = prov["training"]["train_seeds"]
    vlo, vhi = prov["validation"]["seeds"]
    assert 100 <= lo <= hi < vlo <= vhi <= 999
    assert prov["validation"]["lumen_dice"] > MIN_LUMEN_DICE + 0.05  # the bound below keeps a margin


def _frame(name: str, t_s: float):
    src = open_simulated_source(name, seed=HELD_OUT_SEED, duration_s=t_s + 0.5, frame_rate_hz=2.0)
    for f in src.frames():
        if f.t_s >= t_s - 1e-9:
            return f, lumen_labels(src.scene)
    raise AssertionError("no frame")  # pragma: no cover


@pytest.fixture(scope="module")
def peer():
    return UnetPeer(intra_op_threads=1)


@pytest.fixture(scope="module")
def cases():
    return [(name, *_frame(name, t)) for name, t in CASES]


def _pooled_dice(cases, segment) -> tuple[float, dict]:
    inter = area = 0
    per = {}
    for name, frame, truth in cases:
        pred = segment(frame)
        assert pred.shape == truth.shape and pred.dtype == np.uint8
        i = int(np.count_nonzero((pred > 0) & (truth > 0)))
        a = int(np.count_nonzero(pred > 0)) + int(np.count_nonzero(truth > 0))
        per[name] = round(2 * i / a, 3)
        inter, area = inter + i, area + a
    return 2 * inter / area, per


def test_lumen_dice_on_held_out_frames(peer, cases):
    dice, per = _pooled_dice(cases, peer.segment)
    assert dice > MIN_LUMEN_DICE, f"lumen Dice {dice:.3f} <= {MIN_LUMEN_DICE} on seed {HELD_OUT_SEED}: {per}"


def test_the_dice_bound_refuses_trivial_segmenters(cases):
    for name, segment in (("all lumen", lambda f: np.ones(f.pixels.shape[:2], np.uint8)),
                          ("all background", lambda f: np.zeros(f.pixels.shape[:2], np.uint8))):
        dice, _ = _pooled_dice(cases, segment)
        assert dice < MIN_LUMEN_DICE - 0.3, f"{name} reaches Dice {dice:.3f}: the bound would not detect it"


def test_vessels_in_mm_find_the_target_vein(peer, cases):
    name, frame, _ = cases[0]
    gsv = next(v for v in frame.meta["truth"]["vessels"] if v["id"] == "GSV")
    found = peer.vessels(frame)
    near = [v for v in found if np.hypot(*(np.asarray(v.center_mm) - gsv["center_mm"])) < 1.0]
    assert len(near) == 1, f"{name}: GSV at {gsv['center_mm']} mm not found once in {found}"
    v = near[0]
    assert v.view == "transverse" and v.kind == "vein"
    assert abs(v.diameter_mm - gsv["diameter_mm"]) < 0.5, (v.diameter_mm, gsv["diameter_mm"])


def test_refuses_bad_threads_and_missing_model(tmp_path):
    with pytest.raises(InputError, match="intra_op_threads"):
        UnetPeer(intra_op_threads=0)
    with pytest.raises(InputError, match="make train-unet"):
        UnetPeer(tmp_path / "none.onnx")
