"""The clinic's rule book: every enforced number, its unit, its enforcement and its published source.

One table (:data:`DEFAULT_RULES`) that a clinic can review (``GET /api/rules``) and adjust (``PUT
/api/rules/{code}``, physicians only, audited). Marks follow ``docs/clinical.md``:

- ``label``: read in a product label / SmPC; ``guideline``: a guideline or consensus text; ``trial``;
- ``verify``: not read in a primary source here. A ``verify`` rule can only *warn* (enforced by
  :class:`Rule` itself), and the UI says so;
- ``policy``: a clinic policy default (not a clinical source); it may refuse, and the clinic owns it.

A refusing rule that is broken makes the API answer HTTP 422 with a message naming the rule code, the
values and the source, unless a physician overrides it with a written reason (kept in the audit log).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from echosclero.errors import InputError

__all__ = [
    "DEFAULT_RULES",
    "Enforcement",
    "Mark",
    "Rule",
    "RuleBook",
    "RuleViolationError",
    "Violation",
    "refusals",
    "warnings_of",
]


class Mark(StrEnum):
    LABEL = "label"
    GUIDELINE = "guideline"
    TRIAL = "trial"
    VERIFY = "verify"
    POLICY = "policy"


class Enforcement(StrEnum):
    REFUSE = "refuse"  # HTTP 422 unless a physician overrides with a written reason
    WARN = "warn"  # accepted; the warning is returned and recorded


@dataclass(frozen=True, slots=True)
class Rule:
    """One reviewable rule. ``value`` is ``None`` for rules whose data is a table (see ``table``)."""

    code: str
    title: str
    value: float | bool | None
    unit: str
    mark: Mark
    source: str
    enforcement: Enforcement
    table: str | None = None  # where the data lives when it is a table, e.g. "dosing.CONCENTRATION_RANGES"

    def __post_init__(self) -> None:
        if self.mark is Mark.VERIFY and self.enforcement is Enforcement.REFUSE:
            raise ValueError(f"rule {self.code}: an unverified ([verify]) rule may only warn")

    @property
    def citation(self) -> str:
        return f"[{self.mark.value}] {self.source}"

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "title": self.title,
            "value": self.value,
            "unit": self.unit,
            "mark": self.mark.value,
            "source": self.source,
            "citation": self.citation,
            "enforcement": self.enforcement.value,
            "table": self.table,
        }


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken rule: which, why (with the numbers), and the input field concerned."""

    rule: Rule
    message: str
    field: str | None = None

    @property
    def refuses(self) -> bool:
        return self.rule.enforcement is Enforcement.REFUSE

    def text(self) -> str:
        return f"{self.rule.code}: {self.message} (source: {self.rule.citation})"

    def as_dict(self) -> dict:
        return {
            "rule": self.rule.code,
            "enforcement": self.rule.enforcement.value,
            "message": self.message,
            "source": self.rule.citation,
            "field": self.field,
        }


def refusals(violations: Iterable[Violation]) -> list[Violation]:
    return [v for v in violations if v.refuses]


def warnings_of(violations: Iterable[Violation]) -> list[Violation]:
    return [v for v in violations if not v.refuses]


PHYSICIAN_OVERRIDE = " A physician may override with a written reason (field 'override_reason')."


class RuleViolationError(InputError):
    """One or more refusing rules were broken; the API turns this into HTTP 422.

    ``overridable`` tells the truth about the way out: ``True`` only when a written ``override_reason``
    from the caller (or a physician: ``way_out`` says who) would let the request through."""

    def __init__(
        self, violations: Iterable[Violation], *, overridable: bool = True, way_out: str = PHYSICIAN_OVERRIDE
    ) -> None:
        self.violations = list(violations)
        self.overridable = overridable
        super().__init__("; ".join(v.text() for v in self.violations) + (way_out if overridable else ""))


_L, _G, _V, _P = Mark.LABEL, Mark.GUIDELINE, Mark.VERIFY, Mark.POLICY
_R, _W = Enforcement.REFUSE, Enforcement.WARN

AETHOXYSKLEROL = "Aethoxysklerol (polidocanol) SmPC, section 4.2"
SOTRADECOL = "Sotradecol (sodium tetradecyl sulfate) prescribing information, Dosage and Administration"
VARITHENA = "Varithena (polidocanol injectable foam) prescribing information"
ASCLERA = "Asclera (polidocanol) prescribing information"
FOAM_CONSENSUS = (
    "2nd European Consensus Meeting on Foam Sclerotherapy 2006 (Breu et al., Vasa 2008;37 Suppl 71)"
)
RABE_2014 = "Rabe et al., European guidelines for sclerotherapy, Phlebology 2014;29:338-54, Tables 2-3"
UIP_FOLLOWUP = "UIP consensus on duplex follow-up after treatment (De Maeseneer et al., EJVES 2011;42:89-102)"

#: The defaults shipped with EchoSclero. Each number has its source next to it.
DEFAULT_RULES: tuple[Rule, ...] = (
    # --- sclerosant limits (docs/clinical.md section 1) ---
    Rule(
        "POLIDOCANOL_DAILY_MG_PER_KG",
        "polidocanol per day, per kg body weight",
        2.0,
        "mg/kg/day",
        _L,
        AETHOXYSKLEROL + ": 2 mg per kg body weight per day",
        _R,
    ),
    Rule(
        "FOAM_SESSION_MAX_ML",
        "foam volume per session (one leg)",
        10.0,
        "mL",
        _G,
        FOAM_CONSENSUS + ": 10 mL per leg per session; " + AETHOXYSKLEROL,
        _R,
    ),
    Rule(
        "POLIDOCANOL_FOAM_DAILY_MAX_ML",
        "physician-made polidocanol foam per day, regardless of weight (every session of that day)",
        10.0,
        "mL",
        _L,
        AETHOXYSKLEROL + ": 10 mL of foam per day. Canister foam has its own label limits (Varithena); both"
        " count together in the daily mg/kg limit, the one rule found here that covers both",
        _R,
    ),
    Rule(
        "FOAM_LEG_DAILY_MAX_ML",
        "physician-made foam per leg per day (every session of that leg on one calendar day)",
        10.0,
        "mL",
        _G,
        FOAM_CONSENSUS + ": 10 mL per leg per session; sessions of one leg on one day are one session here, so"
        " that splitting a session cannot exceed it",
        _R,
    ),
    Rule(
        "STS_DAILY_MAX_ML",
        "sodium tetradecyl sulfate per day (liquid and foam, every session of that day)",
        10.0,
        "mL",
        _L,
        SOTRADECOL + ": 10 mL maximum per treatment; the sessions of one calendar day are one treatment here,"
        " so that splitting a treatment cannot exceed it",
        _R,
    ),
    Rule(
        "CANISTER_FOAM_DAILY_MAX_ML",
        "polidocanol injectable foam (canister) per day (every session of that day)",
        15.0,
        "mL",
        _L,
        VARITHENA + ": no more than 15 mL per session; the sessions of one calendar day are one session here",
        _R,
    ),
    Rule(
        "INJECTION_TIME_IN_SESSION_DAY",
        "an injection's time lies on its session's date (clinic time zone)",
        None,
        "",
        _P,
        "clinic policy (record keeping); the daily limits count each injection on the day of its own time",
        _W,
    ),
    Rule(
        "FOAM_PUNCTURE_PERFORATOR_MAX_ML",
        "foam per puncture, perforator",
        2.0,
        "mL",
        _L,
        AETHOXYSKLEROL + ": perforators up to 2 mL per puncture",
        _R,
    ),
    Rule(
        "FOAM_PUNCTURE_SAPHENOUS_MAX_ML",
        "foam per puncture, saphenous trunk other than GSV",
        4.0,
        "mL",
        _L,
        AETHOXYSKLEROL + ": GSV/SSV up to 4 mL per puncture",
        _R,
    ),
    Rule(
        "FOAM_PUNCTURE_GSV_MAX_ML",
        "foam per puncture, great saphenous vein",
        6.0,
        "mL",
        _L,
        AETHOXYSKLEROL + ": GSV up to 6 mL per puncture",
        _R,
    ),
    Rule(
        "POLIDOCANOL_LIQUID_SMALL_VEIN_MAX_ML",
        "liquid polidocanol per injection, spider/reticular veins",
        0.3,
        "mL",
        _L,
        AETHOXYSKLEROL + ": 0.1-0.3 mL per injection for spider and reticular veins",
        _W,
    ),
    Rule(
        "HYPERSENSITIVITY_FIRST_SESSION_MAX_ML",
        "first session of a patient prone to hypersensitivity: one injection of at most",
        1.0,
        "mL",
        _L,
        AETHOXYSKLEROL + ": a single injection of 0.5-1 mL at the first session",
        _R,
    ),
    Rule(
        "STS_INJECTION_MAX_ML",
        "liquid sodium tetradecyl sulfate per injection",
        2.0,
        "mL",
        _L,
        SOTRADECOL + ": 0.5-2 mL per injection",
        _R,
    ),
    Rule(
        "STS_INJECTION_PREFERRED_MAX_ML",
        "liquid sodium tetradecyl sulfate per injection (preferred)",
        1.0,
        "mL",
        _L,
        SOTRADECOL + ": preferably 1 mL maximum per injection",
        _W,
    ),
    Rule(
        "STS_SESSION_MAX_ML",
        "sodium tetradecyl sulfate per treatment session",
        10.0,
        "mL",
        _L,
        SOTRADECOL + ": 10 mL maximum per treatment",
        _R,
    ),
    Rule(
        "MAX_CONCENTRATION_PCT",
        "strongest marketed sclerosant concentration",
        3.0,
        "%",
        _L,
        "Aethoxysklerol 3% and Sotradecol 3% are the strongest marketed strengths",
        _R,
    ),
    Rule(
        "CONCENTRATION_BY_VEIN_TYPE",
        "concentration within the range for the vein type",
        None,
        "%",
        _V,
        RABE_2014 + " (not yet checked against the text)",
        _W,
        table="dosing.CONCENTRATION_RANGES",
    ),
    Rule(
        "DEEP_VEIN_TARGET",
        "injection into a deep vein (not a sclerotherapy target)",
        None,
        "",
        _V,
        "not read in a primary source here: every vein type with a concentration in "
        + RABE_2014
        + " is superficial or a perforator, none is deep (docs/clinical.md section 1); warns until checked",
        _W,
    ),
    Rule(
        "FOAM_SESSION_INTERVAL_DAYS",
        "days between foam sessions",
        5.0,
        "days",
        _V,
        VARITHENA + " (for its canister foam; applied to all foam here, unverified for physician-made foam)",
        _W,
    ),
    # --- polidocanol injectable foam from a canister (Varithena 1%) ---
    Rule(
        "CANISTER_FOAM_INJECTION_MAX_ML",
        "polidocanol injectable foam (canister) per injection",
        5.0,
        "mL",
        _L,
        VARITHENA + ": up to 5 mL per injection",
        _R,
    ),
    Rule(
        "CANISTER_FOAM_SESSION_MAX_ML",
        "polidocanol injectable foam (canister) per session",
        15.0,
        "mL",
        _L,
        VARITHENA + ": no more than 15 mL per session",
        _R,
    ),
    Rule(
        "CANISTER_FOAM_SESSION_INTERVAL_DAYS",
        "days between sessions with polidocanol injectable foam (canister)",
        5.0,
        "days",
        _L,
        VARITHENA + ": separate treatment sessions by a minimum of 5 days",
        _R,
    ),
    Rule(
        "ULTRASOUND_CONFIRMATION_FOAM",
        "foam into a trunk or perforator confirmed intraluminal on ultrasound",
        None,
        "",
        _P,
        "clinic policy for ultrasound-guided foam",
        _W,
    ),
    # --- test injection (clinic policy; STS label asks for a test dose) ---
    Rule(
        "TEST_INJECTION_REQUIRED",
        "test injection of the same agent, without reaction, recorded before the first foam session",
        True,  # on by default: the seed clinics give the test injection on a separate, earlier date
        "",
        _P,
        "clinic policy; " + SOTRADECOL + ": 0.5 mL test dose then several hours of observation",
        _R,
    ),
    Rule(
        "TEST_INJECTION_MIN_DAYS_BEFORE",
        "test injection at least this many days before the first foam session",
        1.0,
        "days",
        _P,
        "clinic policy (a separate date)",
        _R,
    ),
    Rule(
        "TEST_INJECTION_REACTION",
        "no treatment with an agent that caused a reaction at its test injection",
        None,
        "",
        _L,
        "Aethoxysklerol (polidocanol) SmPC, section 4.3, and Sotradecol prescribing information, Contraindications:"
        " known hypersensitivity to the sclerosant (a reaction at its test injection is one)",
        _R,
    ),
    Rule(
        "STS_TEST_DOSE_MAX_ML",
        "sodium tetradecyl sulfate test dose",
        0.5,
        "mL",
        _L,
        SOTRADECOL + ": test dose 0.5 mL",
        _W,
    ),
    # --- observation after the session (section 5) ---
    Rule(
        "OBSERVATION_MIN_MINUTES",
        "observation after injection (anaphylaxis watch)",
        10.0,
        "min",
        _L,
        VARITHENA + "; " + ASCLERA + ": observe at least 10 minutes",
        _W,
    ),
    # --- candidacy (section 2) ---
    Rule(
        "CANDIDACY_RECORDED",
        "the contraindication checklist is recorded before planning or treating",
        None,
        "",
        _P,
        "clinic policy",
        _R,
    ),
    Rule(
        "CANDIDACY_ABSOLUTE",
        "no absolute contraindication",
        None,
        "",
        _G,
        "UIP consensus (Parsi); product labels; see candidacy.CONTRAINDICATIONS for each item",
        _R,
        table="candidacy.CONTRAINDICATIONS",
    ),
    Rule(
        "CANDIDACY_RELATIVE",
        "relative contraindications are weighed and the reasoning recorded",
        None,
        "",
        _G,
        "UIP consensus (Parsi); product labels",
        _W,
        table="candidacy.CONTRAINDICATIONS",
    ),
    Rule(
        "ASPIRIN_FREE_DAYS_BEFORE",
        "days without aspirin before a treatment session",
        7.0,
        "days",
        _P,
        "clinic policy (typical patient instructions: avoid aspirin the week before)",
        _W,
    ),
    # --- follow-up schedule (section 5) ---
    Rule(
        "FOLLOWUP_EARLY_DUPLEX_DAYS",
        "early duplex (deep-vein thrombosis, occlusion) after a session",
        14.0,
        "days",
        _G,
        UIP_FOLLOWUP + ": immediate follow-up 1-4 weeks",
        _W,
    ),
    Rule(
        "FOLLOWUP_REVIEW_DAYS",
        "clinical review after a session",
        42.0,
        "days",
        _P,
        "clinic policy (review at weeks)",
        _W,
    ),
    Rule(
        "FOLLOWUP_LATE_DAYS",
        "late duplex review after a session",
        365.0,
        "days",
        _G,
        UIP_FOLLOWUP + ": short-term follow-up at 1 year",
        _W,
    ),
    # --- appointments (clinic policy) ---
    Rule(
        "APPOINTMENT_NOTICE_HOURS",
        "notice for cancelling or rescheduling an appointment",
        48.0,
        "h",
        _P,
        "clinic policy",
        _R,
    ),
    Rule(
        "APPOINTMENT_REMINDER_HOURS",
        "reminder sent this long before an appointment",
        48.0,
        "h",
        _P,
        "clinic policy",
        _W,
    ),
)


@dataclass(frozen=True)
class RuleBook:
    """The rules in force: the defaults with the clinic's adjusted values applied."""

    rules: Mapping[str, Rule] = field(default_factory=lambda: {r.code: r for r in DEFAULT_RULES})

    def __getitem__(self, code: str) -> Rule:
        try:
            return self.rules[code]
        except KeyError:
            raise InputError(f"unknown rule {code!r}; known rules: {', '.join(self.rules)}") from None

    def value(self, code: str) -> float | bool:
        v = self[code].value
        if v is None:
            raise InputError(f"rule {code} holds a table, not a value")
        return v

    def with_values(self, values: Mapping[str, object]) -> RuleBook:
        """A copy with the clinic's values; each checked with :func:`check_rule_value`."""
        new = dict(self.rules)
        for code, value in values.items():
            rule = self[code]
            new[code] = replace(rule, value=check_rule_value(rule, value))
        return RuleBook(new)

    def as_list(self) -> list[dict]:
        return [r.as_dict() for r in self.rules.values()]


def check_rule_value(rule: Rule, value: object) -> float | bool:
    """Validate a clinic-adjusted value: booleans stay booleans; numbers are finite and positive."""
    if rule.value is None:
        raise InputError(f"rule {rule.code} holds a table ({rule.table or 'code'}); it has no single value")
    if isinstance(rule.value, bool):
        if not isinstance(value, bool):
            raise InputError(f"rule {rule.code} takes true or false, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"rule {rule.code} takes a number in {rule.unit}, not {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0 or v > 100_000:
        raise InputError(f"rule {rule.code}: {value!r} {rule.unit} is out of range (0, 100000]")
    return v
