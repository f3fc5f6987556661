"""Helpers shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy import select

from echosclero.api.deps import Ctx, need
from echosclero.api.errors import not_found
from echosclero.clinic.candidacy import Assessment, assess
from echosclero.clinic.roles import Permission
from echosclero.store.models import Candidacy, Patient

P = Permission
PathId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def Need(permission: Permission):  # noqa: N802 - reads as a type in signatures
    return Annotated[Ctx, Depends(need(permission))]


def get_patient(ctx: Ctx, patient_id: int, *, lock: bool = False) -> Patient:
    stmt = select(Patient).where(Patient.id == patient_id)
    if lock and ctx.db.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    patient = ctx.db.scalars(stmt).first()
    if patient is None:
        raise not_found("patient", patient_id)
    return patient


def get_or_404(ctx: Ctx, model, ident: int, what: str):
    obj = ctx.db.get(model, ident)
    if obj is None:
        raise not_found(what, ident)
    return obj


def latest_candidacy(ctx: Ctx, patient_id: int) -> Candidacy | None:
    return ctx.db.scalars(
        select(Candidacy)
        .where(Candidacy.patient_id == patient_id)
        .order_by(Candidacy.assessed_on.desc(), Candidacy.id.desc())
        .limit(1)
    ).first()


def candidacy_assessment(record: Candidacy | None, *, foam: bool) -> Assessment | None:
    return None if record is None else assess(record.present or [], foam=foam)
