"""A patient's pathway read from the clinic record, once, for the exporters (PDF, DICOM SR, FHIR).

:func:`load_pathway` gathers what a report needs in one read of the database: the patient, the duplex exams
(vein maps), CEAP/VCSS assessments, plans, sessions with their injections, dose totals against the limits in
force, the results attached to them (:mod:`echosclero.interop.results`), follow-ups and appointments. The
exporters work on this snapshot and never query the database themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from echosclero.clinic import aftercare
from echosclero.clinic.dosing import Dose, DoseContext, remaining, totals
from echosclero.clinic.rules import RuleBook
from echosclero.errors import InputError
from echosclero.mapping.model import VeinMap
from echosclero.store import models as m

__all__ = ["ClinicInfo", "Pathway", "SessionRecord", "load_pathway", "rulebook"]


@dataclass(frozen=True, slots=True)
class ClinicInfo:
    name: str = "the clinic"
    phone: str = ""
    tz: tzinfo | None = None  # the clinic's time zone (ECHOSCLERO_CLINIC_TIMEZONE); None: the server's

    def local(self, moment: datetime) -> datetime:
        """A stored (UTC) moment as the clinic's clock reads it: what a patient is told."""
        return moment.astimezone(self.tz)


@dataclass(slots=True)
class SessionRecord:
    """One treatment session with what was given, the totals and what the limits left."""

    session: m.Session
    injections: list[m.Injection]
    totals: dict
    day_totals: dict
    remaining: dict
    limits: dict
    results: list[m.AttachedResult]
    key_frames: list[m.KeyFrame]
    plan: m.Plan | None
    followups: list[m.Followup]
    exam: m.Exam | None  # the latest duplex exam of the session's leg on or before its date


@dataclass(slots=True)
class Pathway:
    patient: m.Patient
    exams: list[m.Exam]
    assessments: list[m.Assessment]
    plans: list[m.Plan]
    sessions: list[SessionRecord]
    followups: list[m.Followup]
    appointments: list[m.Appointment]
    complications: list[m.Complication]
    exam_results: dict[int, list[m.AttachedResult]] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    clinic: ClinicInfo = field(default_factory=ClinicInfo)

    def session(self, session_id: int) -> SessionRecord:
        for s in self.sessions:
            if s.session.id == session_id:
                return s
        raise InputError(f"session {session_id} is not a session of patient {self.patient.id}")

    def vein_map(self, exam: m.Exam) -> VeinMap:
        return VeinMap.from_json(exam.vein_map)


def rulebook(db: DbSession) -> RuleBook:
    """The rules in force: defaults with the clinic's adjusted values (as the API reads them)."""
    values = {rv.code: rv.value for rv in db.scalars(select(m.RuleValue))}
    book = RuleBook()
    return book.with_values({k: v for k, v in values.items() if k in book.rules})


def _dose(i: m.Injection) -> Dose:
    return Dose(i.segment, i.agent, i.form, i.concentration_pct, i.volume_ml, i.liquid_gas_ratio)


def _limits(rules: RuleBook, weight_kg: float) -> dict:
    """The refusing limits of one session/day with their sources, as the report prints them."""
    out = {}
    for key, code, scale in (
        ("polidocanol_mg_today", "POLIDOCANOL_DAILY_MG_PER_KG", weight_kg),
        ("polidocanol_foam_ml_today", "POLIDOCANOL_FOAM_DAILY_MAX_ML", 1.0),
        ("foam_ml_session", "FOAM_SESSION_MAX_ML", 1.0),
        ("sts_ml_session", "STS_SESSION_MAX_ML", 1.0),
        ("canister_foam_ml_session", "CANISTER_FOAM_SESSION_MAX_ML", 1.0),
    ):
        rule = rules[code]
        out[key] = {"limit": round(float(rule.value) * scale, 4), "rule": code, "source": rule.source}
    return out


def _templates(db: DbSession) -> dict[str, str]:
    out = dict(aftercare.DEFAULT_TEMPLATES)
    for row in db.scalars(select(m.InstructionTemplate)):
        if row.key in out:
            out[row.key] = row.body
    return out


def load_pathway(db: DbSession, *, patient_id: int, clinic: ClinicInfo | None = None) -> Pathway:
    """Read one patient's pathway; an unknown patient is refused with its id."""
    patient = db.get(m.Patient, patient_id)
    if patient is None:
        raise InputError(f"no patient {patient_id} in the record; `GET /api/patients` lists them")

    def rows(model, *order):
        return list(db.scalars(select(model).where(model.patient_id == patient_id).order_by(*order, model.id)))

    exams = rows(m.Exam, m.Exam.exam_date)
    results = rows(m.AttachedResult)
    result_ids = [r.id for r in results]
    frames = (
        list(db.scalars(select(m.KeyFrame).where(m.KeyFrame.result_id.in_(result_ids)).order_by(m.KeyFrame.id)))
        if result_ids
        else []
    )
    followups = rows(m.Followup, m.Followup.due_on)
    plans = rows(m.Plan)
    injections = rows(m.Injection, m.Injection.injected_at)
    rules = rulebook(db)
    sessions = []
    for s in rows(m.Session, m.Session.session_date):
        mine = [i for i in injections if i.session_id == s.id]
        day_ids = {x.id for x in rows(m.Session) if x.session_date == s.session_date}
        day = [i for i in injections if i.session_id in day_ids]
        dctx = DoseContext(
            weight_kg=patient.weight_kg,
            given_today=[_dose(i) for i in day],
            given_this_session=[_dose(i) for i in mine],
        )
        res = [r for r in results if r.session_id == s.id]
        prior = [e for e in exams if e.limb == s.limb and e.exam_date <= s.session_date]
        sessions.append(
            SessionRecord(
                session=s,
                injections=mine,
                totals=totals(dctx.given_this_session).as_dict(),
                day_totals=totals(dctx.given_today).as_dict(),
                remaining=remaining(dctx, rules=rules),
                limits=_limits(rules, patient.weight_kg),
                results=res,
                key_frames=[f for f in frames if f.result_id in {r.id for r in res}],
                plan=next((p for p in plans if p.id == s.plan_id), None),
                followups=[f for f in followups if f.session_id == s.id],
                exam=prior[-1] if prior else None,
            )
        )
    exam_results: dict[int, list[m.AttachedResult]] = {}
    for r in results:
        if r.exam_id is not None:
            exam_results.setdefault(r.exam_id, []).append(r)
    return Pathway(
        patient=patient,
        exams=exams,
        assessments=rows(m.Assessment, m.Assessment.assessed_on),
        plans=plans,
        sessions=sessions,
        followups=followups,
        appointments=rows(m.Appointment, m.Appointment.start_at),
        complications=rows(m.Complication, m.Complication.onset_on),
        exam_results=exam_results,
        templates=_templates(db),
        clinic=clinic or ClinicInfo(),
    )


def age_on(p: m.Patient, on: date) -> int:
    from echosclero.clinic.patient import age_years

    return age_years(p.birth_date, on=on)
