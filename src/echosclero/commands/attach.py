"""``echosclero attach``: an ``analyze`` or ``reflux`` result into an exam or a session of the record."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Attach a result to the clinic record, with a link back to its source image.

  reflux JSON -> --exam ID    the reflux time goes into the exam's vein map for --segment (default: the
                              segment the reflux was classified for) on --leg (default: the exam's leg)
  analyze JSON -> --exam ID   the median diameter of a tracked vein (--vessel, default: the superficial vein
                              seen in most frames) goes into the vein map for --segment
  analyze JSON -> --session ID  the alerts raised and the key frames (each alert's first frame, the fullest
                              foam, the needle tip in a vessel) go into the session, each key frame with its
                              overlay when the source can be read again

The link back is the source named in the result and, for a DICOM file, its SOP Instance, Series and Study
UIDs (read from the file). The vein map's checks apply: a reflux time that contradicts a stated verdict is
refused with the rule that it breaks.
"""

EPILOG = """\
examples:
  echosclero reflux gsv.dcm --segment GSVa --json r.json && echosclero attach r.json --exam 4
  echosclero analyze scan.dcm --json a.json && echosclero attach a.json --exam 4 --segment GSVa
  echosclero analyze cine.dcm --json a.json && echosclero attach a.json --session 12
"""


def register(subparsers) -> None:
    from echosclero.commands._record import add_database_option

    p = subparsers.add_parser("attach", help="put an analyze/reflux result into an exam or a session",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("result", metavar="RESULT.json", help="from `echosclero analyze --json` or `reflux --json`")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--exam", type=int, metavar="ID")
    where.add_argument("--session", type=int, metavar="ID")
    p.add_argument("--segment", metavar="CODE", help="vein segment (GSVa, SSV, SFJ, ...)")
    p.add_argument("--leg", choices=("left", "right"))
    p.add_argument("--vessel", metavar="ID", help="analysis into an exam: the tracked vessel (V1, V2, ...)")
    p.add_argument("--mm-per-px", type=float, help="pixel pitch of an uncalibrated source (key frame overlays)")
    add_database_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from echosclero.commands._record import audit, sessionmaker_for
    from echosclero.errors import InputError
    from echosclero.interop.results import attach_result
    from echosclero.store.db import commit

    path = Path(args.result)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a JSON result ({exc}); write one with `echosclero analyze --json`") from None
    with sessionmaker_for(args)() as db:
        r = attach_result(db, doc, exam_id=args.exam, session_id=args.session, segment=args.segment, leg=args.leg,
                          vessel=args.vessel, mm_per_px=args.mm_per_px)
        audit(db, "create", "result", resource_id=r.id, patient_id=r.patient_id, command="attach", kind=r.kind,
              segment=r.segment, exam_id=args.exam, session_id=args.session)
        commit(db)
        where = f"exam {args.exam}" if args.exam else f"session {args.session}"
        what = (f"{r.leg} {r.segment}: " + ", ".join(f"{k} {v}" for k, v in r.summary.get("finding", {}).items()
                                                     if k in ("reflux_ms", "diameter_mm", "status") and v is not None)
                if r.exam_id else f"{len(r.summary.get('alerts', []))} alert(s), "
                f"{len(r.summary.get('key_frames', []))} key frame(s)")
        link = f"; source {r.source}" + (f" (SOP Instance UID {r.sop_instance_uid})" if r.sop_instance_uid else "")
        print(f"attached {r.kind} result {r.id} to {where}: {what}{link}")
    return 0
