"""``echosclero reflux``: reflux duration and velocities from a spectral Doppler image."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Measure venous reflux on a spectral Doppler image.

PATH is a DICOM image (a scanner's screen capture or a secondary capture) holding a calibrated
spectral Doppler region: RegionDataType PW or CW, seconds per column on X, cm/s per row on Y, and
the zero-velocity baseline as ReferencePixelY0 (or a screen recording, with the scales given).
Other regions on the screen (the B-mode image, text, scales) are ignored.

What is measured: the maximum-velocity envelope (and the mean velocity) is traced through the
speckle of the spectrum, with the noise floor estimated from the display itself. The envelope is
read on the spectrum's outer edge at 0.8 of the way from the noise floor to the spectrum's own
level (not at its outermost pixel, which carries the display's spectral broadening), and the
reflux starts and ends where its strength crosses a fifth of its level over the run. The
augmentation (antegrade surge on distal compression) is found, then the retrograde flow that
follows release: its duration is reflux_ms, with the peak reflux and peak antegrade velocities.

Screen recordings and screenshots (a video such as .mov/.mp4/.avi, or a .png/.jpg) carry no
ultrasound regions: give the spectrum's box on the screen and its scales, read off the burned-in
axis labels: --spectral-region X0,Y0,X1,Y1 (inclusive screen pixels), --baseline-row ROW (the
screen row of 0 cm/s), --velocity-scale CM_S_PER_PX (cm/s per pixel row, e.g. 100 cm/s over 115
rows = 0.87) and --time-scale (seconds per pixel column, or pixels per second written 71.7px/s).
A video is traced on one frame (--frame, default the last: a scrolling display then shows its
whole sweep). The same options override the regions of a DICOM file.

Which side is reflux: by default flow toward the heart is displayed above the baseline and
reflux below it (the usual venous setting). If the scanner's display was inverted, say
--reflux-above-baseline. The sign a vendor writes for the velocity step does not matter: sides
are read by display position.

Pathological reflux depends on the segment (--segment): superficial veins, tibial, profunda and
calf muscle veins > 500 ms; common femoral, femoral and popliteal veins > 1000 ms; perforators
outward flow >= 500 ms with diameter >= 3.5 mm (SVS/AVF 2011 and SVS/AVF/AVLS 2023 guidelines).
"""

EPILOG = """\
examples:
  echosclero reflux gsv.dcm                              print the result
  echosclero reflux gsv.dcm --segment GSVa --json r.json --plot r.png
  echosclero reflux popliteal.dcm --segment POPV --reflux-above-baseline
  echosclero reflux screen.mov --spectral-region 27,262,457,440 --baseline-row 408.5 \
      --velocity-scale 0.87 --time-scale 71.7px/s --plot trace.png

JSON (schema echosclero.reflux/1): reflux_ms, peak_reflux_velocity_cm_s,
peak_antegrade_velocity_cm_s, trace [[t_s, v_cm_s], ...] with v antegrade positive; plus
mean_trace, reflux_start_s, reflux_end_s, augmentation, calibration and, with --segment,
classification (cut-off, verdict and its published source).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reflux",
        help="reflux duration and velocities from a spectral Doppler DICOM image",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH",
                   help="DICOM image with a calibrated PW/CW spectral region, or a screen recording / screenshot")
    scr = p.add_argument_group("screen recordings and screenshots (no ultrasound regions)")
    scr.add_argument("--spectral-region", metavar="X0,Y0,X1,Y1",
                     help="the spectrum's box on the screen, inclusive pixel corners (columns, rows)")
    scr.add_argument("--baseline-row", type=float, metavar="ROW",
                     help="screen row of the zero-velocity line (may be fractional, e.g. 408.5)")
    scr.add_argument("--velocity-scale", metavar="CM_S_PER_PX",
                     help="velocity per pixel row in cm/s (e.g. 0.87, or 0.87cm/s/px)")
    scr.add_argument("--time-scale", metavar="S_PER_PX",
                     help="sweep time per pixel column in seconds (e.g. 0.01395), or pixels per second as 71.7px/s")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON (schema echosclero.reflux/1)")
    p.add_argument("--plot", metavar="OUT.png", help="write a figure: spectrum, envelope, reflux interval")
    side = p.add_mutually_exclusive_group()
    side.add_argument(
        "--reflux-below-baseline",
        dest="reflux_above",
        action="store_false",
        help="antegrade flow is shown above the baseline, reflux below (default)",
    )
    side.add_argument(
        "--reflux-above-baseline",
        dest="reflux_above",
        action="store_true",
        help="the display is inverted: reflux is shown above the baseline",
    )
    p.set_defaults(reflux_above=False)
    p.add_argument(
        "--segment",
        metavar="NAME",
        help="vein segment code (e.g. GSVa, SSV, CFV, FV, POPV, CPV) to classify the reflux with its "
        "published cut-off",
    )
    p.add_argument(
        "--diameter-mm",
        type=float,
        metavar="MM",
        help="vein diameter, needed to call a perforator pathologic (>= 3.5 mm)",
    )
    p.add_argument("--frame", type=int, default=None, metavar="N",
                   help="frame of a multi-frame file or video (default: the last, where a sweeping trace is "
                   "complete)")
    p.set_defaults(func=run)


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _number_before_unit(text: str, option: str, suffixes: tuple[str, ...], what: str) -> tuple[float, str]:
    """``text`` without spaces and without the first of ``suffixes`` it ends with, as a float, and that suffix
    (``""`` when none); a one-line error naming ``option`` and ``what`` it should be when it is no number."""
    from echosclero.errors import InputError

    t = str(text).strip().lower().replace(" ", "")
    unit = next((u for u in suffixes if t.endswith(u)), "")
    try:
        return float(t[: len(t) - len(unit)]), unit
    except ValueError:
        raise InputError(f"{option} {text!r} is not a number {what}") from None


def parse_velocity_scale(text: str) -> float:
    """``0.87`` or ``0.87cm/s/px`` -> 0.87 cm/s per pixel row (positive, finite)."""
    import math

    from echosclero.errors import InputError

    value, _ = _number_before_unit(text, "--velocity-scale", ("cm/s/px", "cm/s"), "of cm/s per pixel row (e.g. 0.87)")
    if not (math.isfinite(value) and 0.001 <= value <= 100.0):
        raise InputError(f"--velocity-scale {text!r} must be a positive velocity step between 0.001 and 100 cm/s "
                         "per pixel row (read it off the velocity axis: cm/s between two labels / their rows)")
    return value


def parse_time_scale(text: str) -> float:
    """``0.01395`` / ``0.01395s/px`` (seconds per column) or ``71.7px/s`` -> seconds per pixel column."""
    import math

    from echosclero.errors import InputError

    value, unit = _number_before_unit(text, "--time-scale", ("px/s", "s/px"),
                                      "(seconds per column, or pixels per second as 71.7px/s)")
    s_per_px = 1.0 / value if unit == "px/s" and value > 0 else value
    if not (math.isfinite(s_per_px) and 1e-4 <= s_per_px <= 1.0):
        raise InputError(f"--time-scale {text!r} gives {s_per_px:g} s per column; a spectral sweep shows 1 to "
                         "10 000 columns per second (read it off the time axis: seconds between two labels / "
                         "their columns)")
    return float(s_per_px)


def _read_screen(path: str, frame_index: int | None):
    """One frame of a screenshot or a screen recording as RGB uint8 (rows, cols, 3)."""
    from pathlib import Path

    from echosclero.errors import InputError
    from echosclero.sources.video import _cv2

    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    cv2 = _cv2()
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        if frame_index not in (None, 0):
            raise InputError(f"{p}: --frame {frame_index} is out of range (a picture has one frame)")
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{p}: not a picture OpenCV can read ({', '.join(IMAGE_EXTENSIONS)})")
        return bgr[..., ::-1].copy()
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise InputError(f"{p}: not a video OpenCV can open")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if frame_index is None:
            frame_index = max(n - 1, 0)
        if n > 0 and not (0 <= frame_index < n):
            raise InputError(f"{p}: --frame {frame_index} is out of range (the video has {n} frame(s))")
        cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
        ok, bgr = cap.read()
        while not ok and frame_index > 0 and n > 0:  # a container's frame count can overstate by a few
            frame_index -= 1
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
            ok, bgr = cap.read()
        if not ok or bgr is None:
            raise InputError(f"{p}: frame {frame_index} cannot be decoded")
    finally:
        cap.release()
    return bgr[..., ::-1].copy()


def _is_dicom(path: str) -> bool:
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return False
    from echosclero.sources.video import VIDEO_EXTENSIONS

    return p.suffix.lower() not in VIDEO_EXTENSIONS


def _screen_spectral(path: str, screen, args):
    """Crop the spectral region of a screen and build its calibration from the command-line scales."""
    from echosclero.errors import InputError
    from echosclero.frames import SpectralCalibration
    from echosclero.sources.base import check_crop_px

    given = {"--spectral-region": args.spectral_region, "--baseline-row": args.baseline_row,
             "--velocity-scale": args.velocity_scale, "--time-scale": args.time_scale}
    missing = [k for k, val in given.items() if val is None]
    if missing:
        raise InputError(
            f"{path}: a screen recording or screenshot has no ultrasound regions; give {', '.join(missing)} "
            "(read off the burned-in scales, e.g. --spectral-region 27,262,457,440 --baseline-row 408.5 "
            "--velocity-scale 0.87 --time-scale 71.7px/s)"
        )
    try:
        box = [int(round(float(x))) for x in str(args.spectral_region).split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise InputError(f"--spectral-region {args.spectral_region!r} must be four numbers X0,Y0,X1,Y1 "
                         "(inclusive screen pixels of the spectrum's box)")
    rows, cols = screen.shape[:2]
    if not (0 <= box[0] < box[2] < cols and 0 <= box[1] < box[3] < rows):
        raise InputError(f"--spectral-region {args.spectral_region} does not fit the {cols} x {rows} px screen "
                         f"(need 0 <= X0 < X1 <= {cols - 1} and 0 <= Y0 < Y1 <= {rows - 1})")
    x0, y0, x1, y1 = check_crop_px(box, rows=rows, cols=cols, source_id=str(path))
    if not (y0 <= args.baseline_row <= y1):
        raise InputError(f"--baseline-row {args.baseline_row:g} lies outside the spectral region's rows "
                         f"{y0}-{y1}; give the screen row of the 0 cm/s line inside the box")
    cal = SpectralCalibration(
        s_per_px=parse_time_scale(args.time_scale),
        cm_s_per_px=-parse_velocity_scale(args.velocity_scale),  # rows going down: velocity decreases
        baseline_row=float(args.baseline_row) - y0,
        source="user",
        region_px=(x0, y0, x1, y1),
        doppler_kind="PW",
    )
    return screen[y0:y1 + 1, x0:x1 + 1], cal


def _load_spectral(path: str, frame_index: int):
    from echosclero.errors import InputError
    from echosclero.sources.dicom import DicomSource

    src = DicomSource(path)
    if src.spectral is None:
        spectral_regions = [r for r in src.regions if r.kind in ("PW", "CW")]
        if spectral_regions:
            r = spectral_regions[0]
            raise InputError(
                f"{path}: the {r.kind} spectral region is not calibrated (PhysicalUnitsX/Y codes "
                f"{r.units_x_code}/{r.units_y_code}; need 4 = seconds and 7 = cm/s, with PhysicalDeltaX/Y "
                "and ReferencePixelY0); export the image from the scanner with its ultrasound regions"
            )
        kinds = ", ".join(sorted({r.kind for r in src.regions})) or "none"
        raise InputError(
            f"{path}: no spectral Doppler region (PW/CW) in this image (ultrasound regions: {kinds}); "
            "give a screen capture of a spectral Doppler trace"
        )
    n = len(src)
    if frame_index is None:
        frame_index = n - 1
    if not (0 <= frame_index < n):
        raise InputError(f"{path}: --frame {frame_index} is out of range (the file has {n} frame(s))")
    frame = src.frame(frame_index)
    if frame.spectral_pixels is None or frame.spectral is None:
        raise InputError(f"{path}: the spectral region lies outside the image")
    return frame.spectral_pixels, frame.spectral


def _dicom_screen(path: str, frame_index: int | None):
    """The whole screen of a DICOM frame (its regions overridden by the command-line scales)."""
    from echosclero.errors import InputError
    from echosclero.sources.dicom import DicomSource

    src = DicomSource(path)
    n = len(src)
    if frame_index is None:
        frame_index = n - 1
    if not (0 <= frame_index < n):
        raise InputError(f"{path}: --frame {frame_index} is out of range (the file has {n} frame(s))")
    return src.image(frame_index)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from echosclero.clinic.reflux import classify_reflux
    from echosclero.clinic.segments import get_segment
    from echosclero.doppler.reflux import REFLUX_SCHEMA, reflux_from_display

    segment = get_segment(args.segment) if args.segment else None  # fail early on a typo
    screen_options = (args.spectral_region, args.baseline_row, args.velocity_scale, args.time_scale)
    if _is_dicom(args.path) and all(o is None for o in screen_options):
        pixels, calibration = _load_spectral(args.path, args.frame)
    elif _is_dicom(args.path):
        pixels, calibration = _screen_spectral(args.path, _dicom_screen(args.path, args.frame), args)
    else:
        pixels, calibration = _screen_spectral(args.path, _read_screen(args.path, args.frame), args)
    result = reflux_from_display(pixels, calibration, reflux_above_baseline=args.reflux_above)
    doc = result.to_json()
    doc["schema"] = REFLUX_SCHEMA
    doc["source"] = str(args.path)
    doc["calibration"] = calibration.to_json()
    doc["display"] = "reflux above the baseline" if args.reflux_above else "reflux below the baseline"
    verdict = None
    if segment is not None:
        verdict = classify_reflux(segment, result.reflux_ms, diameter_mm=args.diameter_mm)
        doc["classification"] = verdict.to_json()
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc) + "\n")
    if args.plot:
        from echosclero.doppler.plot import plot_reflux

        plot_reflux(
            args.plot,
            result,
            pixels=pixels,
            calibration=calibration,
            reflux_above_baseline=args.reflux_above,
            title=Path(args.path).name,
            classification_text=(f"{verdict.segment}: {verdict.verdict} ({verdict.rule})" if verdict else ""),
        )
    line = (
        f"reflux {result.reflux_ms:.0f} ms; peak reflux {result.peak_reflux_velocity_cm_s:.1f} cm/s; "
        f"peak antegrade {result.peak_antegrade_velocity_cm_s:.1f} cm/s"
    )
    if verdict is not None:
        line += f"; {verdict.segment}: {verdict.verdict} ({verdict.rule}; {verdict.source})"
    print(line)
    for w in result.warnings:
        print(f"note: {w}")
    return 0
