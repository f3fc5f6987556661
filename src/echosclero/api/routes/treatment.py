"""Plans, sessions and injections: where the dose-safety rules are enforced."""

from datetime import UTC, datetime

from fastapi import APIRouter
from sqlalchemy import select

from echosclero.api.deps import Ctx
from echosclero.api.errors import HTTPProblem
from echosclero.api.routes.common import (
    Need,
    P,
    PathId,
    candidacy_assessment,
    get_or_404,
    get_patient,
    latest_candidacy,
)
from echosclero.api.schemas import (
    InjectionCreated,
    InjectionIn,
    InjectionOut,
    PlanIn,
    PlanOut,
    SessionIn,
    SessionOut,
    SessionPatch,
)
from echosclero.clinic import followup as fu
from echosclero.clinic.aftercare import REGIMENS
from echosclero.clinic.dosing import Dose, DoseContext, Form, check_injection, remaining, totals
from echosclero.clinic.plans import check_candidacy_gate, check_plan, plan_uses_foam
from echosclero.clinic.rules import Violation
from echosclero.clinic.sessions import TestInjection as TI
from echosclero.clinic.sessions import check_observation, check_session_times, check_test_injection
from echosclero.store.models import Followup, Injection, Plan, PlanItem, Session, TestInjection

router = APIRouter(prefix="/api", tags=["treatment"])


def _gate(ctx: Ctx, patient_id: int, *, foam: bool) -> list[Violation]:
    """Candidacy gate; an absolute contraindication overridden on the checklist becomes a warning."""
    record = latest_candidacy(ctx, patient_id)
    vs = check_candidacy_gate(candidacy_assessment(record, foam=foam), rules=ctx.rules())
    if record is not None and record.override_reason:
        from dataclasses import replace

        from echosclero.clinic.rules import Enforcement

        vs = [
            Violation(
                replace(v.rule, enforcement=Enforcement.WARN),
                f"{v.message}; overridden on the checklist: {record.override_reason}",
                v.field,
            )
            if v.refuses and v.rule.code == "CANDIDACY_ABSOLUTE"
            else v
            for v in vs
        ]
    return vs


# --- plans ---


@router.get("/patients/{patient_id}/plans", response_model=list[PlanOut])
def list_plans(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    get_patient(ctx, patient_id)
    rows = ctx.db.scalars(select(Plan).where(Plan.patient_id == patient_id).order_by(Plan.id)).all()
    ctx.audit("read", "plans", patient_id=patient_id, count=len(rows))
    ctx.commit()
    return rows


@router.post("/patients/{patient_id}/plans", response_model=PlanOut, status_code=201)
def create_plan(patient_id: PathId, body: PlanIn, ctx: Need(P.PLAN_WRITE)):
    patient = get_patient(ctx, patient_id)
    doses = [
        Dose(i.segment, i.agent, i.form, i.concentration_pct, i.planned_volume_ml, i.liquid_gas_ratio)
        for i in body.items
    ]
    rules = ctx.rules()
    vs = _gate(ctx, patient_id, foam=plan_uses_foam(doses))
    vs += check_plan(doses, weight_kg=patient.weight_kg, rules=rules)
    vs = ctx.enforce(vs, body.override_reason, resource="plan", patient_id=patient_id)
    plan = Plan(
        patient_id=patient_id,
        limb=body.limb,
        notes=body.notes,
        created_by=ctx.user.id,
        warnings=[v.as_dict() for v in vs],
        override_reason=body.override_reason,
    )
    plan.items = [
        PlanItem(
            segment=i.segment,
            agent=i.agent.value,
            form=i.form.value,
            liquid_gas_ratio=i.liquid_gas_ratio,
            gas=i.gas.value if i.gas else None,
            concentration_pct=i.concentration_pct,
            planned_volume_ml=i.planned_volume_ml,
        )
        for i in body.items
    ]
    ctx.db.add(plan)
    ctx.db.flush()
    ctx.audit("create", "plan", plan.id, patient_id=patient_id)
    ctx.commit()
    return plan


@router.get("/plans/{plan_id}", response_model=PlanOut)
def read_plan(plan_id: PathId, ctx: Need(P.CLINICAL_READ)):
    plan = get_or_404(ctx, Plan, plan_id, "plan")
    ctx.audit("read", "plan", plan.id, patient_id=plan.patient_id)
    ctx.commit()
    return plan


# --- sessions ---


def _dose(i: Injection) -> Dose:
    return Dose(i.segment, i.agent, i.form, i.concentration_pct, i.volume_ml, i.liquid_gas_ratio)


def _day_doses(ctx: Ctx, s: Session) -> list[Injection]:
    return list(
        ctx.db.scalars(
            select(Injection)
            .join(Session, Injection.session_id == Session.id)
            .where(Injection.patient_id == s.patient_id, Session.session_date == s.session_date)
            .order_by(Injection.id)
        )
    )


def _session_injections(ctx: Ctx, session_id: int) -> list[Injection]:
    return list(ctx.db.scalars(select(Injection).where(Injection.session_id == session_id).order_by(Injection.id)))


def session_out(ctx: Ctx, s: Session) -> SessionOut:
    inj = _session_injections(ctx, s.id)
    day = _day_doses(ctx, s)
    weight = get_patient(ctx, s.patient_id).weight_kg
    dctx = DoseContext(
        weight_kg=weight, given_today=[_dose(i) for i in day], given_this_session=[_dose(i) for i in inj]
    )
    return SessionOut(
        id=s.id,
        patient_id=s.patient_id,
        plan_id=s.plan_id,
        date=s.session_date,
        limb=s.limb,
        operator_id=s.operator_id,
        started_at=s.started_at,
        ended_at=s.ended_at,
        observation_minutes=s.observation_minutes,
        observation_outcome=s.observation_outcome,
        observation_notes=s.observation_notes,
        compression=s.compression,
        stocking_class=s.stocking_class,
        compression_days=s.compression_days,
        regimen=s.regimen,
        status=s.status,
        warnings=s.warnings or [],
        totals=totals(dctx.given_this_session).as_dict(),
        remaining=remaining(dctx, rules=ctx.rules()),
        injections=[InjectionOut.model_validate(i) for i in inj],
    )


@router.get("/patients/{patient_id}/sessions", response_model=list[SessionOut])
def list_sessions(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    get_patient(ctx, patient_id)
    rows = ctx.db.scalars(
        select(Session).where(Session.patient_id == patient_id).order_by(Session.session_date, Session.id)
    ).all()
    ctx.audit("read", "sessions", patient_id=patient_id, count=len(rows))
    out = [session_out(ctx, s) for s in rows]
    ctx.commit()
    return out


@router.post("/patients/{patient_id}/sessions", response_model=SessionOut, status_code=201)
def create_session(patient_id: PathId, body: SessionIn, ctx: Need(P.SESSION_WRITE)):
    get_patient(ctx, patient_id)
    foam = True
    if body.plan_id is not None:
        plan = ctx.db.get(Plan, body.plan_id)
        if plan is None or plan.patient_id != patient_id:
            raise HTTPProblem(422, f"plan {body.plan_id} is not a plan of patient {patient_id}")
        if plan.limb != body.limb:
            raise HTTPProblem(422, f"plan {plan.id} is for the {plan.limb} leg, the session for the {body.limb}")
        foam = any(i.form == Form.FOAM.value for i in plan.items)
    vs = ctx.enforce(_gate(ctx, patient_id, foam=foam), body.override_reason, resource="session", patient_id=patient_id)
    s = Session(
        patient_id=patient_id,
        plan_id=body.plan_id,
        session_date=body.date,
        limb=body.limb,
        operator_id=ctx.user.id,
        started_at=body.started_at,
        created_by=ctx.user.id,
        warnings=[v.as_dict() for v in vs],
    )
    ctx.db.add(s)
    ctx.db.flush()
    ctx.audit("create", "session", s.id, patient_id=patient_id)
    out = session_out(ctx, s)
    ctx.commit()
    return out


@router.get("/sessions/{session_id}", response_model=SessionOut)
def read_session(session_id: PathId, ctx: Need(P.CLINICAL_READ)):
    s = get_or_404(ctx, Session, session_id, "session")
    ctx.audit("read", "session", s.id, patient_id=s.patient_id)
    out = session_out(ctx, s)
    ctx.commit()
    return out


@router.patch("/sessions/{session_id}", response_model=SessionOut)
def update_session(session_id: PathId, body: SessionPatch, ctx: Need(P.SESSION_NURSING)):
    s = get_or_404(ctx, Session, session_id, "session")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if s.status == "closed" and changes.get("status") != "open":
        raise HTTPProblem(422, f"session {s.id} is closed; reopen it (status 'open') to change it")
    if "regimen" in changes and changes["regimen"] not in REGIMENS:
        raise HTTPProblem(422, f"unknown aftercare regimen {changes['regimen']!r}; valid: {', '.join(REGIMENS)}")
    for k, v in changes.items():
        setattr(s, k, v.value if hasattr(v, "value") else v)
    check_session_times(s.started_at, s.ended_at)
    warnings = check_observation(s.observation_minutes, None, rules=ctx.rules())
    if warnings:
        s.warnings = [*(s.warnings or []), *[w.as_dict() for w in warnings]]
    if changes.get("status") == "closed":
        if s.ended_at is None:
            s.ended_at = datetime.now(UTC)
        check_session_times(s.started_at, s.ended_at)
        exists = ctx.db.scalars(select(Followup).where(Followup.session_id == s.id)).first()
        if exists is None:
            for f in fu.schedule(s.session_date, rules=ctx.rules()):
                ctx.db.add(
                    Followup(
                        patient_id=s.patient_id,
                        session_id=s.id,
                        kind=f.kind.value,
                        due_on=f.due_on,
                        purpose=f.purpose,
                        rule=f.rule,
                    )
                )
    ctx.audit("update", "session", s.id, patient_id=s.patient_id, fields=sorted(changes))
    out = session_out(ctx, s)
    ctx.commit()
    return out


# --- injections ---


@router.get("/sessions/{session_id}/injections", response_model=list[InjectionOut])
def list_injections(session_id: PathId, ctx: Need(P.CLINICAL_READ)):
    s = get_or_404(ctx, Session, session_id, "session")
    rows = _session_injections(ctx, s.id)
    ctx.audit("read", "injections", patient_id=s.patient_id, session_id=s.id, count=len(rows))
    ctx.commit()
    return rows


@router.post("/sessions/{session_id}/injections", response_model=InjectionCreated, status_code=201)
def add_injection(session_id: PathId, body: InjectionIn, ctx: Need(P.SESSION_WRITE)):
    s = get_or_404(ctx, Session, session_id, "session")
    patient = get_patient(ctx, s.patient_id, lock=True)  # serialises dose checks of one patient (PostgreSQL)
    if s.status == "closed":
        raise HTTPProblem(422, f"session {s.id} is closed; reopen it to record more injections")
    rules = ctx.rules()
    dose = Dose(body.segment, body.agent, body.form, body.concentration_pct, body.volume_ml, body.liquid_gas_ratio)
    day = _day_doses(ctx, s)
    this = [i for i in day if i.session_id == s.id]
    earlier = list(
        ctx.db.scalars(
            select(Injection.form, Session.session_date)
            .join(Session, Injection.session_id == Session.id)
            .where(Injection.patient_id == patient.id, Session.session_date < s.session_date)
        )
    )
    foam_dates = [d for f, d in earlier if f == Form.FOAM.value]
    record = latest_candidacy(ctx, patient.id)
    assessment = candidacy_assessment(record, foam=dose.form is Form.FOAM)
    dctx = DoseContext(
        weight_kg=patient.weight_kg,
        given_today=[_dose(i) for i in day],
        given_this_session=[_dose(i) for i in this],
        hypersensitivity_prone=bool(assessment and assessment.hypersensitivity_prone),
        first_session=not earlier and all(i.session_id == s.id for i in day),
        days_since_last_foam_session=(s.session_date - max(foam_dates)).days if foam_dates else None,
        ultrasound_confirmed=body.ultrasound_confirmed,
    )
    vs = _gate(ctx, patient.id, foam=dose.form is Form.FOAM)
    vs += check_injection(dose, dctx, rules=rules)
    first_foam = dose.form is Form.FOAM and not foam_dates and not any(i.form == Form.FOAM.value for i in day)
    tests = [
        TI(t.given_on, t.reaction)
        for t in ctx.db.scalars(select(TestInjection).where(TestInjection.patient_id == patient.id))
    ]
    vs += check_test_injection(session_date=s.session_date, first_foam=first_foam, tests=tests, rules=rules)
    vs = ctx.enforce(vs, body.override_reason, resource="injection", patient_id=patient.id)
    inj = Injection(
        session_id=s.id,
        patient_id=patient.id,
        segment=dose.segment,
        agent=dose.agent.value,
        form=dose.form.value,
        liquid_gas_ratio=body.liquid_gas_ratio,
        gas=body.gas.value if body.gas else None,
        concentration_pct=body.concentration_pct,
        volume_ml=body.volume_ml,
        mass_mg=round(dose.mass_mg, 4),
        injected_at=body.time or datetime.now(UTC),
        ultrasound_confirmed=body.ultrasound_confirmed,
        frame_ref=body.frame_ref,
        spread_cm=body.spread_cm,
        spasm=body.spasm,
        notes=body.notes,
        warnings=[v.as_dict() for v in vs],
        override_reason=body.override_reason,
        created_by=ctx.user.id,
    )
    ctx.db.add(inj)
    ctx.db.flush()
    ctx.audit(
        "create",
        "injection",
        inj.id,
        patient_id=patient.id,
        session_id=s.id,
        warnings=[v.rule.code for v in vs],
    )
    ctx.commit()
    after = DoseContext(
        weight_kg=patient.weight_kg,
        given_today=[*dctx.given_today, dose],
        given_this_session=[*dctx.given_this_session, dose],
    )
    return InjectionCreated(
        **InjectionOut.model_validate(inj).model_dump(),
        session_totals=totals(after.given_this_session).as_dict(),
        remaining=remaining(after, rules=rules),
    )
