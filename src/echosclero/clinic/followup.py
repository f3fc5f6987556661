"""Follow-up after a session: the schedule, outcomes per segment, complications and residual veins.

Schedule (days after the session, from :mod:`echosclero.clinic.rules`): an early duplex for deep-vein
thrombosis and occlusion ([guideline] UIP, De Maeseneer 2011: immediate follow-up 1-4 weeks), a clinical
review at weeks (clinic policy) and a late duplex review ([guideline] UIP: short term at 1 year).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from echosclero.clinic.rules import RuleBook

__all__ = [
    "ComplicationType",
    "FollowupKind",
    "PlannedFollowup",
    "SegmentOutcome",
    "Severity",
    "residual_segments",
    "schedule",
]


class FollowupKind(StrEnum):
    EARLY_DUPLEX = "early_duplex"
    REVIEW = "review"
    LATE_REVIEW = "late_review"
    OTHER = "other"


class SegmentOutcome(StrEnum):
    OCCLUDED = "occluded"
    PARTIALLY_OCCLUDED = "partially_occluded"
    RECANALISED = "recanalised"
    PATENT = "patent"  # untreated or never occluded


RESIDUAL = (SegmentOutcome.PARTIALLY_OCCLUDED, SegmentOutcome.RECANALISED, SegmentOutcome.PATENT)


class ComplicationType(StrEnum):
    THROMBOPHLEBITIS = "thrombophlebitis"
    HYPERPIGMENTATION = "hyperpigmentation"
    MATTING = "matting"
    ALLERGIC_REACTION = "allergic_reaction"
    VISUAL_DISTURBANCE = "visual_disturbance"  # 0.5-1.4% after foam ([trial] Bradbury 2010; Jia 2007)
    MIGRAINE = "migraine"  # reported after foam (seed 001); UIP lists migraine as a relative contraindication
    COUGH = "cough"  # dry cough or chest tightness after foam (seed 001)
    NEUROLOGICAL = "neurological"
    DEEP_VEIN_THROMBOSIS = "deep_vein_thrombosis"
    PULMONARY_EMBOLISM = "pulmonary_embolism"
    SKIN_NECROSIS = "skin_necrosis"
    INTRA_ARTERIAL_INJECTION = "intra_arterial_injection"
    NERVE_INJURY = "nerve_injury"
    TRAPPED_BLOOD = "trapped_blood"
    PAIN = "pain"
    OTHER = "other"


class Severity(StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    LIFE_THREATENING = "life_threatening"


_PURPOSE = {
    FollowupKind.EARLY_DUPLEX: (
        "duplex: deep-vein thrombosis check and occlusion of the treated segments",
        "FOLLOWUP_EARLY_DUPLEX_DAYS",
    ),
    FollowupKind.REVIEW: (
        "clinical review: symptoms, trapped blood, pigmentation, further treatment",
        "FOLLOWUP_REVIEW_DAYS",
    ),
    FollowupKind.LATE_REVIEW: (
        "duplex review: occlusion or recanalisation, residual veins",
        "FOLLOWUP_LATE_DAYS",
    ),
}


@dataclass(frozen=True, slots=True)
class PlannedFollowup:
    kind: FollowupKind
    due_on: date
    purpose: str
    rule: str
    source: str


def schedule(session_date: date, *, rules: RuleBook) -> list[PlannedFollowup]:
    out = []
    for kind, (purpose, code) in _PURPOSE.items():
        rule = rules[code]
        out.append(
            PlannedFollowup(
                kind, session_date + timedelta(days=int(float(rule.value))), purpose, code, rule.citation
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    limb: str
    segment: str
    outcome: SegmentOutcome
    on: date


def residual_segments(records: Iterable[OutcomeRecord]) -> list[OutcomeRecord]:
    """The latest outcome per (limb, segment) that is not occluded: candidates for the next plan."""
    latest: dict[tuple[str, str], OutcomeRecord] = {}
    for r in records:
        key = (r.limb, r.segment)
        if key not in latest or r.on >= latest[key].on:
            latest[key] = r
    return sorted((r for r in latest.values() if r.outcome in RESIDUAL), key=lambda r: (r.limb, r.segment))
