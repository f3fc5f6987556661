"""Lower-limb vein segments: the vocabulary shared by duplex mapping, plans, injections and reports.

Names follow the IUP/IFAA consensus on venous nomenclature (Caggiati et al., J Vasc Surg 2002;36:416-22
and 2005;41:719-24): "great saphenous vein", "femoral vein" (never "superficial femoral vein").
SNOMED CT codes are those of DICOM CID 12110 "Lower Extremity Vein" where the shared clinical notes give
them; ``None`` where no code was verified. CEAP anatomic codes follow CEAP 2020 (Lurie et al., J Vasc
Surg Venous Lymphat Disord 2020;8:342-52).

Reflux cut-offs (``reflux_cutoff_ms``): pathological reflux is retrograde flow lasting *longer than* the
cut-off — superficial veins and tibial/profunda/muscular veins > 500 ms, common femoral/femoral/popliteal
> 1000 ms; perforators: outward flow >= 500 ms with diameter >= 3.5 mm. Source: [guideline] Gloviczki et
al., SVS/AVF clinical practice guidelines, J Vasc Surg 2011;53:2S-48S, section on duplex criteria,
confirmed in the SVS/AVF/AVLS 2023 varicose vein guideline (Gloviczki et al., J Vasc Surg Venous Lymphat
Disord 2024;12:101670), which also states that no minimum diameter is needed for pathological reflux in
axial veins.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum

from echosclero.errors import InputError

__all__ = [
    "PERFORATOR_MIN_DIAMETER_MM",
    "SEGMENTS",
    "Segment",
    "VeinSystem",
    "VeinType",
    "get_segment",
]


class VeinSystem(StrEnum):
    SUPERFICIAL = "superficial"
    DEEP = "deep"
    PERFORATOR = "perforator"
    JUNCTION = "junction"  # saphenofemoral / saphenopopliteal junctions (superficial side)


class VeinType(StrEnum):
    """Vein type used to choose sclerosant concentration (Rabe et al., Phlebology 2014;29:338-54)."""

    TELANGIECTASIA = "telangiectasia"  # < 1 mm
    RETICULAR = "reticular"  # 1-3 mm
    TRIBUTARY = "tributary"  # varicose tributaries
    TRUNK = "trunk"  # GSV/SSV trunks, accessory saphenous trunks
    PERFORATOR = "perforator"
    DEEP = "deep"  # never a sclerotherapy target


#: Cut-offs in ms; see the module docstring for the sources.
SUPERFICIAL_REFLUX_CUTOFF_MS = 500.0  # [guideline] SVS/AVF 2011; SVS/AVF/AVLS 2023
DEEP_DISTAL_REFLUX_CUTOFF_MS = 500.0  # tibial, profunda, calf muscle veins — same sources
DEEP_PROXIMAL_REFLUX_CUTOFF_MS = 1000.0  # common femoral, femoral, popliteal — same sources
PERFORATOR_REFLUX_CUTOFF_MS = 500.0  # outward flow >= 500 ms — same sources
PERFORATOR_MIN_DIAMETER_MM = 3.5  # "pathologic perforator" also needs diameter >= 3.5 mm — same sources


@dataclass(frozen=True, slots=True)
class Segment:
    code: str
    name: str
    system: VeinSystem
    vein_type: VeinType
    reflux_cutoff_ms: float
    snomed: str | None = None
    ceap_anatomy: str | None = None
    region: str = ""  # "groin", "thigh", "knee", "calf", "ankle", "foot"

    @property
    def is_deep(self) -> bool:
        return self.system is VeinSystem.DEEP

    @property
    def perforator(self) -> bool:
        return self.system is VeinSystem.PERFORATOR

    @property
    def reflux_inclusive(self) -> bool:
        """Perforators are pathological at >= the cut-off; axial veins at > the cut-off."""
        return self.perforator


_S, _D, _P, _J = VeinSystem.SUPERFICIAL, VeinSystem.DEEP, VeinSystem.PERFORATOR, VeinSystem.JUNCTION
_sup, _dd, _dp, _perf = (
    SUPERFICIAL_REFLUX_CUTOFF_MS,
    DEEP_DISTAL_REFLUX_CUTOFF_MS,
    DEEP_PROXIMAL_REFLUX_CUTOFF_MS,
    PERFORATOR_REFLUX_CUTOFF_MS,
)

_TABLE: tuple[Segment, ...] = (
    # deep veins
    Segment("CFV", "common femoral vein", _D, VeinType.DEEP, _dp, "397363009", "CFV", "groin"),
    Segment("FV", "femoral vein", _D, VeinType.DEEP, _dp, "397364003", "FV", "thigh"),
    Segment("DFV", "deep femoral (profunda) vein", _D, VeinType.DEEP, _dd, "23438002", "DFV", "thigh"),
    Segment("POPV", "popliteal vein", _D, VeinType.DEEP, _dp, "56849005", "POPV", "knee"),
    Segment("PTV", "posterior tibial veins", _D, VeinType.DEEP, _dd, "4258007", "PTV", "calf"),
    Segment("ATV", "anterior tibial veins", _D, VeinType.DEEP, _dd, "26703007", "ATV", "calf"),
    Segment("PRV", "peroneal veins", _D, VeinType.DEEP, _dd, "71758008", "PRV", "calf"),
    Segment("GAV", "gastrocnemius veins", _D, VeinType.DEEP, _dd, "264481007", "GAV", "calf"),
    Segment("SOV", "soleal veins", _D, VeinType.DEEP, _dd, "397427005", "SOV", "calf"),
    # junctions
    Segment("SFJ", "saphenofemoral junction", _J, VeinType.TRUNK, _sup, "128587003", "GSVa", "groin"),
    Segment("SPJ", "saphenopopliteal junction", _J, VeinType.TRUNK, _sup, "244415001", "SSV", "knee"),
    # superficial trunks
    Segment("GSV", "great saphenous vein", _S, VeinType.TRUNK, _sup, "60734001", "GSVa", "thigh"),
    Segment("GSVa", "great saphenous vein above the knee", _S, VeinType.TRUNK, _sup, "414369008", "GSVa",
            "thigh"),
    Segment("GSVb", "great saphenous vein below the knee", _S, VeinType.TRUNK, _sup, "414368000", "GSVb",
            "calf"),
    Segment("AASV", "anterior accessory saphenous vein", _S, VeinType.TRUNK, _sup, None, "AASV", "thigh"),
    Segment("PASV", "posterior accessory saphenous vein", _S, VeinType.TRUNK, _sup, None, "NSV", "thigh"),
    Segment("SSV", "small saphenous vein", _S, VeinType.TRUNK, _sup, "26805005", "SSV", "calf"),
    Segment("GIAC", "Giacomini vein (cranial extension of the SSV)", _S, VeinType.TRUNK, _sup, "397437000",
            "NSV", "thigh"),
    # tributaries and small veins
    Segment("TRIB_THIGH", "varicose tributary of the thigh", _S, VeinType.TRIBUTARY, _sup, None, "NSV",
            "thigh"),
    Segment("TRIB_CALF", "varicose tributary of the calf", _S, VeinType.TRIBUTARY, _sup, None, "NSV", "calf"),
    Segment("RECURRENT", "recurrent varices (after previous treatment)", _S, VeinType.TRUNK, _sup, None,
            "NSV", "thigh"),
    Segment("RETICULAR", "reticular veins", _S, VeinType.RETICULAR, _sup, None, "Ret", ""),
    Segment("TEL", "telangiectasias (spider veins)", _S, VeinType.TELANGIECTASIA, _sup, None, "Tel", ""),
    # perforators by location
    Segment("TPV", "thigh perforator", _P, VeinType.PERFORATOR, _perf, None, "TPV", "thigh"),
    Segment("KPV", "knee perforator", _P, VeinType.PERFORATOR, _perf, None, "CPV", "knee"),
    Segment("CPV", "calf perforator", _P, VeinType.PERFORATOR, _perf, None, "CPV", "calf"),
    Segment("APV", "ankle perforator", _P, VeinType.PERFORATOR, _perf, None, "CPV", "ankle"),
)

SEGMENTS: dict[str, Segment] = {s.code: s for s in _TABLE}


def get_segment(code: str) -> Segment:
    """Look a segment up by code (case-insensitive); an unknown code names the closest valid ones."""
    if isinstance(code, Segment):
        return code
    key = {k.upper(): k for k in SEGMENTS}.get(str(code).strip().upper())
    if key is None:
        upper = {k.upper(): k for k in SEGMENTS}
        near = [upper[n] for n in difflib.get_close_matches(str(code).upper(), upper, n=3, cutoff=0.5)]
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise InputError(f"unknown vein segment {code!r}{hint}; valid codes: {', '.join(SEGMENTS)}")
    return SEGMENTS[key]
