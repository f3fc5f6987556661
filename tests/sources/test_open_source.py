"""open_source dispatch: files, folders, sim:, igtl://, video:N, and the messages for what it refuses."""

from __future__ import annotations

import sys
import types

import pytest

from echosclero.errors import InputError
from echosclero.sources.dicom import DicomSource
from echosclero.sources.folder import FolderSource
from echosclero.sources.igtl import IgtlSource
from echosclero.sources.open import open_source
from echosclero.sources.video import VideoSource


def test_dicom_by_preamble_whatever_the_extension(write_us, tmp_path):
    path = write_us("scan.mp4")  # a DICOM file misnamed as video is still DICOM
    assert isinstance(open_source(path), DicomSource)
    assert isinstance(open_source(str(path)), DicomSource)


def test_dicom_without_preamble(write_us, tmp_path):
    raw = write_us().read_bytes()
    path = tmp_path / "IM0001"
    path.write_bytes(raw[132:])  # strip preamble and "DICM": what old exporters write
    src = open_source(path)
    assert isinstance(src, DicomSource) and src.calibration.mm_per_px_x == pytest.approx(0.1)


def test_video_by_extension(tmp_path):
    import cv2
    import numpy as np

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for _ in range(3):
        writer.write(np.full((24, 32, 3), 128, np.uint8))
    writer.release()
    src = open_source(path, mm_per_px=0.1, crop_px=(0, 0, 15, 11))
    assert isinstance(src, VideoSource) and next(src.frames()).pixels.shape == (12, 16, 3)


def test_folder(tmp_path):
    assert isinstance(open_source(tmp_path), FolderSource)


def test_igtl_address_does_not_connect_yet():
    src = open_source("igtl://127.0.0.1:1?device=Image_Reference")
    assert isinstance(src, IgtlSource) and src.device_name == "Image_Reference"


def test_sim_dispatches_lazily_with_seed(monkeypatch):
    calls = []
    fake = types.ModuleType("echosclero.sim")
    fake.open_simulated_source = lambda name, seed=0: calls.append((name, seed)) or "SIMULATED"
    monkeypatch.setitem(sys.modules, "echosclero.sim", fake)
    assert open_source("sim:gsv_injection", seed=7) == "SIMULATED"
    assert calls == [("gsv_injection", 7)]
    with pytest.raises(InputError, match="scenario name"):
        open_source("sim:")


def test_missing_path_messages(tmp_path):
    with pytest.raises(InputError, match="^no such file: .*nope.dcm$"):
        open_source(tmp_path / "nope.dcm")
    with pytest.raises(InputError, match="write video:0"):
        open_source("0")


def test_unknown_file_names_what_was_expected(tmp_path):
    path = tmp_path / "readme.txt"
    path.write_text("hello\n")
    with pytest.raises(
        InputError, match=r"readme.txt: not a DICOM file .* not a video .*reads ultrasound DICOM"
    ):
        open_source(path)
