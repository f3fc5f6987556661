"""Truth lumen masks of a simulated scene and the network's input image; shared by training, peers and tests.

Needs only numpy and OpenCV (and the simulator), never torch or onnxruntime, so the training venv, the
benchmark and the tests all use the very same definitions.

Label convention of the U-Net peer (one class per pixel): ``0`` background, ``1`` vein lumen, ``2`` artery
lumen. The lumen is the blood-filled (or thrombus- or foam-filled) inside of the vessel wall, rasterised from
the simulator's exact geometry with the simulator's own :class:`~echosclero.sim.phantom.Raster`, so a mask
pixel is lumen exactly when the rendered frame drew lumen there.
"""

from __future__ import annotations

import numpy as np

from echosclero.errors import InputError
from echosclero.sim import phantom as ph

__all__ = ["BACKGROUND", "VEIN", "ARTERY", "CLASS_NAMES", "lumen_labels", "network_input"]

BACKGROUND, VEIN, ARTERY = 0, 1, 2
CLASS_NAMES = ("background", "vein", "artery")


def lumen_labels(scene) -> np.ndarray:
    """Per-pixel lumen labels of a scene in its *current* state (call right after the frame was rendered).

    Parameters
    ----------
    scene : echosclero.sim.scene.Scene
        The scene of a :class:`~echosclero.sim.scenarios.SimulatedSource` (``source.scene``); its vessels hold
        the geometry of the frame just yielded by ``source.frames()``.

    Returns
    -------
    labels : (rows, cols) uint8 ndarray
        0 background, 1 vein lumen, 2 artery lumen (arteries drawn last: they win where lumens touch).
    """
    raster: ph.Raster = scene.raster
    labels = np.zeros(scene.grid.shape, np.uint8)
    for kind, value in (("vein", VEIN), ("artery", ARTERY)):
        for v in scene.vessels:
            if v.kind != kind:
                continue
            if v.longitudinal:
                path = v.path_now()
                n = ph._normals(path)
                poly = np.vstack([path + n * v.b_mm, (path - n * v.b_mm)[::-1]])
            else:
                poly = v.lumen_polygon()
            labels[raster.mask_polygon(poly)] = value
    return labels


def network_input(pixels: np.ndarray) -> np.ndarray:
    """The grey image the network sees, as float32 display levels 0..255 (no rescaling).

    Parameters
    ----------
    pixels : (rows, cols) or (rows, cols, 3) uint8 ndarray
        A frame's pixels. For an RGB frame (colour Doppler) the grey level is the smaller of red and blue, as in
        :mod:`echosclero.guidance.preprocess`: colour-flow pixels come out dark like blood, white echoes stay
        bright.

    Returns
    -------
    grey : (rows, cols) float32 ndarray
    """
    a = np.asarray(pixels)
    if a.dtype != np.uint8:
        raise InputError(f"frame pixels must be uint8 display levels, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 3:
        a = np.minimum(a[..., 0], a[..., 2])
    elif a.ndim != 2:
        raise InputError(f"frame pixels must be (rows, cols) or (rows, cols, 3), got shape {a.shape}")
    return a.astype(np.float32)
