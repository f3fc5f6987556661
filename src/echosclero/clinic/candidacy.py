"""Candidacy for sclerotherapy: the contraindication checklist (docs/clinical.md section 2).

Absolute contraindications block planning and treatment unless a physician overrides with a written
reason; relative ones are warnings whose reasoning is recorded. Sources: [guideline] UIP consensus on
sclerotherapy contraindications (Parsi et al., Phlebology); [label] Aethoxysklerol SmPC section 4.3;
[label] Sotradecol prescribing information (Contraindications); [guideline] NICE CG168 (pregnancy, which the
checklist of docs/clinical.md keeps as relative: a warning with NICE's advice, weighed by the clinician).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from echosclero.clinic.rules import RuleBook, Violation
from echosclero.errors import InputError

__all__ = ["CONTRAINDICATIONS", "Assessment", "Contraindication", "Kind", "assess", "get_contraindication"]


class Kind(StrEnum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"


@dataclass(frozen=True, slots=True)
class Contraindication:
    code: str
    text: str
    kind: Kind
    source: str
    foam_only: bool = False

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "text": self.text,
            "kind": self.kind.value,
            "source": self.source,
            "foam_only": self.foam_only,
        }


_UIP = "[guideline] UIP consensus (Parsi)"
_LABELS = "[label] Aethoxysklerol SmPC 4.3; [label] Sotradecol"
_A, _R = Kind.ABSOLUTE, Kind.RELATIVE

CONTRAINDICATIONS: tuple[Contraindication, ...] = (
    Contraindication(
        "sclerosant_allergy",
        "known allergy or previous anaphylaxis to the sclerosant",
        _A,
        f"{_UIP}; {_LABELS}",
    ),
    Contraindication(
        "acute_dvt_pe", "acute deep-vein thrombosis or pulmonary embolism", _A, f"{_UIP}; {_LABELS}"
    ),
    Contraindication(
        "severe_systemic_illness",
        "severe acute systemic illness or infection",
        _A,
        f"{_UIP}; [label] Aethoxysklerol SmPC 4.3",
    ),
    Contraindication("local_infection", "local infection at the injection site", _A, _UIP),
    Contraindication(
        "immobile", "bedridden or unable to walk", _A, f"{_UIP}; [label] Aethoxysklerol SmPC 4.3"
    ),
    Contraindication(
        "critical_limb_ischaemia",
        "critical limb ischaemia / PAD Fontaine III-IV",
        _A,
        f"{_UIP}; [label] Aethoxysklerol SmPC 4.3",
    ),
    Contraindication(
        "symptomatic_pfo",
        "known symptomatic patent foramen ovale (right-to-left shunt)",
        _A,
        f"{_UIP}; [label] Aethoxysklerol SmPC 4.3 (foam)",
        foam_only=True,
    ),
    Contraindication("deep_venous_obstruction", "deep venous obstruction", _R, _UIP),
    Contraindication("pad", "peripheral arterial disease (not critical)", _R, _UIP),
    Contraindication("thrombophilia", "thrombophilia or a history of venous thromboembolism", _R, _UIP),
    Contraindication(
        "high_thrombosis_risk",
        "high thrombosis risk (hormonal contraception, HRT, obesity, smoking, immobilisation)",
        _R,
        f"{_UIP}; [label] Aethoxysklerol SmPC 4.4",
    ),
    Contraindication("superficial_thrombophlebitis", "acute superficial thrombophlebitis", _R, _UIP),
    # Relative, as docs/clinical.md section 2 lists it (UIP, labels); the same section also cites NICE, whose
    # advice is in the text a clinician sees with the warning.
    Contraindication(
        "pregnancy",
        "pregnancy (NICE advises no interventional treatment during pregnancy)",
        _R,
        f"{_UIP}; [label] Aethoxysklerol SmPC 4.6; [guideline] NICE CG168 1.4: no interventional treatment "
        "during pregnancy",
    ),
    Contraindication("breastfeeding", "breastfeeding", _R, f"{_UIP}; [label] Aethoxysklerol SmPC 4.6"),
    Contraindication(
        "allergic_disposition",
        "asthma or allergic disposition (prone to hypersensitivity)",
        _R,
        f"{_UIP}; [label] Aethoxysklerol SmPC 4.2/4.4",
    ),
    Contraindication("migraine", "migraine (with foam)", _R, _UIP, foam_only=True),
    Contraindication("anticoagulation", "anticoagulation", _R, _UIP),
    # The seed clinics ask for a week without aspirin before a session (clinic policy, docs/clinical.md
    # section 5; the number of days is the rule ASPIRIN_FREE_DAYS_BEFORE, 7 by default).
    Contraindication(
        "aspirin_last_7_days",
        "aspirin (or another antiplatelet drug) taken in the 7 days before the session (the clinic asks for a "
        "week without it: rule ASPIRIN_FREE_DAYS_BEFORE)",
        _R,
        "[policy] clinic policy (typical patient instructions: avoid aspirin the week before)",
    ),
    Contraindication(
        "hormonal_therapy",
        "hormonal therapy: combined hormonal contraception or hormone replacement therapy (thrombosis risk)",
        _R,
        f"{_UIP}; [label] Aethoxysklerol SmPC 4.4",
    ),
    Contraindication(
        "reduced_mobility",
        "reduced mobility (walks, but little: cannot walk 10-20 minutes after the session; thrombosis risk)",
        _R,
        f"{_UIP}; [label] Varithena, Asclera: walk 10-20 minutes after the injection",
    ),
    Contraindication("pelvic_tumour_varices", "varices from pelvic or abdominal tumours", _R, _UIP),
    Contraindication("long_distance_travel", "planned long-distance travel", _R, _UIP),
    Contraindication("advanced_age", "advanced age", _R, _UIP),
)

_BY_CODE = {c.code: c for c in CONTRAINDICATIONS}


def get_contraindication(code: str) -> Contraindication:
    try:
        return _BY_CODE[str(code)]
    except KeyError:
        near = difflib.get_close_matches(str(code), _BY_CODE, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise InputError(
            f"unknown contraindication {code!r}{hint}; valid codes: {', '.join(_BY_CODE)}"
        ) from None


@dataclass(frozen=True, slots=True)
class Assessment:
    """The checklist outcome for one patient and one planned form of treatment."""

    absolute: tuple[Contraindication, ...]
    relative: tuple[Contraindication, ...]
    not_applicable: tuple[Contraindication, ...] = ()  # foam-only items when no foam is planned

    @property
    def blocks(self) -> bool:
        return bool(self.absolute)

    @property
    def hypersensitivity_prone(self) -> bool:
        return any(
            c.code in ("allergic_disposition", "sclerosant_allergy") for c in self.absolute + self.relative
        )

    def violations(self, *, rules: RuleBook) -> list[Violation]:
        out = [
            Violation(
                rules["CANDIDACY_ABSOLUTE"],
                f"absolute contraindication: {c.text} ({c.source})",
                "contraindications",
            )
            for c in self.absolute
        ]
        out += [
            Violation(
                rules["CANDIDACY_RELATIVE"],
                f"relative contraindication: {c.text} ({c.source})",
                "contraindications",
            )
            for c in self.relative
        ]
        return out


def assess(present: Iterable[str], *, foam: bool = True) -> Assessment:
    """Sort the present contraindication codes; foam-only items apply only when foam is planned."""
    items = [get_contraindication(c) for c in dict.fromkeys(present)]
    applicable = [c for c in items if foam or not c.foam_only]
    return Assessment(
        absolute=tuple(c for c in applicable if c.kind is Kind.ABSOLUTE),
        relative=tuple(c for c in applicable if c.kind is Kind.RELATIVE),
        not_applicable=tuple(c for c in items if c not in applicable),
    )
