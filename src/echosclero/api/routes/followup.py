"""Follow-ups, segment outcomes, complications, residual veins, and patient instructions."""

from datetime import date
from typing import Literal

from fastapi import Query
from sqlalchemy import select

from echosclero.api.deps import Ctx
from echosclero.api.errors import HTTPProblem
from echosclero.api.routes.common import (
    Need,
    P,
    PathId,
    api_router,
    apply_changes,
    create,
    get_or_404,
    get_patient,
    list_for_patient,
    require_session_of,
)
from echosclero.api.schemas import (
    ComplicationIn,
    ComplicationOut,
    ComplicationPatch,
    FollowupIn,
    FollowupOut,
    FollowupPatch,
    InstructionsOut,
    OutcomeOut,
    ResidualOut,
    TemplateIn,
    TemplateOut,
)
from echosclero.clinic import aftercare
from echosclero.clinic import followup as fu
from echosclero.clinic.patient import age_years
from echosclero.store.models import Complication, Followup, InstructionTemplate, SegmentOutcome, Session

router = api_router("follow-up")


def followup_out(ctx: Ctx, f: Followup) -> FollowupOut:
    outs = ctx.db.scalars(
        select(SegmentOutcome).where(SegmentOutcome.followup_id == f.id).order_by(SegmentOutcome.id)
    ).all()
    out = FollowupOut.model_validate(f)
    out.outcomes = [OutcomeOut.model_validate(o) for o in outs]
    return out


@router.get("/patients/{patient_id}/followups", response_model=list[FollowupOut])
def list_followups(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(
        ctx,
        Followup,
        patient_id=patient_id,
        resource="followups",
        order=[Followup.due_on],
        out=lambda f: followup_out(ctx, f),
    )


@router.post("/patients/{patient_id}/followups", response_model=FollowupOut, status_code=201)
def add_followup(patient_id: PathId, body: FollowupIn, ctx: Need(P.FOLLOWUP_WRITE)):
    get_patient(ctx, patient_id)
    require_session_of(ctx, body.session_id, patient_id=patient_id)
    if body.session_id is not None:  # the automatic follow-up of that kind, if any, is this one: merged
        auto = ctx.db.scalars(
            select(Followup).where(
                Followup.session_id == body.session_id, Followup.kind == body.kind.value, Followup.status == "scheduled"
            )
        ).first()
        if auto is not None:
            auto.due_on = body.due_on
            if body.notes:
                auto.notes = "\n".join(n for n in (auto.notes, body.notes) if n)
            ctx.audit("update", "followup", auto.id, patient_id=patient_id, merged=True, fields=["due_on", "notes"])
            out = followup_out(ctx, auto)
            ctx.commit()
            return out
    f = Followup(
        patient_id=patient_id,
        session_id=body.session_id,
        kind=body.kind.value,
        due_on=body.due_on,
        notes=body.notes,
        purpose="scheduled by hand",
    )
    return followup_out(ctx, create(ctx, f, resource="followup"))


@router.patch("/followups/{followup_id}", response_model=FollowupOut)
def update_followup(followup_id: PathId, body: FollowupPatch, ctx: Need(P.FOLLOWUP_WRITE)):
    f = get_or_404(ctx, Followup, followup_id, what="follow-up")
    changes = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"outcomes"})
    fields = apply_changes(f, changes)
    if body.outcomes and f.status != "done":
        f.status = "done"
    if f.status == "done" and f.done_on is None:
        f.done_on = date.today()
    stored = {
        (o.limb, o.segment): o
        for o in ctx.db.scalars(select(SegmentOutcome).where(SegmentOutcome.followup_id == f.id))
    }
    for o in body.outcomes:  # one outcome per leg and segment of a follow-up: re-sending it updates it
        row = stored.get((o.limb, o.segment))
        if row is None:
            row = stored[(o.limb, o.segment)] = SegmentOutcome(
                followup_id=f.id, patient_id=f.patient_id, limb=o.limb, segment=o.segment
            )
            ctx.db.add(row)
        row.outcome, row.observed_on, row.diameter_mm = o.outcome.value, f.done_on, o.diameter_mm
    ctx.audit("update", "followup", f.id, patient_id=f.patient_id, fields=fields, outcomes=len(body.outcomes))
    out = followup_out(ctx, f)
    ctx.commit()
    return out


@router.get("/patients/{patient_id}/residual-veins", response_model=list[ResidualOut])
def residual_veins(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    """The latest outcome of each segment that is not occluded: what the next plan can target."""
    get_patient(ctx, patient_id)
    rows = ctx.db.scalars(
        select(SegmentOutcome).where(SegmentOutcome.patient_id == patient_id).order_by(SegmentOutcome.id)
    ).all()
    res = fu.residual_segments(
        fu.OutcomeRecord(r.limb, r.segment, fu.SegmentOutcome(r.outcome), r.observed_on) for r in rows
    )
    ctx.audit("read", "residual_veins", patient_id=patient_id)
    ctx.commit()
    return [ResidualOut(limb=r.limb, segment=r.segment, outcome=r.outcome.value, observed_on=r.on) for r in res]


@router.get("/patients/{patient_id}/complications", response_model=list[ComplicationOut])
def list_complications(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(
        ctx, Complication, patient_id=patient_id, resource="complications", order=[Complication.onset_on]
    )


def _check_dates(onset: date, resolved: date | None) -> None:
    if resolved is not None and resolved < onset:
        raise HTTPProblem(422, f"resolved_on {resolved.isoformat()} is before onset_on {onset.isoformat()}")


@router.post("/patients/{patient_id}/complications", response_model=ComplicationOut, status_code=201)
def add_complication(patient_id: PathId, body: ComplicationIn, ctx: Need(P.COMPLICATION_WRITE)):
    get_patient(ctx, patient_id)
    require_session_of(ctx, body.session_id, patient_id=patient_id)
    _check_dates(body.onset_on, body.resolved_on)
    c = Complication(patient_id=patient_id, created_by=ctx.user.id, **body.model_dump())
    c.type, c.severity = body.type.value, body.severity.value
    return create(ctx, c, resource="complication", type=c.type, severity=c.severity)


@router.patch("/complications/{complication_id}", response_model=ComplicationOut)
def update_complication(complication_id: PathId, body: ComplicationPatch, ctx: Need(P.COMPLICATION_WRITE)):
    c = get_or_404(ctx, Complication, complication_id, what="complication")
    fields = apply_changes(c, body.model_dump(exclude_unset=True, exclude_none=True))
    _check_dates(c.onset_on, c.resolved_on)
    ctx.audit("update", "complication", c.id, patient_id=c.patient_id, fields=fields)
    ctx.commit()
    return c


# --- instructions ---


def _template(ctx: Ctx, key: str) -> tuple[str, bool]:
    row = ctx.db.get(InstructionTemplate, key)
    return (row.body, True) if row is not None else (aftercare.DEFAULT_TEMPLATES[key], False)


@router.get("/aftercare/regimens", tags=["instructions"])
def regimens(ctx: Need(P.RULES_READ)) -> list[dict]:
    from dataclasses import asdict

    return [asdict(r) for r in aftercare.REGIMENS.values()]


@router.get("/patients/{patient_id}/instructions", response_model=InstructionsOut, tags=["instructions"])
def instructions(
    patient_id: PathId,
    ctx: Need(P.CLINICAL_READ),
    kind: Literal["aftercare", "pre_procedure"] = "aftercare",
    regimen: str | None = Query(
        None, max_length=40, description="default: the regimen of the latest session, else trunk_foam"
    ),
    format: Literal["json", "pdf"] = Query("json", description="pdf: the printed handout (before and after)"),
):
    if format == "pdf":
        from echosclero.api.routes.interop import handout_response

        return handout_response(ctx, patient_id, session_id=None, regimen=regimen)
    p = get_patient(ctx, patient_id)
    if regimen is None:
        last = ctx.db.scalars(
            select(Session)
            .where(Session.patient_id == patient_id, Session.regimen.is_not(None))
            .order_by(Session.session_date.desc(), Session.id.desc())
        ).first()
        regimen = last.regimen if last else "trunk_foam"
    reg = aftercare.get_regimen(regimen)
    body, _ = _template(ctx, kind)
    s = ctx.settings
    text = aftercare.render(
        body,
        patient={
            "given_name": p.given_name,
            "family_name": p.family_name,
            "age_years": age_years(p.birth_date, on=date.today()),
        },
        regimen=reg,
        clinic={
            "name": s.clinic_name,
            "phone": s.clinic_phone,
            "notice_hours": ctx.rules().value("APPOINTMENT_NOTICE_HOURS"),
        },
    )
    ctx.audit("read", "instructions", patient_id=patient_id, kind=kind, regimen=reg.code)
    ctx.commit()
    return InstructionsOut(kind=kind, regimen=reg.code, text=text, source=reg.source)


TemplateKey = Literal["aftercare", "pre_procedure"]


@router.get("/instruction-templates", response_model=list[TemplateOut], tags=["instructions"])
def list_templates(ctx: Need(P.RULES_READ)):
    return [
        TemplateOut(key=k, body=b, customised=c) for k in aftercare.DEFAULT_TEMPLATES for b, c in [_template(ctx, k)]
    ]


@router.put("/instruction-templates/{key}", response_model=TemplateOut, tags=["instructions"])
def put_template(key: TemplateKey, body: TemplateIn, ctx: Need(P.TEMPLATES_WRITE)):
    aftercare.validate_template(body.body)
    row = ctx.db.get(InstructionTemplate, key)
    if row is None:
        row = InstructionTemplate(key=key, body=body.body, updated_by=ctx.user.id)
        ctx.db.add(row)
    else:
        row.body, row.updated_by = body.body, ctx.user.id
    ctx.audit("update", "instruction_template", key, chars=len(body.body))
    ctx.commit()
    return TemplateOut(key=key, body=row.body, customised=True)
