"""Vein map data model, leg diagram and diameter helpers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from echosclero.clinic.ceap import ClinicalSigns, ceap_from_findings
from echosclero.errors import InputError
from echosclero.mapping.diagram import STATUS_COLOURS, leg_diagram_svg, write_leg_diagram
from echosclero.mapping.diameter import transverse_diameters
from echosclero.mapping.model import Leg, SegmentFinding, Status, VeinMap


@pytest.fixture
def vein_map() -> VeinMap:
    vm = VeinMap()
    vm.record("SFJ", "L", reflux_ms=2100)
    vm.record("GSVa", "left", diameter_mm=7.2, reflux_ms=2400)
    vm.record("GSVb", "left", diameter_mm=4.1, reflux_ms=300)
    vm.record("CPV", "left", diameter_mm=4.0, reflux_ms=900, label="Cockett II")
    vm.record("CPV", "left", diameter_mm=2.5, reflux_ms=900, label="Cockett III")
    vm.record("SSV", "right", diameter_mm=3.0, reflux_ms=100)
    vm.record("POPV", "right", thrombosed=True)
    vm.record("GSVa", "right", occluded=True, previously_treated=True)
    vm.record("FV", "left", reflux_ms=1200)
    return vm


def test_status_follows_published_cutoffs(vein_map):
    by = {(f.leg, f.segment, f.label): f for f in vein_map.findings}
    assert by[(Leg.LEFT, "GSVa", "")].status is Status.INCOMPETENT
    assert by[(Leg.LEFT, "GSVb", "")].status is Status.COMPETENT
    assert by[(Leg.LEFT, "CPV", "Cockett II")].status is Status.INCOMPETENT  # >= 500 ms and >= 3.5 mm
    assert by[(Leg.LEFT, "CPV", "Cockett III")].status is Status.COMPETENT  # < 3.5 mm
    assert by[(Leg.LEFT, "FV", "")].status is Status.INCOMPETENT  # > 1000 ms
    assert by[(Leg.RIGHT, "POPV", "")].status is Status.THROMBOSED
    assert by[(Leg.RIGHT, "GSVa", "")].status is Status.OCCLUDED
    assert [f.segment for f in vein_map.incompetent_segments("left")] == ["SFJ", "GSVa", "CPV", "FV"]


def test_json_round_trip_and_ceap(vein_map):
    doc = json.loads(json.dumps(vein_map.to_json()))
    back = VeinMap.from_json(doc)
    assert [f.to_json() for f in back.findings] == [f.to_json() for f in vein_map.findings]
    reflux, obstruction = vein_map.ceap_segments("left")
    assert reflux == {"GSVa", "CPV", "FV"} and obstruction == frozenset()
    ceap = ceap_from_findings(ClinicalSigns(varicose_veins=True, symptomatic=True), etiology=["Ep"],
                              reflux_segments=reflux)
    assert ceap.advanced() == "C2S Ep As,d,p Pr(r:GSVa,FV,CPV)"
    assert vein_map.ceap_segments("right")[1] == {"POPV"}


def test_impossible_findings_are_refused(vein_map):
    with pytest.raises(InputError, match="occluded"):
        SegmentFinding("GSVa", "left", occluded=True, reflux_ms=800)
    with pytest.raises(InputError, match="marked competent"):
        SegmentFinding("GSVa", "left", reflux_ms=800, competent=True)
    with pytest.raises(InputError, match="diameter_mm"):
        SegmentFinding("GSVa", "left", diameter_mm=0)
    with pytest.raises(InputError, match="leg"):
        SegmentFinding("GSVa", "middle")
    with pytest.raises(InputError, match="unknown vein segment"):
        SegmentFinding("GSX", "left")
    with pytest.raises(InputError, match="already mapped"):
        vein_map.record("GSVa", "left", diameter_mm=5)
    assert vein_map.update("GSVb", "left", reflux_ms=800).status is Status.INCOMPETENT
    with pytest.raises(InputError, match="schema"):
        VeinMap.from_json({"findings": []})


def test_diagram_svg_and_png(vein_map, tmp_path):
    svg = leg_diagram_svg(vein_map)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg")
    for text in ("anterior - right", "posterior - left", "GSVa 7.2 mm 2400 ms", "Cockett II"):
        assert text in svg
    assert STATUS_COLOURS[Status.INCOMPETENT] in svg and STATUS_COLOURS[Status.THROMBOSED] in svg
    png = write_leg_diagram(tmp_path / "map.png", vein_map)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_leg_diagram(tmp_path / "map.svg", vein_map).read_text() == svg
    with pytest.raises(InputError, match=".svg or .png"):
        write_leg_diagram(tmp_path / "map.pdf", vein_map)


def _ellipse(a_mm, b_mm, angle_deg, n=360, centre=(12.0, 18.0)):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, z = a_mm * np.cos(t), b_mm * np.sin(t)
    th = np.deg2rad(angle_deg)
    return np.c_[centre[0] + x * np.cos(th) - z * np.sin(th), centre[1] + x * np.sin(th) + z * np.cos(th)]


@pytest.mark.parametrize(("a", "b", "angle"), [(3.0, 3.0, 0.0), (4.0, 2.5, 30.0), (5.0, 1.5, 100.0)])
def test_diameters_of_an_ellipse(a, b, angle):
    d = transverse_diameters(_ellipse(a, b, angle))
    assert d.area_mm2 == pytest.approx(np.pi * a * b, rel=1e-3)
    assert d.equivalent_diameter_mm == pytest.approx(2 * np.sqrt(a * b), rel=1e-3)
    assert d.major_axis_mm == pytest.approx(2 * a, rel=1e-3)
    assert d.minor_axis_mm == pytest.approx(2 * b, rel=1e-3)
    assert d.max_feret_mm == pytest.approx(2 * a, rel=1e-3)
    assert d.min_feret_mm == pytest.approx(2 * b, rel=1e-3)
    assert d.centre_mm == pytest.approx((12.0, 18.0))
    if a != b:
        assert d.orientation_deg == pytest.approx(angle % 180, abs=0.5)


def test_diameter_is_invariant_to_orientation_and_start_point():
    c = _ellipse(4.0, 2.0, 20.0)
    d1 = transverse_diameters(c)
    d2 = transverse_diameters(np.roll(c[::-1], 57, axis=0))
    assert d1.equivalent_diameter_mm == pytest.approx(d2.equivalent_diameter_mm)
    assert d1.minor_axis_mm == pytest.approx(d2.minor_axis_mm)


def test_bad_contours_are_refused():
    with pytest.raises(InputError, match=r"\(N, 2\)"):
        transverse_diameters(np.zeros((2, 2)))
    with pytest.raises(InputError, match="no area"):
        transverse_diameters(np.c_[np.arange(5.0), np.arange(5.0)])
    with pytest.raises(InputError, match="non-finite"):
        transverse_diameters(np.array([[0, 0], [1, np.nan], [0, 1.0]]))
