"""``echosclero export``: a session's PDF procedure report, DICOM SR or FHIR Bundle; a patient's FHIR Bundle."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Export from the clinic record.

  --session ID --format pdf   the procedure report: patient, duplex findings with the leg diagram,
                              reflux traces, the plan, injections with totals against the limits, key
                              frames with overlays, alerts, observation, compression, aftercare and
                              follow-ups booked (A4 PDF)
  --session ID --format sr    a DICOM Comprehensive SR after TID 5100 (vascular ultrasound procedure
                              report): vein diameters and reflux times per segment with laterality and
                              site, and the injections, referencing the source images by UID
  --session ID --format fhir  the patient's FHIR R4 Bundle (as --patient)
  --patient ID --format fhir  Patient, Condition (CEAP), Observations (reflux, diameter), Procedure,
                              MedicationAdministration, CarePlan, Appointment, validated by fhir.resources

Every export is written to the audit log (user "cli").
"""

EPILOG = """\
examples:
  echosclero export --session 12 --format pdf --out report.pdf
  echosclero export --session 12 --format sr --out report-sr.dcm && dciodvfy report-sr.dcm
  echosclero export --patient 3 --format fhir --out patient3.json
  echosclero export --session 12 --format sr --out sr.dcm --send PACS@10.0.0.7:104
"""


def register(subparsers) -> None:
    from echosclero.commands._record import add_database_option

    p = subparsers.add_parser("export", help="PDF report, DICOM SR or FHIR Bundle from the clinic record",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", type=int, metavar="ID", help="a treatment session")
    which.add_argument("--patient", type=int, metavar="ID", help="a patient (FHIR only)")
    p.add_argument("--format", required=True, choices=("pdf", "sr", "fhir"))
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--send", metavar="AE@HOST:PORT", help="also send the SR to this PACS (C-STORE)")
    add_database_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from echosclero.commands._record import audit, clinic_info, sessionmaker_for, write_out
    from echosclero.errors import InputError
    from echosclero.interop.record import load_pathway
    from echosclero.store.db import commit
    from echosclero.store.models import Session

    if args.patient is not None and args.format != "fhir":
        raise InputError(f"--patient exports FHIR only; for --format {args.format} give --session ID")
    if args.send and args.format != "sr":
        raise InputError("--send sends a DICOM SR: use it with --format sr")
    peer = None
    if args.send:
        from echosclero.interop.dicomnet import parse_peer

        peer = parse_peer(args.send)
    with sessionmaker_for(args)() as db:
        if args.session is not None:
            s = db.get(Session, args.session)
            if s is None:
                raise InputError(f"no session {args.session} in the record")
            patient_id = s.patient_id
        else:
            patient_id = args.patient
        pw = load_pathway(db, patient_id=patient_id, clinic=clinic_info())
        if args.format == "pdf":
            from echosclero.interop.pdf import procedure_report_pdf

            data = procedure_report_pdf(pw, session_id=args.session)
        elif args.format == "sr":
            import io

            from echosclero.interop.sr import session_sr

            buf = io.BytesIO()
            session_sr(pw, session_id=args.session).save_as(buf, enforce_file_format=True)
            data = buf.getvalue()
        else:
            from echosclero.interop.fhir import pathway_bundle

            bundle = pathway_bundle(pw)
            data = (json.dumps(bundle, indent=1) + "\n").encode()
        write_out(args.out, data)
        audit(db, "read", "export", resource_id=args.session, patient_id=patient_id, command="export",
              format=args.format, out=str(args.out), bytes=len(data))
        commit(db)
    print(f"wrote {args.out} ({args.format}, {len(data)} bytes)")
    if peer is not None:
        from pathlib import Path

        from echosclero.interop.dicomnet import send_files

        (_, error), = send_files([Path(args.out)], peer)
        if error:
            raise InputError(f"the SR is written, but sending it to {peer} failed: {error}")
        print(f"sent {args.out} to {peer}")
    return 0
