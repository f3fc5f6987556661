"""``echosclero reflux`` end to end on screen-capture-like DICOM files written from simulated displays."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from echosclero.cli import main
from echosclero.interop.usdicom import UltrasoundRegion, write_us_dicom
from echosclero.sim.doppler import simulate_spectral_display

#: Tolerance on reflux_ms against the simulation truth for one display (benchmark: median ~15 ms).
REFLUX_TOL_MS = 60.0


def _screen_capture(path, display, *, rgb: bool, seed: int = 0, with_spectral_region: bool = True):
    """A 600 x 800 screen: B-mode region on top, text outside the regions, the spectral region below."""
    rng = np.random.default_rng(seed)
    rows, cols = display.pixels.shape[:2]
    screen = np.zeros((600, 800, 3), np.uint8)
    screen[20:300, 100:700] = rng.integers(0, 140, size=(280, 600, 1), dtype=np.uint8)  # B-mode speckle
    screen[5:15, 10:200] = 255  # header text band
    r0, c0 = 330, 70
    pix = display.pixels if display.pixels.ndim == 3 else np.repeat(display.pixels[..., None], 3, axis=2)
    screen[r0:r0 + rows, c0:c0 + cols] = pix
    screen[r0:r0 + rows:20, c0 + cols + 4:c0 + cols + 12] = 230  # velocity scale ticks, outside the region
    screen[r0 + rows + 10:r0 + rows + 20, c0:c0 + 300] = 200  # time labels, outside the region
    regions = [UltrasoundRegion((100, 20, 699, 299), "tissue", mm_per_px_x=0.1, mm_per_px_z=0.1)]
    if with_spectral_region:
        cal = display.calibration
        regions.append(
            UltrasoundRegion((c0, r0, c0 + cols - 1, r0 + rows - 1), "PW", s_per_px=cal.s_per_px,
                             cm_s_per_px=cal.cm_s_per_px, baseline_row=cal.baseline_row)
        )
    image = screen if rgb else screen[..., 1]
    return write_us_dicom(path, image[None], regions=regions, frame_time_s=None, seed_uid="1.2.3.4")


@pytest.mark.parametrize(
    ("reflux_ms", "sign", "rgb", "baseline_fraction", "inverted"),
    [
        (900.0, -1, False, 0.62, False),
        (350.0, 1, True, 0.35, False),
        (1600.0, 1, False, 0.7, True),
        (0.0, -1, True, 0.45, False),
    ],
)
def test_reflux_matches_simulation_truth(tmp_path, capsys, reflux_ms, sign, rgb, baseline_fraction, inverted):
    disp = simulate_spectral_display(
        reflux_ms=reflux_ms, peak_antegrade_cm_s=35.0, peak_reflux_cm_s=28.0,
        rng=np.random.default_rng(int(reflux_ms) + 7), vendor_delta_y_sign=sign,
        baseline_fraction=baseline_fraction, antegrade_above=not inverted,
        tint_rgb=(1.0, 0.85, 0.6) if rgb else None,
    )
    dcm = _screen_capture(tmp_path / "spectral.dcm", disp, rgb=rgb)
    out = tmp_path / "r.json"
    plot = tmp_path / "r.png"
    argv = [str(dcm), "--json", str(out), "--plot", str(plot), "--segment", "GSVa"]
    if inverted:
        argv.append("--reflux-above-baseline")
    assert main(["reflux", *argv]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "echosclero.reflux/1"
    for key in ("reflux_ms", "peak_reflux_velocity_cm_s", "peak_antegrade_velocity_cm_s", "trace"):
        assert key in doc
    assert abs(doc["reflux_ms"] - disp.truth.reflux_ms) <= REFLUX_TOL_MS, (doc["reflux_ms"], disp.truth.reflux_ms)
    assert doc["peak_antegrade_velocity_cm_s"] == pytest.approx(35.0, rel=0.2)
    if reflux_ms > 0:
        assert doc["peak_reflux_velocity_cm_s"] == pytest.approx(28.0, rel=0.2)
    trace = np.array(doc["trace"])
    assert trace.shape == (disp.pixels.shape[1], 2)
    # antegrade positive: the augmentation is positive, the reflux negative, whatever the display
    aug = (trace[:, 0] > 0.75) & (trace[:, 0] < 1.2)
    assert np.median(trace[aug, 1]) > 10
    if reflux_ms > 0:
        refl = (trace[:, 0] > disp.truth.reflux_start_s + 0.08) & (trace[:, 0] < disp.truth.reflux_end_s - 0.08)
        assert np.median(trace[refl, 1]) < -10
    assert doc["classification"]["pathological"] is (disp.truth.reflux_ms > 500)
    assert plot.stat().st_size > 10_000
    assert capsys.readouterr().err == ""


def _expect_one_line_error(capsys, argv, fragment):
    code = main(["reflux", *argv])
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("echosclero: error: ")
    assert "Traceback" not in err
    assert fragment in lines[0]


def test_bmode_only_image_is_refused(tmp_path, capsys):
    disp = simulate_spectral_display(reflux_ms=500, peak_antegrade_cm_s=30, peak_reflux_cm_s=20,
                                     rng=np.random.default_rng(1))
    dcm = _screen_capture(tmp_path / "bmode.dcm", disp, rgb=False, with_spectral_region=False)
    _expect_one_line_error(capsys, [str(dcm)], "no spectral Doppler region")


def test_uncalibrated_spectral_region_is_refused(tmp_path, capsys):
    disp = simulate_spectral_display(reflux_ms=500, peak_antegrade_cm_s=30, peak_reflux_cm_s=20,
                                     rng=np.random.default_rng(2))
    dcm = _screen_capture(tmp_path / "uncal.dcm", disp, rgb=False)
    ds = pydicom.dcmread(dcm)
    for item in ds.SequenceOfUltrasoundRegions:
        if int(item.RegionDataType) == 3:
            item.PhysicalUnitsYDirection = 0  # "none": the velocity axis is not calibrated
    ds.save_as(dcm)
    _expect_one_line_error(capsys, [str(dcm)], "not calibrated")


def test_empty_spectrum_is_refused(tmp_path, capsys):
    disp = simulate_spectral_display(reflux_ms=500, peak_antegrade_cm_s=30, peak_reflux_cm_s=20,
                                     rng=np.random.default_rng(3))
    blank = simulate_spectral_display(reflux_ms=0, peak_antegrade_cm_s=30, peak_reflux_cm_s=0,
                                      rng=np.random.default_rng(3))
    empty = type(disp)(pixels=np.full_like(blank.pixels, 25), calibration=disp.calibration, truth=disp.truth,
                       antegrade_above=True, prf_hz=disp.prf_hz, f0_hz=disp.f0_hz, angle_deg=disp.angle_deg)
    dcm = _screen_capture(tmp_path / "empty.dcm", empty, rgb=False)
    _expect_one_line_error(capsys, [str(dcm)], "no Doppler signal")


def test_aliased_spectrum_is_refused(tmp_path, capsys):
    # peak reflux well above the retrograde side of the scale (Nyquist ~62 cm/s, baseline at 60 %)
    disp = simulate_spectral_display(reflux_ms=1200, peak_antegrade_cm_s=30, peak_reflux_cm_s=90,
                                     rng=np.random.default_rng(4))
    dcm = _screen_capture(tmp_path / "aliased.dcm", disp, rgb=False)
    _expect_one_line_error(capsys, [str(dcm)], "aliased")


def test_not_dicom_and_unknown_segment(tmp_path, capsys):
    bad = tmp_path / "notes.dcm"
    bad.write_text("not a DICOM file")
    code = main(["reflux", str(bad)])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("echosclero: error: ") and len(err.strip().splitlines()) == 1
    disp = simulate_spectral_display(reflux_ms=500, peak_antegrade_cm_s=30, peak_reflux_cm_s=20,
                                     rng=np.random.default_rng(5))
    dcm = _screen_capture(tmp_path / "ok.dcm", disp, rgb=False)
    _expect_one_line_error(capsys, [str(dcm), "--segment", "GSX"], "unknown vein segment")


def test_help_teaches(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reflux", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for fragment in ("--reflux-above-baseline", "ReferencePixelY0", "1000 ms", "echosclero.reflux/1"):
        assert fragment in text
