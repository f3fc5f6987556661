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


def test_thin_walled_thrombosed_vein_is_found():
    """Compression scene, seed 3: the thrombosed femoral vein (grey inside, a thin wall only ~1.1x the tissue
    level once blurred at the working pitch) is found by its wall ring."""
    from echosclero.guidance.vessels import detect_walled_lumens

    f = next(iter(open_simulated_source("compression_thrombosis", seed=3).frames()))
    fv = next(v for v in f.meta["truth"]["vessels"] if v["thrombosed"])
    lumens = detect_walled_lumens(prepare(f))
    assert any(np.hypot(*(np.asarray(lu.center_mm) - fv["center_mm"])) < 1.5
               and abs(lu.diameter_mm - fv["diameter_mm"]) < 1.5 and lu.echogenic for lu in lumens), \
        [(lu.center_mm, lu.diameter_mm) for lu in lumens]


def test_touching_lumens_of_different_flow_are_split_across_a_wide_neck():
    from echosclero.guidance.vessels import split_touching

    m = np.zeros((60, 90), np.uint8)
    cv2.circle(m, (30, 30), 22, 1, -1)
    cv2.circle(m, (60, 30), 20, 1, -1)  # overlapping: a wide neck, shape alone keeps one blob
    assert len(split_touching(m, 0.1)) == 1
    colour = np.zeros(m.shape, np.float32)
    colour[:, :46] = 1.0  # steady flow in the left vein, none in the right lumen (an artery between beats)
    parts = split_touching(m, 0.1, colour=colour)
    assert len(parts) == 2
    assert min(np.count_nonzero(p) for p in parts) > 0.3 * np.count_nonzero(m)
    # same flow on both sides: no reason to cut
    assert len(split_touching(m, 0.1, colour=np.ones(m.shape, np.float32))) == 1


def test_slice_of_needle_shadow_under_a_long_axis_vein_is_refused():
    """Calf long-axis scene, seed 3: the needle's thin shadow column crosses the layers under the vein; the dark
    slice it cuts between the vein's deep wall and a fascia (shadow below it down to the bottom, tissue on both
    sides) is not a lumen, although the dark column below it reads as lumen-dark."""
    from echosclero.guidance.shadows import acoustic_shadow

    for f in open_simulated_source("ssv_longitudinal", seed=3).frames():
        if f.t_s > 0.76:
            break
        if f.t_s < 0.59:
            continue
        prep = prepare(f)
        lumens = detect_lumens(prep, shadow=acoustic_shadow(prep))
        assert not any(abs(lu.center_mm[0] - 32.5) < 2.0 and abs(lu.center_mm[1] - 10.7) < 1.5 for lu in lumens), \
            (f.t_s, [(lu.center_mm, lu.diameter_mm) for lu in lumens])
        assert any(lu.longitudinal for lu in lumens)


def test_weak_long_axis_lumen_kept_only_between_two_walls():
    """A deep vessel in long axis whose blood is lifted by noise (lumen at half the tissue level) is a vessel
    when two bright walls run along it; the same dark band without walls (a gap between tissue planes) is not."""
    band = (slice(250, 320), slice(0, 400))  # 7 mm band across the image at 25-32 mm depth

    def lumens(walls: bool):
        img = _speckle(seed=3)
        img[band] = _speckle(seed=4)[band] * 0.5
        if walls:
            img[244:250, :] = 250
            img[320:326, :] = 250
        return [lu for lu in detect_lumens(prepare(_frame(img))) if lu.longitudinal and 24 < lu.center_mm[1] < 33]

    found = lumens(walls=True)
    assert len(found) == 1 and found[0].contrast > 0.5, [(lu.center_mm, lu.contrast) for lu in found]
    assert abs(found[0].diameter_mm - 7.0) < 1.0, found[0].diameter_mm
    assert lumens(walls=False) == []
