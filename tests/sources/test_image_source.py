"""Screenshots (PNG, JPEG, TIFF) and folders of numbered images as a cine; --roi and --frame-time-ms."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from echosclero.errors import CalibrationMissingError, InputError
from echosclero.sources.image import ImageSequenceSource, ImageSource
from echosclero.sources.open import open_source


def _screen(rng, *, lumen_at=(150, 120), radius=22) -> np.ndarray:
    env = np.abs(rng.normal(size=(240, 320)) + 1j * rng.normal(size=(240, 320)))
    img = np.clip(90 * cv2.GaussianBlur(env.astype(np.float32), (0, 0), 1.2) / 1.25, 0, 255)
    cv2.circle(img, lumen_at, radius, 3.0, -1)
    return img.astype(np.uint8)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_screenshot_formats_give_one_calibrated_frame(tmp_path, ext):
    img = _screen(np.random.default_rng(0))
    path = tmp_path / f"shot{ext}"
    Image.fromarray(img).save(path)
    with open_source(path, mm_per_px=0.1) as src:
        frames = list(src.frames())
    assert len(frames) == 1
    assert frames[0].pixels.shape == (240, 320)
    assert frames[0].calibration.mm_per_px_x == pytest.approx(0.1)
    if ext != ".jpg":
        assert np.array_equal(frames[0].pixels, img)


def test_screenshot_without_mm_per_px_is_refused_with_the_way_out(tmp_path):
    path = tmp_path / "shot.png"
    Image.fromarray(_screen(np.random.default_rng(1))).save(path)
    with pytest.raises(CalibrationMissingError, match="--mm-per-px"):
        list(ImageSource(path).frames())


def test_corrupt_image_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(InputError, match="broken.png"):
        ImageSource(path, mm_per_px=0.1)


def test_numbered_images_are_one_cine_in_number_order(tmp_path):
    rng = np.random.default_rng(2)
    for k in (1, 2, 9, 10, 11):  # name order would put 10 and 11 before 2
        img = _screen(rng, lumen_at=(100 + 5 * k, 120))
        Image.fromarray(img).save(tmp_path / f"frame{k}.png")
    src = ImageSequenceSource(tmp_path, frame_time_s=0.05, mm_per_px=0.1)
    frames = list(src.frames())
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [round(f.t_s, 3) for f in frames] == [0.0, 0.05, 0.1, 0.15, 0.2]
    assert [f.source_id.rsplit("/", 1)[-1] for f in frames] == ["frame1.png", "frame2.png", "frame9.png",
                                                                 "frame10.png", "frame11.png"]


def test_folder_cine_needs_a_frame_time(tmp_path):
    Image.fromarray(_screen(np.random.default_rng(3))).save(tmp_path / "a1.png")
    with pytest.raises(InputError, match="--frame-time-ms"):
        ImageSequenceSource(tmp_path, frame_time_s=None, mm_per_px=0.1)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "echosclero", *args], capture_output=True, text=True, timeout=300)


def test_analyze_a_folder_of_images_as_a_cine_tracks_the_lumen(tmp_path):
    rng = np.random.default_rng(4)
    folder = tmp_path / "cine"
    folder.mkdir()
    for k in range(6):
        Image.fromarray(_screen(rng, lumen_at=(150, 120), radius=22)).save(folder / f"img_{k:03d}.png")
    out = tmp_path / "a.json"
    r = _cli("analyze", str(folder), "--frame-time-ms", "50", "--mm-per-px", "0.1", "--json", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert len(doc["frames"]) == 6
    assert doc["frames"][-1]["t_s"] == pytest.approx(0.25)
    ids = {v["id"] for fr in doc["frames"] for v in fr["vessels"]
           if abs(v["center_mm"][0] - 15.05) < 1.0 and abs(v["center_mm"][1] - 12.05) < 1.0}
    assert len(ids) == 1  # one lumen, one id through the cine
    last = [v for v in doc["frames"][-1]["vessels"] if abs(v["center_mm"][0] - 15.05) < 1.0][0]
    assert last["diameter_mm"] == pytest.approx(4.5, abs=0.4)  # radius 22 px at 0.1 mm/px: 4.5 mm across
    assert 0.0 <= last["confidence"] <= 1.0


def test_analyze_roi_cuts_the_frame_and_moves_the_origin(tmp_path):
    img = _screen(np.random.default_rng(5), lumen_at=(150, 120))
    path = tmp_path / "shot.png"
    Image.fromarray(img).save(path)
    out = tmp_path / "a.json"
    r = _cli("analyze", str(path), "--mm-per-px", "0.1", "--roi", "50,20,300,230", "--json", str(out))
    assert r.returncode == 0, r.stderr
    vessels = json.loads(out.read_text())["frames"][0]["vessels"]
    # the lumen at pixel (150, 120) is at (100, 100) px inside the box: (10.05, 10.05) mm
    assert any(abs(v["center_mm"][0] - 10.05) < 0.8 and abs(v["center_mm"][1] - 10.05) < 0.8 for v in vessels)


@pytest.mark.parametrize("roi, message", [("1,2,3", "four whole numbers"), ("50,50,10,10", "empty"),
                                          ("0,0,999,999", "does not fit")])
def test_bad_roi_is_one_line_and_exit_2(tmp_path, roi, message):
    path = tmp_path / "shot.png"
    Image.fromarray(_screen(np.random.default_rng(6))).save(path)
    r = _cli("analyze", str(path), "--mm-per-px", "0.1", "--roi", roi)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
