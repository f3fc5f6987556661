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

--send AE@HOST:PORT keeps the SR in the DICOM store (ECHOSCLERO_DICOM_DIR, else DATA_DIR/dicom) and on the
forwarding queue, then sends it; when the PACS does not take it, it stays queued (exit 1) and is retried by
`echosclero dicom-receive` or `echosclero dicom-forward --retry`.

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
            sr = session_sr(pw, session_id=args.session)
            sr.save_as(buf, enforce_file_format=True)
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
            from echosclero.interop.dicomqueue import RetryPolicy, audit_to, default_dicom_dir, forward, store_sr

            inst = store_sr(db, data, sr, folder=default_dicom_dir(), patient_id=patient_id, peer=peer)
            audit(db, "create", "dicom_instance", resource_id=inst.id, patient_id=patient_id, command="export",
                  sop_instance_uid=inst.sop_instance_uid, peer=str(peer))
            commit(db)
            (o,) = forward(db, [inst], policy=RetryPolicy(), commit=lambda: commit(db), ignore_wait=True,
                           audit=audit_to(db, username="cli", method="C-STORE", path="echosclero export --send"))
            print(o.line() if o.error is None else
                  f"{o.line()}; kept as instance {inst.id} (echosclero dicom-forward --list)")
            if o.error is not None:
                return 1
    return 0
