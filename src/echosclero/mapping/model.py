"""The vein map of a duplex mapping exam: findings per segment, per leg, validated.

Each :class:`SegmentFinding` records one vein segment of one leg (the vocabulary of
:mod:`echosclero.clinic.segments`) with what the clinic writes on its hand-drawn map: diameter, reflux
duration, competent or not, occluded, thrombosed, previously treated, and a free label for named
tributaries and perforators by location (e.g. "Boyd", "Cockett II", "vein of Leonardo").

Competence follows the published cut-offs (:func:`echosclero.clinic.reflux.classify_reflux`) unless the
examiner states it; a stated verdict that contradicts the measured reflux is refused, as are findings
that cannot coexist (reflux measured in an occluded segment).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from echosclero.clinic.reflux import classify_reflux
from echosclero.clinic.segments import Segment, get_segment
from echosclero.errors import InputError

__all__ = ["Leg", "SegmentFinding", "Status", "VeinMap"]

SCHEMA = "echosclero.veinmap/1"


class Leg(StrEnum):
    LEFT = "left"
    RIGHT = "right"

    @classmethod
    def parse(cls, value: str | Leg) -> Leg:
        text = str(value.value if isinstance(value, Leg) else value).strip().lower()
        aliases = {"l": "left", "r": "right", "left": "left", "right": "right"}
        if text not in aliases:
            raise InputError(f"leg {value!r} must be 'left' or 'right' (or 'L'/'R')")
        return cls(aliases[text])


class Status(StrEnum):
    """How a segment is coloured on the diagram, most serious first."""

    THROMBOSED = "thrombosed"
    OCCLUDED = "occluded"
    INCOMPETENT = "incompetent"
    INDETERMINATE = "indeterminate"
    TREATED = "treated"
    COMPETENT = "competent"
    NOT_EXAMINED = "not examined"


@dataclass(frozen=True, slots=True)
class SegmentFinding:
    """One segment of one leg, as examined.

    Parameters
    ----------
    segment
        Segment code (``"GSVa"``, ``"SFJ"``, ``"CPV"`` ...); validated against the vocabulary.
    leg
        ``"left"`` or ``"right"``.
    diameter_mm
        Transverse diameter, (0, 40] mm.
    reflux_ms
        Measured retrograde (perforators: outward) flow duration, [0, 20000] ms.
    competent
        The examiner's verdict; ``None`` lets the published cut-off decide from ``reflux_ms``.
    occluded, thrombosed, previously_treated
        Findings flags.
    label
        Free text: a named tributary or a perforator's location.
    note
        Free text.
    """

    segment: str
    leg: Leg | str
    diameter_mm: float | None = None
    reflux_ms: float | None = None
    competent: bool | None = None
    occluded: bool = False
    thrombosed: bool = False
    previously_treated: bool = False
    label: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        seg = get_segment(self.segment)
        object.__setattr__(self, "segment", seg.code)
        object.__setattr__(self, "leg", Leg.parse(self.leg))
        if self.diameter_mm is not None and not (0 < float(self.diameter_mm) <= 40):
            raise InputError(f"{seg.code}: diameter_mm={self.diameter_mm!r} must be within (0, 40] mm")
        if self.reflux_ms is not None and not (0 <= float(self.reflux_ms) <= 20_000):
            raise InputError(f"{seg.code}: reflux_ms={self.reflux_ms!r} must be within [0, 20000] ms")
        if self.occluded and self.reflux_ms:
            raise InputError(f"{seg.code}: an occluded segment has no flow, yet reflux_ms={self.reflux_ms}; "
                             "record one or the other")
        if self.occluded and self.competent is not None:
            raise InputError(f"{seg.code}: competence cannot be judged in an occluded segment")
        if self.competent is not None and self.reflux_ms is not None:
            c = classify_reflux(seg, float(self.reflux_ms), diameter_mm=self.diameter_mm)
            if c.pathological is not None and c.pathological == self.competent:
                raise InputError(
                    f"{seg.code}: marked {'competent' if self.competent else 'incompetent'} but "
                    f"{c.rule} ({c.source}); correct the reflux time or leave competent unset"
                )

    @property
    def segment_info(self) -> Segment:
        return get_segment(self.segment)

    @property
    def incompetent(self) -> bool | None:
        """True/False, or None when not decidable (no reflux measured, or a perforator without diameter)."""
        if self.occluded:
            return None
        if self.competent is not None:
            return not self.competent
        if self.reflux_ms is None:
            return None
        return classify_reflux(self.segment, float(self.reflux_ms), diameter_mm=self.diameter_mm).pathological

    @property
    def status(self) -> Status:
        if self.thrombosed:
            return Status.THROMBOSED
        if self.occluded:
            return Status.OCCLUDED
        inc = self.incompetent
        if inc:
            return Status.INCOMPETENT
        if self.previously_treated:
            return Status.TREATED
        if inc is False:
            return Status.COMPETENT
        if self.reflux_ms is not None:
            return Status.INDETERMINATE
        if self.competent is None and self.diameter_mm is None:
            return Status.NOT_EXAMINED
        return Status.INDETERMINATE

    def to_json(self) -> dict:
        return {
            "segment": self.segment,
            "leg": self.leg.value,
            "label": self.label,
            "diameter_mm": self.diameter_mm,
            "reflux_ms": self.reflux_ms,
            "competent": self.competent,
            "incompetent": self.incompetent,
            "occluded": self.occluded,
            "thrombosed": self.thrombosed,
            "previously_treated": self.previously_treated,
            "status": self.status.value,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, d: dict) -> SegmentFinding:
        keys = ("segment", "leg", "diameter_mm", "reflux_ms", "competent", "occluded", "thrombosed",
                "previously_treated", "label", "note")
        return cls(**{k: d[k] for k in keys if k in d})


@dataclass(slots=True)
class VeinMap:
    """All findings of a mapping exam, both legs. At most one finding per (leg, segment, label)."""

    findings: list[SegmentFinding] = field(default_factory=list)

    def __post_init__(self) -> None:
        findings, self.findings = list(self.findings), []
        for f in findings:
            self.add(f)

    def add(self, finding: SegmentFinding) -> SegmentFinding:
        key = (finding.leg, finding.segment, finding.label)
        if any((f.leg, f.segment, f.label) == key for f in self.findings):
            raise InputError(
                f"{finding.leg.value} {finding.segment}{' ' + finding.label if finding.label else ''} is "
                "already mapped; use update() to change it, or give a distinct label"
            )
        self.findings.append(finding)
        return finding

    def record(self, segment: str, leg: str, **values) -> SegmentFinding:
        """Create and add a finding: ``vm.record("GSVa", "left", diameter_mm=6.1, reflux_ms=1800)``."""
        return self.add(SegmentFinding(segment=segment, leg=leg, **values))

    def update(self, segment: str, leg: str, *, label: str = "", **values) -> SegmentFinding:
        code, side = get_segment(segment).code, Leg.parse(leg)
        for i, f in enumerate(self.findings):
            if (f.leg, f.segment, f.label) == (side, code, label):
                self.findings[i] = replace(f, **values)
                return self.findings[i]
        raise InputError(f"{side.value} {code} is not mapped yet; use record()")

    def leg(self, leg: str | Leg) -> list[SegmentFinding]:
        side = Leg.parse(leg)
        return [f for f in self.findings if f.leg is side]

    def incompetent_segments(self, leg: str | Leg) -> list[SegmentFinding]:
        return [f for f in self.leg(leg) if f.incompetent]

    def ceap_segments(self, leg: str | Leg) -> tuple[frozenset[str], frozenset[str]]:
        """CEAP 2020 anatomic codes with reflux and with obstruction (occlusion/thrombosis), for
        :func:`echosclero.clinic.ceap.ceap_from_findings`."""
        reflux, obstruction = set(), set()
        for f in self.leg(leg):
            code = f.segment_info.ceap_anatomy
            if code is None:
                continue
            if f.incompetent:
                reflux.add(code)
            if (f.occluded or f.thrombosed) and f.segment_info.is_deep and not f.previously_treated:
                obstruction.add(code)
        return frozenset(reflux), frozenset(obstruction)

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "findings": [f.to_json() for f in self.findings]}

    @classmethod
    def from_json(cls, doc: dict) -> VeinMap:
        if doc.get("schema") != SCHEMA:
            raise InputError(f"not a vein map document (schema {doc.get('schema')!r}, expected {SCHEMA!r})")
        return cls([SegmentFinding.from_json(d) for d in doc.get("findings", [])])
