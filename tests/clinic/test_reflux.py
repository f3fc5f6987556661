"""Segment-specific reflux criteria with their sources."""

from __future__ import annotations

import pytest

from echosclero.clinic.reflux import PERFORATOR_RESEARCH_CUTOFF_MS, classify_reflux, reflux_source
from echosclero.errors import InputError


@pytest.mark.parametrize(
    ("segment", "reflux_ms", "pathological"),
    [
        ("GSVa", 500.0, False),  # > 500 ms, strictly
        ("GSVa", 501.0, True),
        ("SSV", 520.0, True),
        ("AASV", 300.0, False),
        ("PTV", 600.0, True),  # tibial: > 500 ms
        ("DFV", 520.0, True),  # profunda: > 500 ms
        ("CFV", 900.0, False),  # common femoral: > 1000 ms
        ("FV", 1000.0, False),
        ("POPV", 1001.0, True),
    ],
)
def test_axial_cutoffs(segment, reflux_ms, pathological):
    c = classify_reflux(segment, reflux_ms)
    assert c.pathological is pathological
    assert c.verdict == ("reflux" if pathological else "no reflux")
    assert "SVS/AVF" in c.source


def test_perforators_need_duration_and_diameter():
    assert classify_reflux("CPV", 500.0, diameter_mm=3.5).pathological is True  # >= 500 ms and >= 3.5 mm
    thin = classify_reflux("CPV", 800.0, diameter_mm=3.0)
    assert thin.pathological is False and thin.verdict == "reflux, not a pathologic perforator"
    unknown = classify_reflux("TPV", 800.0)
    assert unknown.pathological is None and unknown.verdict == "indeterminate"
    assert classify_reflux("CPV", 499.0, diameter_mm=5.0).pathological is False
    research = classify_reflux("CPV", 400.0, criterion="research")
    assert research.pathological is True and research.cutoff_ms == PERFORATOR_RESEARCH_CUTOFF_MS
    assert "Labropoulos" in research.source


def test_sources_and_bad_input():
    assert "1000 ms" in reflux_source("CFV") and "500 ms" in reflux_source("GSV")
    with pytest.raises(InputError, match="unknown vein segment"):
        classify_reflux("GSX", 600)
    with pytest.raises(InputError, match="reflux_ms"):
        classify_reflux("GSV", -1)
    with pytest.raises(InputError, match="diameter_mm"):
        classify_reflux("CPV", 600, diameter_mm=0)
    assert classify_reflux("gsva", 700).to_json()["segment"] == "GSVa"
