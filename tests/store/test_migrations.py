"""Migrations: the models match the migrated schema, and an existing database upgrades without loss."""

from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from echosclero.store.migrate import current_revision, head_revision, upgrade
from echosclero.store.models import AuditEntry, Base, Injection, Patient


def test_models_match_migrations(empty_engine):
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    with empty_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_upgrade_from_first_revision_keeps_data(empty_engine):
    upgrade(empty_engine, "0001")
    assert "appointments" not in inspect(empty_engine).get_table_names()
    with empty_engine.begin() as conn:  # data written by revision 0001's schema, in plain SQL
        conn.execute(
            text(
                "INSERT INTO users (id, username, full_name, password_hash, role, active, created_at) "
                "VALUES (1, 'doc', '', 'x', 'physician', true, '2024-01-01 10:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO patients (id, family_name, given_name, birth_date, sex, weight_kg, notes, "
                "created_at, updated_at) VALUES (1, 'Old', 'Record', '1960-02-03', 'female', 64.5, "
                "'kept', '2024-01-01 10:00:00', '2024-01-01 10:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO sessions (id, patient_id, session_date, limb, status, observation_notes, "
                "warnings, created_at) VALUES (1, 1, '2024-01-02', 'left', 'open', '', '[]', "
                "'2024-01-02 09:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO injections (id, session_id, patient_id, segment, agent, form, "
                "liquid_gas_ratio, concentration_pct, volume_ml, mass_mg, injected_at, notes, warnings,"
                " created_at) VALUES (1, 1, 1, 'GSV', 'polidocanol', 'foam', '1:4', 1.0, 4.0, 8.0, "
                "'2024-01-02 09:10:00', '', '[]', '2024-01-02 09:10:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_log (at, username, role, action, resource, method, path, "
                "client_ip, detail) VALUES ('2024-01-02 09:10:00', 'doc', 'physician', 'create', "
                "'injection', 'POST', '/api', '127.0.0.1', '{}')"
            )
        )
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    with Session(empty_engine) as db:
        p = db.get(Patient, 1)
        assert (p.family_name, p.birth_date, p.weight_kg, p.notes, p.email) == (
            "Old",
            date(1960, 2, 3),
            64.5,
            "kept",
            None,
        )
        inj = db.get(Injection, 1)
        assert inj.volume_ml == 4.0 and inj.injected_at == datetime(2024, 1, 2, 9, 10, tzinfo=UTC)
        assert db.scalars(select(AuditEntry)).one().resource == "injection"
    with pytest.raises(DBAPIError, match="append-only"):  # the triggers survive the batch migrations
        with empty_engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))


def test_upgrade_is_idempotent(empty_engine):
    upgrade(empty_engine)
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()


def test_0006_adds_mrn_and_queues_the_failed_forwards_of_0005(empty_engine):
    """A 0005 record keeps its patients and received objects; a forward that had failed is queued again, a
    delivered one is done; the MRN is unique; 0006 goes down to 0005 and up again."""
    from alembic import command
    from sqlalchemy.exc import IntegrityError

    from echosclero.store.migrate import alembic_config
    from echosclero.store.models import DicomInstance

    upgrade(empty_engine, "0005")
    with empty_engine.begin() as conn:
        conn.execute(text("INSERT INTO patients (id, family_name, given_name, birth_date, sex, notes, created_at, "
                          "updated_at) VALUES (1, 'Old', 'Record', '1960-02-03', 'female', '', '2026-01-01 10:00:00', "
                          "'2026-01-01 10:00:00')"))
        for i, (fwd_at, err, status) in enumerate([("2026-01-02 09:00:00", None, "filed"),
                                                   (None, "association rejected", "filed"),
                                                   (None, None, "unmatched")], start=1):
            conn.execute(text(
                "INSERT INTO dicom_instances (id, sop_instance_uid, sop_class_uid, study_instance_uid, "
                "series_instance_uid, modality, dicom_patient_id, dicom_patient_name, patient_id, status, path, "
                "n_frames, calling_ae, forwarded_at, forward_error, received_at) VALUES (:i, :uid, '1.2', '1.3', "
                "'1.4', 'US', '1', '', :pid, :status, '/x.dcm', 1, 'SCANNER', :fwd, :err, '2026-01-02 08:00:00')"),
                {"i": i, "uid": f"1.2.3.{i}", "pid": 1 if status == "filed" else None, "status": status,
                 "fwd": fwd_at, "err": err})
    upgrade(empty_engine)
    with Session(empty_engine) as db:
        rows = {r.id: r for r in db.scalars(select(DicomInstance))}
        assert [(rows[i].forward_status, rows[i].forward_attempts, rows[i].matched_by) for i in (1, 2, 3)] == [
            ("forwarded", 0, "record_number"), ("retrying", 1, "record_number"), (None, 0, None)]
        assert db.get(Patient, 1).mrn is None
        db.get(Patient, 1).mrn = "H-1"
        db.add(Patient(family_name="New", given_name="One", birth_date=date(1990, 1, 1), sex="male", mrn="H-1"))
        with pytest.raises(IntegrityError):
            db.commit()
    command.downgrade(alembic_config(empty_engine), "0005")
    assert "mrn" not in {c["name"] for c in inspect(empty_engine).get_columns("patients")}
    assert "forward_status" not in {c["name"] for c in inspect(empty_engine).get_columns("dicom_instances")}
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    with Session(empty_engine) as db:
        assert db.get(DicomInstance, 2).forward_status == "retrying"
