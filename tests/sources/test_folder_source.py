"""FolderSource: DICOM and video files in name order; bad files reported by name and reason."""

from __future__ import annotations

import shutil

import pytest

from echosclero.errors import InputError
from echosclero.sources.folder import FileProblem, FolderSource


@pytest.fixture
def exam_folder(tmp_path, write_us):
    folder = tmp_path / "exam"
    folder.mkdir()
    shutil.move(write_us("b_cine.dcm", n=3), folder / "b_cine.dcm")
    shutil.move(write_us("a_single.dcm", n=1), folder / "a_single.dcm")
    shutil.move(write_us("c_uncal.dcm", SequenceOfUltrasoundRegions=None), folder / "c_uncal.dcm")
    shutil.move(
        write_us("d_ct.dcm", Modality="CT", SOPClassUID="1.2.840.10008.5.1.4.1.1.2"), folder / "d_ct.dcm"
    )
    (folder / "notes.txt").write_text("patient was calm\n")
    (folder / ".DS_Store").write_bytes(b"\0\1\2")
    return folder


def test_frames_in_name_order_and_errors_listed(exam_folder):
    src = FolderSource(exam_folder)
    frames = list(src.frames())
    assert [f.source_id.rsplit("/", 1)[-1] for f in frames] == ["a_single.dcm"] + ["b_cine.dcm"] * 3
    assert [f.index for f in frames] == [0, 0, 1, 2]
    errors = {p.name: p.reason for p in src.errors}
    assert set(errors) == {"c_uncal.dcm", "d_ct.dcm", "notes.txt"}
    assert "--mm-per-px" in errors["c_uncal.dcm"]
    assert "Modality is CT" in errors["d_ct.dcm"]
    assert errors["notes.txt"] == "not a DICOM or video file"
    assert all(isinstance(p, FileProblem) and "\n" not in p.reason for p in src.errors)


def test_user_pitch_reaches_uncalibrated_files(exam_folder):
    src = FolderSource(exam_folder, mm_per_px=0.2)
    frames = list(src.frames())
    assert len(frames) == 5
    assert frames[-1].calibration.source == "user"
    assert {p.name for p in src.errors} == {"d_ct.dcm", "notes.txt"}


def test_info_summarises_files(exam_folder):
    info = FolderSource(exam_folder).info()
    assert info.kind == "folder"
    names = [f["name"] for f in info.details["files"]]
    assert names == ["a_single.dcm", "b_cine.dcm", "c_uncal.dcm"]  # info reports uncalibrated files
    assert info.n_frames == 5
    assert not info.calibrated  # one file needs --mm-per-px
    assert [e["name"] for e in info.details["errors"]] == ["d_ct.dcm", "notes.txt"]


def test_not_a_folder(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        FolderSource(tmp_path / "missing")
    (tmp_path / "f.dcm").write_bytes(b"x")
    with pytest.raises(InputError, match="not a folder"):
        FolderSource(tmp_path / "f.dcm")


def test_empty_folder(tmp_path):
    src = FolderSource(tmp_path)
    assert list(src.frames()) == [] and src.errors == []
    assert src.info().n_frames == 0 and not src.info().calibrated
