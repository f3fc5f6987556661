"""The rule book: every rule has a source; [verify] rules cannot refuse; clinic values are checked."""

import math

import pytest

from echosclero.clinic.rules import DEFAULT_RULES, Enforcement, Mark, Rule, RuleBook, RuleViolationError, Violation
from echosclero.errors import InputError


def test_every_rule_has_a_source_and_unique_code():
    codes = [r.code for r in DEFAULT_RULES]
    assert len(codes) == len(set(codes))
    for r in DEFAULT_RULES:
        assert r.source.strip() and r.title.strip()
        assert r.citation.startswith(f"[{r.mark.value}]")


def test_verify_rules_only_warn():
    assert all(r.enforcement is Enforcement.WARN for r in DEFAULT_RULES if r.mark is Mark.VERIFY)
    with pytest.raises(ValueError, match="may only warn"):
        Rule("X", "x", 1.0, "mL", Mark.VERIFY, "somewhere", Enforcement.REFUSE)


def test_label_values_match_clinical_notes():
    rb = RuleBook()
    assert rb.value("POLIDOCANOL_DAILY_MG_PER_KG") == 2.0
    assert rb.value("FOAM_SESSION_MAX_ML") == 10.0
    assert rb.value("OBSERVATION_MIN_MINUTES") == 10.0
    assert rb.value("APPOINTMENT_NOTICE_HOURS") == 48.0


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, "ten", None, True, 1e9])
def test_bad_clinic_values_refused(value):
    with pytest.raises(InputError):
        RuleBook().with_values({"FOAM_SESSION_MAX_ML": value})


def test_boolean_rule_takes_boolean():
    assert RuleBook().with_values({"TEST_INJECTION_REQUIRED": True}).value("TEST_INJECTION_REQUIRED") is True
    with pytest.raises(InputError):
        RuleBook().with_values({"TEST_INJECTION_REQUIRED": 1})


def test_table_rules_have_no_value_and_unknown_rules_are_named():
    with pytest.raises(InputError, match="table"):
        RuleBook().with_values({"CONCENTRATION_BY_VEIN_TYPE": 1})
    with pytest.raises(InputError, match="unknown rule"):
        RuleBook()["NOPE"]


def test_violation_error_message_names_rule_source_and_way_out():
    rb = RuleBook()
    err = RuleViolationError([Violation(rb["FOAM_SESSION_MAX_ML"], "12 mL")])
    assert "FOAM_SESSION_MAX_ML" in str(err) and "Consensus" in str(err) and "override_reason" in str(err)
