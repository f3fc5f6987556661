"""Revised VCSS (Vasquez 2010): items 0-3, total 0-30, calculators, impossible combinations."""

from __future__ import annotations

import pytest

from echosclero.clinic.vcss import (
    VCSS,
    VCSS_ITEMS,
    VcssError,
    extent_score,
    oedema_score,
    ulcer_count_score,
    ulcer_duration_score,
    ulcer_size_score,
    varicose_veins_score,
)


def test_total_range_and_json_round_trip():
    assert len(VCSS_ITEMS) == 10
    assert VCSS().total == 0
    worst = VCSS(**{name: 3 for name in VCSS_ITEMS})
    assert worst.total == 30
    v = VCSS(pain=2, varicose_veins=3, venous_edema=1, compression_therapy=1)
    assert v.total == 7 and VCSS.from_json(v.to_json()) == v


@pytest.mark.parametrize("value", [-1, 4, 1.5, True, "2"])
def test_item_scores_must_be_0_to_3(value):
    with pytest.raises(VcssError, match="pain"):
        VCSS(pain=value)


def test_ulcer_items_must_agree():
    with pytest.raises(VcssError, match="number is 0"):
        VCSS(active_ulcer_duration=2)
    with pytest.raises(VcssError, match="duration or size"):
        VCSS(active_ulcer_number=1, active_ulcer_size=1)
    assert VCSS(active_ulcer_number=1, active_ulcer_duration=1, active_ulcer_size=2).total == 4
    with pytest.raises(VcssError, match="does not match"):
        VCSS.from_json({"pain": 1, "total": 3})
    with pytest.raises(VcssError, match="unknown"):
        VCSS.from_json({"pian": 1})


def test_item_calculators_follow_the_definitions():
    assert [ulcer_count_score(n) for n in (0, 1, 2, 3, 7)] == [0, 1, 2, 3, 3]
    assert [ulcer_duration_score(m) for m in (None, 1, 3, 12, 13)] == [0, 1, 2, 2, 3]
    assert [ulcer_size_score(d) for d in (None, 1.9, 2, 6, 6.5)] == [0, 1, 2, 2, 3]
    assert extent_score("perimalleolar") == 1 and extent_score("above_lower_third") == 3
    assert oedema_score("below_knee") == 2 and varicose_veins_score("calf_and_thigh") == 3
    with pytest.raises(VcssError):
        extent_score("ankle")
    with pytest.raises(VcssError):
        ulcer_size_score(0)
