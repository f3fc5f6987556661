"""The imaged area: the footprint of the echoes, without background, text, rulers or the deep no-signal region."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from echosclero.frames import Calibration, Frame
from echosclero.guidance import Engine
from echosclero.guidance.engine import EngineConfig
from echosclero.guidance.footprint import imaged_area
from echosclero.guidance.preprocess import prepare

DATA = Path(__file__).resolve().parents[1] / "data" / "real"


def _speckle(rows: int, cols: int, rng: np.random.Generator, level: float = 90.0) -> np.ndarray:
    env = np.abs(rng.normal(size=(rows, cols)) + 1j * rng.normal(size=(rows, cols)))
    env = cv2.GaussianBlur(env.astype(np.float32), (0, 0), 1.2)
    return np.clip(level * env / env.mean(), 0, 255)


def _sector_screen(rng: np.random.Generator, *, deep_dark_from: float | None = None):
    """A 480 x 640 screen: a sector of speckle, a black lumen inside, text and a ruler on the black around it."""
    rows, cols = 480, 640
    img = _speckle(rows, cols, rng)
    sector = np.zeros((rows, cols), np.uint8)
    cv2.ellipse(sector, (320, -40), (470, 470), 0, 55, 125, 1, -1)
    cv2.circle(img, (320, 220), 25, 4.0, -1)  # an anechoic lumen inside
    if deep_dark_from is not None:
        z = np.arange(rows, dtype=np.float32)[:, None]
        img *= np.where(z > deep_dark_from, np.exp(-(z - deep_dark_from) / 6.0), 1.0)
    img = img * sector
    screen = img.astype(np.uint8)
    for k, text in enumerate(["GE LOGIQ", "L8-18i  12 MHz", "Gn 64  DR 87", "FR 26 Hz"]):
        cv2.putText(screen, text, (8, 24 + 22 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 230, 1, cv2.LINE_AA)
    for k in range(6):  # depth ruler ticks on the right
        cv2.line(screen, (600, 40 + 70 * k), (615, 40 + 70 * k), 255, 2)
    cv2.rectangle(screen, (622, 300), (636, 470), 200, -1)  # a grey bar
    return screen, sector.astype(bool)


def _area(screen: np.ndarray, mm: float = 0.1) -> tuple[np.ndarray, object]:
    prep = prepare(Frame(screen, Calibration(mm, mm)))
    return prep.imaged, prep


def test_sector_footprint_leaves_out_background_text_and_ruler():
    screen, sector = _sector_screen(np.random.default_rng(1))
    imaged, prep = _area(screen)
    truth = cv2.resize(sector.astype(np.uint8), (prep.shape[1], prep.shape[0]), interpolation=cv2.INTER_AREA) > 0.5
    iou = (imaged & truth).sum() / (imaged | truth).sum()
    assert iou >= 0.93, iou
    # the text block (top left), the ruler (right) and the grey bar are outside
    fx, fz = prep.fx, prep.fz
    assert not imaged[int(20 / fz):int(90 / fz), int(8 / fx):int(150 / fx)].any()
    assert not imaged[int(300 / fz):int(470 / fz), int(600 / fx):].any()
    # the anechoic lumen inside the sector is inside the footprint
    assert imaged[int(220 / fz), int(320 / fx)]


def test_deep_no_signal_region_is_cut():
    screen, sector = _sector_screen(np.random.default_rng(2), deep_dark_from=330)
    imaged, prep = _area(screen)
    rows_in = np.flatnonzero(imaged[:, prep.shape[1] // 2])
    deepest_px = (rows_in.max() + 0.5) * prep.fz
    assert 320 <= deepest_px <= 380, deepest_px  # signal fades from row 330 (e-folding 6 px)


def test_whole_frame_of_speckle_is_all_footprint():
    img = _speckle(300, 300, np.random.default_rng(3)).astype(np.uint8)
    imaged = imaged_area(img.astype(np.float32) / 255, 0.2, 0.2)
    assert imaged.mean() > 0.99


def test_no_vessel_outside_the_imaged_area_on_a_screen_with_black_and_text():
    screen, sector = _sector_screen(np.random.default_rng(4))
    res = Engine(EngineConfig(lumen_net=False)).process(Frame(screen, Calibration(0.1, 0.1)))
    prep = prepare(Frame(screen, Calibration(0.1, 0.1)))
    for v in res.vessels:
        r, c = prep.to_px(*v.center_mm)
        assert prep.imaged[int(round(float(r))), int(round(float(c)))], v.center_mm
    # the one real lumen is found, near (32.0, 22.0) mm
    assert any(abs(v.center_mm[0] - 32.0) < 1.0 and abs(v.center_mm[1] - 22.0) < 1.0 for v in res.vessels)


@pytest.mark.parametrize("net", [False, True])
def test_itkpocus_phantom_targets_found_at_their_width(net):
    from echosclero.sources.open import open_source

    with open_source(DATA / "itkpocus" / "sonoque_anechoic-3mm-3mm.dcm") as src:
        frame = next(iter(src.frames()))
    res = Engine(EngineConfig(lumen_net=net)).process(frame)
    prep = prepare(frame)
    targets = [v for v in res.vessels if 10 <= v.center_mm[1] <= 24 and 1.5 <= v.diameter_mm <= 4.5]
    assert len(targets) == 2, [(v.center_mm, v.diameter_mm) for v in res.vessels]
    for v in targets:
        width = v.contour_mm[:, 0].max() - v.contour_mm[:, 0].min() + prep.mm_per_px_x
        assert abs(width - 2.68) <= 0.3, width  # measured FWHM across: 2.65-2.71 mm


def _shifted_sector_screen(rng: np.random.Generator, shift_px: int) -> np.ndarray:
    """The sector screen with its image moved ``shift_px`` columns (a new depth or a zoom moves the footprint)."""
    screen, _ = _sector_screen(rng)
    return np.roll(screen, shift_px, axis=1)


def test_footprint_is_reused_over_a_still_cine_and_recomputed_when_the_display_changes():
    from echosclero.guidance.footprint import REUSE_MAX_FRAMES, FootprintCache

    rng = np.random.default_rng(5)
    cal = Calibration(0.1, 0.1)
    cache = FootprintCache()
    still = [_sector_screen(rng)[0] for _ in range(6)]  # new speckle each frame, the same display
    first = prepare(Frame(still[0], cal), footprint_cache=cache).imaged
    for screen in still[1:]:
        assert prepare(Frame(screen, cal), footprint_cache=cache).imaged is first
    assert cache.reused == len(still) - 1
    # the display changes (the sector moves 60 px): recomputed at once, equal to the footprint found without a cache
    moved = _shifted_sector_screen(rng, 60)
    got = prepare(Frame(moved, cal), footprint_cache=cache).imaged
    want = prepare(Frame(moved, cal)).imaged
    assert cache.reused == len(still) - 1
    assert np.array_equal(got, want)
    assert got.sum() > 0 and not np.array_equal(got, first)
    # and never reused for longer than REUSE_MAX_FRAMES frames
    cache = FootprintCache()
    for _ in range(2 * REUSE_MAX_FRAMES + 2):
        prepare(Frame(still[0], cal), footprint_cache=cache)
    assert cache.reused == 2 * REUSE_MAX_FRAMES


def test_footprint_reuse_ends_when_the_probe_moves_on_a_display_without_background():
    from echosclero.guidance.footprint import FootprintCache

    rng = np.random.default_rng(6)
    cal = Calibration(0.1, 0.1)
    img = _speckle(400, 400, rng)
    cv2.circle(img, (200, 150), 30, 4.0, -1)
    cache = FootprintCache()
    prepare(Frame(img.astype(np.uint8), cal), footprint_cache=cache)
    other = _speckle(400, 400, np.random.default_rng(7), level=60.0)  # another view: new tissue, another gain
    cv2.circle(other, (120, 300), 40, 4.0, -1)
    prepare(Frame(other.astype(np.uint8), cal), footprint_cache=cache)
    assert cache.reused == 0
