"""Fixtures of the batch tests: a small simulated archive with a truncated and a garbage file."""

from __future__ import annotations

import shutil

import pytest

from echosclero.batch.synthetic import write_simulated_archive

N_GOOD = 3
N_FRAMES = 5


@pytest.fixture(scope="session")
def archive_template(tmp_path_factory):
    """Three 5-frame simulated cines, one truncated copy and one garbage file (built once)."""
    folder = tmp_path_factory.mktemp("archive")
    paths = write_simulated_archive(folder, n_files=N_GOOD, n_frames=N_FRAMES, seed=40)
    data = paths[0].read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (folder / "garbage.dcm").write_bytes(b"this is not an ultrasound file\n" * 20)
    return folder


@pytest.fixture
def archive(archive_template, tmp_path):
    """A private copy of the archive (tests may add files)."""
    folder = tmp_path / "exam"
    shutil.copytree(archive_template, folder)
    return folder


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def write_uncalibrated():
    """``write_uncalibrated(path)``: a 2-frame US cine without ultrasound regions."""
    import numpy as np

    from echosclero.interop.usdicom import write_us_dicom

    def write(path):
        frames = np.random.default_rng(0).integers(0, 255, (2, 64, 80), dtype=np.uint8)
        return write_us_dicom(path, frames, regions=[], frame_time_s=0.05, seed_uid="uncal")

    return write
