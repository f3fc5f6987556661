"""ORM models of the clinic record (SQLAlchemy 2 typed mappings).

Every change to these models needs an Alembic revision in ``migrations/versions``; a test compares the
models with the migrated schema. Timestamps are UTC-aware (:class:`~echosclero.store.types.UTCDateTime`).
The audit log is append-only: the ORM refuses updates and deletes, and database triggers (created by
the first migration) refuse them in SQL too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from echosclero.store.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    family_name: Mapped[str] = mapped_column(String(200), index=True)
    given_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(10))
    weight_kg: Mapped[float | None] = mapped_column(Float, nullable=True)  # nullable from revision 0004
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)  # added in revision 0002
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)  # added in revision 0002
    #: the hospital's medical record number (or another identifier its scanners and PACS use as Patient ID);
    #: received DICOM objects are filed by it as well as by the record number (revision 0006)
    mrn: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True, index=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def _pid() -> Mapped[int]:
    return mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)


def _uid(nullable: bool = True) -> Mapped[int | None]:
    return mapped_column(ForeignKey("users.id"), nullable=nullable)


class Consent(Base):
    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    kind: Mapped[str] = mapped_column(String(40))
    given: Mapped[bool] = mapped_column(Boolean)
    signed_on: Mapped[date] = mapped_column(Date)
    document_ref: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class Exam(Base):
    __tablename__ = "exams"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    exam_date: Mapped[date] = mapped_column(Date)
    limb: Mapped[str] = mapped_column(String(10))
    vein_map: Mapped[dict[str, Any]] = mapped_column(JSON)
    findings: Mapped[str] = mapped_column(Text, default="")
    patient_position: Mapped[str | None] = mapped_column(String(30), nullable=True)  # revision 0004
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class Assessment(Base):
    """CEAP, VCSS and symptoms at one date (tracked over time)."""

    __tablename__ = "assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    assessed_on: Mapped[date] = mapped_column(Date)
    limb: Mapped[str] = mapped_column(String(10))
    ceap: Mapped[str | None] = mapped_column(String(80), nullable=True)
    vcss: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vcss_items: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    symptoms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class Candidacy(Base):
    __tablename__ = "candidacy"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    assessed_on: Mapped[date] = mapped_column(Date)
    present: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reasoning: Mapped[str] = mapped_column(Text, default="")
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    overridden_by: Mapped[int | None] = _uid()
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class TestInjection(Base):
    __tablename__ = "test_injections"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    given_on: Mapped[date] = mapped_column(Date)
    agent: Mapped[str] = mapped_column(String(40))
    concentration_pct: Mapped[float] = mapped_column(Float)
    volume_ml: Mapped[float] = mapped_column(Float)
    observed_minutes: Mapped[float | None] = mapped_column(Float, nullable=True)
    reaction: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    limb: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="active")
    notes: Mapped[str] = mapped_column(Text, default="")
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()
    items: Mapped[list[PlanItem]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="PlanItem.id", lazy="selectin"
    )


class PlanItem(Base):
    __tablename__ = "plan_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    segment: Mapped[str] = mapped_column(String(20))
    agent: Mapped[str] = mapped_column(String(40))
    form: Mapped[str] = mapped_column(String(20))  # String(10) until revision 0003 ("canister_foam")
    liquid_gas_ratio: Mapped[str | None] = mapped_column(String(10), nullable=True)
    gas: Mapped[str | None] = mapped_column(String(10), nullable=True)
    concentration_pct: Mapped[float] = mapped_column(Float)
    planned_volume_ml: Mapped[float] = mapped_column(Float)
    plan: Mapped[Plan] = relationship(back_populates="items")


class Session(Base):
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True)
    session_date: Mapped[date] = mapped_column(Date, index=True)
    limb: Mapped[str] = mapped_column(String(10))
    operator_id: Mapped[int | None] = _uid()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    observation_minutes: Mapped[float | None] = mapped_column(Float, nullable=True)
    observation_outcome: Mapped[str | None] = mapped_column(String(30), nullable=True)
    observation_notes: Mapped[str] = mapped_column(Text, default="")
    compression: Mapped[str | None] = mapped_column(String(30), nullable=True)
    stocking_class: Mapped[int | None] = mapped_column(Integer, nullable=True)
    compression_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    regimen: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="open")
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    patient_position: Mapped[str | None] = mapped_column(String(30), nullable=True)  # revision 0004
    local_anaesthetic: Mapped[str | None] = mapped_column(String(200), nullable=True)  # revision 0004
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class Injection(Base):
    __tablename__ = "injections"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = _pid()
    segment: Mapped[str] = mapped_column(String(20))
    agent: Mapped[str] = mapped_column(String(40))
    form: Mapped[str] = mapped_column(String(20))  # String(10) until revision 0003 ("canister_foam")
    liquid_gas_ratio: Mapped[str | None] = mapped_column(String(10), nullable=True)
    gas: Mapped[str | None] = mapped_column(String(10), nullable=True)
    concentration_pct: Mapped[float] = mapped_column(Float)
    volume_ml: Mapped[float] = mapped_column(Float)
    mass_mg: Mapped[float] = mapped_column(Float)
    injected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ultrasound_confirmed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    frame_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    spread_cm: Mapped[float | None] = mapped_column(Float, nullable=True)
    spasm: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    access_device: Mapped[str | None] = mapped_column(String(20), nullable=True)  # revision 0004
    needle_gauge: Mapped[int | None] = mapped_column(Integer, nullable=True)  # revision 0004
    notes: Mapped[str] = mapped_column(Text, default="")
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class Followup(Base):
    __tablename__ = "followups"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    due_on: Mapped[date] = mapped_column(Date)
    purpose: Mapped[str] = mapped_column(Text, default="")
    rule: Mapped[str | None] = mapped_column(String(60), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    done_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    dvt_found: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _created()


class SegmentOutcome(Base):
    __tablename__ = "segment_outcomes"
    id: Mapped[int] = mapped_column(primary_key=True)
    followup_id: Mapped[int] = mapped_column(ForeignKey("followups.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = _pid()
    limb: Mapped[str] = mapped_column(String(10))
    segment: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(30))
    observed_on: Mapped[date] = mapped_column(Date)
    diameter_mm: Mapped[float | None] = mapped_column(Float, nullable=True)


class Complication(Base):
    __tablename__ = "complications"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), nullable=True)
    type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(20))
    onset_on: Mapped[date] = mapped_column(Date)
    resolved_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    treatment: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class RuleValue(Base):
    """The clinic's adjusted value of a rule from :data:`echosclero.clinic.rules.DEFAULT_RULES`."""

    __tablename__ = "rule_values"
    code: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[int | None] = _uid()
    updated_at: Mapped[datetime] = _created()


class InstructionTemplate(Base):
    __tablename__ = "instruction_templates"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = _uid()
    updated_at: Mapped[datetime] = _created()


class AuditEntry(Base):
    """Append-only: who, what, when, from where."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(20), default="")
    action: Mapped[str] = mapped_column(String(20))
    resource: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    patient_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    method: Mapped[str] = mapped_column(String(10), default="")
    path: Mapped[str] = mapped_column(String(500), default="")
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- revision 0002 ---


class PriorTreatment(Base):
    __tablename__ = "prior_treatments"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    limb: Mapped[str] = mapped_column(String(10))
    segment: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40))
    treated_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class AppointmentRequest(Base):
    __tablename__ = "appointment_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    preferred_times: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    appointment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    handled_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class Appointment(Base):
    __tablename__ = "appointments"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    kind: Mapped[str] = mapped_column(String(30))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    duration_min: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="booked")
    notes: Mapped[str] = mapped_column(Text, default="")
    request_id: Mapped[int | None] = mapped_column(ForeignKey("appointment_requests.id"), nullable=True)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    late_change: Mapped[bool] = mapped_column(Boolean, default=False)  # revision 0004
    late_change_policy: Mapped[str | None] = mapped_column(Text, nullable=True)  # revision 0004
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


# --- revision 0003 ---


class RateLimitHit(Base):
    """One counted attempt of a rate-limited action (public request form, failed sign-in), by bucket and key
    (client address, or address and user name). Old rows are deleted as new ones arrive."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_bucket_key_at", "bucket", "key", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- revision 0005 (issue 14: results into the record, DICOM received) ---


class AttachedResult(Base):
    """An ``analyze`` or ``reflux`` result attached to an exam or a session, linked to its source image."""

    __tablename__ = "attached_results"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _pid()
    exam_id: Mapped[int | None] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), nullable=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))  # "analysis" | "reflux"
    leg: Mapped[str | None] = mapped_column(String(10), nullable=True)
    segment: Mapped[str | None] = mapped_column(String(20), nullable=True)
    source: Mapped[str] = mapped_column(String(500), default="")
    sop_instance_uid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    study_instance_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    series_instance_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sop_class_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = _uid()
    created_at: Mapped[datetime] = _created()


class KeyFrame(Base):
    """A key frame of an attached analysis (an alert raised, foam at its fullest), with its overlay image."""

    __tablename__ = "key_frames"
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("attached_results.id", ondelete="CASCADE"), index=True)
    frame_index: Mapped[int] = mapped_column(Integer)
    t_s: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(200))
    png: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class DicomInstance(Base):
    """A DICOM object received by ``echosclero dicom-receive``: filed under a patient, or queued unmatched."""

    __tablename__ = "dicom_instances"
    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    study_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    series_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    modality: Mapped[str] = mapped_column(String(16), default="")
    dicom_patient_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    dicom_patient_name: Mapped[str] = mapped_column(String(200), default="")
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL"), nullable=True, index=True
    )
    status: Mapped[str] = mapped_column(String(20), index=True)  # "filed" | "unmatched"
    #: how it was filed: "record_number" | "mrn" | "hand" (from the unmatched queue) | "export" (an SR we made)
    matched_by: Mapped[str | None] = mapped_column(String(20), nullable=True)  # revision 0006
    path: Mapped[str] = mapped_column(String(1000))
    n_frames: Mapped[int] = mapped_column(Integer, default=1)
    calling_ae: Mapped[str] = mapped_column(String(16), default="")
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    analysis_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    forward_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the forwarding queue (revision 0006; echosclero.interop.forwarding): None = no PACS to send to;
    # "pending" -> "forwarded", or "retrying" (next_forward_at) -> ... -> "failed" after the last attempt
    forward_status: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    forward_peer: Mapped[str | None] = mapped_column(String(120), nullable=True)  # AE@HOST:PORT
    forward_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_forward_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[datetime] = _created()


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(AuditEntry, "before_update")
def _no_update(mapper, connection, target):  # pragma: no cover - trivial
    raise AppendOnlyError("the audit log is append-only")


@event.listens_for(AuditEntry, "before_delete")
def _no_delete(mapper, connection, target):  # pragma: no cover - trivial
    raise AppendOnlyError("the audit log is append-only")
