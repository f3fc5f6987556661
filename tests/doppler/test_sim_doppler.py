"""The spectral Doppler simulator: physics checks and ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from echosclero.errors import InputError
from echosclero.sim.doppler import (
    SOUND_SPEED_M_S,
    doppler_spectrogram,
    nyquist_velocity_cm_s,
    reflux_velocity_waveform,
    simulate_doppler_iq,
    simulate_spectral_display,
)


def test_nyquist_velocity_is_c_prf_over_4_f0_cos():
    # c PRF / (4 f0 cos theta) = 1540 * 4000 / (4 * 5e6 * 0.5) m/s = 0.616 m/s
    assert nyquist_velocity_cm_s(prf_hz=4000, f0_hz=5e6, angle_deg=60) == pytest.approx(61.6)
    with pytest.raises(InputError):
        nyquist_velocity_cm_s(prf_hz=4000, f0_hz=5e6, angle_deg=90)


@pytest.mark.parametrize("reflux_ms", [0.0, 120.0, 730.0, 3500.0])
def test_waveform_retrograde_lasts_exactly_reflux_ms(reflux_ms):
    t = np.arange(0, 7.0, 1e-4)
    v, tl = reflux_velocity_waveform(t, reflux_ms=reflux_ms, peak_antegrade_cm_s=40, peak_reflux_cm_s=25)
    retro = v < 0
    assert np.count_nonzero(retro) * 1e-4 * 1000 == pytest.approx(reflux_ms, abs=0.5)
    assert v.max() == pytest.approx(40, rel=1e-3)
    if reflux_ms:
        assert -v.min() == pytest.approx(25, rel=1e-3)
        assert t[retro][0] == pytest.approx(tl.reflux_start_s, abs=2e-4)
        assert tl.reflux_start_s > tl.release_s > tl.augmentation_start_s


def test_tone_appears_at_its_doppler_frequency():
    prf, f0, angle = 5000.0, 5e6, 60.0
    v = np.full(4000, 30.0)  # cm/s
    iq = simulate_doppler_iq(v, prf_hz=prf, f0_hz=f0, angle_deg=angle, rng=np.random.default_rng(0),
                             velocity_spread=0.0, snr_db=40, clutter_db=-40, wall_filter_cm_s=0)
    power, freqs, _ = doppler_spectrogram(iq, prf_hz=prf, hop_samples=100, window_samples=256, n_fft=256)
    f_peak = freqs[np.argmax(power.mean(axis=1))]
    f_expected = 2 * f0 * 0.30 * np.cos(np.deg2rad(angle)) / SOUND_SPEED_M_S  # Doppler equation
    assert f_peak == pytest.approx(f_expected, abs=prf / 256)


def test_display_is_reproducible_and_calibrated():
    kw = dict(reflux_ms=800, peak_antegrade_cm_s=30, peak_reflux_cm_s=20, prf_hz=4000, f0_hz=5e6,
              angle_deg=60, n_rows=200, baseline_fraction=0.6)
    a = simulate_spectral_display(rng=np.random.default_rng(3), **kw)
    b = simulate_spectral_display(rng=np.random.default_rng(3), **kw)
    c = simulate_spectral_display(rng=np.random.default_rng(4), **kw)
    assert np.array_equal(a.pixels, b.pixels) and not np.array_equal(a.pixels, c.pixels)
    assert a.pixels.dtype == np.uint8 and a.pixels.shape[0] == 200
    # the display spans 2 x Nyquist top to bottom
    assert abs(a.calibration.cm_s_per_px) * 200 == pytest.approx(2 * 61.6)
    assert a.calibration.baseline_row == pytest.approx(120)
    pos = simulate_spectral_display(rng=np.random.default_rng(3), vendor_delta_y_sign=1, **kw)
    assert pos.calibration.cm_s_per_px == -a.calibration.cm_s_per_px
    assert np.array_equal(pos.pixels, a.pixels)
    assert a.truth.reflux_ms == 800 and a.truth.t_s.shape == (a.pixels.shape[1],)


def test_tinted_display_is_rgb():
    d = simulate_spectral_display(reflux_ms=300, peak_antegrade_cm_s=30, peak_reflux_cm_s=20,
                                  rng=np.random.default_rng(0), tint_rgb=(1.0, 0.8, 0.5))
    assert d.pixels.shape[2] == 3 and d.pixels[..., 0].max() >= d.pixels[..., 2].max()


def test_bad_parameters_are_refused():
    with pytest.raises(InputError, match="reflux_ms"):
        simulate_spectral_display(reflux_ms=-5, peak_antegrade_cm_s=30, peak_reflux_cm_s=20,
                                  rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="baseline_fraction"):
        simulate_spectral_display(reflux_ms=5, peak_antegrade_cm_s=30, peak_reflux_cm_s=20,
                                  rng=np.random.default_rng(0), baseline_fraction=1.2)
    with pytest.raises(InputError, match="velocity_spread"):
        simulate_doppler_iq(np.zeros(100), prf_hz=4000, f0_hz=5e6, angle_deg=60, rng=np.random.default_rng(0),
                            velocity_spread=2)


def test_truth_peak_is_the_fastest_scatterers_speed():
    """The truth peak velocity is the fastest scatterer group's speed, not the waveform's nominal maximum."""
    spread = 0.8
    common = dict(reflux_ms=900.0, peak_antegrade_cm_s=50.0, peak_reflux_cm_s=30.0, velocity_spread=spread)
    d = simulate_spectral_display(rng=np.random.default_rng(4242), **common)
    # the groups move at v (1 - spread u), u ~ U[0, 1]: the fastest one of 48 lies within (1 - spread, 1) of v
    fraction = d.truth.peak_antegrade_cm_s / 50.0
    assert 1.0 - spread < fraction < 1.0
    assert d.truth.peak_reflux_cm_s / 30.0 == pytest.approx(fraction)
    # the same draw with plug flow (spread 0): every group at the maximum
    plug = simulate_spectral_display(rng=np.random.default_rng(4242), **{**common, "velocity_spread": 0.0})
    assert plug.truth.peak_antegrade_cm_s == pytest.approx(50.0)
    assert simulate_doppler_iq(np.zeros(64), prf_hz=4000, f0_hz=5e6, angle_deg=60,
                               rng=np.random.default_rng(0)).shape == (64,)
