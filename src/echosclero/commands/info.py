"""``echosclero info PATH``: what a file, folder or stream holds, and how it is calibrated."""

from __future__ import annotations

import argparse

HELP = "show what a file, folder or stream holds and how it is calibrated"

DESCRIPTION = """\
Show what EchoSclero sees in PATH without analysing it: the kind of source, the number of frames,
the image size, the frame time, and every ultrasound region with its calibration.

Calibration is what turns pixels into millimetres. Scanners write it into DICOM files as the
"Sequence of Ultrasound Regions": a 2-D tissue region gives millimetres per pixel; a spectral
Doppler region gives seconds per column, cm/s per row and the zero-velocity baseline row. A file
without it (or a video) is reported as uncalibrated: measure the pixel pitch (for example from the
depth scale on the screen) and pass it with --mm-per-px to analyse it.
"""

EPILOG = """\
PATH may be:
  a DICOM file            single image or cine (US, or a secondary capture with ultrasound regions)
  a video file            .mp4 .avi .mov .mkv .webm (needs --mm-per-px to be analysed)
  a folder                its DICOM and video files; unusable files are listed with the reason
  sim:SCENARIO            the built-in simulator
  igtl://HOST:PORT        a live OpenIGTLink stream (PLUS); waits for the first image
  video:N                 capture device N

examples:
  echosclero info scan.dcm
  echosclero info screen_recording.mp4 --mm-per-px 0.12
  echosclero info exam_folder/ --json
"""


def _mm_per_px(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of millimetres per pixel: {text!r}") from None
    if not (0.0 < value <= 10.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 10 mm per pixel, got {text}")
    return value


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``info`` sub-command to ``subparsers`` (see :mod:`echosclero.cli`)."""
    parser = subparsers.add_parser(
        "info",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="PATH", help="DICOM file, video, folder, sim:NAME, igtl://HOST:PORT")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the source description as JSON (schema echosclero.source_info/1) instead of text",
    )
    parser.add_argument(
        "--mm-per-px",
        type=_mm_per_px,
        default=None,
        metavar="MM",
        help="pixel pitch in millimetres for an input without calibration (ignored for calibrated DICOM)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Open ``args.path``, describe it on stdout (text or JSON). Errors propagate as InputError."""
    import json

    from echosclero.sources.open import open_source

    with open_source(args.path, mm_per_px=args.mm_per_px) as source:
        info = source.info()
    if args.json:
        print(json.dumps(info.to_json(), indent=2, default=_json_default))
    else:
        print(format_info(info))
    return 0


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def _region_line(region) -> str:
    c0, r0, c1, r1 = region.bbox_px
    name = region.kind if region.kind != "other" else (region.label or "other")
    if region.kind == "tissue":
        name = "tissue (2-D)"
    elif region.kind == "color":
        name = "colour flow (2-D)"
    elif region.kind in ("PW", "CW"):
        name = f"{region.kind} spectral Doppler"
    parts = [f"#{region.index} {name:<22} cols {c0}-{c1}, rows {r0}-{r1} ({c1 - c0 + 1} x {r1 - r0 + 1} px)"]
    if region.mm_per_px_x is not None:
        if abs(region.mm_per_px_x - region.mm_per_px_z) < 1e-9:
            parts.append(f"{_fmt(region.mm_per_px_x)} mm/px")
        else:
            parts.append(f"{_fmt(region.mm_per_px_x)} mm/px (x) x {_fmt(region.mm_per_px_z)} mm/px (z)")
    elif region.cm_s_per_px is not None:
        parts.append(
            f"{_fmt(region.s_per_px)} s/px, {_fmt(region.cm_s_per_px)} cm/s per px, "
            f"baseline row {region.baseline_row:g}"
        )
    elif region.s_per_px is not None:
        parts.append(f"{_fmt(region.s_per_px)} s/px")
    else:
        parts.append("no physical calibration")
    if region.role == "imaging":
        parts.append("<- imaging region (frames are cropped to it)")
    elif region.role == "spectral":
        parts.append("<- spectral display")
    return "  ".join(parts)


def _pitch_text(mm_per_px_x: float, mm_per_px_z: float) -> str:
    if abs(mm_per_px_x - mm_per_px_z) < 1e-9:
        return f"{_fmt(mm_per_px_x)} mm per pixel"
    return f"{_fmt(mm_per_px_x)} mm/px lateral (x), {_fmt(mm_per_px_z)} mm/px depth (z)"


def _calibrated_region(info):
    """The imaging region if marked, else the first 2-D region with a pixel pitch (or ``None``)."""
    with_pitch = [r for r in info.regions if r.mm_per_px_x is not None and r.mm_per_px_z is not None]
    marked = [r for r in with_pitch if r.role == "imaging"]
    return (marked or with_pitch or [None])[0]


def _calibration_line(info) -> str:
    details = info.details
    cal = details.get("calibration")
    spectral = details.get("spectral")
    lines = []
    if cal:
        pitch = _pitch_text(cal["mm_per_px_x"], cal["mm_per_px_z"])
        origin = {
            "dicom": "from the DICOM ultrasound regions",
            "user": "from --mm-per-px",
            "igtl": "from the OpenIGTLink image spacing",
            "simulator": "from the simulator",
        }.get(cal.get("source"), "")
        lines.append(f"{pitch} {origin}".rstrip())
    if spectral:
        lines.append(
            f"spectral {spectral.get('doppler_kind', 'PW')}: {_fmt(spectral['s_per_px'])} s/px, "
            f"{_fmt(spectral['cm_s_per_px'])} cm/s per px, baseline row {spectral['baseline_row']:g}"
        )
    if not lines:
        region = _calibrated_region(info)
        if region is not None:
            lines.append(f"{_pitch_text(region.mm_per_px_x, region.mm_per_px_z)} (region #{region.index})")
    if not lines:
        if details.get("calibration_note"):
            lines.append(details["calibration_note"])
        elif info.calibrated:
            lines.append("calibrated")
        else:
            lines.append("uncalibrated (pass --mm-per-px to analyse)")
    if details.get("mm_per_px_ignored"):
        lines.append(details["mm_per_px_ignored"])
    return "\n             ".join(lines)


def format_info(info) -> str:
    """Human-readable description of a :class:`~echosclero.sources.base.SourceInfo`."""
    details = info.details
    lines = [f"source:      {info.source_id}"]
    kind = info.kind
    extras = [
        str(details[k])
        for k in ("modality", "manufacturer", "model", "transfer_syntax", "fourcc", "device_name")
        if details.get(k)
    ]
    lines.append(f"kind:        {kind}" + (f" ({', '.join(extras)})" if extras else ""))
    if kind == "folder":
        files = details.get("files", [])
        errors = details.get("errors", [])
        total = "unknown" if info.n_frames is None else str(info.n_frames)
        lines.append(f"files:       {len(files)} usable, {len(errors)} skipped; {total} frames in all")
        for f in files:
            cal = f.get("calibration")
            if cal:
                cal_text = f"{_fmt(cal['mm_per_px_x'])} mm/px ({cal.get('source')})"
            elif f["calibrated"]:
                cal_text = "calibrated"
            else:
                cal_text = "uncalibrated"
            n = "?" if f["n_frames"] is None else f["n_frames"]
            lines.append(
                f"  {f['name']}: {f['kind']}, {n} frame(s), {f['rows']} x {f['cols']} px, {cal_text}"
            )
        for e in errors:
            lines.append(f"  skipped {e['name']}: {e['reason']}")
        return "\n".join(lines)
    frames = "live stream" if info.n_frames is None and kind in ("igtl", "capture") else str(info.n_frames)
    if info.frame_time_s:
        frames += f" (frame time {info.frame_time_s * 1000:.1f} ms, {1 / info.frame_time_s:.1f} frames/s)"
    elif info.n_frames and info.n_frames > 1:
        frames += " (frame time unknown)"
    lines.append(f"frames:      {frames}")
    size = f"{info.rows} rows x {info.cols} columns"
    if details.get("photometric_interpretation"):
        size += f", {details['photometric_interpretation']}"
        if details.get("bits_allocated"):
            size += f" {details['bits_allocated']}-bit"
    shape = details.get("frame_shape")
    if shape and list(shape) != [info.rows, info.cols]:
        size += f"; frames cropped to {shape[0]} x {shape[1]}"
    lines.append(f"size:        {size}")
    lines.append(f"calibration: {_calibration_line(info)}")
    if info.regions:
        lines.append(f"regions:     {len(info.regions)} ultrasound region(s)")
        lines.extend(f"  {_region_line(r)}" for r in info.regions)
    elif kind == "dicom":
        lines.append("regions:     none (no Sequence of Ultrasound Regions)")
    counters = details.get("counters")
    if counters:
        lines.append("stream:      " + ", ".join(f"{k} {v}" for k, v in counters.items()))
    return "\n".join(lines)
