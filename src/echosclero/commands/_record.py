"""What the record commands share: the database (``--database-url``), the clinic's name, telephone and time zone
(``ECHOSCLERO_CLINIC_NAME``/``_PHONE``/``_TIMEZONE``, as ``serve`` reads them) and the audit entry that every
read or write of patient data leaves, as the API's do (user "cli")."""

from __future__ import annotations

import getpass
import os


def add_database_option(p) -> None:
    p.add_argument("--database-url", metavar="URL",
                   help="the clinic record (default: ECHOSCLERO_DATABASE_URL, else the SQLite file in the data folder)")


def sessionmaker_for(args):
    from echosclero.store.db import make_engine, make_sessionmaker
    from echosclero.store.migrate import upgrade

    engine = make_engine(args.database_url)
    upgrade(engine)
    return make_sessionmaker(engine)


def clinic_info():
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from echosclero.errors import InputError
    from echosclero.interop.record import ClinicInfo

    zone = os.environ.get("ECHOSCLERO_CLINIC_TIMEZONE", "")
    try:
        tz = ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"ECHOSCLERO_CLINIC_TIMEZONE {zone!r} is not a known time zone (e.g. Europe/Paris)") from None
    return ClinicInfo(name=os.environ.get("ECHOSCLERO_CLINIC_NAME", "the clinic"),
                      phone=os.environ.get("ECHOSCLERO_CLINIC_PHONE", ""), tz=tz)


def audit(db, action: str, resource: str, *, resource_id=None, patient_id=None, command: str, **detail) -> None:
    from echosclero.store.models import AuditEntry

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    db.add(AuditEntry(username="cli", role="", action=action, resource=resource,
                      resource_id=None if resource_id is None else str(resource_id), patient_id=patient_id,
                      method="CLI", path=f"echosclero {command}"[:500], detail={"os_user": who, **detail}))


def write_out(path: str, data: bytes) -> None:
    """Write a file whole or not at all (a temporary file renamed into place)."""
    from pathlib import Path

    from echosclero.errors import InputError

    out = Path(path)
    if out.is_dir():
        raise InputError(f"--out {path} is a folder; give a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
