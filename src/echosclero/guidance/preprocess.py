"""Frame preparation shared by every guidance stage: grey level, colour-flow mask, working resolution.

All stages work on a reduced-resolution copy of the frame whose pixel pitch is close to
:data:`WORK_MM_PER_PX` (whatever the scanner's pitch), so that every size below is a physical size.
Intensities are never rescaled silently: thresholds are *relative* to a local tissue level estimated from
the image itself (a normalised convolution that ignores anechoic pixels), so a change of gain or
dynamic range moves the threshold with the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from echosclero.errors import InputError
from echosclero.frames import Frame
from echosclero.guidance._masks import shrink
from echosclero.guidance._quantile import median, percentile
from echosclero.guidance.footprint import FootprintCache, imaged_area

__all__ = ["WORK_MM_PER_PX", "Prepared", "prepare"]

#: Target pixel pitch of the working image (mm). Speckle of a 5-10 MHz linear probe is ~0.2-0.4 mm,
#: lumens of interest are >= 1.5 mm: 0.2 mm keeps >= 7 px across the smallest lumen.
WORK_MM_PER_PX = 0.2
#: Scale of the local tissue-level estimate (Gaussian sigma, mm): larger than a lumen, smaller than a layer.
BACKGROUND_SIGMA_MM = 4.0
#: A colour-flow pixel: channels differ by more than this fraction of full scale.
COLOUR_CHROMA_MIN = 0.16


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """One frame ready for analysis.

    Attributes
    ----------
    full : (R, C) uint8
        Full-resolution grey display levels (for an RGB frame the smaller of red and blue, so that
        colour-flow pixels are dark and white echoes stay bright).
    small : (r, c) float32
        Working-resolution grey, speckle-smoothed, colour-flow pixels treated as blood (0).
    background : (r, c) float32
        Local tissue level at working resolution (normalised convolution excluding anechoic pixels).
    colour_small : (r, c) float32 or None
        Fraction of colour-flow pixels per working pixel; ``None`` for a grey frame.
    colour_sign_small : (r, c) float32 or None
        Mean sign of the colour (red +1, blue -1) per working pixel.
    mm_per_px_x, mm_per_px_z
        Pitch of the working image.
    fx, fz
        Full-resolution pixels per working pixel (columns, rows).
    level_lo, level_hi
        Robust grey range of the frame (2nd and 98th percentiles); used to refuse empty frames.
    """

    full: np.ndarray
    small: np.ndarray
    background: np.ndarray
    colour_small: np.ndarray | None
    colour_sign_small: np.ndarray | None
    mm_per_px_x: float
    mm_per_px_z: float
    fx: float
    fz: float
    full_mm_per_px_x: float
    full_mm_per_px_z: float
    level_lo: float
    level_hi: float
    usable: bool
    reason: str = ""
    #: The imaged area (:mod:`.footprint`) at working resolution: where the frame holds ultrasound data.
    imaged: np.ndarray | None = None
    #: Grey relative to the local tissue level (``small / background``), computed once per frame (on making).
    ratio: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.ratio is None:
            object.__setattr__(self, "ratio", self.small / self.background)

    @property
    def shape(self) -> tuple[int, int]:
        return self.small.shape[0], self.small.shape[1]

    def to_mm(self, row: np.ndarray | float, col: np.ndarray | float) -> tuple:
        """Working-pixel ``(row, col)`` (pixel centres at integers) to ``(x_mm, z_mm)``."""
        return ((np.asarray(col) + 0.5) * self.mm_per_px_x, (np.asarray(row) + 0.5) * self.mm_per_px_z)

    def to_px(self, x_mm, z_mm) -> tuple:
        """``(x_mm, z_mm)`` to fractional working-pixel ``(row, col)``."""
        return (np.asarray(z_mm) / self.mm_per_px_z - 0.5, np.asarray(x_mm) / self.mm_per_px_x - 0.5)


def _as_uint8(pix: np.ndarray) -> np.ndarray:
    """Pixels as uint8 display levels (integers scaled by their dtype's maximum, floats by 255)."""
    if pix.dtype == np.uint8:
        return pix
    if np.issubdtype(pix.dtype, np.integer):
        return (pix.astype(np.float32) * np.float32(255.0 / np.iinfo(pix.dtype).max)).astype(np.uint8)
    return np.clip(pix.astype(np.float32) * 255.0, 0, 255).astype(np.uint8)


def prepare(frame: Frame, *, work_mm_per_px: float = WORK_MM_PER_PX,
            footprint_cache: FootprintCache | None = None) -> Prepared:
    """Grey, colour mask, working-resolution image, imaged area and local tissue level of ``frame``.

    ``footprint_cache``: the imaged area of an earlier frame of the same cine, reused while the display's layout
    is unchanged (:class:`~echosclero.guidance.footprint.FootprintCache`; reused blindly, it put vessels outside
    the footprint of frames whose display had changed: a rotating rendering, a depth or mode change).

    Raises
    ------
    InputError
        When the frame has no spatial calibration.
    """
    cal = frame.calibration
    if cal is None:
        raise InputError(
            f"frame {frame.index} of {frame.source_id or 'the input'} has no spatial calibration; "
            "give --mm-per-px to analyse it"
        )
    pix = _as_uint8(frame.pixels)
    rows, cols = pix.shape[:2]
    fx = max(1.0, work_mm_per_px / cal.mm_per_px_x)
    fz = max(1.0, work_mm_per_px / cal.mm_per_px_z)
    c_small = max(8, int(round(cols / fx)))
    r_small = max(8, int(round(rows / fz)))
    fx, fz = cols / c_small, rows / r_small
    colour_small = sign_small = None
    if pix.ndim == 3:
        rgb = np.ascontiguousarray(pix[..., :3])
        # full resolution, for the needle: a white echo is bright in every channel, colour flow is not
        red, _, blue = cv2.split(rgb)  # contiguous planes: much faster than strided channel views
        full = cv2.min(red, blue)
        srgb = shrink(rgb, (c_small, r_small))
        r_, g_, b_ = (c.astype(np.float32) for c in cv2.split(srgb))
        hi = cv2.max(cv2.max(r_, g_), b_)
        lo = cv2.min(cv2.min(r_, g_), b_)
        chroma = (hi - lo) * np.float32(1 / 255.0)
        colour_small = np.clip((chroma - COLOUR_CHROMA_MIN * 0.5) / (COLOUR_CHROMA_MIN * 0.5), 0, 1)
        sign_small = np.sign(r_ - b_) * colour_small
        small = lo * np.float32(1 / 255.0)  # colour-flow pixels read as (dark) blood
        # the footprint is read on the grey part: coloured screen graphics (banners, colour bars, box outlines)
        # are not echoes; colour flow inside the image comes back with the footprint's convex hull
        signal, signal_full = small, full
    else:
        full = pix
        small = shrink(pix, (c_small, r_small)).astype(np.float32)
        small *= np.float32(1 / 255.0)
        signal, signal_full = small, pix
    sub = small[:: max(1, r_small // 64), :: max(1, c_small // 64)]
    lo_level, hi_level = (float(v) for v in percentile(sub, (2, 98)))
    usable, reason = True, ""
    if hi_level - lo_level < 0.03:
        usable = False
        reason = ("all-black frame" if hi_level < 0.1 else
                  ("saturated frame" if lo_level > 0.9 else "featureless (uniform) frame"))
    # speckle suppression: 3x3 median (~0.6 mm) then a light Gaussian
    small = cv2.medianBlur(small, 3)
    small = cv2.GaussianBlur(small, (0, 0), 0.7)
    mmx, mmz = cal.mm_per_px_x * fx, cal.mm_per_px_z * fz
    imaged = imaged_area(signal, mmx, mmz, full=signal_full, cache=footprint_cache)
    # local tissue level: normalised convolution over pixels of the imaged area brighter than half its median
    # (not lumen), computed on a ~1 mm grid (cheap) and interpolated back
    sr, sc = max(1, r_small // 64), max(1, c_small // 64)
    sub_in = sub[imaged[::sr, ::sc][: sub.shape[0], : sub.shape[1]]]  # the unsmoothed levels, as the range above
    med = float(median(sub_in)) if sub_in.size >= 16 else float(median(sub))
    w = ((small > 0.5 * med) & imaged).astype(np.float32)
    k = max(1, int(round(1.0 / mmx)))
    cs, rs = max(4, c_small // k), max(4, r_small // k)
    num = cv2.resize(small * w, (cs, rs), interpolation=cv2.INTER_AREA)
    den = cv2.resize(w, (cs, rs), interpolation=cv2.INTER_AREA)
    sx, sz = BACKGROUND_SIGMA_MM * cs / (c_small * mmx), BACKGROUND_SIGMA_MM * rs / (r_small * mmz)
    num = cv2.GaussianBlur(num, (0, 0), sigmaX=sx, sigmaY=sz, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(den, (0, 0), sigmaX=sx, sigmaY=sz, borderType=cv2.BORDER_REFLECT)
    background = cv2.resize(num / np.maximum(den, 1e-3), (c_small, r_small), interpolation=cv2.INTER_LINEAR)
    background = np.maximum(background, np.float32(max(0.5 * med, 1e-3)))
    return Prepared(full=full, small=small, background=background, colour_small=colour_small,
                    colour_sign_small=sign_small, mm_per_px_x=mmx, mm_per_px_z=mmz, fx=fx, fz=fz,
                    full_mm_per_px_x=cal.mm_per_px_x, full_mm_per_px_z=cal.mm_per_px_z,
                    level_lo=lo_level, level_hi=hi_level, usable=usable, reason=reason, imaged=imaged)
