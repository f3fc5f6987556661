"""Prior and adjunct treatments per segment (sclerotherapy often treats what remains after them)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TreatmentKind"]


class TreatmentKind(StrEnum):
    ENDOVENOUS_LASER_ABLATION = "endovenous_laser_ablation"
    RADIOFREQUENCY_ABLATION = "radiofrequency_ablation"
    CYANOACRYLATE_GLUE = "cyanoacrylate_glue"
    MECHANOCHEMICAL_ABLATION = "mechanochemical_ablation"
    HIGH_LIGATION_STRIPPING = "high_ligation_stripping"
    PHLEBECTOMY = "phlebectomy"
    CHIVA = "chiva"
    SCLEROTHERAPY = "sclerotherapy"
    OTHER = "other"

    @property
    def thermal(self) -> bool:
        return self in (TreatmentKind.ENDOVENOUS_LASER_ABLATION, TreatmentKind.RADIOFREQUENCY_ABLATION)
