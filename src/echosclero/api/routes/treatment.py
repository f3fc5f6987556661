"""Plans, sessions and injections: where the dose-safety rules are enforced."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from echosclero.api.deps import Ctx
from echosclero.api.errors import HTTPProblem
from echosclero.api.routes.common import (
    Need,
    P,
    PathId,
    api_router,
    apply_changes,
    candidacy_assessment,
    create,
    get_or_404,
    get_patient,
    latest_candidacy,
    list_for_patient,
    read_one,
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
from echosclero.clinic.rules import Enforcement, Violation
from echosclero.clinic.sessions import TestInjection as TI
from echosclero.clinic.sessions import (
    check_observation,
    check_session_times,
    check_test_injection,
    check_test_reaction,
)
from echosclero.store.models import Followup, Injection, Plan, PlanItem, Session, TestInjection

router = api_router("treatment")


def _gate(ctx: Ctx, patient_id: int, *, foam: bool, on: date) -> list[Violation]:
    """Candidacy gate (the newest checklist assessed on or before ``on``); an absolute contraindication
    overridden on the checklist becomes a warning."""
    record = latest_candidacy(ctx, patient_id, on=on)
    vs = check_candidacy_gate(candidacy_assessment(record, foam=foam), rules=ctx.rules())
    if record is None or not record.override_reason:
        return vs
    return [
        Violation(
            replace(v.rule, enforcement=Enforcement.WARN),
            f"{v.message}; overridden on the checklist: {record.override_reason}",
            v.field,
        )
        if v.refuses and v.rule.code == "CANDIDACY_ABSOLUTE"
        else v
        for v in vs
    ]


def _prep(item) -> dict:
    """The preparation fields shared by plan items and injections, as stored."""
    return {
        "segment": item.segment,
        "agent": item.agent.value,
        "form": item.form.value,
        "liquid_gas_ratio": item.liquid_gas_ratio,
        "gas": item.gas.value if item.gas else None,
        "concentration_pct": item.concentration_pct,
    }


# --- plans ---


@router.get("/patients/{patient_id}/plans", response_model=list[PlanOut])
def list_plans(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(ctx, Plan, patient_id=patient_id, resource="plans")


@router.post("/patients/{patient_id}/plans", response_model=PlanOut, status_code=201)
def create_plan(patient_id: PathId, body: PlanIn, ctx: Need(P.PLAN_WRITE)):
    patient = get_patient(ctx, patient_id)
    weight_kg = dosing_weight(patient)
    doses = [
        Dose(i.segment, i.agent, i.form, i.concentration_pct, i.planned_volume_ml, i.liquid_gas_ratio)
        for i in body.items
    ]
    vs = _gate(ctx, patient_id, foam=plan_uses_foam(doses), on=date.today())
    vs += check_plan(doses, weight_kg=weight_kg, rules=ctx.rules())
    vs = ctx.enforce(vs, body.override_reason, resource="plan", patient_id=patient_id)
    plan = Plan(
        patient_id=patient_id,
        limb=body.limb,
        notes=body.notes,
        created_by=ctx.user.id,
        warnings=[v.as_dict() for v in vs],
        override_reason=body.override_reason,
        items=[PlanItem(**_prep(i), planned_volume_ml=i.planned_volume_ml) for i in body.items],
    )
    return create(ctx, plan, resource="plan")


@router.get("/plans/{plan_id}", response_model=PlanOut)
def read_plan(plan_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return read_one(ctx, Plan, plan_id, what="plan", resource="plan")


# --- sessions ---


def dosing_weight(patient) -> float:
    """The body weight the dose limits use; 422 when none is recorded."""
    if patient.weight_kg is None:
        raise HTTPProblem(
            422,
            f"patient {patient.id} has no recorded body weight; a clinical user (physician, nurse, sonographer) "
            f"records weight_kg first (PATCH /api/patients/{patient.id})",
        )
    return patient.weight_kg


def _dose(i: Injection) -> Dose:
    return Dose(i.segment, i.agent, i.form, i.concentration_pct, i.volume_ml, i.liquid_gas_ratio)


def day_injections(ctx: Ctx, patient_id: int, day: date) -> list[tuple[Injection, str]]:
    """Every injection of the patient whose own time falls on the clinic's calendar day ``day`` (whatever its
    session's date), with the leg of its session."""
    start, end = ctx.settings.day_start(day), ctx.settings.day_start(day + timedelta(days=1))
    return list(
        ctx.db.execute(
            select(Injection, Session.limb)
            .join(Session, Injection.session_id == Session.id)
            .where(Injection.patient_id == patient_id, Injection.injected_at >= start, Injection.injected_at < end)
            .order_by(Injection.id)
        ).tuples()
    )


def day_context(ctx: Ctx, patient, day: date, *, session: Session | None = None, **kw) -> DoseContext:
    """The dose context of the patient's calendar day ``day`` (``session``: the current one)."""
    rows = day_injections(ctx, patient.id, day)
    this = (
        []
        if session is None
        else list(ctx.db.scalars(select(Injection).where(Injection.session_id == session.id).order_by(Injection.id)))
    )
    return DoseContext(
        weight_kg=dosing_weight(patient),
        given_today=[_dose(i) for i, _ in rows],
        given_this_session=[_dose(i) for i in this],
        given_today_this_leg=None if session is None else [_dose(i) for i, limb in rows if limb == session.limb],
        **kw,
    )


def session_out(ctx: Ctx, s: Session) -> SessionOut:
    inj = list(ctx.db.scalars(select(Injection).where(Injection.session_id == s.id).order_by(Injection.id)))
    patient = get_patient(ctx, s.patient_id)
    if patient.weight_kg is None:
        dctx = None
    else:
        dctx = day_context(ctx, patient, s.session_date, session=s)
    stored = {f: getattr(s, f) for f in _SESSION_COLUMNS}
    return SessionOut(
        **stored,
        date=s.session_date,
        warnings=s.warnings or [],
        totals=totals(_dose(i) for i in inj).as_dict(),
        remaining={} if dctx is None else remaining(dctx, rules=ctx.rules()),
        injections=[InjectionOut.model_validate(i) for i in inj],
    )


_SESSION_COLUMNS = [
    f for f in SessionOut.model_fields if f not in ("date", "warnings", "totals", "remaining", "injections")
]


@router.get("/patients/{patient_id}/sessions", response_model=list[SessionOut])
def list_sessions(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(
        ctx,
        Session,
        patient_id=patient_id,
        resource="sessions",
        order=[Session.session_date],
        out=lambda s: session_out(ctx, s),
    )


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
        foam = any(Form(i.form).is_foam for i in plan.items)
    vs = ctx.enforce(
        _gate(ctx, patient_id, foam=foam, on=body.date), body.override_reason, resource="session", patient_id=patient_id
    )
    s = Session(
        patient_id=patient_id,
        plan_id=body.plan_id,
        session_date=body.date,
        limb=body.limb,
        operator_id=ctx.user.id,
        started_at=body.started_at,
        patient_position=body.patient_position.value if body.patient_position else None,
        local_anaesthetic=body.local_anaesthetic,
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
    return read_one(ctx, Session, session_id, what="session", resource="session", out=lambda s: session_out(ctx, s))


def _schedule_followups(ctx: Ctx, s: Session) -> None:
    """Follow-ups by rule after a session is closed (once); a kind already booked by hand for this session is
    that follow-up (merged: the automatic one is not added beside it)."""
    booked = set(ctx.db.scalars(select(Followup.kind).where(Followup.session_id == s.id)))
    for f in fu.schedule(s.session_date, rules=ctx.rules()):
        if f.kind.value in booked:
            continue
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


@router.patch("/sessions/{session_id}", response_model=SessionOut)
def update_session(session_id: PathId, body: SessionPatch, ctx: Need(P.SESSION_NURSING)):
    s = get_or_404(ctx, Session, session_id, what="session")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if s.status == "closed" and changes.get("status") != "open":
        raise HTTPProblem(422, f"session {s.id} is closed; reopen it (status 'open') to change it")
    if "regimen" in changes and changes["regimen"] not in REGIMENS:
        raise HTTPProblem(422, f"unknown aftercare regimen {changes['regimen']!r}; valid: {', '.join(REGIMENS)}")
    fields = apply_changes(s, changes)
    check_session_times(s.started_at, s.ended_at)
    warnings = check_observation(s.observation_minutes, None, rules=ctx.rules())
    if warnings:
        s.warnings = [*(s.warnings or []), *[w.as_dict() for w in warnings]]
    if changes.get("status") == "closed":
        s.ended_at = s.ended_at or datetime.now(UTC)
        check_session_times(s.started_at, s.ended_at)
        _schedule_followups(ctx, s)
    ctx.audit("update", "session", s.id, patient_id=s.patient_id, fields=fields)
    out = session_out(ctx, s)
    ctx.commit()
    return out


# --- injections ---


@router.get("/sessions/{session_id}/injections", response_model=list[InjectionOut])
def list_injections(session_id: PathId, ctx: Need(P.CLINICAL_READ)):
    s = get_or_404(ctx, Session, session_id, what="session")
    rows = list(ctx.db.scalars(select(Injection).where(Injection.session_id == s.id).order_by(Injection.id)))
    ctx.audit("read", "injections", patient_id=s.patient_id, session_id=s.id, count=len(rows))
    ctx.commit()
    return rows


FUTURE_SLACK = timedelta(minutes=10)  # clock differences between the workstation and the server


@router.post("/sessions/{session_id}/injections", response_model=InjectionCreated, status_code=201)
def add_injection(session_id: PathId, body: InjectionIn, ctx: Need(P.SESSION_WRITE)):
    s = get_or_404(ctx, Session, session_id, what="session")
    patient = get_patient(ctx, s.patient_id, lock=True)  # serialises dose checks of one patient (PostgreSQL)
    if s.status == "closed":
        raise HTTPProblem(422, f"session {s.id} is closed; reopen it to record more injections")
    rules, now = ctx.rules(), datetime.now(UTC)
    at = body.time or now
    if at > now + FUTURE_SLACK:
        raise HTTPProblem(
            422, f"time {at.isoformat()} is in the future; record an injection when it is given (or leave time out)"
        )
    day = ctx.settings.day_of(at)  # the daily limits count the injection's own day, not the session's date
    dose = Dose(body.segment, body.agent, body.form, body.concentration_pct, body.volume_ml, body.liquid_gas_ratio)
    earlier = list(
        ctx.db.execute(
            select(Injection.form, Injection.agent, Injection.injected_at).where(
                Injection.patient_id == patient.id, Injection.injected_at < ctx.settings.day_start(day)
            )
        )
    )
    foam_days = [ctx.settings.day_of(t) for f, _, t in earlier if Form(f).is_foam]
    canister_days = [ctx.settings.day_of(t) for f, _, t in earlier if f == Form.CANISTER_FOAM.value]
    assessment = candidacy_assessment(latest_candidacy(ctx, patient.id, on=s.session_date), foam=dose.form.is_foam)
    today_rows = day_injections(ctx, patient.id, day)
    dctx = day_context(
        ctx,
        patient,
        day,
        session=s,
        hypersensitivity_prone=bool(assessment and assessment.hypersensitivity_prone),
        first_session=not earlier and all(i.session_id == s.id for i, _ in today_rows),
        days_since_last_foam_session=(day - max(foam_days)).days if foam_days else None,
        days_since_last_canister_foam_session=(day - max(canister_days)).days if canister_days else None,
        ultrasound_confirmed=body.ultrasound_confirmed,
    )
    vs = _gate(ctx, patient.id, foam=dose.form.is_foam, on=s.session_date)
    if day != s.session_date:
        vs.append(
            Violation(
                rules["INJECTION_TIME_IN_SESSION_DAY"],
                f"the injection's time {at.isoformat()} is on {day.isoformat()}, not on the session's date "
                f"{s.session_date.isoformat()}; the daily limits count it on {day.isoformat()}",
                "time",
            )
        )
    vs += check_injection(dose, dctx, rules=rules)
    agent = dose.agent.value
    first_foam = dose.form.is_foam and not any(
        Form(f).is_foam and a == agent for f, a, _ in earlier
    ) and not any(Form(i.form).is_foam and i.agent == agent for i, _ in today_rows)
    tests = [
        TI(t.given_on, t.reaction, t.agent)
        for t in ctx.db.scalars(select(TestInjection).where(TestInjection.patient_id == patient.id))
    ]
    vs += check_test_reaction(day=max(day, s.session_date), agent=agent, tests=tests, rules=rules)
    vs += check_test_injection(
        session_date=min(day, s.session_date), first_foam=first_foam, tests=tests, rules=rules, agent=agent
    )
    vs = ctx.enforce(vs, body.override_reason, resource="injection", patient_id=patient.id)
    inj = Injection(
        **_prep(body),
        session_id=s.id,
        patient_id=patient.id,
        volume_ml=body.volume_ml,
        mass_mg=round(dose.mass_mg, 4),
        injected_at=at,
        ultrasound_confirmed=body.ultrasound_confirmed,
        frame_ref=body.frame_ref,
        spread_cm=body.spread_cm,
        spasm=body.spasm,
        access_device=body.access_device.value if body.access_device else None,
        needle_gauge=body.needle_gauge,
        notes=body.notes,
        warnings=[v.as_dict() for v in vs],
        override_reason=body.override_reason,
        created_by=ctx.user.id,
    )
    create(ctx, inj, resource="injection", session_id=s.id, warnings=[v.rule.code for v in vs])
    after = replace(
        dctx,
        given_today=[*dctx.given_today, dose],
        given_this_session=[*dctx.given_this_session, dose],
        given_today_this_leg=[*(dctx.given_today_this_leg or []), dose],
    )
    return InjectionCreated(
        **InjectionOut.model_validate(inj).model_dump(),
        session_totals=totals(after.given_this_session).as_dict(),
        remaining=remaining(after, rules=rules),
    )
