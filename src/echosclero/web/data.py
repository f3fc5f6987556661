"""JSON the workstation's pages need beyond the record routes, under ``/api/web``: the plan's dose
calculator, the reflux analyser on an uploaded spectral Doppler DICOM, outcome statistics, and the key
frames kept with a session. Each route has its permission and audit entry like every other API route.
(No ``from __future__ import annotations`` here: :class:`~echosclero.api.deps.CtxRoute` reads the ``Ctx``
parameter from the live annotations.)"""


import base64
import binascii
import json
import re
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import Field
from sqlalchemy import func, select

from echosclero.api.errors import HTTPProblem
from echosclero.api.routes.common import Need, P, PathId, api_router, get_or_404, get_patient
from echosclero.api.schemas import In, PlanItemIn, Short, VeinMapIn
from echosclero.clinic.dosing import Dose, DoseContext, remaining, totals
from echosclero.clinic.plans import check_plan
from echosclero.clinic.segments import get_segment
from echosclero.errors import EchoScleroError
from echosclero.store.models import Complication, Followup, SegmentOutcome, Session

router = api_router("workstation")
router.prefix = "/api/web"

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_KEYFRAME_BYTES = 8 * 1024 * 1024


class DoseCheckIn(In):
    patient_id: Annotated[int, Field(ge=1, le=2_147_483_647)]
    items: list[PlanItemIn] = Field(min_length=1, max_length=50)


@router.post("/dose-check", summary="Totals of planned doses against this patient's limits (nothing stored)")
def dose_check(body: DoseCheckIn, ctx: Need(P.CLINICAL_READ)) -> dict:
    """The same checks ``POST /api/patients/{id}/plans`` makes (per-item refusals, cumulative limits), and
    what would remain of each limit after the plan, for the plan page's calculator."""
    patient = get_patient(ctx, body.patient_id)
    doses = [
        Dose(i.segment, i.agent, i.form, i.concentration_pct, i.planned_volume_ml, i.liquid_gas_ratio)
        for i in body.items
    ]
    rules = ctx.rules()
    vs = check_plan(doses, weight_kg=patient.weight_kg, rules=rules)
    after = DoseContext(weight_kg=patient.weight_kg, given_today=doses, given_this_session=doses)
    limits = {
        "polidocanol_mg_today": float(rules.value("POLIDOCANOL_DAILY_MG_PER_KG")) * patient.weight_kg,
        "polidocanol_foam_ml_today": float(rules.value("POLIDOCANOL_FOAM_DAILY_MAX_ML")),
        "foam_ml_session": float(rules.value("FOAM_SESSION_MAX_ML")),
        "sts_ml_session": float(rules.value("STS_SESSION_MAX_ML")),
        "canister_foam_ml_session": float(rules.value("CANISTER_FOAM_SESSION_MAX_ML")),
    }
    ctx.audit("read", "dose_check", patient_id=patient.id, items=len(doses))
    ctx.commit()
    return {
        "weight_kg": patient.weight_kg,
        "totals": totals(doses).as_dict(),
        "limits": {k: round(v, 4) for k, v in limits.items()},
        "remaining": remaining(after, rules=rules),
        "violations": [v.as_dict() for v in vs],
        "refused": any(v.refuses for v in vs),
    }


@router.post("/reflux", summary="Run the reflux analyser on a spectral Doppler DICOM (nothing stored)")
def reflux(
    ctx: Need(P.EXAM_WRITE),
    file: Annotated[UploadFile, File(description="a spectral Doppler screen as DICOM")],
    segment: Annotated[str | None, Form(max_length=20)] = None,
    diameter_mm: Annotated[float | None, Form(gt=0, le=40)] = None,
    reflux_above: Annotated[bool, Form()] = False,
) -> dict:
    """The ``echosclero.reflux/1`` document of ``echosclero reflux`` (trace included), and the verdict for
    ``segment`` against its published cut-off; the page plots it before the result is saved to an exam."""
    ctx.release()  # the analysis takes a while: not while holding the database
    try:
        seg = get_segment(segment) if segment else None
    except EchoScleroError as exc:
        raise HTTPProblem(422, str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="echosclero-reflux-") as tmp:
        path = Path(tmp) / "upload.dcm"
        size = 0
        with path.open("wb") as fh:
            while chunk := file.file.read(1 << 20):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise HTTPProblem(413, f"the file is larger than {MAX_UPLOAD_BYTES >> 20} MB")
                fh.write(chunk)
        if size == 0:
            raise HTTPProblem(422, "the uploaded file is empty; choose a spectral Doppler DICOM")
        with path.open("rb") as fh:  # checked before the DICOM reader is even imported
            fh.seek(128)
            if fh.read(4) != b"DICM":
                raise HTTPProblem(422, f"{file.filename or 'the file'} is not a DICOM file (no 'DICM' marker at "
                                       "byte 128); export the spectral Doppler screen from the scanner as DICOM")
        from echosclero.clinic.reflux import classify_reflux
        from echosclero.commands.reflux import _load_spectral
        from echosclero.doppler.reflux import reflux_from_display

        try:
            pixels, calibration = _load_spectral(str(path), None)
            result = reflux_from_display(pixels, calibration, reflux_above_baseline=reflux_above)
        except EchoScleroError as exc:
            name = file.filename or "the file"
            raise HTTPProblem(422, str(exc).replace(str(path), name)) from None
        except Exception as exc:  # a file pydicom cannot read at all
            raise HTTPProblem(422, f"{file.filename or 'the file'} could not be read as DICOM: {exc}") from None
    doc = result.to_json()
    doc["calibration"] = calibration.to_json()
    doc["source"] = file.filename or ""
    if seg is not None:
        doc["classification"] = classify_reflux(seg, result.reflux_ms, diameter_mm=diameter_mm).to_json()
    ctx.audit("read", "reflux_analysis", segment=seg.code if seg else None, bytes=size)
    ctx.commit()
    return doc


@router.get("/outcomes", summary="Occlusion over time by segment type, and complication rates")
def outcomes(ctx: Need(P.CLINICAL_READ)) -> dict:
    """Every follow-up outcome grouped by the segment's vein type and by month since its session (the
    earliest session of the patient when the outcome is not linked to one), and complications per session."""
    rows = ctx.db.execute(
        select(
            SegmentOutcome.segment,
            SegmentOutcome.outcome,
            SegmentOutcome.observed_on,
            SegmentOutcome.patient_id,
            Session.session_date,
        )
        .join(Followup, Followup.id == SegmentOutcome.followup_id)
        .join(Session, Session.id == Followup.session_id, isouter=True)
    ).all()
    first = dict(
        ctx.db.execute(select(Session.patient_id, func.min(Session.session_date)).group_by(Session.patient_id)).all()
    )
    groups: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for segment, outcome, observed_on, patient_id, session_date in rows:
        start = session_date or first.get(patient_id)
        if start is None or observed_on is None:
            continue
        month = max(0, round((observed_on - start).days / 30.44))
        kind = get_segment(segment).vein_type.value
        cell = groups[kind][month]
        cell[0] += outcome == "occluded"
        cell[1] += 1
    n_sessions = ctx.db.scalar(select(func.count(Session.id))) or 0
    comp = ctx.db.execute(
        select(Complication.type, Complication.severity, func.count(Complication.id)).group_by(
            Complication.type, Complication.severity
        )
    ).all()
    by_type: dict[str, dict[str, int]] = defaultdict(dict)
    for t, sev, n in comp:
        by_type[t][sev] = n
    ctx.audit("read", "outcomes", outcomes=len(rows), sessions=n_sessions)
    ctx.commit()
    return {
        "occlusion": {
            kind: [
                {"month": m, "occluded": c[0], "observed": c[1], "rate": round(c[0] / c[1], 4)}
                for m, c in sorted(months.items())
            ]
            for kind, months in sorted(groups.items())
        },
        "sessions": n_sessions,
        "complications": [
            {
                "type": t,
                "by_severity": sev,
                "count": sum(sev.values()),
                "per_100_sessions": round(100 * sum(sev.values()) / n_sessions, 2) if n_sessions else None,
            }
            for t, sev in sorted(by_type.items())
        ],
    }


# --- key frames kept with a session ---


class KeyframeIn(In):
    png_base64: Annotated[str, Field(max_length=MAX_KEYFRAME_BYTES * 4 // 3 + 8)]
    frame_ref: Short = ""
    note: Short = ""


def keyframe_dir(request: Request, session_id: int) -> Path:
    return Path(request.app.state.keyframe_dir) / f"session-{session_id}"


_NAME = re.compile(r"^frame-\d{8}T\d{6}-\d{6}Z\.png$")
_PNG = b"\x89PNG\r\n\x1a\n"


@router.post("/sessions/{session_id}/keyframes", status_code=201, summary="Keep a key frame with a session")
def add_keyframe(session_id: PathId, body: KeyframeIn, request: Request, ctx: Need(P.SESSION_WRITE)) -> dict:
    s = get_or_404(ctx, Session, session_id, what="session")
    try:
        png = base64.b64decode(body.png_base64.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise HTTPProblem(422, "png_base64 is not base64") from None
    if not png.startswith(_PNG):
        raise HTTPProblem(422, "the key frame is not a PNG image")
    folder = keyframe_dir(request, s.id)
    folder.mkdir(parents=True, exist_ok=True)
    name = datetime.now(UTC).strftime("frame-%Y%m%dT%H%M%S-%fZ.png")
    (folder / name).write_bytes(png)
    meta = {"name": name, "frame_ref": body.frame_ref, "note": body.note, "by": ctx.user.username,
            "at": datetime.now(UTC).isoformat()}
    (folder / (name[:-4] + ".json")).write_text(json.dumps(meta))
    ctx.audit("create", "keyframe", name, patient_id=s.patient_id, session_id=s.id, frame_ref=body.frame_ref)
    ctx.commit()
    return meta | {"url": f"/api/web/sessions/{s.id}/keyframes/{name}"}


@router.get("/sessions/{session_id}/keyframes", summary="The key frames kept with a session")
def list_keyframes(session_id: PathId, request: Request, ctx: Need(P.CLINICAL_READ)) -> list[dict]:
    s = get_or_404(ctx, Session, session_id, what="session")
    folder = keyframe_dir(request, s.id)
    out = []
    for meta in sorted(folder.glob("frame-*.json")) if folder.is_dir() else []:
        m = json.loads(meta.read_text())
        out.append(m | {"url": f"/api/web/sessions/{s.id}/keyframes/{m['name']}"})
    ctx.audit("read", "keyframes", patient_id=s.patient_id, session_id=s.id, count=len(out))
    ctx.commit()
    return out


@router.get("/sessions/{session_id}/keyframes/{name}", response_class=FileResponse, summary="One key frame (PNG)")
def read_keyframe(session_id: PathId, name: str, request: Request, ctx: Need(P.CLINICAL_READ)):
    s = get_or_404(ctx, Session, session_id, what="session")
    path = keyframe_dir(request, s.id) / name
    if not _NAME.match(name) or not path.is_file():
        raise HTTPProblem(404, f"key frame {name} of session {s.id} not found")
    ctx.audit("read", "keyframe", name, patient_id=s.patient_id, session_id=s.id)
    ctx.commit()
    return FileResponse(path, media_type="image/png")


@router.post("/diagram", summary="The leg diagram of a vein map being edited (interactive SVG; nothing stored)")
def diagram(body: VeinMapIn, ctx: Need(P.CLINICAL_READ)) -> Response:
    """The vein map is validated as ``POST /api/patients/{id}/exams`` validates it (a contradiction is a 422)."""
    from echosclero.mapping.diagram import leg_diagram_svg

    svg = leg_diagram_svg(body.vein_map(), title="Duplex vein map being edited", interactive=True)
    return Response(svg, media_type="image/svg+xml")
