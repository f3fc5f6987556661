"""Patient facts the rules need, and their plausibility checks (no I/O).

Plausibility bounds are input validation, not clinical rules: they catch typing errors (a weight of
700 kg, a birth date in the future) before a dose is computed from them.
"""

from __future__ import annotations

import math
import re
from datetime import date
from enum import StrEnum

from echosclero.errors import InputError

__all__ = [
    "BIRTH_DATE_MIN",
    "WEIGHT_KG_MAX",
    "WEIGHT_KG_MIN",
    "Limb",
    "Sex",
    "age_years",
    "check_birth_date",
    "check_ceap",
    "check_name",
    "check_vcss",
    "check_weight_kg",
]

WEIGHT_KG_MIN = 20.0  # plausibility: adult and adolescent patients only (input validation)
WEIGHT_KG_MAX = 350.0  # plausibility (input validation)
BIRTH_DATE_MIN = date(1900, 1, 1)


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Limb(StrEnum):
    LEFT = "left"
    RIGHT = "right"


def check_weight_kg(weight_kg: float) -> float:
    w = weight_kg
    if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
        raise InputError(f"weight_kg must be a number of kilograms, not {w!r}")
    if not WEIGHT_KG_MIN <= w <= WEIGHT_KG_MAX:
        raise InputError(
            f"weight_kg {w:g} is outside the plausible range {WEIGHT_KG_MIN:g}-{WEIGHT_KG_MAX:g} kg; "
            "check the entry (doses are computed from it)"
        )
    return float(w)


def check_birth_date(birth_date: date, *, today: date) -> date:
    if birth_date > today:
        raise InputError(f"birth_date {birth_date.isoformat()} is in the future")
    if birth_date < BIRTH_DATE_MIN:
        raise InputError(f"birth_date {birth_date.isoformat()} is before {BIRTH_DATE_MIN.isoformat()}")
    return birth_date


def age_years(birth_date: date, *, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


_NAME_BAD = re.compile(r"[\x00-\x1f\x7f]")


def check_name(value: str, *, field: str) -> str:
    v = value.strip()
    if not v:
        raise InputError(f"{field} must not be empty")
    if _NAME_BAD.search(v):
        raise InputError(f"{field} contains control characters")
    return v


def check_ceap(text: str) -> str:
    """A CEAP 2020 classification, validated by :func:`echosclero.clinic.ceap.parse_ceap` and returned in
    canonical form; :class:`InputError` names the problem (an unknown class, an impossible combination)."""
    from echosclero.clinic.ceap import CeapError, parse_ceap

    try:
        return parse_ceap(text)
    except CeapError as exc:
        raise InputError(f"CEAP {text!r} is not valid: {exc}") from None


VCSS_ITEMS = (
    "pain",
    "varicose_veins",
    "venous_edema",
    "skin_pigmentation",
    "inflammation",
    "induration",
    "active_ulcer_number",
    "active_ulcer_duration",
    "active_ulcer_size",
    "compression_therapy",
)


def check_vcss(items: dict[str, int] | None, total: int | None) -> int:
    """Revised VCSS (Vasquez et al., J Vasc Surg 2010;52:1387-96): 10 items 0-3, total 0-30."""
    if items is not None:
        unknown = set(items) - set(VCSS_ITEMS)
        if unknown:
            raise InputError(f"unknown VCSS items {sorted(unknown)}; valid: {', '.join(VCSS_ITEMS)}")
        for k, v in items.items():
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 3:
                raise InputError(f"VCSS item {k} must be 0, 1, 2 or 3, not {v!r}")
        s = sum(items.values())
        if total is not None and total != s:
            raise InputError(f"VCSS total {total} does not equal the sum of its items ({s})")
        return s
    if total is None:
        raise InputError("give the VCSS total or its items")
    if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= 30:
        raise InputError(f"VCSS total must be 0-30, not {total!r}")
    return total
