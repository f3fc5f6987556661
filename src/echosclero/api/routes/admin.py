"""The rule book (read by all, adjusted by physicians with an audit entry) and the audit log (admin)."""

from typing import Annotated

from fastapi import Path, Query
from pydantic import AwareDatetime
from sqlalchemy import select

from echosclero.api.errors import HTTPProblem
from echosclero.api.routes.common import Need, P, api_router
from echosclero.api.schemas import AuditOut, RuleOut, RuleValueIn
from echosclero.clinic.rules import RuleBook, check_rule_value
from echosclero.errors import InputError
from echosclero.store.models import AuditEntry, RuleValue

router = api_router("rules")


def _rules_out(book: RuleBook) -> list[RuleOut]:
    defaults = RuleBook()
    return [RuleOut(**r.as_dict(), default=defaults[r.code].value) for r in book.rules.values()]


@router.get("/rules", response_model=list[RuleOut])
def list_rules(ctx: Need(P.RULES_READ)):
    """Every enforced number with its unit, enforcement and source ([verify] rules only warn)."""
    return _rules_out(ctx.rules())


@router.put("/rules/{code}", response_model=RuleOut)
def set_rule(
    code: Annotated[str, Path(max_length=60, pattern=r"^[A-Z0-9_]+$")],
    body: RuleValueIn,
    ctx: Need(P.RULES_WRITE),
):
    book = RuleBook()
    if code not in book.rules:
        raise HTTPProblem(404, f"rule {code} not found")
    rule = book[code]
    try:
        value = check_rule_value(rule, body.value)
    except InputError as exc:
        raise HTTPProblem(422, str(exc)) from None
    row = ctx.db.get(RuleValue, code)
    old = row.value if row else rule.value
    if row is None:
        ctx.db.add(RuleValue(code=code, value=value, reason=body.reason, updated_by=ctx.user.id))
    else:
        row.value, row.reason, row.updated_by = value, body.reason, ctx.user.id
    ctx.audit("update", "rule", code, old=old, new=value, default=rule.value, reason=body.reason)
    ctx.forget_rules()
    out = next(r for r in _rules_out(ctx.rules()) if r.code == code)
    ctx.commit()
    return out


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def read_audit(
    ctx: Need(P.AUDIT_READ),
    patient_id: int | None = Query(None, ge=1, le=2_147_483_647),
    user_id: int | None = Query(None, ge=1, le=2_147_483_647),
    action: str | None = Query(None, max_length=20, pattern=r"^[a-z_]+$"),
    since: AwareDatetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
):
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    if patient_id is not None:
        stmt = stmt.where(AuditEntry.patient_id == patient_id)
    if user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == user_id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        if not 1970 <= since.year <= 2100:
            raise HTTPProblem(422, "since must lie between 1970 and 2100")
        stmt = stmt.where(AuditEntry.at >= since)
    rows = ctx.db.scalars(stmt.limit(limit).offset(offset)).all()
    ctx.audit("read", "audit", count=len(rows))
    ctx.commit()
    if ctx.can(P.CLINICAL_READ):
        return rows
    return [_without_clinical_values(r) for r in rows]


#: Audit detail keys that never hold clinical values (what, how many, which fields, the answer's status; a
#: rule's old and new value; a user's old and new role). Every other key, on an entry about a patient or not,
#: is withheld from readers without clinical access (the admin): doses, reasons, findings, weights.
_NON_CLINICAL_DETAIL = {
    "fields",
    "count",
    "status",
    "query",
    "needed",
    "role_given",
    "changes",
    "chars",
    "format",
    "kind",
}


def _without_clinical_values(row: AuditEntry) -> AuditOut:
    out = AuditOut.model_validate(row)
    detail = dict(row.detail or {})
    if row.resource in ("rule",):  # the clinic's rule values are policy, not patient data
        return out
    if row.patient_id is not None or row.resource not in ("user", "users", "token", "permission", "audit"):
        kept = {k: v for k, v in detail.items() if k in _NON_CLINICAL_DETAIL and k != "changes"}
    else:
        kept = {k: v for k, v in detail.items() if k in _NON_CLINICAL_DETAIL}
    withheld = sorted(set(detail) - set(kept))
    if withheld:
        kept["withheld"] = withheld
    out.detail = kept
    return out
