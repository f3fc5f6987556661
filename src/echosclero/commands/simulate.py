"""``echosclero simulate``: named leg-ultrasound scenarios as US DICOM cines with ground truth."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = """\
Simulate a sclerotherapy scenario with physics-based leg ultrasound and write:

  DIR/SCENARIO.dcm   multi-frame US DICOM with ultrasound regions (mm calibration) and frame time
  DIR/truth.json     per-frame ground truth in the `echosclero analyze` schema (echosclero.analysis/1)
  DIR/SCENARIO.mp4, DIR/SCENARIO_contact_sheet.png   with --preview

The same seed gives the same scene; different seeds vary anatomy, needle path and timing.
Run `echosclero simulate --list` for the scenarios.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulated leg ultrasound scenarios with ground truth",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", nargs="?", help="scenario name (see --list)")
    p.add_argument("--list", action="store_true", help="print the scenario names with a one-line description")
    p.add_argument("--out", type=Path, help="output folder (created if needed)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--duration-s", type=float, default=None, help="length of the cine in seconds")
    p.add_argument("--frame-rate-hz", type=float, default=None, help="frames per second (default 20)")
    p.add_argument("--preview", action="store_true", help="also write an MP4 and a PNG contact sheet")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echosclero.errors import InputError
    from echosclero.sim import list_scenarios

    if args.list:
        for name, description in list_scenarios():
            print(f"{name:24s} {description}")
        return 0
    if not args.scenario:
        raise InputError("name a scenario (e.g. `echosclero simulate gsv_injection --out sim/`) or use --list")
    if args.out is None:
        raise InputError("--out DIR is required: the folder to write the DICOM and truth.json into")
    result = simulate_to_folder(args.scenario, args.out, seed=args.seed, duration_s=args.duration_s,
                                frame_rate_hz=args.frame_rate_hz, preview=args.preview)
    for path in result.values():
        print(path)
    return 0


def simulate_to_folder(name: str, out: Path, *, seed: int = 0, duration_s: float | None = None,
                       frame_rate_hz: float | None = None, preview: bool = False, progress: bool | None = None
                       ) -> dict[str, Path]:
    """Render a scenario and write DICOM, truth.json and optionally a preview; returns the paths written."""
    import numpy as np
    from tqdm import tqdm

    from echosclero.errors import InputError
    from echosclero.interop.usdicom import write_us_dicom
    from echosclero.sim import open_simulated_source

    source = open_simulated_source(name, seed=seed, duration_s=duration_s, frame_rate_hz=frame_rate_hz)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out}: {exc.strerror}") from exc
    screens, truths, frames = [], [], []
    bar = tqdm(total=source.n_frames, desc=f"simulating {name}", unit="frame",
               disable=not (progress if progress is not None else sys.stderr.isatty()), file=sys.stderr)
    regions = None
    for frame in source.frames():
        screen, regions = screen_with_regions(frame)
        screens.append(screen)
        truths.append(frame.meta["truth"])
        if preview:
            frames.append(frame)
        bar.update(1)
    bar.close()
    stack = np.stack(screens)
    paths = {}
    paths["dicom"] = write_us_dicom(
        out / f"{name}.dcm", stack, regions=regions, frame_time_s=source.frame_time_s,
        series_description=f"EchoSclero simulation {name} seed {seed}",
        study_description="Simulated ultrasound-guided sclerotherapy", patient_id=f"SIM{seed:04d}",
    )
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(source.truth_document(truths), indent=1))
    paths["truth"] = truth_path
    if preview:
        paths.update(write_preview(out, name, screens, frames, source.frame_time_s))
    return paths


def screen_with_regions(frame):
    """The scanner 'screen' for a frame (B-mode, with the spectral display below when present) and its
    DICOM ultrasound regions."""
    import numpy as np

    from echosclero.interop.usdicom import UltrasoundRegion

    cal = frame.calibration
    rows, cols = frame.shape
    tissue = UltrasoundRegion(bbox_px=(0, 0, cols - 1, rows - 1), data_type="tissue",
                              mm_per_px_x=cal.mm_per_px_x, mm_per_px_z=cal.mm_per_px_z)
    regions = [tissue]
    colour = frame.pixels.ndim == 3
    if colour:
        regions.append(UltrasoundRegion(bbox_px=(0, 0, cols - 1, rows - 1), data_type="color",
                                        mm_per_px_x=cal.mm_per_px_x, mm_per_px_z=cal.mm_per_px_z))
    screen = frame.pixels
    if frame.spectral is not None and frame.spectral_pixels is not None:
        sp = frame.spectral_pixels
        if sp.ndim == 3 and not colour:
            sp = sp[..., 0]
        if colour and sp.ndim == 2:
            sp = np.repeat(sp[..., None], 3, axis=2)
        if sp.shape[1] != cols:
            raise ValueError("spectral display width must match the B-mode width")
        screen = np.concatenate([screen, sp], axis=0)
        s = frame.spectral
        regions.append(UltrasoundRegion(bbox_px=(0, rows, cols - 1, rows + sp.shape[0] - 1), data_type="PW",
                                        s_per_px=s.s_per_px, cm_s_per_px=s.cm_s_per_px, baseline_row=s.baseline_row))
    return screen, regions


def write_preview(out: Path, name: str, screens, frames, frame_time_s: float, *, annotate=None,
                  suffix: str = "") -> dict[str, Path]:
    """MP4 of the screens and a contact sheet of eight of them. ``annotate(frame, screen_rgb) -> rgb`` may draw
    over each screen (the demo draws the guidance engine's findings)."""
    import numpy as np

    from echosclero.media import contact_sheet, draw_scale_bar, to_rgb, write_png
    from echosclero.render import VideoWriter

    def picture(i: int) -> np.ndarray:
        rgb = to_rgb(screens[i]).copy()
        if annotate is not None:
            return annotate(frames[i], rgb)
        cal = frames[i].calibration
        draw_scale_bar(rgb[: frames[i].shape[0]], px_per_mm=1 / cal.mm_per_px_x, width_mm=frames[i].width_mm)
        return rgb

    pictures = [picture(i) for i in range(len(frames))]
    mp4 = out / f"{name}{suffix}.mp4"
    with VideoWriter(mp4, 1.0 / frame_time_s) as writer:
        for rgb in pictures:
            writer.write(rgb)
    picks = sorted({int(round(i)) for i in np.linspace(0, len(frames) - 1, 8)}) if frames else []
    sheet = contact_sheet([pictures[i] for i in picks], [f"t = {frames[i].t_s:.2f} s" for i in picks],
                          title=f"EchoSclero: {name}")
    png = write_png(out / f"{name}{suffix}_contact_sheet.png", sheet)
    return {"video": mp4, "contact_sheet": png}
