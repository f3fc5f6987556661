"""``echosclero analyze PATH``: run the guidance engine over a file, a folder (archive), a simulated scene
or a live OpenIGTLink stream.

JSON output follows ``docs/design.md`` (``"schema": "echosclero.analysis/1"``). A folder gives one document
per file under ``"files"`` plus the files that could not be analysed under ``"errors"`` (and, with
``--out-dir``, one JSON per file and a summary table); a live stream adds a ``"stream"`` member (counts and
latency). Archives run on Dask (:mod:`echosclero.batch.archive`); live streams follow the newest frame
(:mod:`echosclero.live`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

HELP = "find vessels, needle, foam and alerts in ultrasound frames (JSON and annotated video)"

DESCRIPTION = """\
Analyse every frame of PATH with the guidance engine: vessels (tracked, with stable ids, diameter,
area, vein/artery, compressibility), the needle (tip, entry, angle), sclerosant foam (vessel, fill
fraction, front) and alerts (TIP_IN_ARTERY, FOAM_IN_DEEP_VEIN, NONCOMPRESSIBLE_VEIN, ...), all in
millimetres from the scanner's calibration.

PATH is a DICOM file (single or multi-frame US), a video file, a PNG/JPEG/TIFF screenshot, sim:SCENARIO, a
folder (an archive; with --frame-time-ms, its numbered images as one cine) or a live OpenIGTLink stream
igtl://HOST:PORT (as a PLUS server sends IMAGE messages). Screenshots and videos carry no calibration: give
--mm-per-px. Only the imaged area of each frame (the footprint of the echoes: no black background, text,
rulers or deep no-signal region) is analysed; --roi cuts a whole-screen capture to its image first.

Live streams (igtl://HOST:PORT[?device=NAME]):
  The newest frame is analysed each time the engine is free; frames arriving meanwhile are dropped, never
  queued, so the results keep up with the probe whatever the frame rate. The run stops at --duration-s,
  --max-frames or Ctrl-C (exit 0; the JSON and video hold what was analysed). A stream that sends no
  IMAGE for --stream-timeout-s, a lost connection or an unreachable server ends the run with one line on
  stderr and exit 2, after writing what was analysed. The summary line gives frames received, analysed
  and dropped, malformed messages, and the latency (age of a frame, from its arrival here to its result)
  median and p99. --json OUT writes one document with a "stream" member; --json - writes JSON lines to
  stdout as results come: a header {"schema","source","calibration"}, one line per analysed frame (the
  frame objects of echosclero.analysis/1, plus "latency_ms"), and a last line {"stream": {...}}.

Folders (archives):
  Every DICOM and video file of the folder is analysed, one task per file, on a local Dask cluster
  (--workers processes, one thread each; default: one per core) or on a running Dask scheduler
  (--scheduler tcp://HOST:PORT; its workers must see the files at the same path). With --workers 1, or
  a single file, it runs in this process without Dask. --out-dir DIR writes DIR/<file name>.json per file
  (the extension .dcm or the video's dropped), DIR/summary.csv and DIR/summary.md; the summary table
  (frames, vessels by kind, needle frames, alerts by code, ms per frame, status and reason) is printed.
  A corrupt, truncated or unreadable file does not stop the others: it is listed with its reason. Exit
  status 0 when at least one file was analysed, 2 when none could be, 130 when interrupted (the files
  done are kept, with the summary).
"""

EPILOG = """\
examples:
  echosclero analyze sim:gsv_injection --json out.json --video out.mp4
  echosclero analyze cine.dcm --json cine.json
  echosclero analyze recording.mp4 --mm-per-px 0.08 --json rec.json
  echosclero analyze screenshot.png --mm-per-px 0.07 --json shot.json
  echosclero analyze frames/ --frame-time-ms 50 --mm-per-px 0.07 --json cine.json   # numbered PNGs as one cine
  echosclero analyze screen.mp4 --mm-per-px 0.074 --roi 80,40,560,460 --json roi.json
  echosclero analyze exam_folder/ --out-dir results/ --workers 4
  echosclero analyze archive/ --out-dir results/ --scheduler tcp://dask.example.org:8786
  echosclero analyze igtl://127.0.0.1:18944 --duration-s 60 --json live.json --video live.mp4
  echosclero analyze 'igtl://127.0.0.1:18944?device=Image_Reference' --json - | jq -c .alerts
"""

#: Frame rate of the annotated video of a live run (frames are written as analysed).
LIVE_VIDEO_FPS = 30.0
DEFAULT_STREAM_TIMEOUT_S = 5.0


def _mm_per_px(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of millimetres per pixel: {text!r}") from None
    if not (0.0 < value <= 10.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 10 mm per pixel, got {text}")
    return value


def _roi(text: str) -> tuple[int, int, int, int]:
    parts = text.replace(" ", "").split(",")
    try:
        x0, y0, x1, y1 = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected four whole numbers X0,Y0,X1,Y1 (pixels), got {text!r}") from None
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise argparse.ArgumentTypeError(f"the box {text} is empty or negative: need 0 <= X0 < X1 and 0 <= Y0 < Y1")
    return x0, y0, x1, y1


def _frame_time_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if not (math.isfinite(value) and 0.0 < value <= 10000.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 10000 ms, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``analyze`` sub-command to ``subparsers`` (see :mod:`echosclero.cli`)."""
    parser = subparsers.add_parser("analyze", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="PATH", help="DICOM file, video, folder, sim:SCENARIO or igtl://HOST:PORT")
    parser.add_argument("--json", metavar="OUT",
                        help="write the analysis (echosclero.analysis/1) to OUT ('-': stdout; JSON lines for a "
                             "live stream)")
    parser.add_argument("--video", metavar="OUT.mp4",
                        help="write an annotated MP4 video (live: the analysed frames, at 30 frames/s)")
    parser.add_argument("--mm-per-px", type=_mm_per_px, default=None,
                        help="pixel pitch for inputs without calibration (video, DICOM without US regions)")
    parser.add_argument("--roi", type=_roi, default=None, metavar="X0,Y0,X1,Y1",
                        help="analyse only this pixel box of each frame (inclusive corners): the image area of a "
                             "whole-screen capture; the imaged area inside it is still found automatically")
    parser.add_argument("--frame-time-ms", type=_frame_time_ms, default=None, metavar="MS",
                        help="time between frames: read a folder of numbered images (PNG, JPEG, TIFF) as ONE cine "
                             "(without it a folder is an archive of separate files), or time a multi-page TIFF")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulator (sim:SCENARIO)")
    parser.add_argument("--max-frames", type=_positive_int, default=None,
                        help="analyse at most this many frames per input (a live stream then stops)")
    parser.add_argument("--contours", action="store_true", help="include vessel contours (mm) in the JSON")
    live = parser.add_argument_group("live stream (igtl://HOST:PORT)")
    live.add_argument("--duration-s", type=_seconds, default=None, metavar="S",
                      help="stop after S seconds (default: run until Ctrl-C)")
    live.add_argument("--stream-timeout-s", type=_seconds, default=None, metavar="S",
                      help="give up when no IMAGE message arrives for S seconds "
                           f"(default {DEFAULT_STREAM_TIMEOUT_S:g})")
    live.add_argument("--reconnects", type=_count, default=0, metavar="N",
                      help="reconnect up to N times after a lost connection or a timeout (default 0)")
    archive = parser.add_argument_group("folders (archives)")
    archive.add_argument("--out-dir", metavar="DIR",
                         help="write DIR/<file>.json per file, DIR/summary.csv and DIR/summary.md")
    archive.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                         help="local Dask worker processes (default: one per core; 1: in this process)")
    archive.add_argument("--scheduler", metavar="ADDRESS",
                         help="use a running Dask scheduler, e.g. tcp://10.0.0.5:8786, instead of a local cluster")
    archive.add_argument("--scheduler-timeout-s", type=_seconds, default=None, metavar="S",
                         help="longest wait for the scheduler to answer and have a worker (default 10)")
    archive.add_argument("--progress", action="store_true",
                         help="show the progress bar on stderr even when it is not a terminal")
    parser.set_defaults(func=run)
    return parser


def _refuse_options(args: argparse.Namespace, names: tuple[str, ...], what: str) -> None:
    from echosclero.errors import InputError

    given = [n for n in names if getattr(args, n) not in (None, False, 0)]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise InputError(f"{flags}: only for {what}; {args.path} is not one")


def run(args: argparse.Namespace) -> int:
    from echosclero.sources.open import open_source

    live_options = ("duration_s", "stream_timeout_s", "reconnects")
    archive_options = ("out_dir", "workers", "scheduler", "scheduler_timeout_s")
    if str(args.path).startswith("igtl://"):
        _refuse_options(args, archive_options, "folders")
        return _run_live(args)
    _refuse_options(args, live_options, "live streams (igtl://HOST:PORT)")
    frame_time_s = args.frame_time_ms / 1e3 if args.frame_time_ms else None
    source = open_source(args.path, mm_per_px=args.mm_per_px, seed=args.seed, frame_time_s=frame_time_s)
    if hasattr(source, "sources") and hasattr(source, "errors"):  # a folder: an archive
        source.close()
        return _run_folder(args)
    _refuse_options(args, archive_options, "folders")
    if args.roi is not None:
        from echosclero.sources.base import CroppedSource

        source = CroppedSource(source, args.roi)
    from echosclero.batch.analysis import analyse_source

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
        doc = analyse_source(source, max_frames=args.max_frames, contours=args.contours, video=video,
                             progress=True if args.progress else None).document
    finally:
        if video is not None:
            video.close()
        source.close()
    _write_document(doc, args.json)
    if args.json != "-":
        print(f"{args.path}: {len(doc['frames'])} frames analysed; {_alerts_text(doc['frames'])}")
    return 0


def _alerts_text(frames: list[dict]) -> str:
    alerts: dict[str, int] = {}
    for fr in frames:
        for a in fr["alerts"]:
            alerts[a["code"]] = alerts.get(a["code"], 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(alerts.items())) or "no alerts"


def _write_document(doc: dict, out: str | None) -> None:
    from echosclero.errors import InputError

    if not out:
        return
    text = json.dumps(doc, separators=(",", ":"))
    if out == "-":
        sys.stdout.write(text + "\n")
        return
    try:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None


# ----------------------------------------------------------------------------------------------- archives
def _run_folder(args: argparse.Namespace) -> int:
    from echosclero.batch.archive import DEFAULT_SCHEDULER_TIMEOUT_S, ArchiveOptions, analyse_archive
    from echosclero.batch.summary import summary_table
    from echosclero.errors import InputError

    video = None
    if args.video:
        from echosclero.render import VideoWriter

        if args.scheduler is not None or (args.workers or 1) > 1:
            raise InputError("--video writes one annotated video in this process: use it with --workers 1 and "
                             "without --scheduler, or leave it out for a parallel archive run")
        video = VideoWriter(args.video, 20.0)
    try:
        result = analyse_archive(
            args.path,
            out_dir=args.out_dir,
            workers=args.workers,
            scheduler=args.scheduler,
            options=ArchiveOptions(mm_per_px=args.mm_per_px, max_frames=args.max_frames, contours=args.contours),
            progress=True if args.progress else None,
            keep_documents=bool(args.json),
            scheduler_timeout_s=args.scheduler_timeout_s or DEFAULT_SCHEDULER_TIMEOUT_S,
            video=video,
        )
    finally:
        if video is not None:
            video.close()
    if args.json:
        _write_document(result.document(), args.json)
    n_files = len(result.outcomes)
    if n_files == 0:
        raise InputError(f"{args.path}: the folder holds no file to analyse (DICOM or video)")
    quiet = args.json == "-"
    if not quiet:
        print(summary_table(result.summary))
        failed = sum(o.status == "failed" for o in result.outcomes)
        partial = sum(o.status == "partial" for o in result.outcomes)
        secs = max(result.elapsed_s, 1e-9)
        alerts: dict[str, int] = {}
        for row in result.summary:
            for code, n in row.alerts_by_code.items():
                alerts[code] = alerts.get(code, 0) + n
        alert_text = ", ".join(f"{k} x{v}" for k, v in sorted(alerts.items())) or "no alerts"
        line = (f"{args.path}: {result.n_analysed} of {n_files} files analysed, {result.n_frames} frames in "
                f"{result.elapsed_s:.1f} s ({n_files / secs:.2f} files/s, {result.n_frames / secs:.1f} frames/s) "
                f"{result.executor}; {failed} failed, {partial} partial; {alert_text}")
        if args.out_dir:
            line += f"; summary in {args.out_dir.rstrip('/')}/summary.csv"
        print(line)
    if result.interrupted:
        print("echosclero: interrupted", file=sys.stderr)
        return 130
    if result.n_analysed == 0:
        first = result.outcomes[0]
        more = f" and {n_files - 1} more" if n_files > 1 else ""
        raise InputError(f"{args.path}: no file could be analysed ({first.name}: {first.reason}{more})")
    return 0


# ----------------------------------------------------------------------------------------------- live
def _run_live(args: argparse.Namespace) -> int:
    import contextlib

    from echosclero.errors import InputError, StreamError
    from echosclero.live import LiveJsonWriter, follow_stream
    from echosclero.sources.igtl import IgtlSource, parse_igtl_url

    _host, _port, url_options = parse_igtl_url(args.path)
    kwargs = {"mm_per_px": args.mm_per_px, "max_reconnects": args.reconnects}
    if args.stream_timeout_s is not None or "timeout_s" not in url_options:
        kwargs["receive_timeout_s"] = args.stream_timeout_s or DEFAULT_STREAM_TIMEOUT_S
    source = IgtlSource.from_url(args.path, **kwargs)
    with contextlib.ExitStack() as stack:
        writer = None
        if args.json == "-":
            writer = LiveJsonWriter(sys.stdout, lines=True, source_id=source.source_id)
        elif args.json:
            try:
                fh = stack.enter_context(open(args.json, "w", encoding="utf-8"))
            except OSError as exc:
                raise InputError(f"cannot write {args.json}: {exc.strerror}") from None
            writer = LiveJsonWriter(fh, lines=False, source_id=source.source_id)
        video = None
        if args.video:
            from echosclero.render import VideoWriter, draw_overlay

            video = VideoWriter(args.video, LIVE_VIDEO_FPS)
            stack.callback(video.close)

        def on_result(frame, result, frame_json):
            if writer is not None:
                writer.add(frame, frame_json)
            if video is not None:
                video.write(draw_overlay(frame, result))

        # Ctrl-C and SIGTERM (a service manager's stop) end the run cleanly, outputs complete.
        report = follow_stream(source, max_frames=args.max_frames, duration_s=args.duration_s,
                               contours=args.contours, on_result=on_result, handle_signals=True)
        if writer is not None:
            writer.finish(report.to_json())
    if args.json != "-":
        print(report.summary_line(), flush=True)
    if report.error is not None:
        kept = f"; the {report.analysed} frame(s) analysed are in {args.json}" if args.json and args.json != "-" else ""
        raise StreamError(f"{report.error}{kept}")
    return 0
