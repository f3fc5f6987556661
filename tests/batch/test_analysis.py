"""analyse_source: one source, a fresh engine, frames kept up to a failure when asked."""

from __future__ import annotations

import pytest

from echosclero.batch.analysis import SCHEMA, analyse_source
from echosclero.errors import InputError
from echosclero.sim import open_simulated_source
from echosclero.sources.base import Source, SourceInfo


class FailingSource(Source):
    """The first ``good`` frames of a simulated cine, then a decoding error (a damaged frame)."""

    source_id = "failing.dcm"

    def __init__(self, good: int) -> None:
        self.good = good

    def frames(self):
        sim = open_simulated_source("gsv_injection", seed=3).frames()
        for _ in range(self.good):
            yield next(sim)
        raise InputError("failing.dcm: frame 2 cannot be decoded (JPEG data is corrupt)")

    def info(self) -> SourceInfo:
        return SourceInfo("dicom", self.source_id, n_frames=5, rows=512, cols=512, frame_time_s=0.05, calibrated=True)


def test_document_schema_and_max_frames():
    with open_simulated_source("gsv_injection", seed=3) as src:
        run = analyse_source(src, max_frames=3, progress=False)
    doc = run.document
    assert doc["schema"] == SCHEMA and doc["source"] == "sim:gsv_injection"
    assert [f["index"] for f in doc["frames"]] == [0, 1, 2]
    assert doc["calibration"]["mm_per_px_x"] > 0
    assert run.error is None and run.n_frames == 3 and run.elapsed_s > 0 and run.engine_ms > 0


def test_failure_half_way_raises_or_keeps_the_frames_before():
    with pytest.raises(InputError, match="cannot be decoded"):
        analyse_source(FailingSource(2), progress=False)
    run = analyse_source(FailingSource(2), progress=False, keep_partial=True)
    assert run.n_frames == 2
    assert run.error.startswith("stopped after 2 frame(s): failing.dcm: frame 2 cannot be decoded")


def test_failure_before_any_frame_raises_even_when_keeping_partial():
    with pytest.raises(InputError):
        analyse_source(FailingSource(0), progress=False, keep_partial=True)


def test_each_source_gets_a_fresh_engine():
    with open_simulated_source("gsv_injection", seed=3) as src:
        first = analyse_source(src, max_frames=2, progress=False).document["frames"]
    with open_simulated_source("gsv_injection", seed=3) as src:
        again = analyse_source(src, max_frames=2, progress=False).document["frames"]
    assert first == again  # no state carried from the first run into the second
