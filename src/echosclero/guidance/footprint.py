"""The imaged area: where a frame holds ultrasound data, inside its calibrated region.

A scanner's calibrated region is a rectangle, but the echoes fill only part of it: a linear, trapezoid or
sector footprint, with black background around it, burned-in text, rulers, colour bars and colour-box
outlines on the background, and at depth a region where the echo has sunk into the noise floor. Nothing in
those parts is anatomy; a lumen detector that looks there finds "vessels" in the black (an anechoic lumen
and the background are both dark).

The footprint is read from the frame itself, at the working resolution:

1. *signal*: pixels whose local (~1 mm) mean stands above the frame's own black level (the grey of the
   darkest percentile, which is the background when there is one) by more than a few display levels, and
   where few full-resolution pixels are at that black level (text is bright strokes on pure black; speckle
   has hardly a pixel at the background's level), and with texture (a grey bar or a filled label is flat;
   speckle varies by a third of its mean);
2. *screen graphics removed*: a morphological opening whose size is the larger of a physical size (wider
   than text strokes and ruler ticks, narrower than the thinnest footprint) and a screen size in pixels of
   the full frame (glyphs are drawn in screen pixels whatever the depth setting);
3. the convex hull of the largest connected part together with any other part at least
   :data:`OTHER_PART_SHARE` of its size, or lying above or below it as a layer (a long-axis vessel crossing the
   whole image cuts the tissue in two):
   every footprint a probe makes (rectangle, trapezoid, sector) is convex, so the hull restores anechoic lumens
   and dark regions inside it (two images side by side need ``--roi``);
4. *deep no-signal region*: below the deepest row in each column where the smoothed echo still stands above
   :data:`NOISE_FLOOR_SHARE` of the footprint's median tissue level, the column is cut (the cut line is
   smoothed across columns).

The result is a boolean mask at working resolution; :func:`inside` tests points in millimetres.

Over a cine the footprint is the same from frame to frame until the display changes (depth, mode, a rotating
rendering), so a :class:`FootprintCache` reuses the last one while the frame's *layout* stays that of the frame
it was computed on: its black layout (the share of pixels at the black level per working pixel: background, text,
rulers) and its coarse grey (~2 mm blocks, which a depth change, a freeze or a moving probe rescale or shift), for at
most :data:`REUSE_MAX_FRAMES` frames (gain, depth of penetration and shadows change the deep cut slowly). A changed
display is a changed layout and is recomputed at once.
"""

from __future__ import annotations

import cv2
import numpy as np

from echosclero.guidance._masks import shrink
from echosclero.guidance._quantile import percentile

__all__ = ["FootprintCache", "imaged_area", "inside"]

#: Local-mean window of the signal test (mm): wider than a speckle grain, narrower than a lumen.
SIGNAL_WINDOW_MM = 1.0
#: A pixel is signal when its local mean exceeds the frame's black level by this much (display levels,
#: 0-255 scale): background is flat black with at most JPEG noise of 1-3 levels; speckle varies by tens.
SIGNAL_LEVELS = 6.0
#: Opening that removes burned-in graphics: at least this wide (mm) ...
GRAPHICS_MM = 1.2
#: ... and at least this many full-frame pixels (text glyphs are 8-20 screen pixels tall, strokes 1-3).
GRAPHICS_SCREEN_PX = 14
#: Signal holds at most this share of full-resolution pixels at the black level (within BLACK_LEVELS).
MAX_BLACK_SHARE = 0.4
BLACK_LEVELS = 3.0
#: Texture of signal: local standard deviation over local mean at least this (speckle: 0.3-0.5, smoothed by a
#: scanner 0.05-0.2; flat screen graphics, even JPEG-compressed: below 0.01).
MIN_TEXTURE = 0.02
#: Smallest footprint (mm²): a 10 x 10 mm view. When no part is this big, the whole frame is the footprint.
MIN_FOOTPRINT_MM2 = 100.0
#: Another signal part at least this share of the largest belongs to the footprint too ...
OTHER_PART_SHARE = 0.3
#: ... and so does a layer above or below it (tissue on the other side of a long-axis vessel that crosses the
#: image): spanning this share of its width, within LAYER_GAP_MM of it, at least LAYER_MIN_SHARE of its area and
#: LAYER_MIN_MM thick (a toolbar or a scale strip along the image is thinner).
LAYER_OVERLAP = 0.6
LAYER_GAP_MM = 20.0
LAYER_MIN_SHARE = 0.05
LAYER_MIN_MM = 3.0
#: Deep no-signal cut: the smoothed echo (over DEEP_WINDOW_MM) below this share of the footprint's median
#: is noise floor; the cut line is smoothed over DEEP_SMOOTH_MM laterally.
NOISE_FLOOR_SHARE = 0.12
DEEP_WINDOW_MM = 3.0
DEEP_SMOOTH_MM = 6.0
#: Reuse of the last footprint (:class:`FootprintCache`): at most this many frames after the one it was found on
#: (a quarter of a second at 30 frames/s: gain and depth of penetration change over seconds) ...
REUSE_MAX_FRAMES = 8
#: ... while at most this share of the working pixels changed their black share by more than REUSE_SHARE_STEP
#: against that frame (a depth or mode change moves the whole layout: tens of percent; a lumen that collapses
#: under the probe changes about 2 %; speckle and JPEG noise well below 1 %).
REUSE_MAX_CHANGED = 0.01
REUSE_SHARE_STEP = 0.5
#: ... and at most this share of the ~REUSE_BLOCK_MM blocks changed their mean grey by more than REUSE_GREY_STEP of
#: the frame's median level (a still probe over pulsing vessels: a few percent of the blocks; a depth change or a
#: moving probe: most of them).
REUSE_BLOCK_MM = 2.0
REUSE_GREY_STEP = 0.25
REUSE_MAX_GREY_CHANGED = 0.1


def _odd(n: float) -> int:
    return max(1, int(round(n)) | 1)


class FootprintCache:
    """The last footprint found in a cine and the black layout it was found on (see the module's notes).

    One per stream (the engine holds one; :meth:`reset` between cines). ``reused`` counts the frames served from
    it (for benchmarks and tests)."""

    __slots__ = ("_key", "_share", "_blocks", "_mask", "_age", "reused")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._key: tuple | None = None
        self._share: np.ndarray | None = None
        self._blocks: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._age = 0
        self.reused = 0

    def lookup(self, key: tuple, share: np.ndarray, blocks: np.ndarray) -> np.ndarray | None:
        """The cached footprint if this frame's black layout ``share`` and coarse grey ``blocks`` match those of
        the frame it was found on."""
        if self._mask is None or key != self._key or self._age >= REUSE_MAX_FRAMES:
            return None
        diff = cv2.absdiff(share, self._share)
        if np.count_nonzero(diff > np.float32(REUSE_SHARE_STEP)) > REUSE_MAX_CHANGED * share.size:
            return None
        level = max(float(np.median(self._blocks)), 1e-3)
        moved = cv2.absdiff(blocks, self._blocks) > np.float32(REUSE_GREY_STEP * level)
        if np.count_nonzero(moved) > REUSE_MAX_GREY_CHANGED * blocks.size:
            return None
        self._age += 1
        self.reused += 1
        return self._mask

    def store(self, key: tuple, share: np.ndarray, blocks: np.ndarray, mask: np.ndarray) -> None:
        mask.setflags(write=False)  # shared by the frames that reuse it
        self._key, self._share, self._blocks, self._mask, self._age = key, share, blocks, mask, 0


def imaged_area(grey: np.ndarray, mm_per_px_x: float, mm_per_px_z: float, *, full: np.ndarray | None = None,
                cache: FootprintCache | None = None) -> np.ndarray:
    """Boolean mask of the imaged area of ``grey`` (working-resolution float32 grey, 0-1 scale).

    ``full``: the full-resolution uint8 frame ``grey`` was reduced from (the brightest channel of a colour
    frame), for the black-pixel share and the screen-size part of the graphics opening. ``cache``: reuse the
    footprint of an earlier frame of the same cine while the display's layout is unchanged
    (:class:`FootprintCache`; needs ``full``). The returned mask must not be modified (it may be shared).
    """
    rows, cols = grey.shape
    g = grey.astype(np.float32, copy=False)
    screen_px = 1.0
    if full is not None:
        sub = full[:: max(1, full.shape[0] // 128), :: max(1, full.shape[1] // 128)]
        black = float(percentile(sub, 1))
        black_level = black / 255.0
        screen_px = 0.5 * (full.shape[0] / rows + full.shape[1] / cols)
        # 255 where a pixel is at the black level, area-averaged to the working grid (on 0/1 the average would be
        # rounded to 0 or 1 and the share lost)
        at_black = cv2.compare(full, black + BLACK_LEVELS, cv2.CMP_LE)
        share = shrink(at_black, (cols, rows)).astype(np.float32) * np.float32(1 / 255.0)
        if cache is not None:
            key = (rows, cols, full.shape, round(mm_per_px_x, 9), round(mm_per_px_z, 9), round(black, 1))
            blocks = cv2.resize(g, (max(1, int(round(cols * mm_per_px_x / REUSE_BLOCK_MM))),
                                    max(1, int(round(rows * mm_per_px_z / REUSE_BLOCK_MM)))),
                                interpolation=cv2.INTER_AREA)
            hit = cache.lookup(key, share, blocks)
            if hit is not None:
                return hit
            fp = _imaged_area(g, mm_per_px_x, mm_per_px_z, black_level, screen_px, share)
            cache.store(key, share, blocks, fp)
            return fp
    else:
        black_level = float(percentile(g[:: max(1, rows // 96), :: max(1, cols // 96)], 1))
        share = None
    return _imaged_area(g, mm_per_px_x, mm_per_px_z, black_level, screen_px, share)


def _imaged_area(g: np.ndarray, mm_per_px_x: float, mm_per_px_z: float, black_level: float, screen_px: float,
                 share: np.ndarray | None) -> np.ndarray:
    rows, cols = g.shape
    kx, kz = _odd(SIGNAL_WINDOW_MM / mm_per_px_x), _odd(SIGNAL_WINDOW_MM / mm_per_px_z)
    local = cv2.blur(g, (kx, kz))
    signal = local > np.float32(black_level + SIGNAL_LEVELS / 255.0)
    sq = cv2.blur(g * g, (kx, kz))
    std = np.sqrt(np.maximum(sq - local * local, 0))
    signal &= std >= np.float32(MIN_TEXTURE) * np.maximum(local, np.float32(1e-3))
    if share is not None:
        signal &= cv2.blur(share, (kx, kz)) <= np.float32(MAX_BLACK_SHARE)
    signal = signal.astype(np.uint8)
    if signal.mean() > 0.985:
        return np.ones((rows, cols), bool)  # no background in view: the frame is a crop of the image
    size_x = max(GRAPHICS_MM / mm_per_px_x, GRAPHICS_SCREEN_PX / max(screen_px, 1e-6))
    size_z = max(GRAPHICS_MM / mm_per_px_z, GRAPHICS_SCREEN_PX / max(screen_px, 1e-6))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_odd(size_x), _odd(size_z)))
    opened = cv2.morphologyEx(signal, cv2.MORPH_OPEN, k)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if n <= 1:
        return np.ones((rows, cols), bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    big = int(areas.max())
    if big * mm_per_px_x * mm_per_px_z < MIN_FOOTPRINT_MM2:
        return np.ones((rows, cols), bool)
    hull = np.zeros((rows, cols), np.uint8)
    ib = 1 + int(np.argmax(areas))
    bx, by, bw, bh = (int(v) for v in stats[ib, :4])
    keep = []
    for i in range(1, n):
        x, y, w, h, a = (int(v) for v in stats[i])
        overlap = min(x + w, bx + bw) - max(x, bx)
        gap_px = max(by - (y + h), y - (by + bh), 0)
        layer = (overlap >= LAYER_OVERLAP * bw and gap_px * mm_per_px_z <= LAYER_GAP_MM
                 and a >= LAYER_MIN_SHARE * big and h * mm_per_px_z >= LAYER_MIN_MM)
        if a >= OTHER_PART_SHARE * big or layer:
            keep.append(i)
    lut = np.zeros(n, bool)
    lut[keep] = True
    kept = lut[lab]
    # the hull of a pixel set is the hull of each row's first and last pixel (a few hundred points, not 10^5)
    on_rows = np.flatnonzero(kept.any(axis=1))
    first = np.argmax(kept[on_rows], axis=1)
    last_px = cols - 1 - np.argmax(kept[on_rows, ::-1], axis=1)
    pts = np.concatenate([np.stack([first, on_rows], 1), np.stack([last_px, on_rows], 1)]).astype(np.int32)
    cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
    fp = hull.astype(bool)
    # deep no-signal region: per column, below the deepest row still above the noise floor
    # (every other row and column: the median of ~10^4 tissue pixels is as good as that of 4 x 10^4)
    med = float(percentile(g[::2, ::2][fp[::2, ::2]], 50)) if fp[::2, ::2].any() else 0.0
    floor = black_level + NOISE_FLOOR_SHARE * max(0.0, med - black_level)
    deep = cv2.blur(g, (_odd(DEEP_WINDOW_MM / mm_per_px_x), _odd(DEEP_WINDOW_MM / mm_per_px_z)))
    above = (deep > np.float32(floor)) & fp
    has = above.any(axis=0)
    last = np.where(has, rows - 1 - np.argmax(above[::-1], axis=0), -1).astype(np.float32)
    cols_in = fp.any(axis=0)
    if has.any():
        w = _odd(DEEP_SMOOTH_MM / mm_per_px_x)
        pad = w // 2
        filled = last.copy()
        filled[~has] = np.nan
        padded = np.pad(filled, pad, mode="edge")
        win = np.lib.stride_tricks.sliding_window_view(padded, w)
        # a column cut shallower than its neighbours is a shadow under a bright echo, not the noise floor
        smooth = np.where(np.isnan(win), -1.0, win).max(axis=1)
        cut = np.arange(rows)[:, None] > (smooth[None, :] + 0.5)
        fp &= ~(cut & cols_in[None, :])
    return fp


def inside(mask: np.ndarray | None, row: float, col: float) -> bool:
    """Whether the working pixel nearest ``(row, col)`` lies in ``mask`` (``None``: everywhere)."""
    if mask is None:
        return True
    r, c = int(round(float(row))), int(round(float(col)))
    if not (0 <= r < mask.shape[0] and 0 <= c < mask.shape[1]):
        return False
    return bool(mask[r, c])
