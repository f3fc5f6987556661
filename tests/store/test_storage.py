"""Storage behaviour on both backends: UTC timestamps, JSON maps, append-only audit in the ORM too."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from echosclero.store.migrate import upgrade
from echosclero.store.models import AppendOnlyError, AuditEntry, Exam, Patient


@pytest.fixture
def db(empty_engine):
    upgrade(empty_engine)
    with Session(empty_engine) as s:
        yield s


def _patient(db):
    p = Patient(family_name="A", given_name="B", birth_date=date(1970, 1, 1), sex="male", weight_kg=80)
    db.add(p)
    db.flush()
    return p


def test_timestamps_come_back_utc(db):
    p = _patient(db)
    db.add(
        AuditEntry(
            action="read",
            resource="patient",
            patient_id=p.id,
            at=datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        )
    )
    db.commit()
    db.expire_all()
    a = db.query(AuditEntry).one()
    assert a.at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC) and a.at.tzinfo is UTC
    assert p.created_at.tzinfo is UTC


def test_naive_datetime_refused(db):
    db.add(AuditEntry(action="read", resource="x", at=datetime(2024, 5, 1, 12)))
    with pytest.raises(Exception, match="naive"):
        db.flush()


def test_vein_map_json_roundtrip(db):
    p = _patient(db)
    vm = {"schema": "echosclero.map/1", "segments": [{"code": "GSV", "reflux_ms": 1200.5, "notes": "ünïcode"}]}
    db.add(Exam(patient_id=p.id, exam_date=date(2024, 1, 1), limb="left", vein_map=vm))
    db.commit()
    db.expire_all()
    assert db.query(Exam).one().vein_map == vm


def test_audit_orm_append_only(db):
    a = AuditEntry(action="read", resource="x")
    db.add(a)
    db.commit()
    a.username = "changed"
    with pytest.raises(AppendOnlyError):
        db.flush()
    db.rollback()
    with pytest.raises(AppendOnlyError):
        db.delete(db.query(AuditEntry).one())
        db.flush()
