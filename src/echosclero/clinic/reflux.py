"""Is a measured reflux pathological? Segment-specific duplex criteria, each with its published source.

Cut-offs come from :mod:`echosclero.clinic.segments` (one table for the whole program); this module states
how they are applied and which text says so:

* superficial trunks and tributaries, tibial, deep femoral (profunda) and calf muscle veins: reflux
  > 500 ms; common femoral, femoral and popliteal veins: > 1000 ms — [guideline] Gloviczki et al., SVS/AVF
  clinical practice guidelines, J Vasc Surg 2011;53:2S-48S; confirmed by the SVS/AVF/AVLS 2023 guideline
  (J Vasc Surg Venous Lymphat Disord 2024;12:101670);
* perforators ("pathologic perforator"): outward flow >= 500 ms **and** diameter >= 3.5 mm — same
  sources (in 2011 also: located beneath a healed or open venous ulcer);
* perforators, research cut-off: > 350 ms, above which 97 % of healthy limbs do not reach — [trial]
  Labropoulos et al., J Vasc Surg 2003;38:793-8;
* no minimum diameter is needed for pathological reflux in axial veins — [guideline] SVS/AVF/AVLS 2023.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from echosclero.clinic.segments import PERFORATOR_MIN_DIAMETER_MM, Segment, VeinSystem, get_segment
from echosclero.errors import InputError

__all__ = [
    "PERFORATOR_RESEARCH_CUTOFF_MS",
    "REFLUX_SOURCES",
    "RefluxClassification",
    "classify_reflux",
    "reflux_source",
]

#: [trial] Labropoulos et al., J Vasc Surg 2003;38:793-8: 97 % of healthy limbs' perforators below 350 ms.
PERFORATOR_RESEARCH_CUTOFF_MS = 350.0

#: Citation of each criterion, by name; printed next to every classification.
REFLUX_SOURCES: dict[str, str] = {
    "superficial": "[guideline] SVS/AVF 2011 (Gloviczki, J Vasc Surg 2011;53:2S-48S); SVS/AVF/AVLS 2023: "
    "reflux > 500 ms in superficial veins",
    "deep_distal": "[guideline] SVS/AVF 2011; SVS/AVF/AVLS 2023: reflux > 500 ms in tibial, deep femoral "
    "(profunda) and calf muscle veins",
    "deep_proximal": "[guideline] SVS/AVF 2011; SVS/AVF/AVLS 2023: reflux > 1000 ms in common femoral, "
    "femoral and popliteal veins",
    "perforator": "[guideline] SVS/AVF 2011; SVS/AVF/AVLS 2023: pathologic perforator = outward flow "
    ">= 500 ms and diameter >= 3.5 mm",
    "perforator_research": "[trial] Labropoulos 2003 (J Vasc Surg 2003;38:793-8): perforator reflux > 350 ms",
}

Criterion = Literal["guideline", "research"]
Verdict = Literal["reflux", "no reflux", "reflux, not a pathologic perforator", "indeterminate"]


@dataclass(frozen=True, slots=True)
class RefluxClassification:
    """The verdict on one measured reflux.

    ``pathological`` is ``True``/``False``, or ``None`` when the rule needs a value that is missing (a
    perforator's diameter). ``rule`` says in words what was compared; ``source`` cites it.
    """

    segment: str
    reflux_ms: float
    cutoff_ms: float
    inclusive: bool
    pathological: bool | None
    verdict: Verdict
    rule: str
    source: str
    diameter_mm: float | None = None

    def to_json(self) -> dict:
        return {
            "segment": self.segment,
            "reflux_ms": self.reflux_ms,
            "cutoff_ms": self.cutoff_ms,
            "inclusive": self.inclusive,
            "pathological": self.pathological,
            "verdict": self.verdict,
            "rule": self.rule,
            "source": self.source,
            "diameter_mm": self.diameter_mm,
        }


def reflux_source(segment: Segment | str, *, criterion: Criterion = "guideline") -> str:
    """The citation of the reflux criterion that applies to ``segment``."""
    seg = get_segment(segment)
    if seg.perforator:
        return REFLUX_SOURCES["perforator_research" if criterion == "research" else "perforator"]
    if seg.system is VeinSystem.DEEP:
        return REFLUX_SOURCES["deep_proximal" if seg.reflux_cutoff_ms >= 1000 else "deep_distal"]
    return REFLUX_SOURCES["superficial"]


def classify_reflux(
    segment: Segment | str,
    reflux_ms: float,
    *,
    diameter_mm: float | None = None,
    criterion: Criterion = "guideline",
) -> RefluxClassification:
    """Classify a reflux duration for a vein segment with the published cut-off.

    Parameters
    ----------
    segment
        A :class:`~echosclero.clinic.segments.Segment` or its code (``"GSVa"``, ``"CFV"``, ``"CPV"`` ...).
    reflux_ms
        Measured duration of retrograde (for perforators: outward) flow, ms, >= 0.
    diameter_mm
        Vein diameter; needed for perforators under the guideline criterion (>= 3.5 mm).
    criterion
        ``"guideline"`` (default) or ``"research"`` (perforators only: > 350 ms, Labropoulos 2003).

    Returns
    -------
    RefluxClassification
    """
    seg = get_segment(segment)
    if not (isinstance(reflux_ms, (int, float)) and reflux_ms >= 0 and reflux_ms < 60_000):
        raise InputError(f"reflux_ms={reflux_ms!r} must be a duration in ms within [0, 60000)")
    if diameter_mm is not None and not (0 < diameter_mm < 60):
        raise InputError(f"diameter_mm={diameter_mm!r} must be within (0, 60) mm")
    if criterion not in ("guideline", "research"):
        raise InputError(f"criterion={criterion!r} must be 'guideline' or 'research'")
    source = reflux_source(seg, criterion=criterion)
    if seg.perforator and criterion == "research":
        cutoff, inclusive = PERFORATOR_RESEARCH_CUTOFF_MS, False
        patho = reflux_ms > cutoff
        rule = f"outward flow {reflux_ms:.0f} ms {'>' if patho else '<='} {cutoff:.0f} ms (research cut-off)"
        return RefluxClassification(seg.code, float(reflux_ms), cutoff, inclusive, patho,
                                    "reflux" if patho else "no reflux", rule, source, diameter_mm)
    cutoff, inclusive = float(seg.reflux_cutoff_ms), seg.reflux_inclusive
    over = reflux_ms >= cutoff if inclusive else reflux_ms > cutoff
    op = (">=" if over else "<") if inclusive else (">" if over else "<=")
    rule = f"{'outward' if seg.perforator else 'retrograde'} flow {reflux_ms:.0f} ms {op} {cutoff:.0f} ms"
    if not seg.perforator:
        return RefluxClassification(seg.code, float(reflux_ms), cutoff, inclusive, over,
                                    "reflux" if over else "no reflux", rule, source, diameter_mm)
    if not over:
        return RefluxClassification(seg.code, float(reflux_ms), cutoff, inclusive, False, "no reflux", rule,
                                    source, diameter_mm)
    if diameter_mm is None:
        return RefluxClassification(
            seg.code, float(reflux_ms), cutoff, inclusive, None, "indeterminate",
            rule + f"; diameter unknown (a pathologic perforator also needs >= {PERFORATOR_MIN_DIAMETER_MM} mm)",
            source, None,
        )
    wide = diameter_mm >= PERFORATOR_MIN_DIAMETER_MM
    rule += f" and diameter {diameter_mm:.1f} mm {'>=' if wide else '<'} {PERFORATOR_MIN_DIAMETER_MM} mm"
    return RefluxClassification(seg.code, float(reflux_ms), cutoff, inclusive, wide,
                                "reflux" if wide else "reflux, not a pathologic perforator", rule, source,
                                diameter_mm)
