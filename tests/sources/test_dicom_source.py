"""DicomSource on real scanner files (pydicom-data) and on files we write, including malformed ones.

Reference figures were read with dcmdump from the files themselves (PhysicalDeltaX/Y, in cm).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from echosclero.errors import CalibrationMissingError, InputError
from echosclero.interop.usdicom import UltrasoundRegion
from echosclero.sources.dicom import DicomSource

MM_TOL = 1e-3  # millimetres per pixel

# dcmdump: (0018,602c) PhysicalDeltaX, in cm
ALOKA_CM = 0.038265306502580643
PHILIPS_CM = 0.026228787661969974
PHILIPS_ECG_S = 0.0096427366086495336
SONOSITE_CM = 0.051049705594778061


def _plausible(pixels: np.ndarray) -> None:
    assert pixels.dtype == np.uint8
    assert pixels.any(), "decoded pixels are all zero"
    assert pixels.max() > 50, "decoded pixels are implausibly dark"


# ----------------------------------------------------------------------------- real scanner files
def test_aloka_palette_two_tissue_regions(scanner_file):
    src = DicomSource(scanner_file("gdcm-US-ALOKA-16.dcm"))
    info = src.info()
    assert info.n_frames == 1 and (info.rows, info.cols) == (480, 640)
    assert info.calibrated
    kinds = [r.kind for r in info.regions]
    assert kinds == ["tissue", "tissue", "other"]
    assert info.regions[2].label == "gray bar"
    # both tissue regions are reported, the first (equal area) is the imaging one
    assert [r.role for r in info.regions] == ["imaging", None, None]
    assert info.regions[1].bbox_px == (336, 24, 639, 415)
    cal = src.calibration
    assert cal.source == "dicom"
    assert cal.mm_per_px_x == pytest.approx(0.383, abs=MM_TOL)
    assert cal.mm_per_px_x == pytest.approx(ALOKA_CM * 10, abs=1e-12)
    assert cal.mm_per_px_z == pytest.approx(ALOKA_CM * 10, abs=1e-12)
    assert cal.region_px == (32, 24, 335, 415)
    frame = next(src.frames())
    assert frame.pixels.shape == (392, 304, 3)  # PALETTE COLOR rendered to RGB
    _plausible(frame.pixels)
    assert frame.calibration is cal and frame.spectral is None


def test_philips_palette_tissue_and_ecg_regions(scanner_file):
    src = DicomSource(scanner_file("OBXXXX1A.dcm"))
    info = src.info()
    tissue, ecg = info.regions
    assert tissue.kind == "tissue" and tissue.role == "imaging"
    assert tissue.mm_per_px_x == pytest.approx(0.262, abs=MM_TOL)
    assert tissue.mm_per_px_x == pytest.approx(PHILIPS_CM * 10, abs=1e-12)
    assert ecg.kind == "other" and ecg.label == "ECG trace" and ecg.role is None
    assert ecg.bbox_px == (176, 522, 743, 576)
    assert ecg.reference_px == (-176, -522)  # region-relative: points at the image corner
    assert ecg.s_per_px == pytest.approx(PHILIPS_ECG_S)
    frame = src.frame(0)
    # the region's MaxX1 is 800 in an 800-column image: cropped to the last column (799)
    assert frame.pixels.shape == (459, 680, 3)
    assert frame.calibration.region_px == (120, 60, 800, 518)
    _plausible(frame.pixels)


def test_philips_palette_matches_pydicom_lut(scanner_file):
    from pydicom import dcmread
    from pydicom.pixels import apply_color_lut

    path = scanner_file("OBXXXX1A.dcm")
    ds = dcmread(path)
    reference = apply_color_lut(ds.pixel_array, ds)  # 16-bit entries
    ours = DicomSource(path).image(0)
    assert ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, (reference >> 8).astype(np.uint8))


def test_philips_rle_two_frames(scanner_file):
    src = DicomSource(scanner_file("OBXXXX1A_rle_2frame.dcm"))
    info = src.info()
    assert info.n_frames == 2 and info.details["transfer_syntax"] == "RLE Lossless"
    frames = list(src.frames())
    assert [f.index for f in frames] == [0, 1]
    assert all(f.pixels.shape == (459, 680, 3) for f in frames)
    assert frames[0].calibration.mm_per_px_x == pytest.approx(PHILIPS_CM * 10, abs=1e-12)
    _plausible(frames[1].pixels)
    # RLE decodes to exactly the uncompressed file's pixels
    plain = DicomSource(scanner_file("OBXXXX1A.dcm")).frame(0)
    np.testing.assert_array_equal(frames[0].pixels, plain.pixels)


def test_sonosite_jpeg_cine(scanner_file):
    src = DicomSource(scanner_file("color3d_jpeg_baseline.dcm"))
    info = src.info()
    assert info.n_frames == 120 and len(src) == 120
    assert info.frame_time_s == pytest.approx(0.0333, abs=1e-4)
    assert info.details["photometric_interpretation"] == "YBR_FULL_422"
    cal = src.calibration
    assert cal.mm_per_px_x == pytest.approx(0.510, abs=MM_TOL)
    assert cal.mm_per_px_z == pytest.approx(SONOSITE_CM * 10, abs=1e-12)
    first, last = src.frame(0), src.frame(119)
    assert first.pixels.shape == (384, 512, 3)
    assert last.t_s == pytest.approx(119 * 0.033333, abs=1e-6)
    _plausible(first.pixels)
    # converted to RGB: grey ultrasound has R, G and B close to each other (YBR would not)
    grey_part = first.pixels[first.pixels.sum(axis=2) > 150]
    assert np.median(np.ptp(grey_part.astype(int), axis=1)) < 20


def test_cine_is_decoded_lazily(scanner_file, monkeypatch):
    import pydicom.pixels

    calls = []
    original = pydicom.pixels.pixel_array

    def counting(*args, **kwargs):
        calls.append(kwargs.get("index"))
        return original(*args, **kwargs)

    monkeypatch.setattr(pydicom.pixels, "pixel_array", counting)
    src = DicomSource(scanner_file("color3d_jpeg_baseline.dcm"))
    src.info()
    assert calls == []
    frames = src.frames()
    next(frames), next(frames)
    assert calls == [0, 1]


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "US1_J2KR.dcm"])
def test_ge_rgb_without_regions_is_uncalibrated(scanner_file, name):
    src = DicomSource(scanner_file(name))
    info = src.info()
    assert not info.calibrated and info.regions == ()
    assert "pass --mm-per-px" in info.details["calibration_note"]
    with pytest.raises(CalibrationMissingError, match="--mm-per-px"):
        src.frames()


def test_ge_with_user_pitch_uses_whole_image(scanner_file):
    src = DicomSource(scanner_file("US1_J2KR.dcm"), mm_per_px=0.2)
    frame = next(src.frames())
    assert frame.calibration.source == "user" and frame.calibration.mm_per_px_x == 0.2
    assert frame.calibration.region_px is None
    assert frame.pixels.shape == (480, 640, 3)
    _plausible(frame.pixels)
    # JPEG 2000 lossless decodes to exactly the uncompressed file's pixels
    plain = DicomSource(scanner_file("US1_UNCR.dcm"), mm_per_px=0.2).frame(0)
    np.testing.assert_array_equal(frame.pixels, plain.pixels)


def test_user_pitch_does_not_override_scanner_calibration(scanner_file):
    src = DicomSource(scanner_file("OBXXXX1A.dcm"), mm_per_px=0.5)
    assert src.calibration.source == "dicom"
    assert "ignored" in src.info().details["mm_per_px_ignored"]


# ----------------------------------------------------------------------------- files we write
def test_monochrome_roundtrip_pixels_and_crop(write_us, make_frames):
    region = UltrasoundRegion((10, 5, 69, 54), "tissue", mm_per_px_x=0.12, mm_per_px_z=0.08)
    path = write_us(n=3, regions=[region], frame_time_s=0.04)
    src = DicomSource(path)
    frames = list(src.frames())
    expected = make_frames(3, 60, 80)
    assert [f.t_s for f in frames] == pytest.approx([0.0, 0.04, 0.08])
    for k, frame in enumerate(frames):
        assert frame.pixels.ndim == 2 and frame.pixels.dtype == np.uint8
        np.testing.assert_array_equal(frame.pixels, expected[k, 5:55, 10:70])
    assert frames[0].calibration.mm_per_px_x == pytest.approx(0.12)
    assert frames[0].calibration.mm_per_px_z == pytest.approx(0.08)


def test_ybr_full_native_is_converted_to_rgb(write_us, make_frames, tmp_path):
    from pydicom import dcmread
    from pydicom.pixels import convert_color_space

    path = write_us(rgb=True)
    ds = dcmread(path)
    rgb = make_frames(1, 60, 80, rgb=True)[0]
    ds.PixelData = convert_color_space(rgb, "RGB", "YBR_FULL").tobytes()
    ds.PhotometricInterpretation = "YBR_FULL"
    ds.save_as(path)
    pixels = DicomSource(path).frame(0).pixels
    assert pixels.shape == (60, 80, 3)
    assert np.abs(pixels.astype(int) - rgb.astype(int)).max() <= 2


def test_spectral_region_with_tissue(write_us):
    regions = [
        UltrasoundRegion((0, 0, 79, 29), "tissue", mm_per_px_x=0.2, mm_per_px_z=0.2),
        UltrasoundRegion((0, 30, 79, 59), "PW", s_per_px=0.01, cm_s_per_px=-1.5, baseline_row=12),
    ]
    src = DicomSource(write_us(regions=regions))
    frame = src.frame(0)
    assert frame.pixels.shape == (30, 80)
    assert frame.spectral_pixels.shape == (30, 80)
    sp = frame.spectral
    assert (sp.s_per_px, sp.cm_s_per_px, sp.baseline_row) == (0.01, -1.5, 12.0)  # vendor sign kept
    assert sp.region_px == (0, 30, 79, 59) and sp.doppler_kind == "PW" and sp.source == "dicom"
    assert [r.role for r in src.info().regions] == ["imaging", "spectral"]


def test_spectral_only_file_has_no_spatial_calibration(write_us):
    regions = [UltrasoundRegion((5, 10, 74, 49), "CW", s_per_px=0.005, cm_s_per_px=2.0, baseline_row=20)]
    src = DicomSource(write_us(regions=regions))
    assert src.info().calibrated
    frame = next(src.frames())
    assert frame.calibration is None
    assert frame.spectral.doppler_kind == "CW" and frame.spectral.baseline_row == 20
    assert frame.pixels.shape == frame.spectral_pixels.shape == (40, 70)


def test_user_pitch_applies_to_region_without_units(write_us):
    from pydicom import dcmread

    path = write_us(regions=[UltrasoundRegion((4, 4, 43, 33), "tissue", mm_per_px_x=0.1, mm_per_px_z=0.1)])
    ds = dcmread(path)
    ds.SequenceOfUltrasoundRegions[0].PhysicalUnitsXDirection = 0  # "none": not calibrated
    ds.save_as(path)
    assert not DicomSource(path).info().calibrated
    frame = next(DicomSource(path, mm_per_px=0.3).frames())
    assert frame.calibration.source == "user" and frame.calibration.region_px == (4, 4, 43, 33)
    assert frame.pixels.shape == (30, 40)


@pytest.mark.parametrize(
    ("changes", "frame_time_s", "times"),
    [
        ({}, 0.05, [0.0, 0.05, 0.10]),
        (
            {"FrameTime": None, "FrameTimeVector": [0, 40, 60], "FrameIncrementPointer": 0x00181065},
            0.05,
            [0.0, 0.04, 0.10],
        ),
        ({"FrameTime": None, "CineRate": 25}, 0.04, [0.0, 0.04, 0.08]),
        ({"FrameTime": None, "CineRate": None, "RecommendedDisplayFrameRate": 20}, 0.05, [0.0, 0.05, 0.10]),
        ({"FrameTime": None, "CineRate": None}, None, [0.0, 0.0, 0.0]),
    ],
    ids=["FrameTime", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate", "none"],
)
def test_frame_time_sources(write_us, changes, frame_time_s, times):
    src = DicomSource(write_us(n=3, frame_time_s=0.05, **changes))
    if frame_time_s is None:
        assert src.info().frame_time_s is None
    else:
        assert src.info().frame_time_s == pytest.approx(frame_time_s)
    assert [f.t_s for f in src.frames()] == pytest.approx(times)


def test_secondary_capture_with_regions_is_accepted(write_us):
    path = write_us(Modality="OT", SOPClassUID="1.2.840.10008.5.1.4.1.1.7")
    assert DicomSource(path).calibration.source == "dicom"


def test_reader_is_silent(scanner_file, tmp_path, capsys):
    raw = scanner_file("color3d_jpeg_baseline.dcm").read_bytes()
    truncated = tmp_path / "half.dcm"
    truncated.write_bytes(raw[: len(raw) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match="truncated"):
            DicomSource(truncated)
        DicomSource(scanner_file("OBXXXX1A.dcm")).frame(0)
    assert caught == []
    out, err = capsys.readouterr()
    assert out == "" and err == ""


# ----------------------------------------------------------------------------- malformed input
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        DicomSource(tmp_path / "nope.dcm")


def test_text_file_is_not_dicom(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("this is not an image\n")
    with pytest.raises(InputError, match="not a DICOM file"):
        DicomSource(path)


def test_truncated_real_file(scanner_file, tmp_path):
    raw = scanner_file("US1_UNCR.dcm").read_bytes()
    path = tmp_path / "half.dcm"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="shorter than its header"):
        DicomSource(path)


def test_header_only_file(scanner_file, tmp_path):
    path = tmp_path / "head.dcm"
    path.write_bytes(scanner_file("US1_UNCR.dcm").read_bytes()[:300])
    with pytest.raises(InputError, match="truncated"):
        DicomSource(path)


def test_wrong_modality_names_it(write_us):
    path = write_us(Modality="CT", SOPClassUID="1.2.840.10008.5.1.4.1.1.2", SequenceOfUltrasoundRegions=None)
    with pytest.raises(InputError, match="Modality is CT .*CT Image Storage.*not ultrasound"):
        DicomSource(path)


def test_real_mr_file_is_refused(scanner_file):
    with pytest.raises(InputError, match="Modality is MR"):
        DicomSource(scanner_file("MR2_UNCR.dcm"))


def test_secondary_capture_without_regions_needs_pitch(write_us):
    path = write_us(Modality="OT", SOPClassUID="1.2.840.10008.5.1.4.1.1.7", SequenceOfUltrasoundRegions=None)
    with pytest.raises(InputError, match="secondary capture .*--mm-per-px"):
        DicomSource(path)
    assert DicomSource(path, mm_per_px=0.2).calibration.source == "user"


def test_pixel_data_shorter_than_header(write_us):
    path = write_us(Rows=61)
    with pytest.raises(InputError, match=r"shorter than its header says \(4800 bytes.* = 4880\)"):
        DicomSource(path)


def test_samples_per_pixel_mismatch(write_us):
    with pytest.raises(InputError, match="SamplesPerPixel 3 does not match PhotometricInterpretation"):
        DicomSource(write_us(SamplesPerPixel=3))


def test_unsupported_photometric(write_us):
    with pytest.raises(InputError, match="PhotometricInterpretation 'HSV' is not supported"):
        DicomSource(write_us(PhotometricInterpretation="HSV"))


def test_no_pixel_data(write_us):
    with pytest.raises(InputError, match="no pixel data"):
        DicomSource(write_us(PixelData=None))


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("nan"), 50.0])
def test_bad_user_pitch(write_us, bad):
    with pytest.raises(InputError, match="--mm-per-px must be"):
        DicomSource(write_us(), mm_per_px=bad)


def test_user_pitch_with_spectral_display(write_us):
    from pydicom import dcmread

    regions = [
        UltrasoundRegion((0, 0, 79, 29), "tissue", mm_per_px_x=0.2, mm_per_px_z=0.2),
        UltrasoundRegion((0, 30, 79, 59), "PW", s_per_px=0.01, cm_s_per_px=1.0, baseline_row=15),
    ]
    path = write_us(regions=regions)
    ds = dcmread(path)
    ds.SequenceOfUltrasoundRegions[0].PhysicalUnitsYDirection = 0  # tissue region without units
    ds.save_as(path)
    frame = DicomSource(path, mm_per_px=0.3).frame(0)
    assert frame.calibration.source == "user" and frame.pixels.shape == (30, 80)
    assert frame.spectral is not None and frame.spectral_pixels.shape == (30, 80)
    # a purely spectral file has nothing spatial to calibrate: the pitch is ignored, and said so
    only_pw = DicomSource(write_us("pw.dcm", regions=regions[1:]), mm_per_px=0.3)
    assert only_pw.calibration is None
    assert "spectral display only" in only_pw.info().details["mm_per_px_ignored"]
