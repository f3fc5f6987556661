"""``echosclero dicom-file``: the queue of received DICOM objects that matched no patient; file one by hand."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
The unmatched queue: objects received by `echosclero dicom-receive` whose Patient ID is neither a record
number nor a patient's stored MRN (or names two different patients). List them, then file one under the
right patient; it leaves the queue and the filing is written to the audit log (user "cli"). The same as
GET /api/dicom/unmatched and POST /api/dicom/instances/ID/file.
"""

EPILOG = """\
examples:
  echosclero dicom-file --list
  echosclero dicom-file 17 --patient 3
"""


def register(subparsers) -> None:
    from echosclero.commands._record import add_database_option

    p = subparsers.add_parser("dicom-file", help="list the unmatched DICOM queue, file an object under a patient",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("instance", type=int, nargs="?", metavar="ID", help="the instance to file (see --list)")
    p.add_argument("--patient", type=int, metavar="ID", help="the patient to file it under")
    p.add_argument("--list", action="store_true", help="list the unmatched queue")
    add_database_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from echosclero.commands._record import audit, sessionmaker_for
    from echosclero.errors import InputError
    from echosclero.interop.dicomqueue import file_instance
    from echosclero.store.db import commit
    from echosclero.store.models import DicomInstance

    if not args.list and (args.instance is None or args.patient is None):
        raise InputError("give --list, or an instance and the patient to file it under: dicom-file 17 --patient 3")
    with sessionmaker_for(args)() as db:
        if args.list:
            rows = db.scalars(select(DicomInstance).where(DicomInstance.status == "unmatched")
                              .order_by(DicomInstance.id)).all()
            audit(db, "read", "dicom_unmatched", command="dicom-file", count=len(rows))
            commit(db)
            print("id\treceived (UTC)\tfrom\tmodality\tframes\tPatient ID\tPatient name\tSOP Instance UID")
            for r in rows:
                print(f"{r.id}\t{r.received_at:%Y-%m-%d %H:%M}\t{r.calling_ae}\t{r.modality}\t{r.n_frames}\t"
                      f"{r.dicom_patient_id}\t{r.dicom_patient_name}\t{r.sop_instance_uid}")
            print(f"{len(rows)} unmatched")
            return 0
        inst = db.get(DicomInstance, args.instance)
        if inst is None:
            raise InputError(f"no DICOM instance {args.instance} in the record (see dicom-file --list)")
        before = file_instance(db, inst, args.patient)
        audit(db, "update", "dicom_instance", resource_id=inst.id, patient_id=args.patient, command="dicom-file",
              sop_instance_uid=inst.sop_instance_uid, filed_from=before, dicom_patient_id=inst.dicom_patient_id)
        commit(db)
    print(f"filed instance {args.instance} ({inst.sop_instance_uid}) under patient {args.patient}"
          + (f" (was patient {before})" if before else ""))
    return 0
