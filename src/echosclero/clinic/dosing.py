"""Sclerosant doses: drug mass, running totals and the dose-safety checks (shared/CLINICAL.md section 1).

Pure functions; the numbers come from :mod:`echosclero.clinic.rules` (each with its source). Mass of
drug (arithmetic): ``mg = concentration_pct x 10 x liquid volume in mL``; for foam the liquid volume is
the liquid fraction of the foam volume (1 part liquid + 4 parts gas: 1/5 of the foam is liquid).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from echosclero.clinic.rules import RuleBook, Violation
from echosclero.clinic.segments import Segment, VeinType, get_segment
from echosclero.errors import InputError

__all__ = [
    "CONCENTRATION_RANGES",
    "Agent",
    "Dose",
    "DoseContext",
    "Form",
    "Gas",
    "Totals",
    "check_concentration",
    "check_injection",
    "drug_mass_mg",
    "liquid_fraction",
    "parse_ratio",
    "remaining",
    "totals",
]


class Agent(StrEnum):
    POLIDOCANOL = "polidocanol"  # UNII 0AWH8BFG9A, ATC C05BB02
    SODIUM_TETRADECYL_SULFATE = "sodium_tetradecyl_sulfate"


class Form(StrEnum):
    LIQUID = "liquid"
    FOAM = "foam"


class Gas(StrEnum):
    AIR = "air"
    CO2 = "co2"
    CO2_O2 = "co2_o2"
    O2 = "o2"


_RATIO = re.compile(r"^\s*(\d{1,2})\s*:\s*(\d{1,2})\s*$")


def parse_ratio(text: str) -> tuple[int, int]:
    """``"1:4"`` -> ``(1, 4)`` (liquid parts, gas parts); both whole numbers from 1 to 20."""
    m = _RATIO.match(str(text))
    if m is None:
        raise InputError(f"liquid:gas ratio {text!r} is not of the form 'L:G' (e.g. '1:4')")
    liquid, gas = int(m.group(1)), int(m.group(2))
    if not (1 <= liquid <= 20 and 1 <= gas <= 20):
        raise InputError(f"liquid:gas ratio {text!r}: both parts must be whole numbers from 1 to 20")
    return liquid, gas


def liquid_fraction(form: Form | str, ratio: str | None) -> float:
    """Fraction of the injected volume that is liquid sclerosant."""
    if Form(form) is Form.LIQUID:
        return 1.0
    if ratio is None:
        raise InputError("a foam needs its liquid:gas ratio (e.g. '1:4')")
    liquid, gas = parse_ratio(ratio)
    return liquid / (liquid + gas)


def drug_mass_mg(concentration_pct: float, volume_ml: float, form: Form | str, ratio: str | None) -> float:
    """Milligrams of drug: % (g per 100 mL) x 10 = mg per mL, times the liquid volume (arithmetic)."""
    return concentration_pct * 10.0 * volume_ml * liquid_fraction(form, ratio)


@dataclass(frozen=True, slots=True)
class Dose:
    """One injection (given or proposed). Checked on construction: bad values raise InputError."""

    segment: str
    agent: Agent
    form: Form
    concentration_pct: float
    volume_ml: float
    liquid_gas_ratio: str | None = None

    def __post_init__(self) -> None:
        get_segment(self.segment)
        object.__setattr__(self, "agent", Agent(self.agent))
        object.__setattr__(self, "form", Form(self.form))
        for name in ("concentration_pct", "volume_ml"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise InputError(f"{name} must be a positive number, not {v!r}")
        if self.form is Form.FOAM:
            if self.liquid_gas_ratio is None:
                raise InputError("liquid_gas_ratio is required for foam (e.g. '1:4')")
            parse_ratio(self.liquid_gas_ratio)
        elif self.liquid_gas_ratio is not None:
            raise InputError("liquid_gas_ratio is only for foam; leave it out for a liquid injection")

    @property
    def seg(self) -> Segment:
        return get_segment(self.segment)

    @property
    def liquid_ml(self) -> float:
        return self.volume_ml * liquid_fraction(self.form, self.liquid_gas_ratio)

    @property
    def mass_mg(self) -> float:
        return drug_mass_mg(self.concentration_pct, self.volume_ml, self.form, self.liquid_gas_ratio)


@dataclass(frozen=True, slots=True)
class Totals:
    count: int = 0
    volume_ml: float = 0.0
    foam_ml: float = 0.0
    liquid_ml: float = 0.0  # liquid sclerosant, including the liquid part of foam
    polidocanol_mg: float = 0.0
    polidocanol_foam_ml: float = 0.0
    sts_mg: float = 0.0
    sts_volume_ml: float = 0.0

    def as_dict(self) -> dict:
        return {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in ((f, getattr(self, f)) for f in self.__slots__)
        }


def totals(doses: Iterable[Dose]) -> Totals:
    count = 0
    volume = foam = liquid = pol_mg = pol_foam = sts_mg = sts_vol = 0.0
    for d in doses:
        count += 1
        volume += d.volume_ml
        liquid += d.liquid_ml
        if d.form is Form.FOAM:
            foam += d.volume_ml
        if d.agent is Agent.POLIDOCANOL:
            pol_mg += d.mass_mg
            if d.form is Form.FOAM:
                pol_foam += d.volume_ml
        else:
            sts_mg += d.mass_mg
            sts_vol += d.volume_ml
    return Totals(count, volume, foam, liquid, pol_mg, pol_foam, sts_mg, sts_vol)


#: Concentration ranges (%), by vein type, agent and form: (lowest, highest); ``None`` = no bound given.
#: [verify] Rabe et al., European guidelines for sclerotherapy in chronic venous disorders, Phlebology
#: 2014;29:338-54, Tables 2-3 (as summarised in shared/CLINICAL.md; warn only). A missing key means the
#: guideline gives no range for that combination (e.g. STS foam for telangiectasias).
_P, _S, _LQ, _FM = Agent.POLIDOCANOL, Agent.SODIUM_TETRADECYL_SULFATE, Form.LIQUID, Form.FOAM
CONCENTRATION_RANGES: dict[tuple[VeinType, Agent, Form], tuple[float | None, float]] = {
    (VeinType.TELANGIECTASIA, _P, _LQ): (0.25, 0.5),
    (VeinType.TELANGIECTASIA, _P, _FM): (None, 0.5),
    (VeinType.TELANGIECTASIA, _S, _LQ): (0.1, 0.2),
    (VeinType.RETICULAR, _P, _LQ): (0.5, 1.0),
    (VeinType.RETICULAR, _P, _FM): (None, 0.5),
    (VeinType.RETICULAR, _S, _LQ): (0.2, 0.5),
    (VeinType.RETICULAR, _S, _FM): (None, 0.25),
    (VeinType.TRIBUTARY, _P, _LQ): (1.0, 2.0),
    (VeinType.TRIBUTARY, _P, _FM): (None, 2.0),
    (VeinType.TRIBUTARY, _S, _LQ): (0.5, 1.0),
    (VeinType.TRIBUTARY, _S, _FM): (None, 1.0),
    (VeinType.TRUNK, _P, _LQ): (2.0, 3.0),
    (VeinType.TRUNK, _P, _FM): (1.0, 3.0),
    (VeinType.TRUNK, _S, _LQ): (1.0, 3.0),
    (VeinType.TRUNK, _S, _FM): (1.0, 3.0),
    (VeinType.PERFORATOR, _P, _LQ): (2.0, 3.0),
    (VeinType.PERFORATOR, _P, _FM): (1.0, 3.0),
    (VeinType.PERFORATOR, _S, _LQ): (1.0, 3.0),
    (VeinType.PERFORATOR, _S, _FM): (1.0, 3.0),
}


def check_concentration(
    segment: str | Segment, agent: Agent | str, form: Form | str, concentration_pct: float, *, rules: RuleBook
) -> list[Violation]:
    """Hard ceiling (strongest marketed strength), deep-vein target, and the vein-type range (warn)."""
    seg, agent, form = get_segment(segment), Agent(agent), Form(form)
    out: list[Violation] = []
    top = float(rules.value("MAX_CONCENTRATION_PCT"))
    if concentration_pct > top:
        out.append(
            Violation(
                rules["MAX_CONCENTRATION_PCT"],
                f"{concentration_pct:g}% is above the strongest marketed strength {top:g}%",
                "concentration_pct",
            )
        )
    if seg.vein_type is VeinType.DEEP:
        out.append(
            Violation(
                rules["DEEP_VEIN_TARGET"],
                f"{seg.code} ({seg.name}) is a deep vein, not a sclerotherapy target",
                "segment",
            )
        )
        return out
    rng = CONCENTRATION_RANGES.get((seg.vein_type, agent, form))
    rule = rules["CONCENTRATION_BY_VEIN_TYPE"]
    what = f"{agent.value} {form.value} for {seg.vein_type.value} veins ({seg.code})"
    if rng is None:
        out.append(Violation(rule, f"no concentration range is given for {what}", "concentration_pct"))
    else:
        lo, hi = rng
        if concentration_pct > hi + 1e-9 or (lo is not None and concentration_pct < lo - 1e-9):
            span = f"{lo:g}-{hi:g}%" if lo is not None else f"<= {hi:g}%"
            out.append(
                Violation(
                    rule,
                    f"{concentration_pct:g}% is outside the range {span} for {what}",
                    "concentration_pct",
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class DoseContext:
    """What the checks need besides the new dose.

    ``given_today``: every injection of this patient on the same calendar day (all sessions, both legs);
    ``given_this_session``: those of the current session (a subset of ``given_today``).
    """

    weight_kg: float
    given_today: Sequence[Dose] = ()
    given_this_session: Sequence[Dose] = ()
    hypersensitivity_prone: bool = False
    first_session: bool = False
    days_since_last_foam_session: float | None = None
    ultrasound_confirmed: bool | None = None

    def __post_init__(self) -> None:
        w = self.weight_kg
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
            raise InputError(f"body weight must be a positive number of kg, not {w!r}")


def _per_puncture_rule(seg: Segment) -> str | None:
    if seg.vein_type is VeinType.PERFORATOR:
        return "FOAM_PUNCTURE_PERFORATOR_MAX_ML"
    if seg.code in ("GSV", "GSVa", "GSVb"):
        return "FOAM_PUNCTURE_GSV_MAX_ML"
    if seg.vein_type is VeinType.TRUNK:
        return "FOAM_PUNCTURE_SAPHENOUS_MAX_ML"
    return None


def check_injection(dose: Dose, ctx: DoseContext, *, rules: RuleBook) -> list[Violation]:
    """Every dose rule for one more injection; refusing and warning violations, in table order."""
    out = check_concentration(dose.segment, dose.agent, dose.form, dose.concentration_pct, rules=rules)
    seg = dose.seg
    day = totals([*ctx.given_today, dose])
    session = totals([*ctx.given_this_session, dose])

    if dose.agent is Agent.POLIDOCANOL:
        per_kg = float(rules.value("POLIDOCANOL_DAILY_MG_PER_KG"))
        limit_mg = per_kg * ctx.weight_kg
        if day.polidocanol_mg > limit_mg + 1e-9:
            out.append(
                Violation(
                    rules["POLIDOCANOL_DAILY_MG_PER_KG"],
                    f"polidocanol today would be {day.polidocanol_mg:.1f} mg "
                    f"(this injection {dose.mass_mg:.1f} mg),"
                    f" above {per_kg:g} mg/kg x {ctx.weight_kg:g} kg = {limit_mg:.1f} mg",
                    "volume_ml",
                )
            )
        pol_foam_max = float(rules.value("POLIDOCANOL_FOAM_DAILY_MAX_ML"))
        if dose.form is Form.FOAM and day.polidocanol_foam_ml > pol_foam_max + 1e-9:
            out.append(
                Violation(
                    rules["POLIDOCANOL_FOAM_DAILY_MAX_ML"],
                    f"polidocanol foam today would be {day.polidocanol_foam_ml:g} mL, "
                    f"above {pol_foam_max:g} mL",
                    "volume_ml",
                )
            )
    if dose.form is Form.FOAM:
        foam_max = float(rules.value("FOAM_SESSION_MAX_ML"))
        if session.foam_ml > foam_max + 1e-9:
            out.append(
                Violation(
                    rules["FOAM_SESSION_MAX_ML"],
                    f"foam in this session would be {session.foam_ml:g} mL, above {foam_max:g} mL",
                    "volume_ml",
                )
            )
        code = _per_puncture_rule(seg)
        if code is not None:
            cap = float(rules.value(code))
            if dose.volume_ml > cap + 1e-9:
                out.append(
                    Violation(
                        rules[code],
                        f"{dose.volume_ml:g} mL of foam in one puncture of {seg.code} is above {cap:g} mL",
                        "volume_ml",
                    )
                )
        if seg.vein_type in (VeinType.TRUNK, VeinType.PERFORATOR) and ctx.ultrasound_confirmed is False:
            out.append(
                Violation(
                    rules["ULTRASOUND_CONFIRMATION_FOAM"],
                    f"foam into {seg.code} without ultrasound confirmation of intraluminal position",
                    "ultrasound_confirmed",
                )
            )
        interval = float(rules.value("FOAM_SESSION_INTERVAL_DAYS"))
        if ctx.days_since_last_foam_session is not None and ctx.days_since_last_foam_session < interval:
            out.append(
                Violation(
                    rules["FOAM_SESSION_INTERVAL_DAYS"],
                    f"the last foam session was {ctx.days_since_last_foam_session:g} days ago, "
                    f"less than {interval:g}",
                    "date",
                )
            )
    if dose.agent is Agent.SODIUM_TETRADECYL_SULFATE:
        if dose.form is Form.LIQUID:
            cap = float(rules.value("STS_INJECTION_MAX_ML"))
            pref = float(rules.value("STS_INJECTION_PREFERRED_MAX_ML"))
            if dose.volume_ml > cap + 1e-9:
                out.append(
                    Violation(
                        rules["STS_INJECTION_MAX_ML"],
                        f"{dose.volume_ml:g} mL in one injection is above {cap:g} mL",
                        "volume_ml",
                    )
                )
            elif dose.volume_ml > pref + 1e-9:
                out.append(
                    Violation(
                        rules["STS_INJECTION_PREFERRED_MAX_ML"],
                        f"{dose.volume_ml:g} mL in one injection is above the preferred {pref:g} mL",
                        "volume_ml",
                    )
                )
        sts_max = float(rules.value("STS_SESSION_MAX_ML"))
        if session.sts_volume_ml > sts_max + 1e-9:
            out.append(
                Violation(
                    rules["STS_SESSION_MAX_ML"],
                    f"sodium tetradecyl sulfate in this session would be {session.sts_volume_ml:g} mL,"
                    f" above {sts_max:g} mL",
                    "volume_ml",
                )
            )
    if (
        dose.agent is Agent.POLIDOCANOL
        and dose.form is Form.LIQUID
        and seg.vein_type in (VeinType.TELANGIECTASIA, VeinType.RETICULAR)
    ):
        cap = float(rules.value("POLIDOCANOL_LIQUID_SMALL_VEIN_MAX_ML"))
        if dose.volume_ml > cap + 1e-9:
            out.append(
                Violation(
                    rules["POLIDOCANOL_LIQUID_SMALL_VEIN_MAX_ML"],
                    f"{dose.volume_ml:g} mL per injection into {seg.code} is above {cap:g} mL",
                    "volume_ml",
                )
            )
    if ctx.hypersensitivity_prone and ctx.first_session:
        cap = float(rules.value("HYPERSENSITIVITY_FIRST_SESSION_MAX_ML"))
        if ctx.given_this_session or dose.volume_ml > cap + 1e-9:
            out.append(
                Violation(
                    rules["HYPERSENSITIVITY_FIRST_SESSION_MAX_ML"],
                    f"patient prone to hypersensitivity, first session: one injection of at most "
                    f"{cap:g} mL (this would be injection {len(ctx.given_this_session) + 1} of "
                    f"{dose.volume_ml:g} mL)",
                    "volume_ml",
                )
            )
    return out


def remaining(ctx: DoseContext, *, rules: RuleBook) -> dict[str, float]:
    """What is left today / in this session under the refusing limits (never negative)."""
    day, session = totals(ctx.given_today), totals(ctx.given_this_session)
    pol_limit = float(rules.value("POLIDOCANOL_DAILY_MG_PER_KG")) * ctx.weight_kg
    return {
        "polidocanol_mg_today": max(0.0, round(pol_limit - day.polidocanol_mg, 4)),
        "polidocanol_foam_ml_today": max(
            0.0, round(float(rules.value("POLIDOCANOL_FOAM_DAILY_MAX_ML")) - day.polidocanol_foam_ml, 4)
        ),
        "foam_ml_session": max(0.0, round(float(rules.value("FOAM_SESSION_MAX_ML")) - session.foam_ml, 4)),
        "sts_ml_session": max(
            0.0, round(float(rules.value("STS_SESSION_MAX_ML")) - session.sts_volume_ml, 4)
        ),
    }


def max_volume_ml(
    concentration_pct: float, form: Form | str, ratio: str | None, *, weight_kg: float, rules: RuleBook
) -> float:
    """Largest polidocanol volume within the daily mg/kg limit for one preparation (70 kg, 1%: 14 mL)."""
    per_ml = drug_mass_mg(concentration_pct, 1.0, form, ratio)
    return float(rules.value("POLIDOCANOL_DAILY_MG_PER_KG")) * weight_kg / per_ml
