"""Reports and exchange: the PDF procedure report, DICOM SR and FHIR exports, the patient's PDF handout,
results of ``analyze``/``reflux`` attached to exams and sessions, and the queue of received DICOM images.

Every route reads or writes patient data through the audit log, like the rest of the API.
"""


import io
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from echosclero.api.deps import Ctx
from echosclero.api.errors import HTTPProblem, not_found
from echosclero.api.routes.common import Need, P, PathId, api_router, get_or_404, get_patient
from echosclero.errors import InputError
from echosclero.interop.record import ClinicInfo, Pathway, load_pathway
from echosclero.store.models import AttachedResult, DicomInstance, Exam, KeyFrame, Patient, Session

router = api_router("reports and exchange")

PDF, DICOM, FHIR_JSON = "application/pdf", "application/dicom", "application/fhir+json"
#: The largest result document accepted (an analysis of a long cine with contours runs to megabytes).
MAX_RESULT_BYTES = 32 * 1024 * 1024


def pathway(ctx: Ctx, patient_id: int) -> Pathway:
    get_patient(ctx, patient_id)
    s = ctx.settings
    return load_pathway(ctx.db, patient_id=patient_id, clinic=ClinicInfo(name=s.clinic_name, phone=s.clinic_phone,
                                                                         tz=s.tz))


def _attachment(body: bytes, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def handout_response(ctx: Ctx, patient_id: int, *, session_id: int | None, regimen: str | None) -> Response:
    from echosclero.interop.pdf import handout_pdf

    pw = pathway(ctx, patient_id)
    if session_id is not None:
        pw.session(session_id)  # a session of another patient is refused before anything is written
    pdf = handout_pdf(pw, session_id=session_id, regimen=regimen,
                      notice_hours=float(ctx.rules().value("APPOINTMENT_NOTICE_HOURS")))
    ctx.audit("read", "handout", patient_id=patient_id, session_id=session_id, format="pdf")
    ctx.commit()
    return _attachment(pdf, PDF, f"handout-patient-{patient_id}.pdf")


@router.get("/patients/{patient_id}/handout", response_class=Response,
            responses={200: {"content": {PDF: {}}, "description": "the patient's handout (PDF)"}})
def handout(
    patient_id: PathId,
    ctx: Need(P.CLINICAL_READ),
    session_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    regimen: Annotated[str | None, Query(max_length=40)] = None,
):
    """Instructions before and after the treatment for this patient's regimen and dates, as a PDF."""
    return handout_response(ctx, patient_id, session_id=session_id, regimen=regimen)


def session_export(ctx: Ctx, session: Session, fmt: str) -> tuple[bytes, str, str]:
    pw = pathway(ctx, session.patient_id)
    if fmt == "pdf":
        from echosclero.interop.pdf import procedure_report_pdf

        return procedure_report_pdf(pw, session_id=session.id), PDF, f"report-session-{session.id}.pdf"
    if fmt == "sr":
        from echosclero.interop.sr import session_sr

        ds = session_sr(pw, session_id=session.id, operator=ctx.user.username)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue(), DICOM, f"sr-session-{session.id}.dcm"
    from echosclero.interop.fhir import pathway_bundle

    return json.dumps(pathway_bundle(pw), indent=1).encode(), FHIR_JSON, f"fhir-patient-{session.patient_id}.json"


@router.get("/sessions/{session_id}/export", response_class=Response,
            responses={200: {"content": {PDF: {}, DICOM: {}, FHIR_JSON: {}}}})
def export_session(session_id: PathId, ctx: Need(P.CLINICAL_READ), format: Literal["pdf", "sr", "fhir"] = "pdf"):
    """The session's procedure report (``pdf``), DICOM Structured Report (``sr``, TID 5100) or the patient's
    FHIR R4 Bundle (``fhir``)."""
    s = get_or_404(ctx, Session, session_id, what="session")
    body, media, name = session_export(ctx, s, format)
    ctx.audit("read", "export", s.id, patient_id=s.patient_id, format=format, bytes=len(body))
    ctx.commit()
    return _attachment(body, media, name)


@router.get("/patients/{patient_id}/export", response_class=Response, responses={200: {"content": {FHIR_JSON: {}}}})
def export_patient(patient_id: PathId, ctx: Need(P.CLINICAL_READ), format: Literal["fhir"] = "fhir"):
    """The patient's pathway as a FHIR R4 Bundle."""
    from echosclero.interop.fhir import pathway_bundle

    body = json.dumps(pathway_bundle(pathway(ctx, patient_id)), indent=1).encode()
    ctx.audit("read", "export", patient_id=patient_id, format=format, bytes=len(body))
    ctx.commit()
    return _attachment(body, FHIR_JSON, f"fhir-patient-{patient_id}.json")


# --- results into the record ---


Uid = Annotated[str, Field(max_length=64, pattern=r"^[0-9]+(\.[0-9]+)+$")]


class SourceImage(BaseModel):
    """The DICOM identity of the result's source image, as the uploading workstation read it."""

    model_config = ConfigDict(extra="forbid")
    sop_instance_uid: Uid
    sop_class_uid: Uid
    series_instance_uid: Uid | None = None
    study_instance_uid: Uid | None = None


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any] = Field(description="the JSON of `echosclero analyze --json` or `reflux --json`")
    source_image: SourceImage | None = Field(
        None, description="the source image's UIDs (default: those of the received DICOM instance it names)")
    segment: Annotated[str | None, Field(max_length=20)] = None
    leg: Literal["left", "right"] | None = None
    vessel: Annotated[str | None, Field(max_length=20, description="analysis into an exam: the vessel id")] = None


class ResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    patient_id: int
    exam_id: int | None
    session_id: int | None
    kind: str
    leg: str | None
    segment: str | None
    source: str
    sop_instance_uid: str | None
    series_instance_uid: str | None
    study_instance_uid: str | None
    summary: dict[str, Any]
    key_frames: list[dict] = []


def _result_out(ctx: Ctx, r: AttachedResult) -> ResultOut:
    out = ResultOut.model_validate(r)
    summary = dict(r.summary)
    summary.pop("trace", None)
    out.summary = summary
    frames = ctx.db.scalars(select(KeyFrame).where(KeyFrame.result_id == r.id).order_by(KeyFrame.id)).all()
    out.key_frames = [{"id": k.id, "index": k.frame_index, "t_s": k.t_s, "reason": k.reason,
                       "image": f"/api/key-frames/{k.id}.png" if k.png else None} for k in frames]
    return out


def _attach(ctx: Ctx, body: ResultIn, **target) -> ResultOut:
    from echosclero.interop.results import attach_result

    if len(json.dumps(body.document)) > MAX_RESULT_BYTES:
        raise HTTPProblem(413, f"result document larger than {MAX_RESULT_BYTES // 2**20} MiB")
    link = body.source_image.model_dump(exclude_none=True) if body.source_image else None
    # an upload names paths of the client's machine: the server reads none but its own received images
    r = attach_result(ctx.db, body.document, segment=body.segment, leg=body.leg, vessel=body.vessel, link=link,
                      user_id=ctx.user.id, read_files=False, **target)
    ctx.audit("create", "result", r.id, patient_id=r.patient_id, kind=r.kind, segment=r.segment, **target)
    out = _result_out(ctx, r)
    ctx.commit()
    return out


@router.post("/exams/{exam_id}/results", response_model=ResultOut, status_code=201)
def attach_to_exam(exam_id: PathId, body: ResultIn, ctx: Need(P.EXAM_WRITE)):
    """Attach a reflux (reflux time) or analysis (median diameter) result to one segment of the exam's vein map."""
    get_or_404(ctx, Exam, exam_id, what="exam")
    return _attach(ctx, body, exam_id=exam_id)


@router.post("/sessions/{session_id}/results", response_model=ResultOut, status_code=201)
def attach_to_session(session_id: PathId, body: ResultIn, ctx: Need(P.SESSION_WRITE)):
    """Attach an analysis result to a session: its alerts and key frames (with overlays) go into the record."""
    get_or_404(ctx, Session, session_id, what="session")
    return _attach(ctx, body, session_id=session_id)


@router.get("/patients/{patient_id}/results", response_model=list[ResultOut])
def list_results(patient_id: PathId, ctx: Need(P.CLINICAL_READ)):
    get_patient(ctx, patient_id)
    rows = ctx.db.scalars(select(AttachedResult).where(AttachedResult.patient_id == patient_id)
                          .order_by(AttachedResult.id)).all()
    out = [_result_out(ctx, r) for r in rows]
    ctx.audit("read", "results", patient_id=patient_id, count=len(out))
    ctx.commit()
    return out


@router.get("/key-frames/{frame_id}.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def key_frame_png(frame_id: PathId, ctx: Need(P.CLINICAL_READ)):
    k = get_or_404(ctx, KeyFrame, frame_id, what="key frame")
    r = ctx.db.get(AttachedResult, k.result_id)
    if k.png is None:
        raise not_found("image of key frame", frame_id)
    ctx.audit("read", "key_frame", k.id, patient_id=r.patient_id if r else None)
    ctx.commit()
    return Response(k.png, media_type="image/png")


# --- DICOM: the queue of received objects that matched no patient, and the forwards to the PACS ---

#: How long the API waits for the PACS on a send (the receiver's loop and ``dicom-forward`` retry later).
PACS_TIMEOUT_S = 10.0
NO_PACS = "no PACS is configured: start the server with ECHOSCLERO_PACS=AE@HOST:PORT (e.g. PACS@10.0.0.7:104)"


class DicomInstanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    modality: str
    dicom_patient_id: str
    dicom_patient_name: str
    patient_id: int | None
    status: str = Field(description="filed | unmatched")
    matched_by: str | None = Field(None, description="record_number | mrn | hand | export")
    n_frames: int
    calling_ae: str
    received_at: datetime
    analysis_error: str | None
    forward_status: str | None = Field(
        None, description="pending | retrying | forwarded | failed (the last attempt failed); null: no PACS")
    forward_peer: str | None = None
    forward_attempts: int = 0
    next_forward_at: datetime | None = None
    forwarded_at: datetime | None = None
    forward_error: str | None = Field(None, description="the last attempt's error")


def _forward_now(ctx: Ctx, insts: list[DicomInstance], *, ignore_wait: bool) -> list:
    from echosclero.interop.dicomqueue import RetryPolicy, forward

    def audit(inst: DicomInstance, detail: dict) -> None:
        ctx.audit("send", "dicom_forward", inst.id, patient_id=inst.patient_id, **detail)

    return forward(ctx.db, insts, policy=RetryPolicy(), commit=ctx.commit, audit=audit,
                   default_peer=ctx.settings.pacs_peer, timeout_s=PACS_TIMEOUT_S, ignore_wait=ignore_wait)


def _instance_answer(inst: DicomInstance) -> JSONResponse:
    """201 delivered to the PACS; 202 kept and queued for a retry (the body says why)."""
    body = DicomInstanceOut.model_validate(inst).model_dump(mode="json")
    return JSONResponse(body, status_code=201 if inst.forward_status == "forwarded" else 202)


_SENT = {201: {"model": DicomInstanceOut, "description": "delivered to the PACS"},
         202: {"model": DicomInstanceOut, "description": "kept and queued: the PACS did not take it (forward_error); "
                                                        "retried by `echosclero dicom-receive` or `dicom-forward`"}}


@router.post("/sessions/{session_id}/send-sr", status_code=201, response_model=DicomInstanceOut, responses=_SENT,
             tags=["dicom"])
def send_session_sr(session_id: PathId, ctx: Need(P.SESSION_WRITE)):
    """Send the session's DICOM SR (TID 5100) to the clinic's PACS (``ECHOSCLERO_PACS``). The SR is kept in the
    DICOM store and on the forwarding queue first, so a PACS that does not answer gets it later."""
    from echosclero.interop.dicomqueue import store_sr
    from echosclero.interop.sr import session_sr

    peer = ctx.settings.pacs_peer
    if peer is None:
        raise HTTPProblem(409, NO_PACS)
    s = get_or_404(ctx, Session, session_id, what="session")
    ds = session_sr(pathway(ctx, s.patient_id), session_id=s.id, operator=ctx.user.username)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    try:
        inst = store_sr(ctx.db, buf.getvalue(), ds, folder=ctx.settings.dicom_folder, patient_id=s.patient_id,
                        peer=peer)
    except InputError as exc:
        raise HTTPProblem(503, str(exc)) from None
    ctx.audit("create", "dicom_instance", inst.id, patient_id=s.patient_id, session_id=s.id, format="sr",
              sop_instance_uid=inst.sop_instance_uid, peer=str(peer))
    _forward_now(ctx, [inst], ignore_wait=True)
    return _instance_answer(inst)


@router.get("/dicom/forwarding", response_model=list[DicomInstanceOut], tags=["dicom"])
def forwarding_queue(
    ctx: Need(P.CLINICAL_READ),
    status: Annotated[list[Literal["pending", "retrying", "failed", "forwarded"]] | None, Query()] = None,
):
    """The forwards to the PACS not delivered yet (``pending``, ``retrying``, ``failed``), or those of ``status``."""
    wanted = status or ["pending", "retrying", "failed"]
    rows = ctx.db.scalars(select(DicomInstance).where(DicomInstance.forward_status.in_(wanted))
                          .order_by(DicomInstance.id).limit(1000)).all()
    ctx.audit("read", "dicom_forwarding", count=len(rows), status=wanted)
    ctx.commit()
    return rows


@router.post("/dicom/instances/{instance_id}/forward", status_code=201, response_model=DicomInstanceOut,
             responses=_SENT, tags=["dicom"])
def forward_instance(instance_id: PathId, ctx: Need(P.EXAM_WRITE)):
    """Forward a received object or a sent SR to the PACS now: a ``retrying`` one without waiting, a ``failed``
    one re-armed (its attempts count from zero), one never queued to the configured PACS."""
    from echosclero.interop.dicomqueue import requeue

    inst = get_or_404(ctx, DicomInstance, instance_id, what="DICOM instance")
    if inst.forward_status == "forwarded":
        raise HTTPProblem(409, f"instance {inst.id} was delivered to {inst.forward_peer} at "
                               f"{inst.forwarded_at:%Y-%m-%d %H:%M:%S} UTC already")
    if inst.forward_status in (None, "failed"):
        try:
            requeue(inst, None if inst.forward_peer else ctx.settings.pacs_peer)
        except InputError:
            raise HTTPProblem(409, NO_PACS) from None
    _forward_now(ctx, [inst], ignore_wait=True)
    return _instance_answer(inst)


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: Annotated[int, Field(ge=1, le=2_147_483_647)]


@router.get("/dicom/unmatched", response_model=list[DicomInstanceOut], tags=["dicom"])
def unmatched(ctx: Need(P.CLINICAL_READ)):
    """Images received over DICOM whose Patient ID matched no patient: file them with POST .../file."""
    rows = ctx.db.scalars(select(DicomInstance).where(DicomInstance.status == "unmatched")
                          .order_by(DicomInstance.id)).all()
    ctx.audit("read", "dicom_unmatched", count=len(rows))
    ctx.commit()
    return rows


@router.post("/dicom/instances/{instance_id}/file", response_model=DicomInstanceOut, tags=["dicom"])
def file_instance(instance_id: PathId, body: FileIn, ctx: Need(P.EXAM_WRITE)):
    """File a received image under a patient by hand (it leaves the unmatched queue; a filed one moves)."""
    from echosclero.interop.dicomqueue import file_instance as file_under

    inst = get_or_404(ctx, DicomInstance, instance_id, what="DICOM instance")
    if ctx.db.get(Patient, body.patient_id) is None:
        raise not_found("patient", body.patient_id)
    before = file_under(ctx.db, inst, body.patient_id)
    ctx.audit("update", "dicom_instance", inst.id, patient_id=body.patient_id, sop_instance_uid=inst.sop_instance_uid,
              filed_from=before, dicom_patient_id=inst.dicom_patient_id)
    ctx.commit()
    return inst
