"""Figure of a reflux measurement: the spectrum, the traced envelopes and the reflux interval."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from echosclero.doppler.envelope import display_intensity, row_velocities_cm_s
from echosclero.doppler.reflux import RefluxMeasurement
from echosclero.frames import SpectralCalibration

__all__ = ["plot_reflux"]


def plot_reflux(
    path: str | os.PathLike,
    measurement: RefluxMeasurement,
    *,
    pixels: np.ndarray | None = None,
    calibration: SpectralCalibration | None = None,
    reflux_above_baseline: bool = False,
    title: str = "",
    classification_text: str = "",
) -> Path:
    """Write a PNG: the spectral display (antegrade up), max and mean envelopes, the reflux interval.

    Parameters
    ----------
    path
        Output PNG file.
    measurement
        The result of :func:`~echosclero.doppler.reflux.measure_reflux`.
    pixels, calibration
        The display region and its calibration (optional: without them only the traces are drawn).
    reflux_above_baseline
        The display is inverted; it is flipped so that antegrade flow is drawn up.
    title, classification_text
        Optional texts for the title and a second line (e.g. the verdict with its cut-off).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tr = measurement.trace
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=110)
    try:
        if pixels is not None and calibration is not None:
            img = display_intensity(pixels)
            img = np.where(np.isfinite(img), img, 0.0)
            v = row_velocities_cm_s(calibration, img.shape[0], reflux_above_baseline=reflux_above_baseline)
            if v[0] < v[-1]:  # put the fastest antegrade row on top
                img, v = img[::-1], v[::-1]
            dt = calibration.s_per_px
            extent = (tr.t_s[0] - dt / 2, tr.t_s[-1] + dt / 2, v[-1], v[0])
            ax.imshow(img, cmap="gray", aspect="auto", extent=extent, vmin=0, vmax=1, interpolation="nearest")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.plot(tr.t_s, tr.max_velocity_cm_s, color="#ffcc00", lw=1.2, label="maximum velocity envelope")
        ax.plot(tr.t_s, tr.mean_velocity_cm_s, color="#33ccff", lw=0.9, label="mean velocity")
        if measurement.reflux_start_s is not None and measurement.reflux_end_s is not None:
            ax.axvspan(measurement.reflux_start_s, measurement.reflux_end_s, color="#ff3333", alpha=0.25,
                       label=f"reflux {measurement.reflux_ms:.0f} ms")
        if measurement.augmentation_start_s is not None:
            ax.axvspan(measurement.augmentation_start_s, measurement.augmentation_end_s, color="#33cc66",
                       alpha=0.15, label="augmentation")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("velocity (cm/s), antegrade up")
        head = title or "Spectral Doppler reflux"
        text = (f"{head}: reflux {measurement.reflux_ms:.0f} ms, peak reflux "
                f"{measurement.peak_reflux_velocity_cm_s:.1f} cm/s, peak antegrade "
                f"{measurement.peak_antegrade_velocity_cm_s:.1f} cm/s")
        if classification_text:
            text += "\n" + classification_text
        ax.set_title(text, fontsize=9)
        ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out
