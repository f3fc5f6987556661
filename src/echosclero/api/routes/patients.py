"""Patients and their record: consents, duplex exams (vein map and leg diagram), CEAP/VCSS assessments,
candidacy, test injections, prior treatments."""

import threading
from datetime import UTC, date, datetime
from typing import Literal

from fastapi import Query, Response
from sqlalchemy import func, or_, select

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
    list_for_patient,
    read_one,
)
from echosclero.api.schemas import (
    AssessmentIn,
    AssessmentOut,
    CandidacyIn,
    CandidacyOut,
    ConsentIn,
    ConsentOut,
    ContraOut,
    ExamIn,
    ExamOut,
    PatientIn,
    PatientOut,
    PatientPatch,
    TestInjectionIn,
    TestInjectionOut,
    TreatmentIn,
    TreatmentOut,
)
from echosclero.clinic.candidacy import CONTRAINDICATIONS
from echosclero.clinic.dosing import Agent
from echosclero.clinic.rules import Violation
from echosclero.errors import InputError
from echosclero.store.models import (
    Assessment,
    Candidacy,
    Consent,
    Exam,
    Patient,
    PriorTreatment,
    TestInjection,
)

router = api_router("patients")


#: Patient fields that are clinical data: read *and written* only by roles with clinical access.
CLINICAL_FIELDS = ("weight_kg", "notes")


def patient_out(ctx: Ctx, p: Patient) -> PatientOut:
    out = PatientOut.model_validate(p)
    if not ctx.can(P.CLINICAL_READ):
        out.weight_kg = None
        out.notes = None
        out.restricted = list(CLINICAL_FIELDS)
    return out


def _check_field_rights(ctx: Ctx, given: dict) -> None:
    """403 when a role without clinical access writes a clinical field (as it may not read one)."""
    if ctx.can(P.CLINICAL_READ):
        return
    bad = [f for f in CLINICAL_FIELDS if given.get(f) not in (None, "")]
    if bad:
        ctx.audit("denied", "patient_field", fields=bad, needed=P.CLINICAL_READ.value)
        ctx.commit()
        raise HTTPProblem(
            403,
            f"your role ({ctx.user.role}) may not write {', '.join(bad)} (clinical data, written by clinical roles "
            "only); leave it out",
        )


def _recheck_doses(ctx: Ctx, p: Patient, old_weight: float | None, override_reason: str | None) -> list:
    """A new body weight re-checks the polidocanol already given today (clinic time) against the new limit."""
    from echosclero.api.routes.treatment import day_injections
    from echosclero.clinic.dosing import Agent as A
    from echosclero.clinic.dosing import Dose

    rows = day_injections(ctx, p.id, ctx.settings.day_of(datetime.now(UTC)))
    mg = sum(
        Dose(i.segment, i.agent, i.form, i.concentration_pct, i.volume_ml, i.liquid_gas_ratio).mass_mg
        for i, _ in rows
        if i.agent == A.POLIDOCANOL.value
    )
    rule = ctx.rules()["POLIDOCANOL_DAILY_MG_PER_KG"]
    limit = float(rule.value) * p.weight_kg
    if mg <= limit + 1e-9:
        return []
    v = Violation(
        rule,
        f"polidocanol given today is {mg:.1f} mg; with weight_kg {p.weight_kg:g} (was {old_weight}) the limit "
        f"would be {float(rule.value):g} mg/kg x {p.weight_kg:g} kg = {limit:.1f} mg",
        "weight_kg",
    )
    return ctx.enforce([v], override_reason, resource="patient_weight", patient_id=p.id)


@router.get("/patients", response_model=list[PatientOut])
def list_patients(
    ctx: Need(P.PATIENT_READ),
    q: str | None = Query(None, max_length=100, description="part of a name"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
):
    stmt = select(Patient).order_by(Patient.family_name, Patient.given_name, Patient.id)
    if q:
        q = "".join(c for c in q if c.isprintable())
        like = f"%{q.lower().replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(func.lower(Patient.family_name).like(like), func.lower(Patient.given_name).like(like)))
    rows = ctx.db.scalars(stmt.limit(limit).offset(offset)).all()
    ctx.audit("read", "patients", query=bool(q), count=len(rows), patient_ids=[p.id for p in rows][:500])
    ctx.commit()
    return [patient_out(ctx, p) for p in rows]


@router.post("/patients", response_model=PatientOut, status_code=201)
def create_patient(body: PatientIn, ctx: Need(P.PATIENT_WRITE)):
    _check_field_rights(ctx, body.model_dump())
    _check_mrn_free(ctx, body.mrn)
    p = Patient(**body.model_dump(exclude={"sex"}), sex=body.sex.value)
    return patient_out(ctx, create(ctx, p, resource="patient"))


@router.get("/patients/{patient_id}", response_model=PatientOut)
def read_patient(patient_id: PathId, ctx: Need(P.PATIENT_READ)):
    p = get_patient(ctx, patient_id)
    ctx.audit("read", "patient", p.id, patient_id=p.id)
    ctx.commit()
    return patient_out(ctx, p)


@router.patch("/patients/{patient_id}", response_model=PatientOut)
def update_patient(patient_id: PathId, body: PatientPatch, ctx: Need(P.PATIENT_WRITE)):
    p = get_patient(ctx, patient_id, lock=True)
    changes = body.model_dump(exclude_unset=True, exclude={"override_reason"})
    _check_field_rights(ctx, changes)
    _check_mrn_free(ctx, changes.get("mrn"), patient_id=p.id)
    skip = ("family_name", "given_name", "birth_date", "sex", "weight_kg", "notes")
    before = {k: getattr(p, k) for k in changes if hasattr(p, k)}
    fields = apply_changes(p, changes, skip_none=skip)
    after = {k: getattr(p, k) for k in before}
    changed = {k: {"old": _plain(before[k]), "new": _plain(after[k])} for k in before if before[k] != after[k]}
    warnings = []
    if "weight_kg" in changed and p.weight_kg is not None:  # a dosing input: re-check today's doses
        warnings = _recheck_doses(ctx, p, before["weight_kg"], body.override_reason)
    # old and new values are kept under "clinical": readers without clinical access see them withheld
    ctx.audit("update", "patient", p.id, patient_id=p.id, fields=fields, clinical={"changes": changed})
    ctx.commit()
    out = patient_out(ctx, p)
    out.warnings = [w.as_dict() for w in warnings]
    return out


def _check_mrn_free(ctx: Ctx, mrn: str | None, *, patient_id: int | None = None) -> None:
    """An MRN names one patient: received images are filed by it."""
    if not mrn:
        return
    other = ctx.db.scalars(select(Patient.id).where(Patient.mrn == mrn, Patient.id != (patient_id or 0))).first()
    if other is not None:
        raise HTTPProblem(409, f"MRN {mrn!r} is already patient {other}'s: an MRN names one patient")


def _plain(v):
    return v.isoformat() if isinstance(v, date) else v


def _add(ctx: Ctx, model, body, *, patient_id: int, resource: str, **values):
    """A record of the patient from its ``...In`` body (enums stored by value), created and audited."""
    get_patient(ctx, patient_id)
    data = {k: (v.value if hasattr(v, "value") else v) for k, v in body.model_dump().items()}
    obj = model(**(data | values), patient_id=patient_id, created_by=ctx.user.id)
    return create(ctx, obj, resource=resource, patient_id=patient_id)


# consents
@router.get("/patients/{patient_id}/consents", response_model=list[ConsentOut])
def list_consents(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(ctx, Consent, patient_id=patient_id, resource="consents", order=[Consent.signed_on])


@router.post("/patients/{patient_id}/consents", response_model=ConsentOut, status_code=201)
def add_consent(patient_id: PathId, body: ConsentIn, ctx: Need(P.CONSENT_WRITE)):
    return _add(ctx, Consent, body, patient_id=patient_id, resource="consent")


# duplex exams: the vein map (validated by echosclero.mapping) and its leg diagram
@router.get("/patients/{patient_id}/exams", response_model=list[ExamOut])
def list_exams(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(ctx, Exam, patient_id=patient_id, resource="exams", order=[Exam.exam_date])


@router.post("/patients/{patient_id}/exams", response_model=ExamOut, status_code=201)
def add_exam(patient_id: PathId, body: ExamIn, ctx: Need(P.EXAM_WRITE)):
    vein_map = body.vein_map.vein_map().to_json()  # canonical, with competence and status per segment
    get_patient(ctx, patient_id)
    exam = Exam(
        patient_id=patient_id,
        exam_date=body.exam_date,
        limb=body.limb,
        vein_map=vein_map,
        findings=body.findings,
        patient_position=body.patient_position.value if body.patient_position else None,
        created_by=ctx.user.id,
    )
    return create(ctx, exam, resource="exam", patient_id=patient_id, findings=len(vein_map["findings"]))


@router.get("/exams/{exam_id}", response_model=ExamOut)
def read_exam(exam_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return read_one(ctx, Exam, exam_id, what="exam", resource="exam")


_PNG_LOCK = threading.Lock()  # matplotlib's pyplot state is not thread-safe


@router.get(
    "/exams/{exam_id}/diagram",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}, "description": "the leg diagram"}},
    summary="The exam's vein map as a leg diagram (SVG or PNG)",
)
def exam_diagram(exam_id: PathId, ctx: Need(P.CLINICAL_READ), format: Literal["svg", "png"] = "svg"):
    """Anterior and posterior views of both legs, each segment coloured by its finding (incompetent, competent,
    occluded, thrombosed, treated...) and labelled with diameter and reflux time (``echosclero.mapping``)."""
    from echosclero.mapping.diagram import leg_diagram_svg, write_leg_diagram
    from echosclero.mapping.model import VeinMap

    exam = get_or_404(ctx, Exam, exam_id, what="exam")
    try:
        vein_map = VeinMap.from_json(exam.vein_map or {})
    except (InputError, TypeError, KeyError, ValueError) as exc:
        raise HTTPProblem(409, f"the vein map of exam {exam.id} cannot be drawn: {exc}") from None
    ctx.audit("read", "exam_diagram", exam.id, patient_id=exam.patient_id, format=format)
    ctx.commit()
    title = f"Duplex vein map, exam {exam.id} of {exam.exam_date.isoformat()}"
    if format == "svg":
        return Response(leg_diagram_svg(vein_map, title=title), media_type="image/svg+xml")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="echosclero-diagram-") as tmp, _PNG_LOCK:
        png = write_leg_diagram(Path(tmp) / "diagram.png", vein_map, title=title).read_bytes()
    return Response(png, media_type="image/png")


# CEAP / VCSS / symptoms over time
@router.get("/patients/{patient_id}/assessments", response_model=list[AssessmentOut])
def list_assessments(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(
        ctx, Assessment, patient_id=patient_id, resource="assessments", order=[Assessment.assessed_on]
    )


@router.post("/patients/{patient_id}/assessments", response_model=AssessmentOut, status_code=201)
def add_assessment(patient_id: PathId, body: AssessmentIn, ctx: Need(P.EXAM_WRITE)):
    return _add(ctx, Assessment, body, patient_id=patient_id, resource="assessment")


# candidacy
@router.get("/candidacy/checklist", response_model=list[ContraOut], tags=["rules"])
def checklist(ctx: Need(P.RULES_READ)):
    return [c.as_dict() for c in CONTRAINDICATIONS]


def candidacy_out(c: Candidacy) -> CandidacyOut:
    a = candidacy_assessment(c, foam=True)
    return CandidacyOut(
        id=c.id,
        patient_id=c.patient_id,
        assessed_on=c.assessed_on,
        present=c.present,
        absolute=[x.as_dict() for x in a.absolute],
        relative=[x.as_dict() for x in a.relative],
        blocks_planning=a.blocks and not c.override_reason,
        reasoning=c.reasoning,
        override_reason=c.override_reason,
        created_at=c.created_at,
    )


@router.get("/patients/{patient_id}/candidacy", response_model=list[CandidacyOut])
def list_candidacy(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    rows = list_for_patient(ctx, Candidacy, patient_id=patient_id, resource="candidacy", order=[Candidacy.assessed_on])
    return [candidacy_out(c) for c in rows]


@router.post("/patients/{patient_id}/candidacy", response_model=CandidacyOut, status_code=201)
def add_candidacy(patient_id: PathId, body: CandidacyIn, ctx: Need(P.CANDIDACY_WRITE)):
    get_patient(ctx, patient_id)
    if body.assessed_on > date.today():
        raise HTTPProblem(
            422,
            f"assessed_on {body.assessed_on.isoformat()} is in the future; a checklist records what was assessed, "
            "on the day it was assessed",
        )
    c = Candidacy(
        patient_id=patient_id,
        assessed_on=body.assessed_on,
        present=list(dict.fromkeys(body.present)),
        reasoning=body.reasoning,
        created_by=ctx.user.id,
    )
    a = candidacy_assessment(c, foam=True)
    if body.override_reason:
        if not a.blocks:
            raise HTTPProblem(422, "override_reason is only for an absolute contraindication; none is present")
        rule = ctx.rules()["CANDIDACY_ABSOLUTE"]
        violations = [Violation(rule, f"absolute contraindication: {x.text}", "present") for x in a.absolute]
        ctx.enforce(violations, body.override_reason, resource="candidacy", patient_id=patient_id)
        c.override_reason, c.overridden_by = body.override_reason, ctx.user.id
    c = create(ctx, c, resource="candidacy", patient_id=patient_id, absolute=[x.code for x in a.absolute])
    return candidacy_out(c)


# test injections (allergy check on a separate date)
@router.get("/patients/{patient_id}/test-injections", response_model=list[TestInjectionOut])
def list_test_injections(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(
        ctx, TestInjection, patient_id=patient_id, resource="test_injections", order=[TestInjection.given_on]
    )


@router.post("/patients/{patient_id}/test-injections", response_model=TestInjectionOut, status_code=201)
def add_test_injection(patient_id: PathId, body: TestInjectionIn, ctx: Need(P.SESSION_WRITE)):
    if body.given_on > date.today():
        raise HTTPProblem(422, f"given_on {body.given_on.isoformat()} is in the future; record it when given")
    warnings = []
    rules = ctx.rules()
    if body.agent is Agent.SODIUM_TETRADECYL_SULFATE and body.volume_ml > float(rules.value("STS_TEST_DOSE_MAX_ML")):
        r = rules["STS_TEST_DOSE_MAX_ML"]
        warnings.append(Violation(r, f"test dose {body.volume_ml:g} mL is above {r.value:g} mL", "volume_ml"))
    t = _add(ctx, TestInjection, body, patient_id=patient_id, resource="test_injection")
    out = TestInjectionOut.model_validate(t)
    out.warnings = [w.as_dict() for w in warnings]
    return out


# prior and adjunct treatments
@router.get("/patients/{patient_id}/treatments", response_model=list[TreatmentOut])
def list_treatments(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return list_for_patient(
        ctx, PriorTreatment, patient_id=patient_id, resource="treatments", order=[PriorTreatment.created_at]
    )


@router.post("/patients/{patient_id}/treatments", response_model=TreatmentOut, status_code=201)
def add_treatment(patient_id: PathId, body: TreatmentIn, ctx: Need(P.EXAM_WRITE)):
    return _add(ctx, PriorTreatment, body, patient_id=patient_id, resource="treatment")
