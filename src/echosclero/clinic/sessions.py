"""Injection sessions: timing, observation after injection, compression, and the test-injection policy.

Running totals and dose checks are in :mod:`echosclero.clinic.dosing`; this module holds the rest of
what a session must satisfy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from echosclero.clinic.rules import RuleBook, Violation
from echosclero.errors import InputError

__all__ = [
    "MAX_SESSION_DURATION",
    "AccessDevice",
    "PatientPosition",
    "CompressionKind",
    "ObservationOutcome",
    "check_observation",
    "check_session_times",
    "check_test_injection",
    "check_test_reaction",
]

MAX_SESSION_DURATION = timedelta(hours=12)  # plausibility (input validation)


class ObservationOutcome(StrEnum):
    UNEVENTFUL = "uneventful"
    ALLERGIC_REACTION = "allergic_reaction"
    VASOVAGAL = "vasovagal"
    VISUAL_DISTURBANCE = "visual_disturbance"
    MIGRAINE = "migraine"
    COUGH = "cough"
    OTHER = "other"


class PatientPosition(StrEnum):
    """How the patient lies or stands: duplex mapping is done standing (or in reverse Trendelenburg), the
    injection lying (docs/clinical.md sections 1 and 3)."""

    STANDING = "standing"
    REVERSE_TRENDELENBURG = "reverse_trendelenburg"
    SUPINE = "supine"
    PRONE = "prone"
    SITTING = "sitting"
    LEG_ELEVATED = "leg_elevated"


class AccessDevice(StrEnum):
    """What the sclerosant was injected through."""

    NEEDLE = "needle"
    BUTTERFLY = "butterfly"
    CANNULA = "cannula"
    CATHETER = "catheter"


class CompressionKind(StrEnum):
    NONE = "none"
    BANDAGE = "bandage"
    STOCKING = "stocking"
    BANDAGE_THEN_STOCKING = "bandage_then_stocking"


def check_session_times(started_at: datetime | None, ended_at: datetime | None) -> None:
    if started_at is not None and ended_at is not None:
        if ended_at < started_at:
            raise InputError(f"ended_at {ended_at.isoformat()} is before started_at {started_at.isoformat()}")
        if ended_at - started_at > MAX_SESSION_DURATION:
            raise InputError(f"a session longer than {MAX_SESSION_DURATION} is implausible; check the times")


def check_observation(
    minutes: float | None, outcome: ObservationOutcome | None, *, rules: RuleBook
) -> list[Violation]:
    """Observation after injection for anaphylaxis: warn when shorter than the rule's minimum."""
    if minutes is None:
        return []
    floor = float(rules.value("OBSERVATION_MIN_MINUTES"))
    if minutes < floor:
        return [
            Violation(
                rules["OBSERVATION_MIN_MINUTES"],
                f"observation of {minutes:g} min is shorter than {floor:g} min",
                "observation_minutes",
            )
        ]
    return []


@dataclass(frozen=True, slots=True)
class TestInjection:
    on: date
    reaction: bool
    agent: str = ""  # "" in records of tests whose agent is unknown: counts for no agent


def check_test_injection(
    *, session_date: date, first_foam: bool, tests: Sequence[TestInjection], rules: RuleBook, agent: str = ""
) -> list[Violation]:
    """When the clinic requires it, a test injection of the same agent on an earlier, separate date before the
    first foam (``session_date``: the earlier of the session's date and the injection's own day).

    A test injection that caused a reaction does not count as a passed test.
    """
    if not first_foam or not bool(rules.value("TEST_INJECTION_REQUIRED")):
        return []
    days = float(rules.value("TEST_INJECTION_MIN_DAYS_BEFORE"))
    same = [t for t in tests if not agent or t.agent == agent]
    ok = [t for t in same if (session_date - t.on).days >= days and not t.reaction]
    if ok:
        return []
    seen = ", ".join(f"{t.on.isoformat()} {t.agent}{' (reaction)' if t.reaction else ''}" for t in tests) or "none"
    return [
        Violation(
            rules["TEST_INJECTION_REQUIRED"],
            f"first foam session{' with ' + agent if agent else ''} on {session_date.isoformat()} needs a test "
            f"injection of that agent without reaction at least {days:g} day(s) before; recorded: {seen}",
            "test_injection",
        )
    ]


def check_test_reaction(*, day: date, agent: str, tests: Sequence[TestInjection], rules: RuleBook) -> list[Violation]:
    """A test injection of ``agent`` with a reaction, on or before ``day``, refuses that agent (every form)."""
    bad = [t for t in tests if t.reaction and t.agent == agent and t.on <= day]
    if not bad:
        return []
    return [
        Violation(
            rules["TEST_INJECTION_REACTION"],
            f"the test injection of {agent} on {bad[0].on.isoformat()} caused a reaction; {agent} is not given "
            "again without a physician's written reason",
            "agent",
        )
    ]
