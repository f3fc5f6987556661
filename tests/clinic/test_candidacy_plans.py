import pytest

from echosclero.clinic.candidacy import CONTRAINDICATIONS, Kind, assess, get_contraindication
from echosclero.clinic.dosing import Agent, Dose, Form
from echosclero.clinic.plans import check_candidacy_gate, check_plan
from echosclero.clinic.rules import RuleBook
from echosclero.errors import InputError

RB = RuleBook()


def test_checklist_covers_the_guideline_items_with_sources():
    codes = {c.code for c in CONTRAINDICATIONS}
    for needed in (
        "sclerosant_allergy",
        "acute_dvt_pe",
        "local_infection",
        "immobile",
        "critical_limb_ischaemia",
        "symptomatic_pfo",
        "severe_systemic_illness",
        "thrombophilia",
        "migraine",
        "pregnancy",
    ):
        assert needed in codes
    assert all(c.source.startswith("[") for c in CONTRAINDICATIONS)


def test_absolute_blocks_relative_warns():
    a = assess(["acute_dvt_pe", "migraine"], foam=True)
    assert a.blocks and [c.code for c in a.relative] == ["migraine"]
    vs = check_candidacy_gate(a, rules=RB)
    assert {v.rule.code for v in vs if v.refuses} == {"CANDIDACY_ABSOLUTE"}
    assert {v.rule.code for v in vs if not v.refuses} == {"CANDIDACY_RELATIVE"}


def test_foam_only_items_do_not_apply_to_liquid():
    a = assess(["symptomatic_pfo", "migraine"], foam=False)
    assert not a.blocks and not a.relative and len(a.not_applicable) == 2
    assert assess(["symptomatic_pfo"], foam=True).blocks


def test_no_checklist_refuses_and_none_present_passes():
    assert check_candidacy_gate(None, rules=RB)[0].rule.code == "CANDIDACY_RECORDED"
    assert check_candidacy_gate(assess([]), rules=RB) == []


def test_unknown_code_suggests():
    with pytest.raises(InputError, match="did you mean"):
        get_contraindication("migrane")


def test_hypersensitivity_flag():
    assert assess(["allergic_disposition"]).hypersensitivity_prone
    assert not assess(["migraine"]).hypersensitivity_prone
    assert all(c.kind in (Kind.ABSOLUTE, Kind.RELATIVE) for c in CONTRAINDICATIONS)


def _d(seg="GSV", ml=4.0, pct=1.0, form=Form.FOAM):
    return Dose(seg, Agent.POLIDOCANOL, form, pct, ml, "1:4" if form is Form.FOAM else None)


def test_plan_totals_over_a_session_only_warn():
    vs = check_plan([_d(ml=6.0), _d(ml=6.0)], weight_kg=70, rules=RB)
    assert any(v.rule.code == "FOAM_SESSION_MAX_ML" and not v.refuses for v in vs)
    assert not [v for v in vs if v.refuses]


def test_plan_item_rules_refuse():
    vs = check_plan([_d("FV")], weight_kg=70, rules=RB)
    # no published source read for it yet: a [verify] rule, so it warns (docs/clinical.md conventions)
    assert any(v.rule.code == "DEEP_VEIN_TARGET" and not v.refuses and v.field.startswith("items.0") for v in vs)
    vs = check_plan([_d("CPV", ml=3.0)], weight_kg=70, rules=RB)
    assert any(v.rule.code == "FOAM_PUNCTURE_PERFORATOR_MAX_ML" and v.refuses for v in vs)


def test_pregnancy_is_relative_as_in_clinical_md_with_nice_cited():
    a = assess(["pregnancy"], foam=False)
    assert not a.blocks and [c.code for c in a.relative] == ["pregnancy"]
    assert "NICE CG168" in a.relative[0].source and "UIP" in a.relative[0].source
    assert {v.rule.code for v in check_candidacy_gate(a, rules=RB)} == {"CANDIDACY_RELATIVE"}
