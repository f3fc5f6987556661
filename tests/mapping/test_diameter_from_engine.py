"""A mapping exam fills diameters from images: the guidance engine's transverse contours -> diameters."""

from __future__ import annotations

import numpy as np

from echosclero.guidance import Engine
from echosclero.mapping.diameter import transverse_diameters
from echosclero.sim import open_simulated_source


def test_engine_contours_give_the_true_gsv_diameter():
    src = open_simulated_source("gsv_injection", seed=7321, duration_s=0.5)
    engine = Engine()
    errors = []
    for frame in src.frames():
        result = engine.process(frame.with_(meta={}))
        gsv = next(v for v in frame.meta["truth"]["vessels"] if v["id"] == "GSV")
        near = [v for v in result.vessels if v.contour_mm is not None
                and np.hypot(v.center_mm[0] - gsv["center_mm"][0], v.center_mm[1] - gsv["center_mm"][1]) < 1.5]
        assert near, f"frame {frame.index}: no contour at the GSV"
        d = transverse_diameters(near[0].contour_mm)
        errors.append(d.equivalent_diameter_mm - gsv["diameter_mm"])
        assert d.minor_axis_mm <= d.equivalent_diameter_mm <= d.major_axis_mm
    # 0.5 mm: the engine's contour plus the equivalent-circle diameter; the issue-3 target is 0.3 mm median
    assert np.median(np.abs(errors)) < 0.5, errors
