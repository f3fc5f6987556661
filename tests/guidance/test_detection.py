"""Lumen detection: long-axis junctions, needle-cut long-axis lumens, slices of acoustic shadows. Synthetic
images test the geometry exactly; a simulator seed tests the junction against truth."""

from __future__ import annotations

import cv2
import numpy as np

from echosclero.guidance import Engine
from echosclero.guidance.preprocess import prepare
from echosclero.guidance.vessels import detect_lumens
from echosclero.sim import open_simulated_source

from .conftest import SYNTH_MM, match, speckle, synth_frame

MM = SYNTH_MM
_speckle, _frame = speckle, synth_frame


def test_junction_of_two_long_axis_veins_gives_two_lumens():
    img = _speckle()
    # deep vein: a 10 mm band across the image; superficial vein: a 5 mm band from the left edge diving into it
    cv2.rectangle(img, (0, 220), (399, 320), 5, -1)
    pts = np.array([[x, 80 + (0 if x < 150 else min(140, int(1.4 * (x - 150))))] for x in range(0, 260, 5)])
    cv2.polylines(img, [pts.reshape(-1, 1, 2).astype(np.int32)], False, 5, thickness=50)
    lumens = [lu for lu in detect_lumens(prepare(_frame(img))) if lu.longitudinal]
    assert len(lumens) == 2, [(lu.center_mm, lu.diameter_mm) for lu in lumens]
    deep = max(lumens, key=lambda lu: lu.center_mm[1])
    sup = min(lumens, key=lambda lu: lu.center_mm[1])
    assert abs(deep.diameter_mm - 10.0) < 1.5 and abs(sup.diameter_mm - 5.0) < 1.0
    assert abs(deep.center_mm[1] - 27.0) < 1.5, deep.center_mm
    # the superficial vein's flat part (x 0-15 mm, depth 8 mm) lies inside its outline
    poly = sup.contour_mm.astype(np.float32)
    assert cv2.pointPolygonTest(poly, (7.0, 8.0), False) >= 0


def test_slice_of_shadow_between_bright_layers_is_not_a_lumen():
    img = _speckle(seed=1)
    img[150:156, :] = 250  # two bright fascial layers
    img[175:181, :] = 250
    img[100:, 200:230] *= 0.45  # a shadow column (3 mm wide) from depth 10 mm to the bottom
    cv2.circle(img, (90, 300), 25, 5, -1)  # and a real lumen, 5 mm, with tissue below it
    lumens = detect_lumens(prepare(_frame(img)))
    # the slices above the deeper layer (tissue in shadow below them) are refused; the column below the deeper
    # layer reaches the bottom of the image and is the acoustic-shadow detector's job (not called here)
    assert not any(18.0 < lu.center_mm[0] < 25.0 and lu.center_mm[1] < 15.5 for lu in lumens), \
        [lu.center_mm for lu in lumens]
    assert any(abs(lu.center_mm[0] - 9.0) < 1.0 and abs(lu.center_mm[1] - 30.0) < 1.0 for lu in lumens)


def test_junction_scene_finds_both_veins():
    """Groin long-axis view (seed 10): before the foam reaches the junction, the great saphenous vein and the
    common femoral vein are two vessels, each matched to its own truth in most frames. (False positives are
    not bounded here: this seed still has slices of the needle's shadow and a missed deep artery.)"""
    eng = Engine()
    found = {"GSV": 0, "CFV": 0}
    n = 0
    for f in open_simulated_source("foam_deep_junction", seed=10).frames():
        r = eng.process(f)
        if f.t_s >= 2.5:
            break
        n += 1
        m = match(list(r.vessels), f.meta["truth"]["vessels"])
        for k in found:
            found[k] += k in m
    assert n > 20
    # (the matcher gives each reported vessel to one truth only: one blob for both veins would fail this)
    assert found["GSV"] >= 0.9 * n and found["CFV"] >= 0.9 * n, f"{found} of {n} frames"
