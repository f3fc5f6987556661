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
    "CompressionKind",
    "ObservationOutcome",
    "check_observation",
    "check_session_times",
    "check_test_injection",
]

MAX_SESSION_DURATION = timedelta(hours=12)  # plausibility (input validation)


class ObservationOutcome(StrEnum):
    UNEVENTFUL = "uneventful"
    ALLERGIC_REACTION = "allergic_reaction"
    VASOVAGAL = "vasovagal"
    VISUAL_DISTURBANCE = "visual_disturbance"
    OTHER = "other"


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


def check_test_injection(
    *, session_date: date, first_foam: bool, tests: Sequence[TestInjection], rules: RuleBook
) -> list[Violation]:
    """When the clinic requires it, a test injection on an earlier, separate date before the first foam.

    A test injection that caused a reaction does not count as a passed test.
    """
    if not first_foam or not bool(rules.value("TEST_INJECTION_REQUIRED")):
        return []
    days = float(rules.value("TEST_INJECTION_MIN_DAYS_BEFORE"))
    ok = [t for t in tests if (session_date - t.on).days >= days and not t.reaction]
    if ok:
        return []
    seen = ", ".join(f"{t.on.isoformat()}{' (reaction)' if t.reaction else ''}" for t in tests) or "none"
    return [
        Violation(
            rules["TEST_INJECTION_REQUIRED"],
            f"first foam session on {session_date.isoformat()} needs a test injection without reaction "
            f"at least {days:g} day(s) before; recorded: {seen}",
            "test_injection",
        )
    ]
