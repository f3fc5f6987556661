"""Envelope tracing on simulated displays: accuracy against truth, invariances, robustness."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from echosclero.doppler.envelope import display_intensity, trace_display, trace_spectrum
from echosclero.errors import InputError
from echosclero.sim.doppler import simulate_spectral_display


@pytest.fixture(scope="module")
def display():
    return simulate_spectral_display(reflux_ms=1000, peak_antegrade_cm_s=40, peak_reflux_cm_s=30,
                                     rng=np.random.default_rng(11), snr_db=12)


def test_max_envelope_follows_truth(display):
    tr = trace_display(display.pixels, display.calibration)
    truth = display.truth.envelope_cm_s
    strong = np.abs(truth) > 8
    err = tr.max_velocity_cm_s[strong] - truth[strong]
    # tolerance: 3 cm/s median (spectral broadening and the display's 0.6 cm/s rows), sign always right
    assert np.median(np.abs(err)) < 3.0
    assert np.all(np.sign(tr.max_velocity_cm_s[strong]) == np.sign(truth[strong]))
    # the mean lies between 0 and the maximum, and well below it for a 50 % velocity spread
    flow = tr.signal_present
    assert np.all(np.abs(tr.mean_velocity_cm_s[flow]) <= np.abs(tr.max_velocity_cm_s[flow]) + 1e-9)
    assert np.median(tr.antegrade_mean_cm_s[strong & (truth > 0)] / truth[strong & (truth > 0)]) < 0.9


def test_quiet_columns_show_no_flow(display):
    tr = trace_display(display.pixels, display.calibration)
    quiet = np.abs(display.truth.envelope_cm_s) == 0
    assert np.mean(tr.signal_present[quiet]) < 0.02


def test_vendor_sign_does_not_matter(display):
    flipped = dataclasses.replace(display.calibration, cm_s_per_px=-display.calibration.cm_s_per_px)
    a = trace_display(display.pixels, display.calibration)
    b = trace_display(display.pixels, flipped)
    assert np.array_equal(a.max_velocity_cm_s, b.max_velocity_cm_s)


def test_inverted_display_with_flag_gives_same_trace(display):
    rows = display.pixels.shape[0]
    inverted = display.pixels[::-1]
    cal = dataclasses.replace(display.calibration, baseline_row=rows - 1 - display.calibration.baseline_row)
    a = trace_display(display.pixels, display.calibration)
    b = trace_display(inverted, cal, reflux_above_baseline=True)
    assert np.allclose(a.max_velocity_cm_s, b.max_velocity_cm_s, atol=1.5)


def test_colour_display_and_coloured_overlay(display):
    tint = np.array([1.0, 0.85, 0.6])
    rgb = np.round(display.pixels[..., None] * tint).astype(np.uint8)
    rgb[:, 150:152] = (0, 255, 0)  # a scanner's green cursor line across the whole height
    a = trace_display(display.pixels, display.calibration)
    b = trace_display(rgb, display.calibration)
    ok = np.ones(a.t_s.size, bool)
    ok[146:156] = False
    assert np.median(np.abs(a.max_velocity_cm_s[ok] - b.max_velocity_cm_s[ok])) < 1.0
    assert np.isnan(display_intensity(rgb)[:, 150]).all()


def test_gain_changes_do_not_change_the_envelope_much():
    peaks = []
    for gain in (-3.0, 5.0, 12.0):
        d = simulate_spectral_display(reflux_ms=800, peak_antegrade_cm_s=40, peak_reflux_cm_s=30,
                                      rng=np.random.default_rng(2), gain_db=gain)
        peaks.append(trace_display(d.pixels, d.calibration).antegrade_max_cm_s.max())
    assert max(peaks) - min(peaks) < 0.15 * 40


def test_pure_noise_has_no_flow():
    rng = np.random.default_rng(0)
    noise = (rng.exponential(size=(200, 400)) * 40).clip(0, 255).astype(np.uint8)
    d = simulate_spectral_display(reflux_ms=0, peak_antegrade_cm_s=30, peak_reflux_cm_s=0,
                                  rng=np.random.default_rng(0))
    tr = trace_display(noise, d.calibration)
    assert np.mean(tr.signal_present) < 0.02


def test_bad_shapes_are_refused(display):
    with pytest.raises(InputError):
        trace_spectrum(np.zeros((5, 5)), np.zeros(5), np.zeros(5))
    with pytest.raises(InputError, match="must match"):
        trace_spectrum(np.zeros((40, 40)), np.zeros(39), np.zeros(40))
    with pytest.raises(InputError):
        display_intensity(np.zeros((10, 10, 2), np.uint8))
    bad = dataclasses.replace(display.calibration, baseline_row=900.0)
    with pytest.raises(InputError, match="baseline"):
        trace_display(display.pixels, bad)
