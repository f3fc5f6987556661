"""write_us_dicom: valid for dciodvfy, readable by dcmdump, and read back by DicomSource unchanged."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from echosclero.interop.usdicom import (
    US_IMAGE_STORAGE,
    US_MULTIFRAME_IMAGE_STORAGE,
    UltrasoundRegion,
    write_us_dicom,
)
from echosclero.sources.dicom import DicomSource

TISSUE = UltrasoundRegion((8, 4, 71, 39), "tissue", mm_per_px_x=0.125, mm_per_px_z=0.0875)
COLOR = UltrasoundRegion((20, 10, 50, 30), "color", mm_per_px_x=0.125, mm_per_px_z=0.0875)
PW = UltrasoundRegion((8, 40, 71, 59), "PW", s_per_px=0.004, cm_s_per_px=-0.75, baseline_row=9)

needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools, apt package) is not installed"
)
needs_dcmdump = pytest.mark.skipif(
    shutil.which("dcmdump") is None, reason="dcmdump (dcmtk, apt package) is not installed"
)


@pytest.fixture(params=["grey-cine", "rgb-single"])
def written(request, tmp_path, make_frames):
    if request.param == "grey-cine":
        frames = make_frames(4, 60, 80)
        path = write_us_dicom(
            tmp_path / "cine.dcm",
            frames,
            regions=[TISSUE, COLOR, PW],
            frame_time_s=1 / 30,
            series_description="GSV injection",
            study_description="Sclerotherapy",
            seed_uid="abc",
        )
    else:
        frames = make_frames(1, 60, 80, rgb=True)
        path = write_us_dicom(
            tmp_path / "one.dcm", frames, regions=[TISSUE], frame_time_s=None, laterality="R"
        )
    return path, frames


@needs_dciodvfy
def test_dciodvfy_reports_no_errors(written):
    path, _ = written
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    report = result.stdout + result.stderr
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert errors == [], report
    warnings = [line for line in report.splitlines() if line.startswith("Warning")]
    assert warnings == [], report  # currently none: keep it that way


@needs_dcmdump
def test_dcmdump_reads_it(written):
    path, frames = written
    result = subprocess.run(["dcmdump", "-q", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    dump = result.stdout
    assert "(0008,0060) CS [US]" in dump
    assert "(0008,0070) LO [EchoSclero]" in dump
    assert "PhysicalDeltaX" in dump and "SequenceOfUltrasoundRegions" in dump
    assert "Laterality" in dump
    assert f"US {frames.shape[1]} " in dump  # Rows


def test_read_back_same_calibration_and_pixels(written):
    path, frames = written
    src = DicomSource(path)
    info = src.info()
    assert info.n_frames == frames.shape[0]
    cal = src.calibration
    assert cal.source == "dicom" and cal.region_px == TISSUE.bbox_px
    assert cal.mm_per_px_x == pytest.approx(TISSUE.mm_per_px_x, abs=1e-12)
    assert cal.mm_per_px_z == pytest.approx(TISSUE.mm_per_px_z, abs=1e-12)
    frame = src.frame(frames.shape[0] - 1)
    np.testing.assert_array_equal(frame.pixels, frames[-1, 4:40, 8:72])
    if frames.shape[0] > 1:
        assert info.frame_time_s == pytest.approx(1 / 30, rel=1e-9)
        assert frame.t_s == pytest.approx(3 / 30, rel=1e-9)
        sp = src.spectral
        assert (sp.s_per_px, sp.cm_s_per_px, sp.baseline_row) == (0.004, -0.75, 9.0)
        assert sp.region_px == PW.bbox_px
        color = info.regions[1]
        assert color.kind == "color" and color.mm_per_px_x == pytest.approx(0.125)


def test_sop_class_and_attributes(written):
    from pydicom import dcmread

    path, frames = written
    ds = dcmread(path)
    n = frames.shape[0]
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # explicit VR little endian
    if n > 1:
        assert ds.SOPClassUID == US_MULTIFRAME_IMAGE_STORAGE
        assert int(ds.NumberOfFrames) == n and ds.FrameIncrementPointer == 0x00181063
        assert float(ds.FrameTime) == pytest.approx(1000 / 30, rel=1e-9) and ds.CineRate == 30
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert ds.ImageType[3] == "0019"  # 2-D (0001) + PW (0008) + colour (0010)
        assert ds.SeriesDescription == "GSV injection"
        assert ds.SequenceOfUltrasoundRegions[2].ReferencePixelY0 == 9
        assert ds.SequenceOfUltrasoundRegions[2].PhysicalUnitsYDirection == 7
    else:
        assert ds.SOPClassUID == US_IMAGE_STORAGE and "NumberOfFrames" not in ds
        assert ds.PhotometricInterpretation == "RGB" and ds.PlanarConfiguration == 0
        assert ds.Laterality == "R"
    assert ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX == pytest.approx(0.0125)  # cm
    assert ds.SequenceOfUltrasoundRegions[0].PhysicalUnitsXDirection == 3
    assert ds.BitsAllocated == 8 and ds.Manufacturer == "EchoSclero"


def test_seed_uid_is_deterministic(tmp_path, make_frames):
    from pydicom import dcmread

    frames = make_frames(1, 20, 20)
    a = dcmread(write_us_dicom(tmp_path / "a.dcm", frames, regions=[], frame_time_s=None, seed_uid="s1"))
    b = dcmread(write_us_dicom(tmp_path / "b.dcm", frames, regions=[], frame_time_s=None, seed_uid="s1"))
    c = dcmread(write_us_dicom(tmp_path / "c.dcm", frames, regions=[], frame_time_s=None))
    assert a.SOPInstanceUID == b.SOPInstanceUID and a.StudyInstanceUID == b.StudyInstanceUID
    assert a.SOPInstanceUID != c.SOPInstanceUID
    assert len({a.StudyInstanceUID, a.SeriesInstanceUID, a.SOPInstanceUID}) == 3


@pytest.mark.parametrize(
    ("frames", "kwargs", "match"),
    [
        (np.zeros((2, 10, 10), np.float32), {"frame_time_s": 0.1}, "uint8"),
        (np.zeros((10, 10), np.uint8), {"frame_time_s": None}, r"\(n, rows, cols\)"),
        (np.zeros((2, 10, 10), np.uint8), {"frame_time_s": None}, "frame_time_s"),
        (np.zeros((1, 10, 10), np.uint8), {"frame_time_s": None, "laterality": "X"}, "laterality"),
        (
            np.zeros((1, 10, 10), np.uint8),
            {
                "frame_time_s": None,
                "regions": [UltrasoundRegion((0, 0, 10, 9), mm_per_px_x=1, mm_per_px_z=1)],
            },
            "outside",
        ),
    ],
)
def test_writer_refuses_bad_arguments(tmp_path, frames, kwargs, match):
    kwargs.setdefault("regions", [])
    with pytest.raises(ValueError, match=match):
        write_us_dicom(tmp_path / "x.dcm", frames, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"data_type": "tissue"}, "positive mm_per_px_x"),
        ({"data_type": "PW", "s_per_px": 0.01, "cm_s_per_px": 1.0}, "baseline_row"),
        ({"data_type": "CW", "s_per_px": 0.01, "baseline_row": 3}, "cm_s_per_px"),
        ({"data_type": "M-mode"}, "data_type must be one of"),
    ],
)
def test_region_refuses_incomplete_calibration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UltrasoundRegion((0, 0, 9, 9), **kwargs)
