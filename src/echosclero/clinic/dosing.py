"""Sclerosant doses: drug mass, running totals and the dose-safety checks (docs/clinical.md section 1).

Pure functions; the numbers come from :mod:`echosclero.clinic.rules` (each with its source). Mass of
drug (arithmetic): ``mg = concentration_pct x 10 x liquid volume in mL``; for foam the liquid volume is
the liquid fraction of the foam volume (1 part liquid + 4 parts gas: 1/5 of the foam is liquid).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
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
    FOAM = "foam"  # made by the physician from the liquid and a gas (Tessari, DSS), at a stated liquid:gas ratio
    CANISTER_FOAM = "canister_foam"  # polidocanol injectable microfoam from a canister (Varithena 1%)

    @property
    def is_foam(self) -> bool:
        return self is not Form.LIQUID


#: Polidocanol per mL of canister foam (Varithena 1%): [verify] 1.3 mg/mL as quoted from the Varithena label by
#: a drug reference, not read in the label here. Used for the recorded mass and the daily mg/kg total only (at
#: the label's 15 mL per session, 19.5 mg); the canister foam's own limits are by volume ([label] Varithena).
CANISTER_FOAM_MG_PER_ML = 1.3
CANISTER_FOAM_CONCENTRATION_PCT = 1.0  # [label] Varithena: polidocanol 1%


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
    """Fraction of the injected volume that is liquid sclerosant (canister foam: the equivalent fraction of
    1% liquid, from :data:`CANISTER_FOAM_MG_PER_ML`)."""
    if Form(form) is Form.LIQUID:
        return 1.0
    if Form(form) is Form.CANISTER_FOAM:
        return CANISTER_FOAM_MG_PER_ML / (CANISTER_FOAM_CONCENTRATION_PCT * 10.0)
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
            raise InputError(
                f"liquid_gas_ratio is only for foam made from the liquid; leave it out for {self.form.value}"
                + (" (the canister sets its own gas and ratio)" if self.form is Form.CANISTER_FOAM else "")
            )
        if self.form is Form.CANISTER_FOAM:
            if self.agent is not Agent.POLIDOCANOL:
                raise InputError("canister_foam is polidocanol injectable foam (Varithena); agent must be polidocanol")
            if abs(self.concentration_pct - CANISTER_FOAM_CONCENTRATION_PCT) > 1e-9:
                raise InputError(
                    f"canister_foam is polidocanol {CANISTER_FOAM_CONCENTRATION_PCT:g}% ([label] Varithena); "
                    f"concentration_pct {self.concentration_pct:g} is not available in this form"
                )

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
    polidocanol_foam_ml: float = 0.0  # physician-made polidocanol foam
    sts_mg: float = 0.0
    sts_volume_ml: float = 0.0
    canister_foam_ml: float = 0.0  # polidocanol injectable foam from a canister (not in foam_ml)

    def as_dict(self) -> dict:
        return {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in ((f, getattr(self, f)) for f in self.__slots__)
        }


def totals(doses: Iterable[Dose]) -> Totals:
    count = 0
    volume = foam = liquid = pol_mg = pol_foam = sts_mg = sts_vol = canister = 0.0
    for d in doses:
        count += 1
        volume += d.volume_ml
        liquid += d.liquid_ml
        if d.form is Form.CANISTER_FOAM:
            canister += d.volume_ml
        if d.form is Form.FOAM:
            foam += d.volume_ml
        if d.agent is Agent.POLIDOCANOL:
            pol_mg += d.mass_mg
            if d.form is Form.FOAM:
                pol_foam += d.volume_ml
        else:
            sts_mg += d.mass_mg
            sts_vol += d.volume_ml
    return Totals(count, volume, foam, liquid, pol_mg, pol_foam, sts_mg, sts_vol, canister)


#: Concentration ranges (%), by vein type, agent and form: (lowest, highest); ``None`` = no bound given.
#: [verify] Rabe et al., European guidelines for sclerotherapy in chronic venous disorders, Phlebology
#: 2014;29:338-54, Tables 2-3 (as summarised in docs/clinical.md; warn only). A missing key means the
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
    table_form = Form.FOAM if form is Form.CANISTER_FOAM else form  # the guideline's ranges are by liquid/foam
    rng = CONCENTRATION_RANGES.get((seg.vein_type, agent, table_form))
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

    ``given_today``: every injection of this patient on the same calendar day, the day of each injection's own
    time (all sessions, both legs, whatever the sessions' dates); ``given_this_session``: those of the current
    session; ``given_today_this_leg``: those of ``given_today`` into the same leg (``None``: the session's).
    """

    weight_kg: float
    given_today: Sequence[Dose] = ()
    given_this_session: Sequence[Dose] = ()
    given_today_this_leg: Sequence[Dose] | None = None
    hypersensitivity_prone: bool = False
    first_session: bool = False
    days_since_last_foam_session: float | None = None  # any foam
    days_since_last_canister_foam_session: float | None = None
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


def _above(rules: RuleBook, code: str, value: float, message: Callable[[float], str], field: str = "volume_ml"):
    """``[Violation]`` of rule ``code`` when ``value`` exceeds its limit (``message(limit)`` says how), else ``[]``."""
    limit = float(rules.value(code))
    return [Violation(rules[code], message(limit), field)] if value > limit + 1e-9 else []


def _too_soon(rules: RuleBook, code: str, days: float | None, what: str) -> list[Violation]:
    """``[Violation]`` of the interval rule ``code`` when the last ``what`` was fewer days ago than its value."""
    interval = float(rules.value(code))
    if days is None or days >= interval:
        return []
    return [Violation(rules[code], f"the last {what} was {days:g} days ago, less than {interval:g}", "date")]


def check_injection(dose: Dose, ctx: DoseContext, *, rules: RuleBook) -> list[Violation]:
    """Every dose rule for one more injection; refusing and warning violations, in table order."""
    out = check_concentration(dose.segment, dose.agent, dose.form, dose.concentration_pct, rules=rules)
    seg = dose.seg
    day = totals([*ctx.given_today, dose])
    session = totals([*ctx.given_this_session, dose])
    leg = ctx.given_this_session if ctx.given_today_this_leg is None else ctx.given_today_this_leg
    leg_day = totals([*leg, dose])
    ml = dose.volume_ml

    if dose.agent is Agent.POLIDOCANOL:
        per_kg = float(rules.value("POLIDOCANOL_DAILY_MG_PER_KG"))
        limit_mg = per_kg * ctx.weight_kg
        if day.polidocanol_mg > limit_mg + 1e-9:
            out.append(
                Violation(
                    rules["POLIDOCANOL_DAILY_MG_PER_KG"],
                    f"polidocanol today would be {day.polidocanol_mg:.1f} mg (this injection {dose.mass_mg:.1f} mg),"
                    f" above {per_kg:g} mg/kg x {ctx.weight_kg:g} kg = {limit_mg:.1f} mg",
                    "volume_ml",
                )
            )
        if dose.form is Form.FOAM:
            out += _above(
                rules,
                "POLIDOCANOL_FOAM_DAILY_MAX_ML",
                day.polidocanol_foam_ml,
                lambda cap: f"polidocanol foam that day would be {day.polidocanol_foam_ml:g} mL (all sessions),"
                f" above {cap:g} mL",
            )
    if dose.form is Form.CANISTER_FOAM:  # [label] Varithena: by volume of foam
        out += _above(
            rules,
            "CANISTER_FOAM_INJECTION_MAX_ML",
            ml,
            lambda cap: f"{ml:g} mL of canister foam in one injection is above {cap:g} mL",
        )
        out += _above(
            rules,
            "CANISTER_FOAM_SESSION_MAX_ML",
            session.canister_foam_ml,
            lambda cap: f"canister foam in this session would be {session.canister_foam_ml:g} mL, above {cap:g} mL",
        )
        out += _above(
            rules,
            "CANISTER_FOAM_DAILY_MAX_ML",
            day.canister_foam_ml,
            lambda cap: f"canister foam that day would be {day.canister_foam_ml:g} mL (all sessions), above {cap:g} mL",
        )
        out += _too_soon(
            rules,
            "CANISTER_FOAM_SESSION_INTERVAL_DAYS",
            ctx.days_since_last_canister_foam_session,
            "session with canister foam",
        )
    if dose.form is Form.FOAM:
        out += _above(
            rules,
            "FOAM_SESSION_MAX_ML",
            session.foam_ml,
            lambda cap: f"foam in this session would be {session.foam_ml:g} mL, above {cap:g} mL",
        )
        out += _above(
            rules,
            "FOAM_LEG_DAILY_MAX_ML",
            leg_day.foam_ml,
            lambda cap: f"foam into this leg that day would be {leg_day.foam_ml:g} mL (all its sessions), above"
            f" {cap:g} mL",
        )
        code = _per_puncture_rule(seg)
        if code is not None:
            out += _above(
                rules, code, ml, lambda cap: f"{ml:g} mL of foam in one puncture of {seg.code} is above {cap:g} mL"
            )
    if dose.form.is_foam and seg.vein_type in (VeinType.TRUNK, VeinType.PERFORATOR):
        if ctx.ultrasound_confirmed is False:
            out.append(
                Violation(
                    rules["ULTRASOUND_CONFIRMATION_FOAM"],
                    f"foam into {seg.code} without ultrasound confirmation of intraluminal position",
                    "ultrasound_confirmed",
                )
            )
    if dose.form is Form.FOAM:
        out += _too_soon(rules, "FOAM_SESSION_INTERVAL_DAYS", ctx.days_since_last_foam_session, "foam session")
    if dose.agent is Agent.SODIUM_TETRADECYL_SULFATE:
        if dose.form is Form.LIQUID:
            over = _above(
                rules, "STS_INJECTION_MAX_ML", ml, lambda cap: f"{ml:g} mL in one injection is above {cap:g} mL"
            )
            out += over or _above(
                rules,
                "STS_INJECTION_PREFERRED_MAX_ML",
                ml,
                lambda pref: f"{ml:g} mL in one injection is above the preferred {pref:g} mL",
            )
        out += _above(
            rules,
            "STS_SESSION_MAX_ML",
            session.sts_volume_ml,
            lambda cap: f"sodium tetradecyl sulfate in this session would be {session.sts_volume_ml:g} mL,"
            f" above {cap:g} mL",
        )
        out += _above(
            rules,
            "STS_DAILY_MAX_ML",
            day.sts_volume_ml,
            lambda cap: f"sodium tetradecyl sulfate that day would be {day.sts_volume_ml:g} mL (all sessions),"
            f" above {cap:g} mL",
        )
    if (
        dose.agent is Agent.POLIDOCANOL
        and dose.form is Form.LIQUID
        and seg.vein_type in (VeinType.TELANGIECTASIA, VeinType.RETICULAR)
    ):
        out += _above(
            rules,
            "POLIDOCANOL_LIQUID_SMALL_VEIN_MAX_ML",
            ml,
            lambda cap: f"{ml:g} mL per injection into {seg.code} is above {cap:g} mL",
        )
    if ctx.hypersensitivity_prone and ctx.first_session:
        cap = float(rules.value("HYPERSENSITIVITY_FIRST_SESSION_MAX_ML"))
        if ctx.given_this_session or ml > cap + 1e-9:
            out.append(
                Violation(
                    rules["HYPERSENSITIVITY_FIRST_SESSION_MAX_ML"],
                    f"patient prone to hypersensitivity, first session: one injection of at most "
                    f"{cap:g} mL (this would be injection {len(ctx.given_this_session) + 1} of "
                    f"{ml:g} mL)",
                    "volume_ml",
                )
            )
    return out


def remaining(ctx: DoseContext, *, rules: RuleBook) -> dict[str, float]:
    """What is left today / in this session under the refusing limits (never negative)."""
    day, session = totals(ctx.given_today), totals(ctx.given_this_session)
    leg_day = totals(ctx.given_this_session if ctx.given_today_this_leg is None else ctx.given_today_this_leg)
    pol_limit = float(rules.value("POLIDOCANOL_DAILY_MG_PER_KG")) * ctx.weight_kg
    return {
        "sts_ml_today": max(0.0, round(float(rules.value("STS_DAILY_MAX_ML")) - day.sts_volume_ml, 4)),
        "foam_ml_leg_today": max(0.0, round(float(rules.value("FOAM_LEG_DAILY_MAX_ML")) - leg_day.foam_ml, 4)),
        "canister_foam_ml_today": max(
            0.0, round(float(rules.value("CANISTER_FOAM_DAILY_MAX_ML")) - day.canister_foam_ml, 4)
        ),
        "polidocanol_mg_today": max(0.0, round(pol_limit - day.polidocanol_mg, 4)),
        "polidocanol_foam_ml_today": max(
            0.0, round(float(rules.value("POLIDOCANOL_FOAM_DAILY_MAX_ML")) - day.polidocanol_foam_ml, 4)
        ),
        "foam_ml_session": max(0.0, round(float(rules.value("FOAM_SESSION_MAX_ML")) - session.foam_ml, 4)),
        "sts_ml_session": max(
            0.0, round(float(rules.value("STS_SESSION_MAX_ML")) - session.sts_volume_ml, 4)
        ),
        "canister_foam_ml_session": max(
            0.0, round(float(rules.value("CANISTER_FOAM_SESSION_MAX_ML")) - session.canister_foam_ml, 4)
        ),
    }


def max_volume_ml(
    concentration_pct: float, form: Form | str, ratio: str | None, *, weight_kg: float, rules: RuleBook
) -> float:
    """Largest polidocanol volume within the daily mg/kg limit for one preparation (70 kg, 1%: 14 mL)."""
    per_ml = drug_mass_mg(concentration_pct, 1.0, form, ratio)
    return float(rules.value("POLIDOCANOL_DAILY_MG_PER_KG")) * weight_kg / per_ml
