"""Pictures a person looks at: PNG contact sheets and a millimetre scale bar (video: ``echosclero.render``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from echosclero.errors import InputError


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 (rows, cols) or (rows, cols, 3) -> contiguous RGB uint8."""
    if pixels.dtype != np.uint8:
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3])


def draw_scale_bar(rgb: np.ndarray, *, px_per_mm: float, width_mm: float) -> np.ndarray:
    """Draw a millimetre scale bar bottom-left (10 mm, or 5 mm on a narrow image, 1 mm ticks); in place."""
    h = rgb.shape[0]
    bar_mm = 10.0 if width_mm >= 25 else 5.0
    x0, y0 = 10, h - 12
    x1 = x0 + int(round(bar_mm * px_per_mm))
    cv2.line(rgb, (x0, y0), (x1, y0), (255, 255, 255), 2)
    for k in range(int(bar_mm) + 1):
        xk = x0 + int(round(k * px_per_mm))
        cv2.line(rgb, (xk, y0), (xk, y0 - (6 if k % 5 == 0 else 3)), (255, 255, 255), 1)
    cv2.putText(rgb, f"{bar_mm:g} mm", (x0, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return rgb


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str], *, columns: int = 4,
                  tile_width: int = 320, title: str = "") -> np.ndarray:
    """Tile images (RGB or grey) with a label under each, and an optional title bar; returns RGB uint8."""
    if not images:
        raise InputError("contact sheet needs at least one image")
    tiles = []
    for img, label in zip(images, labels, strict=True):
        rgb = to_rgb(img)
        scale = tile_width / rgb.shape[1]
        rgb = cv2.resize(rgb, (tile_width, int(round(rgb.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        bar = np.full((22, tile_width, 3), 24, np.uint8)
        cv2.putText(bar, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
        tiles.append(np.vstack([rgb, bar]))
    th = max(t.shape[0] for t in tiles)
    tiles = [np.vstack([t, np.zeros((th - t.shape[0], tile_width, 3), np.uint8)]) for t in tiles]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    sheet = np.vstack(rows)
    if title:
        head = np.full((30, sheet.shape[1], 3), 12, np.uint8)
        cv2.putText(head, title, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        sheet = np.vstack([head, sheet])
    return sheet


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(to_rgb(rgb), cv2.COLOR_RGB2BGR)):
        raise InputError(f"could not write PNG {path}")
    return path
