"""No needle where there is none: a real cine with screen lines and bright fasciae over a black lumen."""

from __future__ import annotations

from pathlib import Path

import pytest

from echosclero.guidance import Engine

FLOWAVE = Path(__file__).resolve().parents[1] / "data" / "real" / "flowave" / "DemoBMode.mov"


@pytest.mark.skipif(not FLOWAVE.exists(), reason="real FloWave cine not present")
def test_no_needle_on_a_real_brachial_cine_with_a_screen_line_and_a_fascia_over_the_lumen():
    """The FloWave brachial cine (GE LOGIQ Book e, no needle): its depth-marker line crosses the bright fascia at
    the image's right edge (frames 21-23: a "dot" whose "tail" is that line), and the fascia's lower shoulder over
    the artery's black lumen beside the edge (from frame 88: a faint "tail" over black). Both were reported as an
    out-of-plane needle (228 of 450 frames) before the tail-height rule (``TAIL_MIN_SHARE``): both "tails" are
    faint against the black beside them."""
    from echosclero.sources.open import open_source

    eng = Engine()
    with open_source(str(FLOWAVE), mm_per_px=0.074) as src:
        found = [f.index for f in src.frames() if f.index <= 130 and eng.process(f).needle is not None]
    assert found == []
