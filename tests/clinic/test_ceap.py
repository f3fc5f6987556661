"""CEAP 2020 data type: parsing, formatting, calculator, impossible combinations."""

from __future__ import annotations

import pytest

from echosclero.clinic.ceap import CEAP, CeapError, ClinicalSigns, ceap_from_findings


def test_parse_and_format_round_trip():
    c = CEAP.parse("C2,4a,S Ep As,p Pr")
    assert c.clinical == {"C2", "C4a"} and c.symptomatic
    assert c.highest_clinical == "C4a" and c.clinical_number == 4
    assert c.basic() == "C4aS Ep As,p Pr"
    assert CEAP.parse(c.advanced()) == c
    adv = CEAP.parse("C2r,6rA Ep As,d Pr,o(r:GSVa,SSV; o:POPV)")
    assert adv.reflux_segments == {"GSVa", "SSV"} and adv.obstruction_segments == {"POPV"}
    assert adv.pathophysiology == {"Pr", "Po"} and adv.anatomy == {"As", "Ad"}
    assert CEAP.parse(str(adv)) == adv
    assert CEAP.parse("C0S En An Pn").highest_clinical == "C0"  # symptoms without signs


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("C0,2S Ep As Pr", "C0"),
        ("C2,2rS Ep As Pr", "C2r replaces"),
        ("C6,6rS Ep As Pr", "C6r replaces"),
        ("C2S Ep,si As Pr", "exclude"),
        ("C2S En,p As Pr", "En"),
        ("C2S Ep An Pr", "needs an anatomic location"),
        ("C2S Ep As Pn", "Pn"),
        ("C2S Ep As,n Pr", "An"),
        ("C2S Ep As Pr,n", "Pn"),
        ("C2S Ep Ad Pr(r:GSVa)", "does not include"),
        ("C7S Ep As Pr", "cannot read"),
        ("C2S Ep As Pr(r:XYZ)", "unknown CEAP anatomic segment"),
    ],
)
def test_impossible_combinations_are_refused(text, fragment):
    with pytest.raises(CeapError, match=fragment):
        CEAP.parse(text)


def test_legacy_es_is_refused_with_the_way_out():
    with pytest.raises(CeapError, match="Esi"):
        CEAP(clinical=frozenset({"C2"}), symptomatic=True, etiology=frozenset({"Es"}),
             anatomy=frozenset({"As"}), pathophysiology=frozenset({"Pr"}))


def test_calculator_from_signs_and_duplex():
    signs = ClinicalSigns(varicose_veins=True, pigmentation_or_eczema=True, corona_phlebectatica=True,
                          symptomatic=True)
    c = ceap_from_findings(signs, etiology=["Ep"], reflux_segments=["GSVa", "CPV"])
    assert c.advanced() == "C2,4a,4cS Ep As,p Pr(r:GSVa,CPV)"
    none = ceap_from_findings(ClinicalSigns())
    assert none.basic() == "C0A En An Pn"
    with pytest.raises(CeapError):
        ceap_from_findings(ClinicalSigns(varicose_veins=True, recurrent_varicose_veins=True))
    assert c.to_json()["basic"] == "C4cS Ep As,p Pr"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("C2", "C2"),
        ("C2S", "C2S"),
        ("C4A", None),  # C4 + A, and C4 is not a 2020 class: refused below
        ("C4a", "C4a"),
        ("c2, 4a s", "C2,4aS"),
        ("C2 , C3 , S", "C2,3S"),
        ("C2,4a,S Ep As,p Pr", "C2,4aS Ep As,p Pr"),
    ],
)
def test_parse_ceap_full_or_clinical_part(text, canonical):
    from echosclero.clinic.ceap import parse_ceap

    if canonical is None:  # "C4A" reads as C4 + A (asymptomatic); C4 was split into C4a/b/c in 2020
        with pytest.raises(CeapError, match="unknown CEAP clinical class 'C4'"):
            parse_ceap(text)
        return
    assert parse_ceap(text) == canonical


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "empty"), ("2", "cannot read"), ("C0,2", "C0"), ("C6,6rS", "C6r replaces"), ("C2S Ep", "cannot read")],
)
def test_parse_ceap_refuses_with_the_reason(text, fragment):
    from echosclero.clinic.ceap import parse_ceap

    with pytest.raises(CeapError, match=fragment):
        parse_ceap(text)
