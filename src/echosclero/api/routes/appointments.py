"""Appointments (booking, rescheduling and cancelling under the notice rule, reminders) and the public
appointment-request form (no sign-in, validated, rate-limited, into the front desk's queue)."""

from datetime import UTC, datetime, timedelta

from fastapi import Query, Request
from sqlalchemy import select

from echosclero.api.deps import DB, Ctx, audit_entry, client_ip
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
    read_one,
)
from echosclero.api.schemas import (
    AppointmentIn,
    AppointmentOut,
    AppointmentPatch,
    CancelIn,
    PublicRequestAck,
    PublicRequestIn,
    RequestOut,
    RequestPatch,
)
from echosclero.clinic.appointments import AppointmentStatus, check_notice, reminder_due
from echosclero.store.db import commit
from echosclero.store.models import Appointment, AppointmentRequest

router = api_router("appointments")


def now() -> datetime:
    return datetime.now(UTC)


def appt_out(a: Appointment, warnings: list | None = None) -> AppointmentOut:
    return AppointmentOut(
        id=a.id,
        patient_id=a.patient_id,
        kind=a.kind,
        start=a.start_at,
        duration_min=a.duration_min,
        status=a.status,
        notes=a.notes,
        request_id=a.request_id,
        reminder_sent_at=a.reminder_sent_at,
        cancel_reason=a.cancel_reason,
        override_reason=a.override_reason,
        late_change=bool(a.late_change),
        late_change_policy=a.late_change_policy,
        warnings=warnings or [],
    )


def _no_double_booking(ctx: Ctx, *, patient_id: int, start: datetime, minutes: int, skip: int | None = None) -> None:
    """409 when the patient already has a booked appointment overlapping ``start`` .. ``start + minutes``."""
    end = start + timedelta(minutes=minutes)
    rows = ctx.db.scalars(
        select(Appointment).where(
            Appointment.patient_id == patient_id,
            Appointment.status == AppointmentStatus.BOOKED.value,
            Appointment.start_at < end,
            Appointment.start_at > start - timedelta(minutes=480),  # the longest appointment
        )
    ).all()
    for a in rows:
        if a.id != skip and a.start_at + timedelta(minutes=a.duration_min) > start:
            raise HTTPProblem(
                409,
                f"patient {patient_id} already has appointment {a.id} ({a.kind}) at {a.start_at.isoformat()} for "
                f"{a.duration_min} min; reschedule or cancel it first",
            )


def _request_free(req: AppointmentRequest, appointment_id: int | None = None) -> None:
    """One public request becomes one appointment."""
    if req.appointment_id is not None and req.appointment_id != appointment_id:
        raise HTTPProblem(
            409, f"appointment request {req.id} is already linked to appointment {req.appointment_id}"
        )


@router.get("/appointments", response_model=list[AppointmentOut])
def list_appointments(
    ctx: Need(P.APPOINTMENT_READ),
    patient_id: int | None = Query(None, ge=1, le=2_147_483_647),
    days: int = Query(14, ge=1, le=366, description="from now, this many days ahead"),
    include_past_days: int = Query(0, ge=0, le=366),
):
    t0 = now() - timedelta(days=include_past_days)
    stmt = select(Appointment).where(Appointment.start_at >= t0, Appointment.start_at < now() + timedelta(days=days))
    if patient_id is not None:
        stmt = stmt.where(Appointment.patient_id == patient_id)
    rows = ctx.db.scalars(stmt.order_by(Appointment.start_at, Appointment.id)).all()
    ctx.audit("read", "appointments", patient_id=patient_id, count=len(rows))
    ctx.commit()
    return [appt_out(a) for a in rows]


@router.get("/appointments/reminders/due", response_model=list[AppointmentOut])
def reminders_due(ctx: Need(P.APPOINTMENT_WRITE)):
    """Booked appointments inside the reminder window whose reminder has not been sent."""
    rules, t = ctx.rules(), now()
    hours = float(rules.value("APPOINTMENT_REMINDER_HOURS"))
    rows = ctx.db.scalars(
        select(Appointment)
        .where(
            Appointment.status == AppointmentStatus.BOOKED.value,
            Appointment.reminder_sent_at.is_(None),
            Appointment.start_at > t,
            Appointment.start_at <= t + timedelta(hours=hours),
        )
        .order_by(Appointment.start_at)
    ).all()
    rows = [a for a in rows if reminder_due(a.start_at, now=t, sent=False, rules=rules)]
    ctx.audit("read", "appointment_reminders", count=len(rows))
    ctx.commit()
    return [appt_out(a) for a in rows]


@router.post("/appointments/{appointment_id}/reminder-sent", response_model=AppointmentOut)
def mark_reminder_sent(appointment_id: PathId, ctx: Need(P.APPOINTMENT_WRITE)):
    a = get_or_404(ctx, Appointment, appointment_id, what="appointment")
    a.reminder_sent_at = now()
    ctx.audit("update", "appointment", a.id, patient_id=a.patient_id, reminder_sent=True)
    ctx.commit()
    return appt_out(a)


@router.post("/appointments", response_model=AppointmentOut, status_code=201)
def book(body: AppointmentIn, ctx: Need(P.APPOINTMENT_WRITE)):
    get_patient(ctx, body.patient_id)
    if body.start <= now():
        raise HTTPProblem(422, "start is in the past; an appointment is booked for a future time")
    if body.request_id is not None:
        req = ctx.db.get(AppointmentRequest, body.request_id)
        if req is None:
            raise HTTPProblem(422, f"appointment request {body.request_id} does not exist")
        _request_free(req)
    _no_double_booking(ctx, patient_id=body.patient_id, start=body.start, minutes=body.duration_min)
    a = Appointment(
        patient_id=body.patient_id,
        kind=body.kind.value,
        start_at=body.start,
        duration_min=body.duration_min,
        notes=body.notes,
        request_id=body.request_id,
        created_by=ctx.user.id,
    )
    if body.request_id is not None:
        ctx.db.add(a)
        ctx.db.flush()
        req.status, req.appointment_id, req.handled_by = "booked", a.id, ctx.user.id
    return appt_out(create(ctx, a, resource="appointment"))


@router.get("/appointments/{appointment_id}", response_model=AppointmentOut)
def read_appointment(appointment_id: PathId, ctx: Need(P.APPOINTMENT_READ)):
    return read_one(ctx, Appointment, appointment_id, what="appointment", resource="appointment", out=appt_out)


def _notice(ctx: Ctx, a: Appointment, change: str, override_reason: str | None) -> list:
    """Rescheduling inside the notice period needs a written reason from the staff member (the refusal says
    so: ``overridable`` true); the change is then recorded as late, with the clinic's late-change policy."""
    vs = check_notice(a.start_at, now=now(), change=change, rules=ctx.rules())
    if vs and not override_reason:
        from echosclero.clinic.rules import RuleViolationError

        raise RuleViolationError(
            vs,
            overridable=True,
            way_out=" Give the reason for the late change (field 'override_reason'); it is recorded as late, "
            f"under the clinic's policy: {ctx.settings.late_change_policy}.",
        )
    if vs:
        _late(ctx, a)
        a.override_reason = override_reason
        ctx.audit(
            "override",
            "appointment",
            a.id,
            patient_id=a.patient_id,
            reason=override_reason,
            violations=[v.as_dict() for v in vs],
        )
    return [v.as_dict() for v in vs]


def _late(ctx: Ctx, a: Appointment) -> None:
    a.late_change, a.late_change_policy = True, ctx.settings.late_change_policy


@router.patch("/appointments/{appointment_id}", response_model=AppointmentOut)
def reschedule(appointment_id: PathId, body: AppointmentPatch, ctx: Need(P.APPOINTMENT_WRITE)):
    """Reschedule (``start``) or record the outcome; rescheduling inside the notice period needs a reason."""
    a = get_or_404(ctx, Appointment, appointment_id, what="appointment")
    if a.status != AppointmentStatus.BOOKED.value:
        raise HTTPProblem(422, f"appointment {a.id} is {a.status}; only a booked appointment can change")
    warnings = []
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "start" in changes and body.start != a.start_at:
        if body.start <= now():
            raise HTTPProblem(422, "the new start is in the past")
        _no_double_booking(
            ctx, patient_id=a.patient_id, start=body.start, minutes=body.duration_min or a.duration_min, skip=a.id
        )
        warnings = _notice(ctx, a, "rescheduling", body.override_reason)
        a.start_at, a.reminder_sent_at = body.start, None
    apply_changes(a, {k: v for k, v in changes.items() if k not in ("start", "override_reason")})
    ctx.audit("update", "appointment", a.id, patient_id=a.patient_id, fields=sorted(changes))
    ctx.commit()
    return appt_out(a, warnings)


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentOut)
def cancel(appointment_id: PathId, body: CancelIn, ctx: Need(P.APPOINTMENT_WRITE)):
    a = get_or_404(ctx, Appointment, appointment_id, what="appointment")
    if a.status != AppointmentStatus.BOOKED.value:
        raise HTTPProblem(422, f"appointment {a.id} is {a.status}; only a booked appointment can be cancelled")
    # A patient's cancellation is always recorded (refusing it helps nobody): inside the notice period it is
    # recorded as late, with the clinic's late-change policy, and the answer says so.
    vs = check_notice(a.start_at, now=now(), change="cancelling", rules=ctx.rules()) if a.start_at > now() else []
    if vs:
        _late(ctx, a)
        a.override_reason = body.override_reason
    a.status, a.cancel_reason = AppointmentStatus.CANCELLED.value, body.reason
    ctx.audit("cancel", "appointment", a.id, patient_id=a.patient_id, late=bool(vs))
    ctx.commit()
    return appt_out(a, [v.as_dict() | {"policy": ctx.settings.late_change_policy} for v in vs])


# --- public request form ---


@router.post(
    "/public/appointment-requests",
    response_model=PublicRequestAck,
    status_code=202,
    tags=["public"],
    summary="Ask for an appointment (no sign-in)",
)
def public_request(body: PublicRequestIn, request: Request, db: DB):
    ip = client_ip(request)
    limits = ((request.app.state.public_limiter, ip), (request.app.state.public_global_limiter, "*"))
    for limiter, key in limits:
        wait = limiter.check(db, key)
        if wait is not None:
            db.rollback()
            raise HTTPProblem(
                429,
                f"too many requests; please retry in {int(wait) + 1} s or telephone the clinic",
                {"Retry-After": str(int(wait) + 1)},
            )
    for limiter, key in limits:
        limiter.record(db, key)
    ack = PublicRequestAck(received=True, message="Thank you. The clinic will contact you to arrange a time.")
    if body.website:  # honeypot filled: answer the same, keep it out of the queue (it still counts)
        commit(db)
        return ack
    req = AppointmentRequest(
        name=body.name,
        email=body.email or None,
        phone=body.phone or None,
        preferred_times=body.preferred_times,
        reason=body.reason,
        client_ip=ip,
    )
    db.add(req)
    db.flush()
    db.add(audit_entry(request, None, "create", "appointment_request", resource_id=req.id, username="public"))
    commit(db)
    return ack


@router.get("/appointment-requests", response_model=list[RequestOut])
def request_queue(
    ctx: Need(P.REQUESTS),
    status: str = Query("new", pattern=r"^(new|booked|declined|spam|all)$"),
    limit: int = Query(100, ge=1, le=1000),
):
    stmt = select(AppointmentRequest).order_by(AppointmentRequest.created_at, AppointmentRequest.id)
    if status != "all":
        stmt = stmt.where(AppointmentRequest.status == status)
    rows = ctx.db.scalars(stmt.limit(limit)).all()
    ctx.audit("read", "appointment_requests", count=len(rows))
    ctx.commit()
    return rows


@router.patch("/appointment-requests/{request_id}", response_model=RequestOut)
def handle_request(request_id: PathId, body: RequestPatch, ctx: Need(P.REQUESTS)):
    req = get_or_404(ctx, AppointmentRequest, request_id, what="appointment request")
    if body.appointment_id is not None:
        appt = ctx.db.get(Appointment, body.appointment_id)
        if appt is None:
            raise HTTPProblem(422, f"appointment {body.appointment_id} does not exist")
        _request_free(req, body.appointment_id)
        if appt.request_id is not None and appt.request_id != req.id:
            raise HTTPProblem(409, f"appointment {appt.id} belongs to appointment request {appt.request_id}")
        appt.request_id = req.id
    req.status, req.handled_by = body.status.value, ctx.user.id
    if body.appointment_id is not None:
        req.appointment_id = body.appointment_id
    ctx.audit("update", "appointment_request", req.id, status=req.status)
    ctx.commit()
    return req
