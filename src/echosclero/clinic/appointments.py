"""Appointments: kinds, the notice rule for changes (clinic policy, 48 h by default) and reminders."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from echosclero.clinic.rules import RuleBook, Violation
from echosclero.errors import InputError

__all__ = [
    "AppointmentKind",
    "AppointmentStatus",
    "RequestStatus",
    "check_contact",
    "check_notice",
    "reminder_due",
]


class AppointmentKind(StrEnum):
    CONSULTATION = "consultation"
    DUPLEX = "duplex"
    TEST_INJECTION = "test_injection"
    SCLEROTHERAPY = "sclerotherapy"
    FOLLOWUP = "followup"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


class RequestStatus(StrEnum):
    NEW = "new"
    BOOKED = "booked"
    DECLINED = "declined"
    SPAM = "spam"


def check_notice(start: datetime, *, now: datetime, change: str, rules: RuleBook) -> list[Violation]:
    """Cancelling or rescheduling needs the clinic's notice (``APPOINTMENT_NOTICE_HOURS``)."""
    hours = float(rules.value("APPOINTMENT_NOTICE_HOURS"))
    left = start - now
    if left < timedelta(hours=hours):
        return [
            Violation(
                rules["APPOINTMENT_NOTICE_HOURS"],
                f"{change} {left.total_seconds() / 3600:.1f} h before the appointment; the clinic "
                f"asks for {hours:g} h notice",
                "start",
            )
        ]
    return []


def reminder_due(start: datetime, *, now: datetime, sent: bool, rules: RuleBook) -> bool:
    hours = float(rules.value("APPOINTMENT_REMINDER_HOURS"))
    return (not sent) and now < start <= now + timedelta(hours=hours)


_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,190}\.[A-Za-z]{2,24}$")
_PHONE = re.compile(r"^\+?[0-9 ()./\-]{6,24}$")


def check_contact(email: str | None, phone: str | None) -> None:
    """A request needs a way to answer it: a plausible e-mail address or telephone number."""
    if not email and not phone:
        raise InputError("give an e-mail address or a telephone number so that the clinic can answer")
    if email and not _EMAIL.match(email):
        raise InputError(f"{email!r} is not an e-mail address")
    if phone and (not _PHONE.match(phone) or sum(c.isdigit() for c in phone) < 6):
        raise InputError(f"{phone!r} is not a telephone number")
