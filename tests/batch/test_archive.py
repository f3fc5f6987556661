"""analyse_archive in this process and on a Dask cluster: per-file JSON, summary, bad files listed."""

from __future__ import annotations

import csv
import json
import logging

import pytest

from echosclero.batch.archive import ArchiveOptions, analyse_archive, output_names
from echosclero.errors import InputError
from echosclero.sources.open import open_file

from .conftest import N_FRAMES

GOOD = ["cine_000.dcm", "cine_001.dcm", "cine_002.dcm"]


def _check_result(result, out_dir):
    by_name = {o.name: o for o in result.outcomes}
    assert [o.name for o in result.outcomes] == sorted(GOOD + ["garbage.dcm", "truncated.dcm"])
    assert [by_name[n].status for n in GOOD] == ["ok"] * 3
    assert by_name["garbage.dcm"].status == "failed"
    assert by_name["garbage.dcm"].reason == "not a DICOM or video file"
    assert by_name["truncated.dcm"].status == "failed"
    assert "truncated" in by_name["truncated.dcm"].reason and "\n" not in by_name["truncated.dcm"].reason
    assert result.n_analysed == 3 and result.n_frames == 3 * N_FRAMES
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["cine_000.json", "cine_001.json", "cine_002.json", "summary.csv", "summary.md"]
    rows = list(csv.DictReader((out_dir / "summary.csv").open()))
    assert [r["name"] for r in rows] == [o.name for o in result.outcomes]
    row = {r["name"]: r for r in rows}
    assert row["cine_001.dcm"]["frames"] == str(N_FRAMES) and row["cine_001.dcm"]["output"] == "cine_001.json"
    assert float(row["cine_001.dcm"]["ms_per_frame"]) > 0
    assert row["garbage.dcm"]["status"] == "failed" and row["garbage.dcm"]["reason"] == "not a DICOM or video file"
    assert row["garbage.dcm"]["frames"] == "0" and row["garbage.dcm"]["output"] == ""
    md = (out_dir / "summary.md").read_text()
    assert "| truncated.dcm | failed |" in md
    return {n: json.loads((out_dir / f"{n[:-4]}.json").read_text()) for n in GOOD}


def _direct(path):
    from echosclero.batch.analysis import analyse_source

    with open_file(path) as src:
        return analyse_source(src, progress=False).document


def test_in_process_run_matches_single_file_analysis(archive, tmp_path):
    out = tmp_path / "out"
    result = analyse_archive(archive, out_dir=out, workers=1, progress=False)
    assert result.executor == "in this process"
    docs = _check_result(result, out)
    for name, doc in docs.items():
        assert doc["schema"] == "echosclero.analysis/1"
        assert doc == _direct(archive / name)  # same engine, same document as `analyze FILE`
    # the summary counts what the documents hold
    row = {r.name: r for r in result.summary}["cine_000.dcm"]
    ids = {v["id"] for f in docs["cine_000.dcm"]["frames"] for v in f["vessels"]}
    assert sum(row.vessels_by_kind.values()) == len(ids) > 0


def test_dask_cluster_gives_the_same_documents(archive, tmp_path):
    distributed = pytest.importorskip("distributed")
    out_dask, out_local = tmp_path / "dask", tmp_path / "local"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster:
        result = analyse_archive(archive, out_dir=out_dask, scheduler=cluster.scheduler_address, progress=False,
                                 keep_documents=True)
    assert result.executor.startswith("Dask scheduler") and result.n_workers == 2
    docs = _check_result(result, out_dask)
    local = analyse_archive(archive, out_dir=out_local, workers=1, progress=False)
    assert docs == _check_result(local, out_local)
    combined = result.document()
    assert [d["source"].rsplit("/", 1)[-1] for d in combined["files"]] == GOOD
    assert [e["name"] for e in combined["errors"]] == ["garbage.dcm", "truncated.dcm"]
    # documents ran on the workers, each a task: both workers were used or at least one reported back
    assert all(o.worker for o in result.outcomes if o.status == "ok")


def test_options_reach_the_tasks(archive, tmp_path):
    result = analyse_archive(archive, workers=1, progress=False, keep_documents=True,
                             options=ArchiveOptions(max_frames=2, contours=True))
    doc = next(o.document for o in result.outcomes if o.name == "cine_000.dcm")
    assert len(doc["frames"]) == 2
    assert any("contour_mm" in v for f in doc["frames"] for v in f["vessels"])


def test_uncalibrated_file_needs_mm_per_px(archive, tmp_path, write_uncalibrated):
    write_uncalibrated(archive / "uncal.dcm")
    result = analyse_archive(archive, workers=1, progress=False)
    uncal = {o.name: o for o in result.outcomes}["uncal.dcm"]
    assert uncal.status == "failed" and "--mm-per-px" in uncal.reason
    result = analyse_archive(archive, workers=1, progress=False, options=ArchiveOptions(mm_per_px=0.1))
    assert {o.name: o for o in result.outcomes}["uncal.dcm"].status == "ok"


def test_bad_arguments_are_refused(archive, tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        analyse_archive(tmp_path / "missing")
    with pytest.raises(InputError, match="--workers"):
        analyse_archive(archive, workers=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot create output folder"):
        analyse_archive(archive, out_dir=tmp_path / "file" / "sub", workers=1)


def test_unreachable_scheduler_is_one_clear_error(archive, free_port):
    with pytest.raises(InputError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:\d+ \(") as info:
        analyse_archive(archive, scheduler=f"tcp://127.0.0.1:{free_port}", scheduler_timeout_s=2)
    assert "\n" not in str(info.value) and "--scheduler" in str(info.value)


def test_output_names():
    names = ["a.dcm", "b.DCM", "1.2.840.113619.2.55", "clip.mp4", "c.dcm", "c.mp4", "sub/d.dcm"]
    assert output_names(names) == {
        "a.dcm": "a.json",
        "b.DCM": "b.json",
        "1.2.840.113619.2.55": "1.2.840.113619.2.55.json",  # a UID file name is kept whole
        "clip.mp4": "clip.json",
        "c.dcm": "c.dcm.json",  # two files would both give c.json
        "c.mp4": "c.mp4.json",
        "sub/d.dcm": "sub__d.json",
    }


def test_tasks_and_outcomes_pickle_by_reference():
    """What a remote Dask worker receives and sends back must survive pickling."""
    import pickle

    from echosclero.batch.archive import FileOutcome, analyse_file

    assert pickle.loads(pickle.dumps(analyse_file)) is analyse_file
    options = ArchiveOptions(mm_per_px=0.1, max_frames=3, contours=True)
    assert pickle.loads(pickle.dumps(options)) == options
    outcome = FileOutcome("a.dcm", "partial", "stopped", document={"frames": [{"index": 0}]}, elapsed_s=1.0)
    assert pickle.loads(pickle.dumps(outcome)) == outcome


def test_a_file_failing_half_way_is_partial_with_its_frames(archive, tmp_path, monkeypatch):
    import echosclero.sources.open as open_module

    from .test_analysis import FailingSource

    real_open_file = open_module.open_file

    def open_file(path, **kwargs):  # cine_001 decodes 2 frames, then a damaged frame
        return FailingSource(2) if str(path).endswith("cine_001.dcm") else real_open_file(path, **kwargs)

    monkeypatch.setattr(open_module, "open_file", open_file)
    out = tmp_path / "out"
    result = analyse_archive(archive, out_dir=out, workers=1, progress=False, keep_documents=True)
    partial = {o.name: o for o in result.outcomes}["cine_001.dcm"]
    assert partial.status == "partial" and partial.n_frames == 2
    assert partial.reason.startswith("stopped after 2 frame(s): ")
    assert len(json.loads((out / "cine_001.json").read_text())["frames"]) == 2  # its frames are kept
    row = {r.name: r for r in result.summary}["cine_001.dcm"]
    assert (row.status, row.frames) == ("partial", 2)
    assert {"name": "cine_001.dcm", "reason": partial.reason} in result.document()["errors"]
    assert result.n_analysed == 3
