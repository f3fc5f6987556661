"""VideoSource on a small MP4 written with OpenCV (mp4v), plus its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from echosclero.errors import CalibrationMissingError, InputError
from echosclero.sources.video import VideoSource

N_FRAMES, ROWS, COLS, FPS = 12, 48, 64, 20.0


@pytest.fixture(scope="module")
def video_path(tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (COLS, ROWS))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write mp4v video")
    for k in range(N_FRAMES):
        bgr = np.zeros((ROWS, COLS, 3), np.uint8)
        bgr[..., 2] = 200  # red in BGR order
        bgr[8:24, 4 + 3 * k : 20 + 3 * k, :] = 255  # a moving white square
        writer.write(bgr)
    writer.release()
    return path


def test_info_without_calibration(video_path):
    src = VideoSource(video_path)
    info = src.info()
    assert info.kind == "video" and info.n_frames == N_FRAMES
    assert (info.rows, info.cols) == (ROWS, COLS)
    assert info.frame_time_s == pytest.approx(1 / FPS)
    assert not info.calibrated and "--mm-per-px" in info.details["calibration_note"]
    with pytest.raises(CalibrationMissingError, match="--mm-per-px"):
        src.frames()


def test_frames_rgb_calibrated_and_timed(video_path):
    frames = list(VideoSource(video_path, mm_per_px=0.15).frames())
    assert len(frames) == N_FRAMES
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert [f.t_s for f in frames] == pytest.approx([k / FPS for k in range(N_FRAMES)])
    first = frames[0]
    assert first.pixels.shape == (ROWS, COLS, 3) and first.pixels.dtype == np.uint8
    assert first.calibration.source == "user" and first.calibration.mm_per_px_x == 0.15
    corner = first.pixels[40:46, 50:60].reshape(-1, 3).mean(axis=0)
    assert corner[0] > 150 and corner[2] < 60  # BGR converted to RGB: red stays red
    # the white square moves right by 3 px per frame
    col = [int(np.argmax(f.pixels[16, :, 1] > 180)) for f in (frames[0], frames[5])]
    assert col[1] - col[0] == pytest.approx(15, abs=2)


def test_crop_box_is_inclusive(video_path):
    src = VideoSource(video_path, mm_per_px=0.1, crop_px=(4, 2, 43, 31))
    frame = next(src.frames())
    assert frame.pixels.shape == (30, 40, 3)
    assert frame.calibration.region_px == (4, 2, 43, 31)
    assert src.info().details["frame_shape"] == [30, 40]


@pytest.mark.parametrize("crop", [(0, 0, COLS, 10), (10, 10, 5, 20), (1, 2, 3)])
def test_crop_box_outside_is_refused(video_path, crop):
    with pytest.raises(InputError, match="crop box"):
        VideoSource(video_path, mm_per_px=0.1, crop_px=crop)


def test_max_frames(video_path):
    assert len(list(VideoSource(video_path, mm_per_px=0.1, max_frames=3).frames())) == 3


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        VideoSource(tmp_path / "nope.mp4")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(InputError, match="fake.mp4"):
        VideoSource(fake)


def test_absent_capture_device_is_refused():
    with pytest.raises(InputError, match="capture device 97"):
        VideoSource("video:97", mm_per_px=0.1)
    with pytest.raises(InputError, match="video:N"):
        VideoSource("video:abc")
