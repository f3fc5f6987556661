"""Patients and their record: consents, duplex exams, CEAP/VCSS assessments, candidacy, test injections,
prior treatments."""

from datetime import date

from fastapi import APIRouter, Query
from sqlalchemy import func, or_, select

from echosclero.api.deps import Ctx
from echosclero.api.routes.common import Need, P, PathId, candidacy_assessment, get_or_404, get_patient
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
from echosclero.store.models import (
    Assessment,
    Candidacy,
    Consent,
    Exam,
    Patient,
    PriorTreatment,
    TestInjection,
)

router = APIRouter(prefix="/api", tags=["patients"])


def patient_out(ctx: Ctx, p: Patient) -> PatientOut:
    out = PatientOut.model_validate(p)
    if not ctx.can(P.CLINICAL_READ):
        out.weight_kg = None
        out.notes = None
    return out


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
    p = Patient(**body.model_dump())
    p.sex = body.sex.value
    ctx.db.add(p)
    ctx.db.flush()
    ctx.audit("create", "patient", p.id, patient_id=p.id)
    ctx.commit()
    return patient_out(ctx, p)


@router.get("/patients/{patient_id}", response_model=PatientOut)
def read_patient(patient_id: PathId, ctx: Need(P.PATIENT_READ)):
    p = get_patient(ctx, patient_id)
    ctx.audit("read", "patient", p.id, patient_id=p.id)
    ctx.commit()
    return patient_out(ctx, p)


@router.patch("/patients/{patient_id}", response_model=PatientOut)
def update_patient(patient_id: PathId, body: PatientPatch, ctx: Need(P.PATIENT_WRITE)):
    p = get_patient(ctx, patient_id, lock=True)
    changes = body.model_dump(exclude_unset=True)
    for k, v in changes.items():
        if v is None and k in ("family_name", "given_name", "birth_date", "sex", "weight_kg", "notes"):
            continue
        setattr(p, k, v.value if hasattr(v, "value") else v)
    detail = {"fields": sorted(changes)}
    if "weight_kg" in changes and changes["weight_kg"] is not None:
        detail["weight_kg"] = changes["weight_kg"]  # dosing depends on it: keep the history in the audit log
    ctx.audit("update", "patient", p.id, patient_id=p.id, **detail)
    ctx.commit()
    return patient_out(ctx, p)


def _list(ctx: Ctx, model, patient_id: int, resource: str, order):
    get_patient(ctx, patient_id)
    rows = ctx.db.scalars(select(model).where(model.patient_id == patient_id).order_by(order, model.id)).all()
    ctx.audit("read", resource, patient_id=patient_id, count=len(rows))
    ctx.commit()
    return rows


def _create(ctx: Ctx, obj, resource: str, patient_id: int, **detail):
    ctx.db.add(obj)
    ctx.db.flush()
    ctx.audit("create", resource, obj.id, patient_id=patient_id, **detail)
    ctx.commit()
    return obj


# consents
@router.get("/patients/{patient_id}/consents", response_model=list[ConsentOut])
def list_consents(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return _list(ctx, Consent, patient_id, "consents", Consent.signed_on)


@router.post("/patients/{patient_id}/consents", response_model=ConsentOut, status_code=201)
def add_consent(patient_id: PathId, body: ConsentIn, ctx: Need(P.CONSENT_WRITE)):
    get_patient(ctx, patient_id)
    return _create(
        ctx,
        Consent(patient_id=patient_id, created_by=ctx.user.id, **body.model_dump()),
        "consent",
        patient_id,
    )


# exams
@router.get("/patients/{patient_id}/exams", response_model=list[ExamOut])
def list_exams(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return _list(ctx, Exam, patient_id, "exams", Exam.exam_date)


@router.post("/patients/{patient_id}/exams", response_model=ExamOut, status_code=201)
def add_exam(patient_id: PathId, body: ExamIn, ctx: Need(P.EXAM_WRITE)):
    get_patient(ctx, patient_id)
    return _create(ctx, Exam(patient_id=patient_id, created_by=ctx.user.id, **body.model_dump()), "exam", patient_id)


@router.get("/exams/{exam_id}", response_model=ExamOut)
def read_exam(exam_id: PathId, ctx: Need(P.CLINICAL_READ)):
    e = get_or_404(ctx, Exam, exam_id, "exam")
    ctx.audit("read", "exam", e.id, patient_id=e.patient_id)
    ctx.commit()
    return e


# CEAP / VCSS / symptoms over time
@router.get("/patients/{patient_id}/assessments", response_model=list[AssessmentOut])
def list_assessments(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return _list(ctx, Assessment, patient_id, "assessments", Assessment.assessed_on)


@router.post("/patients/{patient_id}/assessments", response_model=AssessmentOut, status_code=201)
def add_assessment(patient_id: PathId, body: AssessmentIn, ctx: Need(P.EXAM_WRITE)):
    get_patient(ctx, patient_id)
    return _create(
        ctx,
        Assessment(patient_id=patient_id, created_by=ctx.user.id, **body.model_dump()),
        "assessment",
        patient_id,
    )


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
    return [candidacy_out(c) for c in _list(ctx, Candidacy, patient_id, "candidacy", Candidacy.assessed_on)]


@router.post("/patients/{patient_id}/candidacy", response_model=CandidacyOut, status_code=201)
def add_candidacy(patient_id: PathId, body: CandidacyIn, ctx: Need(P.CANDIDACY_WRITE)):
    get_patient(ctx, patient_id)
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
            from echosclero.api.errors import HTTPProblem

            raise HTTPProblem(422, "override_reason is only for an absolute contraindication; none is present")
        ctx.enforce(
            [
                Violation(ctx.rules()["CANDIDACY_ABSOLUTE"], f"absolute contraindication: {x.text}", "present")
                for x in a.absolute
            ],
            body.override_reason,
            resource="candidacy",
            patient_id=patient_id,
        )
        c.override_reason, c.overridden_by = body.override_reason, ctx.user.id
    return candidacy_out(_create(ctx, c, "candidacy", patient_id, absolute=[x.code for x in a.absolute]))


# test injections (allergy check on a separate date)
@router.get("/patients/{patient_id}/test-injections", response_model=list[TestInjectionOut])
def list_test_injections(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return _list(ctx, TestInjection, patient_id, "test_injections", TestInjection.given_on)


@router.post("/patients/{patient_id}/test-injections", response_model=TestInjectionOut, status_code=201)
def add_test_injection(patient_id: PathId, body: TestInjectionIn, ctx: Need(P.SESSION_WRITE)):
    get_patient(ctx, patient_id)
    if body.given_on > date.today():
        from echosclero.api.errors import HTTPProblem

        raise HTTPProblem(422, f"given_on {body.given_on.isoformat()} is in the future; record it when given")
    warnings = []
    rules = ctx.rules()
    if body.agent is Agent.SODIUM_TETRADECYL_SULFATE and body.volume_ml > float(rules.value("STS_TEST_DOSE_MAX_ML")):
        r = rules["STS_TEST_DOSE_MAX_ML"]
        warnings.append(Violation(r, f"test dose {body.volume_ml:g} mL is above {r.value:g} mL", "volume_ml"))
    t = TestInjection(patient_id=patient_id, created_by=ctx.user.id, **body.model_dump())
    t.agent = body.agent.value
    t = _create(ctx, t, "test_injection", patient_id)
    out = TestInjectionOut.model_validate(t)
    out.warnings = [w.as_dict() for w in warnings]
    return out


# prior and adjunct treatments
@router.get("/patients/{patient_id}/treatments", response_model=list[TreatmentOut])
def list_treatments(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    return _list(ctx, PriorTreatment, patient_id, "treatments", PriorTreatment.created_at)


@router.post("/patients/{patient_id}/treatments", response_model=TreatmentOut, status_code=201)
def add_treatment(patient_id: PathId, body: TreatmentIn, ctx: Need(P.EXAM_WRITE)):
    get_patient(ctx, patient_id)
    t = PriorTreatment(patient_id=patient_id, created_by=ctx.user.id, **body.model_dump())
    t.kind = body.kind.value
    return _create(ctx, t, "treatment", patient_id)
