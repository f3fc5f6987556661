"""Foam fill-fraction estimate against simulator truth (seeds 9000+, never used while tuning) and its parts.

Truth: ``frame.meta["truth"]["foam"]`` gives each foamed vessel's fill fraction (transverse: share of the lumen
area; longitudinal: share of the vessel length). Tolerances are stated next to each check.
"""

from __future__ import annotations

import numpy as np
import pytest

from echosclero.guidance import Engine
from echosclero.guidance.foam import fill_fraction, needle_shade
from echosclero.guidance.needle import NeedleMeasurement
from echosclero.guidance.preprocess import prepare
from echosclero.sim import open_simulated_source

from .conftest import match

#: Mean absolute fill-fraction error over the foam frames of one transverse injection cine.
FILL_TOL = 0.1


def _foam_run(name, seed):
    eng = Engine()
    errs, early = [], []
    for f in open_simulated_source(name, seed=seed).frames():
        r = eng.process(f)
        tr = f.meta["truth"]
        if not tr["foam"] and not tr["injecting"]:
            early += [(f.index, fo.vessel_id, fo.fill_fraction) for fo in r.foam]
        m = match(r.vessels, tr["vessels"])
        for fo in tr["foam"]:
            g = m.get(fo["vessel_id"])
            mine = [x.fill_fraction for x in r.foam if g is not None and x.vessel_id == g.id]
            errs.append(abs((mine[0] if mine else 0.0) - fo["fill_fraction"]))
    return errs, early


@pytest.mark.parametrize(("name", "seed"), [("gsv_injection", 9011), ("gsv_out_of_plane", 9012)])
def test_fill_fraction_tracks_truth(name, seed):
    errs, early = _foam_run(name, seed)
    assert len(errs) > 20, f"{name} seed {seed}: only {len(errs)} foam frames"
    mean = float(np.mean(errs))
    assert mean <= FILL_TOL, f"{name} seed {seed}: mean |fill error| {mean:.3f} > {FILL_TOL}"
    assert not early, f"{name} seed {seed}: foam reported before any injection: {early[:5]}"


def test_fill_fraction_transverse_layer():
    # a round lumen, foam over its upper third, the lower part of the foam darkened (its own shadow)
    yy, xx = np.mgrid[:31, :31]
    region = (yy - 15) ** 2 + (xx - 15) ** 2 <= 15 ** 2
    content = region & (yy < 10)
    content[7:10, :] = False  # shadowed foam at the layer's bottom reads dark
    content[3:7, 20:24] = False  # speckle holes
    truth = float(region[:10].sum()) / region.sum()
    got = fill_fraction(region, content, region, longitudinal=False)
    assert abs(got - float(region[:7].sum()) / region.sum()) < 0.02
    assert got <= truth
    # nothing echogenic, or echoes scattered through the lumen: no layer
    assert fill_fraction(region, np.zeros_like(region), region, longitudinal=False) == 0.0
    scattered = region & ((yy * 7 + xx * 3) % 11 == 0)
    assert fill_fraction(region, scattered, region, longitudinal=False) < 0.1


def test_fill_fraction_longitudinal_segment_bridges_hidden_columns():
    region = np.zeros((10, 100), bool)
    region[2:8] = True
    content = np.zeros_like(region)
    content[:, 30:70] = True
    measurable = region.copy()
    measurable[:, 45:55] = False  # under the needle: cannot be read, flanked by foam on both sides
    got = fill_fraction(region, content, measurable, longitudinal=True)
    assert abs(got - 0.40) < 1e-6
    measurable[:, 65:80] = False  # hidden across the foam front: the front is not extended into it
    got = fill_fraction(region, content, measurable, longitudinal=True)
    assert abs(got - 0.35) < 1e-6


def test_needle_shade_covers_the_scan_lines_below_the_shaft():
    f = next(iter(open_simulated_source("gsv_injection", seed=9013, duration_s=0.1).frames()))
    prep = prepare(f)
    m = NeedleMeasurement(tip_mm=(20.0, 10.0), entry_mm=(35.0, 2.0), angle_deg=28.0, confidence=1.0)
    shade = needle_shade(prep, m, None)
    r_tip, c_tip = (int(round(float(v))) for v in prep.to_px(20.0, 10.0))
    r_mid, c_mid = (int(round(float(v))) for v in prep.to_px(27.5, 6.0))
    assert shade[r_tip + 10, c_tip + 1] and shade[r_mid + 20, c_mid]  # below the shaft
    assert not shade[r_mid - 5, c_mid]  # above it
    assert not shade[r_tip + 10, c_tip - 10]  # beyond the tip


@pytest.mark.parametrize("seed", [1, 22])
def test_no_foam_spreads_into_the_deep_artery(seed):
    """Foam in the GSV does not 'spread' into the common femoral artery it does not touch (noise in a deep
    lumen is not foam). Seed 1 is a tuning seed on which it used to (75 of 100 frames); seed 22 is unseen."""
    eng = Engine()
    frames = checked = 0
    for f in open_simulated_source("foam_deep_junction", seed=seed).frames():
        r = eng.process(f)
        g = match(list(r.vessels), f.meta["truth"]["vessels"]).get("CFA")
        if g is None:
            continue
        checked += 1
        frames += any(fo.vessel_id == g.id for fo in r.foam)
    assert checked > 50 and frames == 0, f"foam reported in the artery in {frames} of {checked} frames"


@pytest.mark.parametrize("seed", [21, 23])
def test_resting_outline_of_the_deep_vein_holds_while_foam_is_in_view(seed):
    """Groin long-axis view: the foam's shadow darkens the tissue between the GSV and the common femoral vein, which
    the detection then joins to the vein. The vein's resting outline (the one its foam fill is read in) must
    not grow with it while foam is in view (without the freeze it grew 1.4x and 1.7x on these seeds)."""
    eng = Engine()
    before = grown = None
    for f in open_simulated_source("foam_deep_junction", seed=seed).frames():
        r = eng.process(f)
        m = match(list(r.vessels), f.meta["truth"]["vessels"])
        if "CFV" not in m:
            continue
        tr = next(t for t in eng.vessels.tracks if t.id == m["CFV"].id)
        if tr.ref_mask is None:
            continue
        if not r.foam:
            before = int(tr.ref_mask.sum())
        elif before:
            grown = max(grown or 0.0, tr.ref_mask.sum() / before)
    assert grown is not None, "foam never seen with the femoral vein tracked"
    assert grown <= 1.1, grown
