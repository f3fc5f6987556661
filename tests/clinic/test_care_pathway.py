"""Sessions, test injection policy, follow-up schedule, aftercare, appointments, patient checks."""

from datetime import UTC, date, datetime, timedelta

import pytest

from echosclero.clinic import aftercare
from echosclero.clinic.appointments import check_contact, check_notice, reminder_due
from echosclero.clinic.followup import FollowupKind, OutcomeRecord, SegmentOutcome, residual_segments, schedule
from echosclero.clinic.patient import age_years, check_birth_date, check_ceap, check_vcss, check_weight_kg
from echosclero.clinic.roles import PERMISSIONS, Permission, Role, can
from echosclero.clinic.rules import RuleBook
from echosclero.clinic.sessions import TestInjection as TI
from echosclero.clinic.sessions import check_observation, check_session_times, check_test_injection
from echosclero.errors import InputError

RB = RuleBook()
D = date(2024, 3, 10)


def test_observation_shorter_than_10_min_warns():
    assert check_observation(9, None, rules=RB)[0].rule.code == "OBSERVATION_MIN_MINUTES"
    assert check_observation(10, None, rules=RB) == []
    assert not check_observation(5, None, rules=RB)[0].refuses


def test_session_times():
    t = datetime(2024, 3, 10, 9, tzinfo=UTC)
    check_session_times(t, t + timedelta(minutes=40))
    with pytest.raises(InputError, match="before"):
        check_session_times(t, t - timedelta(minutes=1))
    with pytest.raises(InputError, match="implausible"):
        check_session_times(t, t + timedelta(hours=13))


def test_test_injection_policy():
    off = RB.with_values({"TEST_INJECTION_REQUIRED": False})
    on = RB  # on by default, as in the seed clinics
    assert check_test_injection(session_date=D, first_foam=True, tests=[], rules=off) == []
    assert check_test_injection(session_date=D, first_foam=True, tests=[], rules=on)[0].refuses
    same_day = [TI(D, False)]
    assert check_test_injection(session_date=D, first_foam=True, tests=same_day, rules=on)
    ok = [TI(D - timedelta(days=3), False)]
    assert check_test_injection(session_date=D, first_foam=True, tests=ok, rules=on) == []
    reacted = [TI(D - timedelta(days=3), True)]
    assert check_test_injection(session_date=D, first_foam=True, tests=reacted, rules=on)
    assert check_test_injection(session_date=D, first_foam=False, tests=[], rules=on) == []


def test_followup_schedule_from_rules():
    s = schedule(D, rules=RB)
    assert [f.kind for f in s] == [FollowupKind.EARLY_DUPLEX, FollowupKind.REVIEW, FollowupKind.LATE_REVIEW]
    assert s[0].due_on == D + timedelta(days=14) and s[2].due_on == D + timedelta(days=365)
    assert 7 <= (s[0].due_on - D).days <= 28  # [guideline] UIP: immediate follow-up 1-4 weeks
    assert "UIP" in s[0].source
    s2 = schedule(D, rules=RB.with_values({"FOLLOWUP_EARLY_DUPLEX_DAYS": 7}))
    assert s2[0].due_on == D + timedelta(days=7)


def test_residual_segments_latest_outcome_wins():
    recs = [
        OutcomeRecord("left", "GSV", SegmentOutcome.OCCLUDED, D),
        OutcomeRecord("left", "GSV", SegmentOutcome.RECANALISED, D + timedelta(days=300)),
        OutcomeRecord("left", "SSV", SegmentOutcome.PARTIALLY_OCCLUDED, D),
        OutcomeRecord("left", "SSV", SegmentOutcome.OCCLUDED, D + timedelta(days=30)),
        OutcomeRecord("right", "GSV", SegmentOutcome.PARTIALLY_OCCLUDED, D),
    ]
    res = residual_segments(recs)
    assert [(r.limb, r.segment, r.outcome) for r in res] == [
        ("left", "GSV", SegmentOutcome.RECANALISED),
        ("right", "GSV", SegmentOutcome.PARTIALLY_OCCLUDED),
    ]


@pytest.mark.parametrize("code", list(aftercare.REGIMENS))
@pytest.mark.parametrize("key", list(aftercare.DEFAULT_TEMPLATES))
def test_every_template_renders_every_regimen(code, key):
    text = aftercare.render(
        aftercare.DEFAULT_TEMPLATES[key],
        patient={"given_name": "Ann", "family_name": "Lee", "age_years": 40},
        regimen=aftercare.REGIMENS[code],
        clinic={"name": "Vein Clinic", "phone": "123"},
    )
    assert "Ann Lee" in text and "Vein Clinic" in text
    if key == "aftercare":
        for words in ("Walk", "sun", "travel", "lumps", "chest pain", "visual"):
            assert words in text


def test_regimens_have_sources_and_bandage_regimen_prints_days():
    assert all(r.source for r in aftercare.REGIMENS.values())
    text = aftercare.render(
        aftercare.DEFAULT_TEMPLATES["aftercare"],
        patient={"given_name": "A", "family_name": "B"},
        regimen=aftercare.REGIMENS["bandage_then_stocking"],
        clinic={"name": "C", "phone": "1"},
    )
    assert "Keep the bandage on for 5 days and 5 nights, and keep it dry" in text


@pytest.mark.parametrize("bad", ["{{ patient.nme }}", "{% if %}", "{{ ''.__class__.__mro__ }}"])
def test_bad_templates_refused(bad):
    with pytest.raises(InputError):
        aftercare.validate_template(bad)


def test_notice_rule_48h():
    now = datetime(2024, 3, 10, 12, tzinfo=UTC)
    assert check_notice(now + timedelta(hours=49), now=now, change="cancelling", rules=RB) == []
    v = check_notice(now + timedelta(hours=47), now=now, change="cancelling", rules=RB)
    assert v and v[0].rule.code == "APPOINTMENT_NOTICE_HOURS" and "47.0 h" in v[0].message


def test_reminders():
    now = datetime(2024, 3, 10, 12, tzinfo=UTC)
    assert reminder_due(now + timedelta(hours=24), now=now, sent=False, rules=RB)
    assert not reminder_due(now + timedelta(hours=24), now=now, sent=True, rules=RB)
    assert not reminder_due(now + timedelta(hours=72), now=now, sent=False, rules=RB)
    assert not reminder_due(now - timedelta(hours=1), now=now, sent=False, rules=RB)


@pytest.mark.parametrize(
    "email,phone,ok",
    [
        ("a@b.org", None, True),
        (None, "+44 20 7946 0000", True),
        (None, None, False),
        ("not-an-email", None, False),
        (None, "12", False),
        (None, "call me maybe", False),
    ],
)
def test_contact(email, phone, ok):
    if ok:
        check_contact(email, phone)
    else:
        with pytest.raises(InputError):
            check_contact(email, phone)


def test_patient_checks():
    assert check_weight_kg(70) == 70.0
    for bad in (0, 5, 1000, float("nan")):
        with pytest.raises(InputError):
            check_weight_kg(bad)
    with pytest.raises(InputError, match="future"):
        check_birth_date(date(2999, 1, 1), today=D)
    assert age_years(date(1970, 3, 11), on=D) == 53 and age_years(date(1970, 3, 10), on=D) == 54


@pytest.mark.parametrize(
    "ceap,ok",
    [
        ("C2", True),
        ("C2,4aS", True),
        ("C4bS Ep As,p Pr", True),
        ("C6r", True),
        ("C2r", True),
        ("C7", False),
        ("2", False),
        ("C4d", False),
        ("", False),
    ],
)
def test_ceap_text(ceap, ok):
    if ok:
        assert check_ceap(ceap) == ceap
    else:
        with pytest.raises(InputError):
            check_ceap(ceap)


def test_vcss():
    assert check_vcss({"pain": 2, "varicose_veins": 3}, None) == 5
    with pytest.raises(InputError):
        check_vcss({"pain": 4}, None)
    with pytest.raises(InputError):
        check_vcss({"pain": 1}, 3)
    with pytest.raises(InputError):
        check_vcss(None, 31)


def test_roles_least_privilege():
    assert can(Role.PHYSICIAN, Permission.OVERRIDE)
    assert not any(can(r, Permission.OVERRIDE) for r in Role if r is not Role.PHYSICIAN)
    assert not can(Role.FRONT_DESK, Permission.CLINICAL_READ) and not can(Role.ADMIN, Permission.CLINICAL_READ)
    assert not can(Role.ADMIN, Permission.PATIENT_READ)
    assert [r for r in Role if can(r, Permission.AUDIT_READ)] == [Role.ADMIN]
    assert set(PERMISSIONS) == set(Role)
    assert not can("nobody", Permission.RULES_READ)
