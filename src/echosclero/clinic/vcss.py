"""Revised Venous Clinical Severity Score (rVCSS) as a validated data type with item calculators.

Source: [guideline] Vasquez MA, Rabe E, McLafferty RB, et al. Revision of the venous clinical severity
score: venous outcomes consensus statement: special communication of the American Venous Forum Ad Hoc
Outcomes Working Group. J Vasc Surg 2010;52:1387-96 (Table). Ten items, each scored 0-3, total 0-30.

Item definitions used by the calculators (abridged from the Table):

* varicose veins (>= 3 mm, standing): 0 none; 1 few, scattered (branch varicosities or clusters; includes
  corona phlebectatica); 2 confined to calf or thigh; 3 involve calf and thigh;
* venous oedema: 0 none; 1 limited to foot and ankle; 2 above the ankle but below the knee; 3 to the knee
  and above;
* skin pigmentation, inflammation, induration: 0 none or focal; 1 limited to the perimalleolar area;
  2 diffuse over the lower third of the calf; 3 wider, above the lower third of the calf;
* active ulcer number: 0; 1; 2; >= 3 -> 3;
* active ulcer duration (longest): 0 none; 1 < 3 months; 2 > 3 months but < 1 year; 3 not healed > 1 year;
* active ulcer size (largest): 0 none; 1 diameter < 2 cm; 2 2-6 cm; 3 > 6 cm;
* pain: 0 none; 1 occasional; 2 daily, interfering but not preventing activities; 3 daily, limiting most
  activities;
* use of compression therapy: 0 not used; 1 intermittent; 2 most days; 3 full compliance (stockings and
  elevation).

Impossible combinations refused: an ulcer duration or size without an active ulcer, or an active ulcer
without its duration and size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from echosclero.errors import InputError

__all__ = [
    "VCSS",
    "VCSS_ITEMS",
    "VcssError",
    "extent_score",
    "oedema_score",
    "ulcer_count_score",
    "ulcer_duration_score",
    "ulcer_size_score",
    "varicose_veins_score",
]


class VcssError(InputError):
    """An impossible or malformed VCSS."""


#: The ten items, in the order of Vasquez 2010.
VCSS_ITEMS: tuple[str, ...] = (
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


@dataclass(frozen=True, slots=True)
class VCSS:
    """Revised VCSS of one leg: ten items 0-3 (Vasquez 2010); :attr:`total` is 0-30."""

    pain: int = 0
    varicose_veins: int = 0
    venous_edema: int = 0
    skin_pigmentation: int = 0
    inflammation: int = 0
    induration: int = 0
    active_ulcer_number: int = 0
    active_ulcer_duration: int = 0
    active_ulcer_size: int = 0
    compression_therapy: int = 0

    def __post_init__(self) -> None:
        for name in VCSS_ITEMS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
                raise VcssError(f"VCSS item {name}={value!r} must be an integer score 0, 1, 2 or 3")
        if self.active_ulcer_number == 0 and (self.active_ulcer_duration or self.active_ulcer_size):
            raise VcssError(
                "active ulcer duration/size are scored but the active ulcer number is 0; score them 0 or "
                "give the number of active ulcers"
            )
        if self.active_ulcer_number > 0 and not (self.active_ulcer_duration and self.active_ulcer_size):
            raise VcssError(
                "an active ulcer is scored but its duration or size is 0; score both (1-3) for the "
                "longest-standing and the largest ulcer"
            )

    @property
    def total(self) -> int:
        return sum(getattr(self, n) for n in VCSS_ITEMS)

    def to_json(self) -> dict:
        out = asdict(self)
        out["total"] = self.total
        return out

    @classmethod
    def from_json(cls, data: dict) -> VCSS:
        unknown = set(data) - set(VCSS_ITEMS) - {"total"}
        if unknown:
            raise VcssError(f"unknown VCSS item(s) {sorted(unknown)}; items: {', '.join(VCSS_ITEMS)}")
        obj = cls(**{k: v for k, v in data.items() if k != "total"})
        if "total" in data and data["total"] != obj.total:
            raise VcssError(f"VCSS total {data['total']} does not match the items (sum {obj.total})")
        return obj


Extent = Literal["none", "perimalleolar", "lower_third_calf", "above_lower_third"]
_EXTENT = {"none": 0, "focal": 0, "perimalleolar": 1, "lower_third_calf": 2, "above_lower_third": 3}


def extent_score(extent: str) -> int:
    """Pigmentation, inflammation or induration by extent: none/focal 0, perimalleolar 1, lower third of
    the calf 2, above the lower third 3 (Vasquez 2010)."""
    try:
        return _EXTENT[extent]
    except KeyError:
        raise VcssError(f"extent {extent!r} must be one of {', '.join(_EXTENT)}") from None


_OEDEMA = {"none": 0, "foot_ankle": 1, "below_knee": 2, "knee_and_above": 3}


def oedema_score(extent: str) -> int:
    """Venous oedema: none 0, foot and ankle 1, above the ankle below the knee 2, to the knee and above 3."""
    try:
        return _OEDEMA[extent]
    except KeyError:
        raise VcssError(f"oedema extent {extent!r} must be one of {', '.join(_OEDEMA)}") from None


_VARICES = {"none": 0, "few_scattered": 1, "calf_or_thigh": 2, "calf_and_thigh": 3}


def varicose_veins_score(extent: str) -> int:
    """Varicose veins >= 3 mm: none 0, few scattered 1, confined to calf or thigh 2, calf and thigh 3."""
    try:
        return _VARICES[extent]
    except KeyError:
        raise VcssError(f"varicose vein extent {extent!r} must be one of {', '.join(_VARICES)}") from None


def ulcer_count_score(n_active_ulcers: int) -> int:
    """Active ulcers: 0 -> 0, 1 -> 1, 2 -> 2, >= 3 -> 3."""
    if isinstance(n_active_ulcers, bool) or not isinstance(n_active_ulcers, int) or n_active_ulcers < 0:
        raise VcssError(f"n_active_ulcers={n_active_ulcers!r} must be a whole number >= 0")
    return min(n_active_ulcers, 3)


def ulcer_duration_score(duration_months: float | None) -> int:
    """Longest active ulcer: none 0, < 3 months 1, 3-12 months 2, > 1 year 3."""
    if duration_months is None:
        return 0
    if not duration_months >= 0:
        raise VcssError(f"duration_months={duration_months!r} must be >= 0")
    if duration_months < 3:
        return 1
    return 2 if duration_months <= 12 else 3


def ulcer_size_score(diameter_cm: float | None) -> int:
    """Largest active ulcer: none 0, diameter < 2 cm 1, 2-6 cm 2, > 6 cm 3."""
    if diameter_cm is None:
        return 0
    if not diameter_cm > 0:
        raise VcssError(f"diameter_cm={diameter_cm!r} must be > 0 (or None for no ulcer)")
    if diameter_cm < 2:
        return 1
    return 2 if diameter_cm <= 6 else 3
