"""Simulated archives: folders of US DICOM cines from the leg ultrasound simulator.

For benchmarks, tests and demonstrations of archive analysis without patient data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_SCENARIOS", "write_simulated_archive", "write_simulated_cine"]

#: Scenarios cycled through by :func:`write_simulated_archive` (B-mode and colour, needle and foam).
DEFAULT_SCENARIOS = ("gsv_injection", "artery_near_miss", "compression_thrombosis", "foam_deep_junction")


def write_simulated_cine(path: str | os.PathLike, scenario: str, *, n_frames: int, seed: int) -> Path:
    """Write ``n_frames`` of a simulated scenario as a US multi-frame DICOM with ultrasound regions.

    Parameters
    ----------
    path
        Output file.
    scenario
        Simulator scenario (``echosclero simulate --list``).
    n_frames
        Frames to write (from the start of the scenario).
    seed
        Seed of the simulator.

    Returns
    -------
    Path
        The file written.
    """
    from echosclero.interop.usdicom import UltrasoundRegion, write_us_dicom
    from echosclero.sim import open_simulated_source

    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    source = open_simulated_source(scenario, seed=seed)
    frames = source.frames()
    first = next(frames)
    pixels = [first.pixels] + [next(frames).pixels for _ in range(n_frames - 1)]
    frames.close()
    rows, cols = pixels[0].shape[:2]
    cal = first.calibration
    box = (0, 0, cols - 1, rows - 1)
    regions = [UltrasoundRegion(box, "tissue", mm_per_px_x=cal.mm_per_px_x, mm_per_px_z=cal.mm_per_px_z)]
    if pixels[0].ndim == 3:
        regions.append(UltrasoundRegion(box, "color", mm_per_px_x=cal.mm_per_px_x, mm_per_px_z=cal.mm_per_px_z))
    return write_us_dicom(path, np.stack(pixels), regions=regions, frame_time_s=source.frame_time_s,
                          seed_uid=f"{scenario}-{seed}", series_description=f"EchoSclero simulation {scenario}")


def write_simulated_archive(
    folder: str | os.PathLike,
    *,
    n_files: int,
    n_frames: int,
    seed: int = 0,
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
) -> list[Path]:
    """Write ``n_files`` simulated cines (``cine_000.dcm``, ...) into ``folder``, cycling ``scenarios``.

    File ``i`` uses scenario ``scenarios[i % len(scenarios)]`` and seed ``seed + i``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_simulated_cine(folder / f"cine_{i:03d}.dcm", scenarios[i % len(scenarios)], n_frames=n_frames,
                             seed=seed + i)
        for i in range(n_files)
    ]
