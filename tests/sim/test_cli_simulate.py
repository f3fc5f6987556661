"""`echosclero simulate`: the public command-line contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from echosclero.sim import list_scenarios

CLI = [sys.executable, "-m", "echosclero"]


def run(*args, **kw):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, **kw)


def test_list_prints_one_scenario_per_line_with_a_description():
    out = run("simulate", "--list")
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == [n for n, _ in list_scenarios()]
    assert all(len(line.split(maxsplit=1)[1]) > 20 for line in lines)


def test_unknown_scenario_is_one_line_error():
    out = run("simulate", "gsv_injectoin", "--out", "x")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "did you mean gsv_injection" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    res = run("simulate", "sfj_reflux", "--out", str(out), "--seed", "5", "--duration-s", "1.0")
    assert res.returncode == 0, res.stderr
    return out


def test_simulated_dicom_reads_back_with_the_same_calibration(simulated):
    from echosclero.sources.open import open_source

    truth = json.loads((simulated / "truth.json").read_text())
    assert truth["schema"] == "echosclero.analysis/1" and len(truth["frames"]) == 20
    src = open_source(str(simulated / "sfj_reflux.dcm"))
    frames = list(src.frames())
    assert len(frames) == 20
    cal = frames[0].calibration
    assert cal.mm_per_px_x == pytest.approx(truth["calibration"]["mm_per_px_x"], abs=1e-4)
    assert cal.mm_per_px_z == pytest.approx(truth["calibration"]["mm_per_px_z"], abs=1e-4)
    assert frames[1].t_s == pytest.approx(0.05, abs=1e-6)
    assert frames[-1].spectral is not None
    assert frames[-1].spectral.s_per_px == pytest.approx(6.0 / 512, rel=1e-4)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) not installed")
def test_dciodvfy_reports_no_errors(simulated):
    res = subprocess.run(["dciodvfy", str(simulated / "sfj_reflux.dcm")], capture_output=True, text=True)
    assert "Error" not in res.stdout + res.stderr, res.stdout + res.stderr


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk (dcmdump) not installed")
def test_dcmdump_reads_it(simulated):
    res = subprocess.run(["dcmdump", "+P", "0018,6011", str(simulated / "sfj_reflux.dcm")], capture_output=True,
                         text=True)
    assert res.returncode == 0 and "SequenceOfUltrasoundRegions" in res.stdout


def test_demo_writes_video_and_contact_sheet(tmp_path):
    res = run("demo", "--out", str(tmp_path), "--seed", "1")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "gsv_injection.mp4").stat().st_size > 100_000
    import cv2

    sheet = cv2.imread(str(tmp_path / "gsv_injection_contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 300 and sheet.std() > 20
    cap = cv2.VideoCapture(str(tmp_path / "gsv_injection.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 120
