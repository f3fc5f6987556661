"""Fixtures for the source tests: the real scanner files of pydicom-data, and small files we write."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import numpy as np
import pytest


def _data_store() -> Path | None:
    # Never pydicom's get_testdata_file: it reaches for the network when a file is missing.
    spec = importlib.util.find_spec("data_store")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if folder.is_dir() else None


DATA_STORE = _data_store()


@pytest.fixture(scope="session")
def scanner_file():
    """``scanner_file(name)``: path of a real scanner file from pydicom-data (skips if absent)."""

    def get(name: str) -> Path:
        if DATA_STORE is None:
            pytest.skip("pydicom-data is not installed (dev dependency): no real scanner files to test on")
        path = DATA_STORE / name
        if not path.is_file():
            pytest.skip(f"{name} is not in this pydicom-data version ({DATA_STORE})")
        return path

    return get


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gradient_frames(n: int, rows: int, cols: int, *, rgb: bool = False, seed: int = 0) -> np.ndarray:
    """Deterministic uint8 frames: a ramp plus noise, different in each frame."""
    rng = np.random.default_rng(seed)
    ramp = (np.arange(rows)[:, None] * 200 // max(rows - 1, 1) + np.zeros((1, cols), int)).astype(np.int64)
    frames = np.stack([ramp + 5 * k + rng.integers(0, 20, (rows, cols)) for k in range(n)])
    frames = np.clip(frames, 0, 255).astype(np.uint8)
    if rgb:
        frames = np.stack([frames, 255 - frames, frames // 2], axis=-1)
    return frames


@pytest.fixture(scope="session")
def make_frames():
    """``make_frames(n, rows, cols, rgb=False, seed=0)`` -> deterministic uint8 frames."""
    return gradient_frames


@pytest.fixture
def write_us(tmp_path, make_frames):
    """``write_us(name, n=..., regions=..., **changes)``: a US DICOM written by our writer, then edited.

    ``changes`` are set on the dataset after writing (``None`` deletes the attribute), which lets a test
    build a file the writer would never produce (another modality, a short pixel data, ...).
    """
    from pydicom import dcmread

    from echosclero.interop.usdicom import UltrasoundRegion, write_us_dicom

    def write(name="us.dcm", *, n=1, rows=60, cols=80, rgb=False, regions=None, frame_time_s=None, **changes):
        if regions is None:
            regions = [
                UltrasoundRegion((0, 0, cols - 1, rows - 1), "tissue", mm_per_px_x=0.1, mm_per_px_z=0.1)
            ]
        if n > 1 and frame_time_s is None:
            frame_time_s = 0.05
        path = write_us_dicom(
            tmp_path / name,
            make_frames(n, rows, cols, rgb=rgb),
            regions=regions,
            frame_time_s=frame_time_s,
            seed_uid="test",
        )
        if changes:
            ds = dcmread(path)
            for keyword, value in changes.items():
                if value is None:
                    if keyword in ds:
                        delattr(ds, keyword)
                else:
                    setattr(ds, keyword, value)
            ds.save_as(path)
        return path

    return write
