"""Findings of the guidance engine: plain dataclasses in physical units, serialised in the
``echosclero.analysis/1`` frame schema of ``docs/design.md`` (extra keys are extensions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["Alert", "FoamFinding", "FrameResult", "NeedleFinding", "Severity", "VesselFinding", "VesselKind"]

VesselKind = Literal["vein", "artery", "unknown"]
Severity = Literal["info", "warning", "critical"]


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)


@dataclass(frozen=True, slots=True)
class VesselFinding:
    """One tracked vessel in one frame. ``id`` is stable across the frames of a cine."""

    id: str
    kind: VesselKind
    center_mm: tuple[float, float]
    diameter_mm: float
    area_mm2: float
    compressibility: float | None
    contains_needle_tip: bool
    view: Literal["transverse", "longitudinal"] = "transverse"
    artery_probability: float = 0.5
    deep: bool = False
    spasm: float | None = None  # relative diameter loss against the vessel's own baseline
    coasting: bool = False  # not seen in this frame; geometry held from the last detection
    contour_mm: np.ndarray | None = field(default=None, repr=False, compare=False)
    confidence: float = 1.0  # how sure the detector is that this is a vessel lumen (0-1)
    width_mm: float | None = None  # lateral extent through the centre at the half-way edge (transverse)
    depth_mm: float | None = None  # axial (antero-posterior) extent through the centre
    tip_in_lumen: bool = False  # the needle tip inside the lumen itself, clear of its wall (TIP_IN_ARTERY)
    closed: bool | None = None  # occluded (no longer anechoic or compressible); None: artery or not known
    closed_evidence: tuple[str, ...] = ()  # the findings that decided ``closed`` (see guidance/closure.py)

    def to_json(self, *, contour: bool = False) -> dict:
        out = {
            "id": self.id,
            "kind": self.kind,
            "center_mm": [_r(self.center_mm[0]), _r(self.center_mm[1])],
            "diameter_mm": _r(self.diameter_mm),
            "area_mm2": _r(self.area_mm2),
            "compressibility": _r(self.compressibility),
            "contains_needle_tip": bool(self.contains_needle_tip),
            "tip_in_lumen": bool(self.tip_in_lumen),
            "view": self.view,
            "deep": bool(self.deep),
            "artery_probability": _r(self.artery_probability),
            "spasm": _r(self.spasm),
            "coasting": bool(self.coasting),
            "confidence": _r(self.confidence),
            "closed": self.closed,
            "closed_evidence": list(self.closed_evidence),
        }
        if self.width_mm is not None:
            out["width_mm"] = _r(self.width_mm)
            out["depth_mm"] = _r(self.depth_mm)
        if contour and self.contour_mm is not None:
            out["contour_mm"] = np.round(self.contour_mm, 2).tolist()
        return out


@dataclass(frozen=True, slots=True)
class NeedleFinding:
    """The needle: tip and entry in mm, insertion angle below horizontal in degrees."""

    tip_mm: tuple[float, float]
    entry_mm: tuple[float, float]
    angle_deg: float | None
    confidence: float
    plane: Literal["in", "out"] = "in"
    held: bool = False  # tip not seen in this frame (held by the tracker)

    def to_json(self) -> dict:
        return {
            "tip_mm": [_r(self.tip_mm[0]), _r(self.tip_mm[1])],
            "entry_mm": [_r(self.entry_mm[0]), _r(self.entry_mm[1])],
            "angle_deg": _r(self.angle_deg, 2),
            "confidence": _r(self.confidence),
            "plane": self.plane,
            "held": self.held,
        }


@dataclass(frozen=True, slots=True)
class FoamFinding:
    """Sclerosant foam in one vessel: fraction of the lumen filled, and the front (leading edge) position."""

    vessel_id: str
    fill_fraction: float
    front_mm: tuple[float, float] | None

    def to_json(self) -> dict:
        return {
            "vessel_id": self.vessel_id,
            "fill_fraction": _r(self.fill_fraction),
            "front_mm": None if self.front_mm is None else [_r(self.front_mm[0]), _r(self.front_mm[1])],
        }


@dataclass(frozen=True, slots=True)
class Alert:
    code: str
    severity: Severity
    message: str
    vessel_id: str | None = None

    def to_json(self) -> dict:
        out = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.vessel_id is not None:
            out["vessel_id"] = self.vessel_id
        return out


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything the engine found in one frame."""

    index: int
    t_s: float
    vessels: tuple[VesselFinding, ...] = ()
    needle: NeedleFinding | None = None
    foam: tuple[FoamFinding, ...] = ()
    alerts: tuple[Alert, ...] = ()
    compression_strain: float = 0.0  # estimated vertical tissue strain under probe pressure (0 = none)
    status: str = "ok"  # "ok", or why the frame could not be analysed ("all-black frame", ...)
    processing_ms: float | None = None

    def to_json(self, *, contours: bool = False) -> dict:
        out = {
            "index": self.index,
            "t_s": round(float(self.t_s), 6),
            "vessels": [v.to_json(contour=contours) for v in self.vessels],
            "needle": None if self.needle is None else self.needle.to_json(),
            "foam": [f.to_json() for f in self.foam],
            "alerts": [a.to_json() for a in self.alerts],
            "compression_strain": round(float(self.compression_strain), 4),
            "status": self.status,
        }
        return out
