"""Helpers shared by the routers: the router factory, typed dependencies, and keyword-only crud helpers.

Every helper that touches patient data writes its audit entry, and the ``read_*``/``create``/``update``
helpers commit (with the entry), so that a route cannot read or write patient data without leaving a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from enum import Enum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from echosclero.api.deps import Ctx, CtxRoute, need
from echosclero.api.errors import HTTPProblem, not_found
from echosclero.clinic.candidacy import Assessment, assess
from echosclero.clinic.roles import Permission
from echosclero.store.models import Candidacy, Patient

__all__ = [
    "Need",
    "P",
    "PathId",
    "api_router",
    "apply_changes",
    "candidacy_assessment",
    "create",
    "get_or_404",
    "get_patient",
    "latest_candidacy",
    "list_for_patient",
    "read_one",
    "require_session_of",
]

P = Permission
PathId = Annotated[int, Path(ge=1, le=2_147_483_647)]
M = TypeVar("M")


def api_router(*tags: str) -> APIRouter:
    """A router under ``/api`` whose routes open their :class:`Ctx` (see :class:`CtxRoute`)."""
    return APIRouter(prefix="/api", tags=list(tags), route_class=CtxRoute)


def Need(permission: Permission):  # noqa: N802 - reads as a type in signatures
    return Annotated[Ctx, Depends(need(permission))]


def _same(obj):
    return obj


def get_patient(ctx: Ctx, patient_id: int, *, lock: bool = False) -> Patient:
    stmt = select(Patient).where(Patient.id == patient_id)
    if lock and ctx.db.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    patient = ctx.db.scalars(stmt).first()
    if patient is None:
        raise not_found("patient", patient_id)
    return patient


def get_or_404(ctx: Ctx, model: type[M], ident: int, *, what: str) -> M:
    obj = ctx.db.get(model, ident)
    if obj is None:
        raise not_found(what, ident)
    return obj


def read_one(ctx: Ctx, model: type[M], ident: int, *, what: str, resource: str, out: Callable[[M], Any] = _same):
    """One record by id, audited as a read of its patient's data; ``out`` builds the answer in the same
    transaction."""
    obj = get_or_404(ctx, model, ident, what=what)
    ctx.audit("read", resource, obj.id, patient_id=getattr(obj, "patient_id", None))
    result = out(obj)
    ctx.commit()
    return result


def list_for_patient(
    ctx: Ctx,
    model: type[M],
    *,
    patient_id: int,
    resource: str,
    order: Iterable[InstrumentedAttribute] = (),
    out: Callable[[M], Any] = _same,
    **detail: Any,
) -> list:
    """A patient's records of one kind (404 for an unknown patient), oldest first, audited; ``out`` builds
    each answer in the same transaction."""
    get_patient(ctx, patient_id)
    stmt = select(model).where(model.patient_id == patient_id).order_by(*order, model.id)
    rows = list(ctx.db.scalars(stmt))
    ctx.audit("read", resource, patient_id=patient_id, count=len(rows), **detail)
    result = [out(r) for r in rows]
    ctx.commit()
    return result


def create(ctx: Ctx, obj: M, *, resource: str, patient_id: int | None = None, **detail: Any) -> M:
    """Insert ``obj`` and its audit entry in one commit; returns it with its ``id``. The audit entry names
    ``patient_id``, else the record's own patient (a new patient: itself)."""
    ctx.db.add(obj)
    ctx.db.flush()
    if patient_id is None:
        patient_id = obj.id if isinstance(obj, Patient) else getattr(obj, "patient_id", None)
    ctx.audit("create", resource, obj.id, patient_id=patient_id, **detail)
    ctx.commit()
    return obj


def apply_changes(obj: Any, changes: dict[str, Any], *, skip_none: Iterable[str] = ()) -> list[str]:
    """Set the fields of a PATCH (enums stored by value); ``None`` is skipped for ``skip_none`` fields.
    Returns the names of the fields given, for the audit entry."""
    skip = set(skip_none)
    for key, value in changes.items():
        if value is None and key in skip:
            continue
        setattr(obj, key, value.value if isinstance(value, Enum) else value)
    return sorted(changes)


def require_session_of(ctx: Ctx, session_id: int | None, *, patient_id: int) -> None:
    """A referenced session must belong to the patient (422 otherwise)."""
    from echosclero.store.models import Session

    if session_id is not None:
        s = ctx.db.get(Session, session_id)
        if s is None or s.patient_id != patient_id:
            raise HTTPProblem(422, f"session {session_id} is not a session of patient {patient_id}")


def latest_candidacy(ctx: Ctx, patient_id: int, *, on: date) -> Candidacy | None:
    """The newest checklist assessed on or before ``on`` (a checklist dated later says nothing about that day)."""
    return ctx.db.scalars(
        select(Candidacy)
        .where(Candidacy.patient_id == patient_id, Candidacy.assessed_on <= on)
        .order_by(Candidacy.assessed_on.desc(), Candidacy.id.desc())
        .limit(1)
    ).first()


def candidacy_assessment(record: Candidacy | None, *, foam: bool) -> Assessment | None:
    return None if record is None else assess(record.present or [], foam=foam)
