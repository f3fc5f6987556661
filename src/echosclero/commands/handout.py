"""``echosclero handout``: the patient's PDF handout (before and after the treatment)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Print the patient's handout: what to do before the treatment (aspirin, the day itself, what to bring, the
notice for changing the appointment) and after it (walking, legs raised, the bandage and the stocking, sport,
sun and travel, lumps, the warning signs and whom to call) with the follow-up dates booked.

The text comes from the clinic's templates (edit them with PUT /api/instruction-templates/{aftercare,
pre_procedure}); the regimen is the session's (--session), else the latest session's, else trunk_foam
(--regimen overrides; GET /api/aftercare/regimens lists them).
"""

EPILOG = """\
examples:
  echosclero handout --patient 3 --out handout.pdf
  echosclero handout --patient 3 --session 12 --out handout.pdf
  echosclero handout --patient 3 --regimen bandage_then_stocking --out handout.pdf
"""


def register(subparsers) -> None:
    from echosclero.commands._record import add_database_option

    p = subparsers.add_parser("handout", help="the patient's PDF handout: before and after the treatment",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patient", type=int, required=True, metavar="ID")
    p.add_argument("--session", type=int, metavar="ID", help="the treatment session (its date, regimen, follow-ups)")
    p.add_argument("--regimen", metavar="CODE", help="aftercare regimen (default: the session's)")
    p.add_argument("--out", required=True, metavar="FILE.pdf")
    add_database_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echosclero.commands._record import audit, clinic_info, sessionmaker_for, write_out
    from echosclero.interop.pdf import handout_pdf
    from echosclero.interop.record import load_pathway, rulebook
    from echosclero.store.db import commit

    with sessionmaker_for(args)() as db:
        pw = load_pathway(db, patient_id=args.patient, clinic=clinic_info())
        notice = float(rulebook(db).value("APPOINTMENT_NOTICE_HOURS"))
        data = handout_pdf(pw, session_id=args.session, regimen=args.regimen, notice_hours=notice)
        write_out(args.out, data)
        audit(db, "read", "handout", patient_id=args.patient, command="handout", session_id=args.session,
              out=str(args.out))
        commit(db)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0
