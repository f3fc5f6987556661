"""``echosclero info``: text and JSON descriptions, and one-line errors (checked in a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from echosclero.cli import main


def _data(scanner_file, name):
    return str(scanner_file(name))


@pytest.fixture
def scanner_file():
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("data_store")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" if spec else None

    def get(name):
        if folder is None or not (folder / name).is_file():
            pytest.skip(f"pydicom-data (dev dependency) with {name} is not installed")
        return folder / name

    return get


def test_text_lists_regions_and_calibration(scanner_file, capsys):
    assert main(["info", _data(scanner_file, "gdcm-US-ALOKA-16.dcm")]) == 0
    out = capsys.readouterr().out
    assert "kind:        dicom (US, ALOKA" in out
    assert "calibration: 0.3827 mm per pixel from the DICOM ultrasound regions" in out
    assert "3 ultrasound region(s)" in out
    assert out.count("tissue (2-D)") == 2
    assert "<- imaging region" in out and "gray bar" in out


def test_text_cine_frame_time(scanner_file, capsys):
    assert main(["info", _data(scanner_file, "color3d_jpeg_baseline.dcm")]) == 0
    out = capsys.readouterr().out
    assert "frames:      120 (frame time 33.3 ms, 30.0 frames/s)" in out
    assert "0.5105 mm per pixel" in out


def test_text_spectral_region(tmp_path, capsys):
    import numpy as np

    from echosclero.interop.usdicom import UltrasoundRegion, write_us_dicom

    path = write_us_dicom(
        tmp_path / "pw.dcm",
        np.zeros((1, 60, 80), np.uint8),
        regions=[UltrasoundRegion((0, 0, 79, 59), "PW", s_per_px=0.004, cm_s_per_px=-0.5, baseline_row=30)],
        frame_time_s=None,
    )
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "spectral PW: 0.004 s/px, -0.5 cm/s per px, baseline row 30" in out
    assert "PW spectral Doppler" in out and "<- spectral display" in out


def test_uncalibrated_file_is_reported_not_refused(scanner_file, capsys):
    assert main(["info", _data(scanner_file, "US1_UNCR.dcm")]) == 0
    out = capsys.readouterr().out
    assert "calibration: uncalibrated (no ultrasound regions; pass --mm-per-px to analyse)" in out


def test_json(scanner_file, capsys):
    assert main(["info", _data(scanner_file, "OBXXXX1A.dcm"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "echosclero.source_info/1"
    assert doc["kind"] == "dicom" and doc["n_frames"] == 1 and doc["calibrated"] is True
    tissue, ecg = doc["regions"]
    assert tissue["mm_per_px_x"] == pytest.approx(0.262, abs=1e-3) and tissue["role"] == "imaging"
    assert ecg["label"] == "ECG trace" and ecg["reference_px"] == [-176, -522]


def test_json_with_user_pitch(scanner_file, capsys):
    assert main(["info", _data(scanner_file, "US1_J2KR.dcm"), "--json", "--mm-per-px", "0.25"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["calibrated"] is True
    assert doc["details"]["calibration"] == {
        "mm_per_px_x": 0.25,
        "mm_per_px_z": 0.25,
        "source": "user",
        "region_px": None,
    }


def test_help_teaches(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["info", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "Sequence of Ultrasound Regions" in out and "--mm-per-px" in out and "igtl://HOST:PORT" in out


# ----------------------------------------------------------------------------- one-line errors
@pytest.fixture(scope="module")
def error_runs(tmp_path_factory):
    """Run every bad input in its own ``echosclero info`` process, concurrently (startup dominates)."""
    from importlib.util import find_spec
    from pathlib import Path

    import numpy as np
    from pydicom import dcmread

    from echosclero.interop.usdicom import UltrasoundRegion, write_us_dicom

    tmp = tmp_path_factory.mktemp("bad")
    region = UltrasoundRegion((0, 0, 79, 59), "tissue", mm_per_px_x=0.1, mm_per_px_z=0.1)
    cases = {"missing": str(tmp / "does_not_exist.dcm")}

    spec = find_spec("data_store")
    real = Path(next(iter(spec.submodule_search_locations))) / "data" / "US1_UNCR.dcm" if spec else None
    if real is not None and real.is_file():
        raw = real.read_bytes()
    else:  # our own file stands in for the real one
        raw = write_us_dicom(
            tmp / "real.dcm", np.zeros((1, 60, 80), np.uint8), regions=[region], frame_time_s=None
        )
        raw = raw.read_bytes()
    (tmp / "truncated.dcm").write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = str(tmp / "truncated.dcm")

    (tmp / "notes.txt").write_text("not an image\n")
    cases["text"] = str(tmp / "notes.txt")

    ct = write_us_dicom(tmp / "ct.dcm", np.zeros((1, 60, 80), np.uint8), regions=[], frame_time_s=None)
    ds = dcmread(ct)
    ds.Modality, ds.SOPClassUID = "CT", "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.save_as(ct)
    cases["modality"] = str(ct)

    short = write_us_dicom(
        tmp / "short.dcm", np.zeros((2, 60, 80), np.uint8), regions=[region], frame_time_s=0.1
    )
    ds = dcmread(short)
    ds.NumberOfFrames = 3
    ds.save_as(short)
    cases["short"] = str(short)

    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "echosclero", "info", path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in cases.items()
    }
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[name] = (proc.returncode, out, err)
    return results


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "no such file: "),
        ("truncated", "truncated"),
        ("text", "not a DICOM file"),
        ("modality", "Modality is CT"),
        ("short", "pixel data is shorter than its header says"),
    ],
)
def test_bad_input_is_one_line(error_runs, case, expected):
    code, out, err = error_runs[case]
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("echosclero: error: ")
    assert expected in lines[0]
    assert "Traceback" not in err
