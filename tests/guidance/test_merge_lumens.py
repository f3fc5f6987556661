"""How the network's lumens and those found by contrast become one list (``vessels.merge_lumens``).

While injecting, the needle's acoustic shadow and what lies under foam are dark without blood: no new vessel may be
born there, a tracked one goes on, and an unsure network lumen is never taken there.
"""

from __future__ import annotations

import numpy as np

from echosclero.guidance.vessels import (
    BLOOD_CONTRAST,
    MAX_CONTRAST,
    NET_AGREE_PROB,
    NET_SURE_CONFIDENCE,
    Lumen,
    merge_lumens,
)

SHAPE = (100, 100)


def _lumen(row0: int, col0: int, *, size: int = 10, learned: bool, confidence: float = 0.9,
           contrast: float = 0.1) -> Lumen:
    mask = np.ones((size, size), bool)
    centre = ((col0 + size / 2) * 0.2, (row0 + size / 2) * 0.2)
    return Lumen(mask=mask, row0=row0, col0=col0, area_mm2=size * size * 0.04, center_mm=centre,
                 diameter_mm=size * 0.2, longitudinal=False, contour_mm=np.zeros((4, 2)), mean_ratio=contrast,
                 contrast=contrast, confidence=confidence, learned=learned)


def _region(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[r0:r1, c0:c1] = True
    return m


SHADOW = _region(40, 100, 40, 70)  # under a needle: columns 40-69, from row 40 down


def test_without_a_hidden_region_every_network_lumen_and_every_anechoic_lumen_stands():
    net = [_lumen(50, 45, learned=True, confidence=0.65), _lumen(10, 10, learned=True)]
    found = [_lumen(70, 80, learned=False, contrast=MAX_CONTRAST - 0.1)]
    out = merge_lumens(net, found)
    assert len(out) == 3


def test_no_new_vessel_is_born_in_the_hidden_region():
    new_net = _lumen(50, 45, learned=True, confidence=0.95)  # confident, but nothing tracked there
    new_dark = _lumen(75, 50, learned=False, contrast=0.05)  # black, as a foam or needle shadow is
    outside = _lumen(10, 10, learned=True, confidence=0.65)  # unsure, but in plain view
    out = merge_lumens([new_net, outside], [new_dark], shadow=SHADOW, known=None)
    assert out == [outside]


def test_a_tracked_vessel_goes_on_under_the_shadow_when_the_network_is_sure():
    known = _region(48, 62, 43, 57)  # a vessel tracked before the needle came
    sure = _lumen(50, 45, learned=True, confidence=NET_SURE_CONFIDENCE + 0.05)
    unsure = _lumen(52, 47, learned=True, confidence=NET_SURE_CONFIDENCE - 0.05)
    dark = _lumen(50, 45, learned=False, contrast=0.05)
    assert merge_lumens([sure], [], shadow=SHADOW, known=known) == [sure]
    assert merge_lumens([unsure], [], shadow=SHADOW, known=known) == []
    assert merge_lumens([], [dark], shadow=SHADOW, known=known) == [dark]


def test_a_new_dark_region_the_network_sees_no_lumen_in_is_dropped_unless_dark_as_blood():
    prob = np.zeros(SHAPE, np.float32)
    prob[10:20, 10:20] = NET_AGREE_PROB + 0.1  # the network half-sees a lumen here, nothing elsewhere
    seen = _lumen(10, 10, learned=False, contrast=0.3)
    muscle = _lumen(40, 40, learned=False, contrast=0.3)  # dark between bright fasciae, no lumen to the network
    blood = _lumen(70, 70, learned=False, contrast=BLOOD_CONTRAST - 0.02)  # as black as a long-axis artery
    assert merge_lumens([], [seen, muscle, blood], prob=prob) == [seen, blood]
    # a tracked vessel's lumen stays whatever the network says (pressed flat, filled with foam)
    assert merge_lumens([], [muscle], prob=prob, known=_region(42, 48, 42, 48)) == [muscle]
