"""Reflux timing on displays made another way: the independent scatterer model of ``benchmarks/``.

The model (moving scatterers through a 3-D sample volume, a scanner's STFT, vendor-like screens written as
DICOM) shares no code with ``echosclero.sim.doppler``. These tests check the envelope that follows the flow
and not the display's blur: the outermost-pixel trace over-estimates the reflux and the peak velocities on
such displays, the edge-level trace does not.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # benchmarks/ is a top-level package of the repository, not installed
    sys.path.insert(0, str(_ROOT))

from benchmarks.doppler_model import (  # noqa: E402
    draw_model_case,
    render_screen,
    slow_time_iq,
    spectrum_display,
    write_dicom,
)

from echosclero.cli import main  # noqa: E402
from echosclero.commands.reflux import _load_spectral  # noqa: E402
from echosclero.doppler.envelope import trace_display  # noqa: E402
from echosclero.doppler.reflux import measure_reflux, reflux_from_display  # noqa: E402
from echosclero.frames import SpectralCalibration  # noqa: E402

#: Tolerances against the model's truth for one display (benchmark, 200 displays: see docs/benchmarks-reflux.md)
REFLUX_TOL_MS = 40.0
PEAK_TOL_CM_S = 4.0


def _case(seed: int, **overrides):
    case = draw_model_case(np.random.default_rng(seed), 5)
    return dataclasses.replace(case, seed=seed, **overrides)


@pytest.fixture(scope="module")
def long_window(tmp_path_factory):
    """A 32 ms window, plug-like flow ending by a fast valve closure: the display's blur is largest."""
    case = _case(
        11, reflux_ms=900.0, peak_antegrade_cm_s=40.0, peak_reflux_cm_s=30.0, reflux_shape="plateau",
        end_fraction=0.5, closure_ms=20.0, window="hann", window_ms=32.0, average_spectra=1, snr_db=24.0,
        gain_db=4.0, dynamic_range_db=45.0, gamma=1.0, reject=0.0, s_per_col=0.008, n_rows=200,
        baseline_fraction=0.5, antegrade_above=True, tint=None, profile_n=8.0, f0_hz=5.0e6, angle_deg=55.0,
        prf_hz=5000.0, wall_cutoff_hz=60.0, sweep_s=3.6, augmentation_start_s=0.5, augmentation_s=0.8,
    )
    screen = render_screen(case)
    path = write_dicom(tmp_path_factory.mktemp("model") / "screen.dcm", screen, grey=True)
    return case, screen, path


def test_reflux_and_peaks_follow_the_flow_not_the_blur(long_window):
    case, screen, path = long_window
    pixels, cal = _load_spectral(str(path), None)
    m = reflux_from_display(pixels, cal)
    truth = screen.truth
    assert abs(m.reflux_ms - truth["reflux_ms"]) <= REFLUX_TOL_MS, (m.reflux_ms, truth["reflux_ms"])
    assert abs(m.peak_antegrade_velocity_cm_s - truth["peak_antegrade_velocity_cm_s"]) <= PEAK_TOL_CM_S
    assert abs(m.peak_reflux_velocity_cm_s - truth["peak_reflux_velocity_cm_s"]) <= PEAK_TOL_CM_S
    # the outermost-pixel trace (what the tracer did before) carries the blur: longer reflux, higher peaks
    outer = measure_reflux(trace_display(pixels, cal, edge_level=None), time_edge_level=None)
    assert outer.reflux_ms - truth["reflux_ms"] > m.reflux_ms - truth["reflux_ms"] + 5.0
    assert outer.peak_antegrade_velocity_cm_s > m.peak_antegrade_velocity_cm_s + 2.0


def test_cli_on_a_model_screen_writes_the_definition(long_window, tmp_path, capsys):
    _, screen, path = long_window
    out = tmp_path / "r.json"
    assert main(["reflux", str(path), "--json", str(out), "--segment", "GSVa"]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "echosclero.reflux/1"
    for key in ("reflux_ms", "peak_reflux_velocity_cm_s", "peak_antegrade_velocity_cm_s", "trace", "mean_trace",
                "reflux_start_s", "reflux_end_s", "velocity_scale_cm_s", "warnings", "classification"):
        assert key in doc
    assert abs(doc["reflux_ms"] - screen.truth["reflux_ms"]) <= REFLUX_TOL_MS
    env = doc["envelope"]
    assert env["edge_level"] == pytest.approx(0.8) and env["time_edge_level"] == pytest.approx(0.2)
    assert "Mo LYL" in env["source"] and "Newhouse" in env["source"]
    assert doc["classification"]["pathological"] is True  # 900 ms > 500 ms
    assert capsys.readouterr().err == ""


def test_gain_and_dynamic_range_do_not_move_the_envelope():
    """The same echoes shown with three gain / dynamic-range settings give the same reflux and peaks."""
    case = _case(5, reflux_ms=700.0, peak_antegrade_cm_s=35.0, peak_reflux_cm_s=25.0, reflux_shape="decay",
                 end_fraction=0.4, closure_ms=30.0, window="hamming", window_ms=16.0, average_spectra=1,
                 snr_db=20.0, gamma=1.0, reject=0.0, s_per_col=0.008, n_rows=180, baseline_fraction=0.5,
                 antegrade_above=True, f0_hz=5.0e6, angle_deg=55.0, prf_hz=4500.0, wall_cutoff_hz=60.0,
                 sweep_s=3.2, augmentation_start_s=0.5, augmentation_s=0.7)
    iq, t_iq = slow_time_iq(case, np.random.default_rng(case.seed))
    results = []
    for gain_db, dr_db in ((-4.0, 30.0), (4.0, 45.0), (10.0, 60.0)):
        level, baseline_row, dv = spectrum_display(dataclasses.replace(case, gain_db=gain_db, dynamic_range_db=dr_db),
                                                   iq, t_iq)
        pixels = np.round(level * 255).astype(np.uint8)
        cal = SpectralCalibration(s_per_px=case.s_per_col, cm_s_per_px=-dv, baseline_row=baseline_row)
        m = reflux_from_display(pixels, cal)
        results.append((m.reflux_ms, m.peak_antegrade_velocity_cm_s, m.peak_reflux_velocity_cm_s))
    r = np.array(results)
    assert np.ptp(r[:, 0]) <= 30.0, r
    assert np.ptp(r[:, 1]) <= 3.0 and np.ptp(r[:, 2]) <= 3.0, r
    assert np.all(np.abs(r[:, 0] - 700.0) <= REFLUX_TOL_MS), r
