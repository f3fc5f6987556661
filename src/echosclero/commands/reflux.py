"""``echosclero reflux``: reflux duration and velocities from a spectral Doppler image."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Measure venous reflux on a spectral Doppler image.

PATH is a DICOM image (a scanner's screen capture or a secondary capture) holding a calibrated
spectral Doppler region: RegionDataType PW or CW, seconds per column on X, cm/s per row on Y, and
the zero-velocity baseline as ReferencePixelY0. Other regions on the screen (the B-mode image,
text, scales) are ignored.

What is measured: the maximum-velocity envelope (and the mean velocity) is traced through the
speckle of the spectrum, with the noise floor estimated from the display itself. The
augmentation (antegrade surge on distal compression) is found, then the retrograde flow that
follows release: its duration is reflux_ms, with the peak reflux and peak antegrade velocities.

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
    p.add_argument("path", metavar="PATH", help="DICOM image with a calibrated PW/CW spectral region")
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
                   help="frame of a multi-frame file (default: the last, where a sweeping trace is complete)")
    p.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from echosclero.clinic.reflux import classify_reflux
    from echosclero.clinic.segments import get_segment
    from echosclero.doppler.reflux import REFLUX_SCHEMA, reflux_from_display

    segment = get_segment(args.segment) if args.segment else None  # fail early on a typo
    pixels, calibration = _load_spectral(args.path, args.frame)
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
