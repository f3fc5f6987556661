"""Stage-level tests of the guidance engine: shadows, touching lumens, out-of-plane needle, thrombosed veins,
vein/artery calls. Synthetic images test the geometry exactly; simulator seeds 7-9 test against truth."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from echosclero.guidance import Engine
from echosclero.guidance.preprocess import prepare
from echosclero.guidance.shadows import acoustic_shadow
from echosclero.guidance.vessels import split_touching
from echosclero.sim import open_simulated_source

from .conftest import SYNTH_MM, match, speckle, synth_frame

MM = SYNTH_MM
_speckle, _frame = speckle, synth_frame


def test_shadow_below_attenuator_not_below_lumen():
    img = _speckle()
    img[100:106, 250:330] = 255  # a bright attenuator (needle, foam) ...
    img[106:, 255:325] *= 0.15  # ... and its shadow down to the bottom
    cv2.circle(img, (100, 200), 40, 5, -1)  # an anechoic lumen, 8 mm, tissue below it
    sh = acoustic_shadow(prepare(_frame(img)))
    rows, cols = sh.shape
    f = rows / 400
    inside = sh[int(150 * f):, int(270 * f / 1):int(310 * f)]
    assert inside.mean() > 0.9, "the column below the attenuator is a shadow"
    assert sh[int(170 * f):int(230 * f), int(70 * f):int(130 * f)].mean() < 0.05, "a lumen is not a shadow"
    assert sh[:int(95 * f)].mean() < 0.05, "nothing above the attenuator is shadowed"


def _disc_mask(shape, discs):
    m = np.zeros(shape, np.uint8)
    for (cx, cy, r) in discs:
        cv2.circle(m, (cx, cy), r, 1, -1)
    return m


def test_touching_discs_are_split_at_the_neck():
    m = _disc_mask((60, 120), [(30, 30, 18), (64, 30, 16)])  # two lumens, 3.6 and 3.2 mm at 0.1 mm/px
    parts = split_touching(m, 0.1)
    assert len(parts) == 2
    areas = sorted(int(p.sum()) for p in parts)
    assert abs(areas[0] - math.pi * 16 ** 2) / (math.pi * 16 ** 2) < 0.15
    assert abs(areas[1] - math.pi * 18 ** 2) / (math.pi * 18 ** 2) < 0.15


@pytest.mark.parametrize("shape", ["ellipse", "bean"])
def test_single_lumen_is_not_split(shape):
    m = np.zeros((80, 140), np.uint8)
    if shape == "ellipse":
        cv2.ellipse(m, (70, 40), (50, 25), 10, 0, 360, 1, -1)
    else:  # two overlapping discs with a wide waist: one compressed vein, not two vessels
        m = _disc_mask((80, 140), [(55, 40, 25), (85, 40, 25)])
    assert len(split_touching(m, 0.1)) == 1


def _run(name, seed):
    eng = Engine()
    for f in open_simulated_source(name, seed=seed).frames():
        yield f, eng.process(f)


def test_out_of_plane_needle_tip_against_truth():
    errs, seen, total = [], 0, 0
    for f, r in _run("gsv_out_of_plane", 7):
        tn = f.meta["truth"]["needle"]
        if tn is None:
            continue
        total += 1
        if r.needle is not None:
            seen += 1
            errs.append(float(np.hypot(*(np.asarray(r.needle.tip_mm) - tn["tip_mm"]))))
    # measured: found in 71 % of the frames (the cross-section is missed while it sits in the skin line or in
    # foam); the bound guards that figure against regressions
    assert total > 20 and seen >= 0.6 * total, f"needle found in {seen}/{total} frames"
    assert np.median(errs) <= 0.5, f"median tip error {np.median(errs):.2f} mm"


@pytest.mark.parametrize("seed", [7, 8])
def test_compression_is_not_read_as_foam(seed):
    """Under probe pressure the collapsing lumen leaves tissue inside its resting outline: not sclerosant.
    (Detection of the thrombosed vein itself is not yet reliable: see docs/benchmarks-guidance.md.)"""
    pressed = 0
    for f, r in _run("compression_thrombosis", seed):
        pressed += f.meta["truth"]["probe_pressure"] > 0.05
        codes = {a.code for a in r.alerts}
        assert "FOAM_IN_DEEP_VEIN" not in codes and "TIP_OUTSIDE_TARGET" not in codes, f"frame {f.index}"
        assert not r.foam, f"frame {f.index}: foam reported in {[fo.vessel_id for fo in r.foam]}"
    assert pressed > 10


def test_vein_and_artery_told_apart_on_grey_cine():
    ok = n = 0
    for f, r in _run("sfj_reflux", 9):
        if f.t_s < 1.0:
            continue
        m = match(list(r.vessels), f.meta["truth"]["vessels"])
        for v in f.meta["truth"]["vessels"]:
            if v["id"] in m:
                n += 1
                ok += m[v["id"]].kind == v["kind"]
    assert n > 100 and ok / n >= 0.95, f"kind accuracy {ok}/{n}"
