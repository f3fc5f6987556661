"""Treatment plans per leg: target segments and the planned sclerosant, checked against the rules.

A plan is checked item by item like an injection (concentration ceiling, deep-vein target, vein-type
range, per-puncture foam caps); plan totals above a per-session or per-day limit are *warnings* that the
plan needs more than one session, since a plan may be delivered over several sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from echosclero.clinic.candidacy import Assessment
from echosclero.clinic.dosing import Dose, DoseContext, check_injection
from echosclero.clinic.rules import Enforcement, RuleBook, Violation

__all__ = ["check_candidacy_gate", "check_plan"]

_SESSION_TOTAL_RULES = {
    "POLIDOCANOL_DAILY_MG_PER_KG",
    "FOAM_SESSION_MAX_ML",
    "POLIDOCANOL_FOAM_DAILY_MAX_ML",
    "STS_SESSION_MAX_ML",
    "CANISTER_FOAM_SESSION_MAX_ML",
}


def check_plan(items: Sequence[Dose], *, weight_kg: float, rules: RuleBook) -> list[Violation]:
    """Violations of a plan. Per-item refusals stay refusals; cumulative limits become warnings."""
    out: list[Violation] = []
    for i, dose in enumerate(items):
        for v in check_injection(dose, DoseContext(weight_kg=weight_kg), rules=rules):
            out.append(Violation(v.rule, f"item {i + 1}: {v.message}", f"items.{i}.{v.field or 'volume_ml'}"))
    ctx_all = DoseContext(weight_kg=weight_kg, given_today=items[:-1], given_this_session=items[:-1])
    if items:
        for v in check_injection(items[-1], ctx_all, rules=rules):
            if v.rule.code in _SESSION_TOTAL_RULES:
                warn_rule = replace(v.rule, enforcement=Enforcement.WARN)
                out.append(
                    Violation(
                        warn_rule, f"the plan in one session: {v.message}; split it over sessions", "items"
                    )
                )
    return _dedupe(out)


def _dedupe(vs: list[Violation]) -> list[Violation]:
    seen, out = set(), []
    for v in vs:
        key = (v.rule.code, v.message)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def check_candidacy_gate(assessment: Assessment | None, *, rules: RuleBook) -> list[Violation]:
    """Planning and treating need a recorded checklist; absolute contraindications refuse."""
    if assessment is None:
        return [
            Violation(
                rules["CANDIDACY_RECORDED"],
                "no contraindication checklist is recorded for this patient; record it first "
                "(POST /api/patients/{id}/candidacy)",
                "candidacy",
            )
        ]
    return assessment.violations(rules=rules)


def plan_uses_foam(items: Sequence[Dose]) -> bool:
    return any(d.form.is_foam for d in items)
