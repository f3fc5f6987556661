"""``echosclero analyze PATH``: run the guidance engine over a file, folder, simulated scene or stream.

JSON output follows ``shared/DESIGN.md`` (``"schema": "echosclero.analysis/1"``); a folder gives one
document per file under ``"files"`` plus the files that could not be read under ``"errors"``.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "find vessels, needle, foam and alerts in ultrasound frames (JSON and annotated video)"

DESCRIPTION = """\
Analyse every frame of PATH with the guidance engine: vessels (tracked, with stable ids, diameter,
area, vein/artery, compressibility), the needle (tip, entry, angle), sclerosant foam (vessel, fill
fraction, front) and alerts (TIP_IN_ARTERY, FOAM_IN_DEEP_VEIN, NONCOMPRESSIBLE_VEIN, ...), all in
millimetres from the scanner's calibration.
"""

EPILOG = """\
examples:
  echosclero analyze sim:gsv_injection --json out.json --video out.mp4
  echosclero analyze cine.dcm --json cine.json
  echosclero analyze recording.mp4 --mm-per-px 0.08 --json rec.json
  echosclero analyze exam_folder/ --json exam.json
"""

SCHEMA = "echosclero.analysis/1"


def _mm_per_px(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of millimetres per pixel: {text!r}") from None
    if not (0.0 < value <= 10.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 10 mm per pixel, got {text}")
    return value


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``analyze`` sub-command to ``subparsers`` (see :mod:`echosclero.cli`)."""
    parser = subparsers.add_parser("analyze", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="PATH", help="DICOM file, video, folder, sim:SCENARIO or igtl://HOST:PORT")
    parser.add_argument("--json", metavar="OUT", help="write the analysis (echosclero.analysis/1) to OUT ('-': stdout)")
    parser.add_argument("--video", metavar="OUT.mp4", help="write an annotated MP4 video")
    parser.add_argument("--mm-per-px", type=_mm_per_px, default=None,
                        help="pixel pitch for inputs without calibration (video, DICOM without US regions)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulator (sim:SCENARIO)")
    parser.add_argument("--max-frames", type=int, default=None, help="analyse at most this many frames per input")
    parser.add_argument("--contours", action="store_true", help="include vessel contours (mm) in the JSON")
    parser.set_defaults(func=run)
    return parser


def _analyse_source(source, args, *, video=None, progress_desc: str = "") -> dict:
    from echosclero.guidance import Engine

    engine = Engine()
    frames_json = []
    calibration = None
    info_n = None
    try:
        info_n = source.info().n_frames
    except Exception:  # noqa: BLE001 - the count only feeds the progress bar
        info_n = None
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        total = info_n if args.max_frames is None else min(info_n or args.max_frames, args.max_frames)
        bar = tqdm(total=total, desc=progress_desc or "analyse", unit="frame", file=sys.stderr, leave=False)
    try:
        for frame in source.frames():
            if args.max_frames is not None and len(frames_json) >= args.max_frames:
                break
            if calibration is None and frame.calibration is not None:
                calibration = frame.calibration.to_json()
            result = engine.process(frame)
            frames_json.append(result.to_json(contours=args.contours))
            if video is not None:
                from echosclero.render import draw_overlay

                video.write(draw_overlay(frame, result))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"schema": SCHEMA, "source": source.source_id, "calibration": calibration, "frames": frames_json}


def run(args: argparse.Namespace) -> int:
    from echosclero.errors import InputError
    from echosclero.sources.open import open_source

    source = open_source(args.path, mm_per_px=args.mm_per_px, seed=args.seed)
    video = None
    try:
        if args.video:
            from echosclero.render import VideoWriter

            fps = 20.0
            try:
                ft = source.info().frame_time_s
                if ft:
                    fps = 1.0 / ft
            except Exception:  # noqa: BLE001
                pass
            video = VideoWriter(args.video, fps)
        if hasattr(source, "sources") and hasattr(source, "errors"):  # a folder: one document per file
            files = []
            for path, sub in source.sources():
                with sub:
                    try:
                        files.append(_analyse_source(sub, args, video=video, progress_desc=path.name))
                    except InputError as exc:
                        source._record(path, exc)
            doc = {"schema": SCHEMA, "source": source.source_id, "calibration": None,
                   "frames": [], "files": files, "errors": [e.to_json() for e in source.errors]}
            if not files and source.errors:
                first = source.errors[0]
                raise InputError(f"{args.path}: no file could be analysed ({first.name}: {first.reason})")
        else:
            doc = _analyse_source(source, args, video=video)
    finally:
        if video is not None:
            video.close()
        source.close()
    text = json.dumps(doc, separators=(",", ":"))
    if args.json == "-":
        sys.stdout.write(text + "\n")
    elif args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise InputError(f"cannot write {args.json}: {exc.strerror}") from None
    n = len(doc["frames"]) + sum(len(f["frames"]) for f in doc.get("files", []))
    alerts = {}
    for fr in doc["frames"] + [x for f in doc.get("files", []) for x in f["frames"]]:
        for a in fr["alerts"]:
            alerts[a["code"]] = alerts.get(a["code"], 0) + 1
    if args.json != "-":
        summary = ", ".join(f"{k} x{v}" for k, v in sorted(alerts.items())) or "no alerts"
        print(f"{args.path}: {n} frames analysed; {summary}")
    return 0
