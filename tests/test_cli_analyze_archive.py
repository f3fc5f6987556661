"""``echosclero analyze FOLDER``: an archive on Dask (local cluster or a scheduler), summary, bad files listed."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import socket

import pytest

from echosclero.batch.synthetic import write_simulated_archive
from echosclero.cli import main

N_FRAMES = 4


@pytest.fixture(scope="module")
def archive_template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exam")
    paths = write_simulated_archive(folder, n_files=2, n_frames=N_FRAMES, seed=70)
    data = paths[1].read_bytes()
    (folder / "cut.dcm").write_bytes(data[: len(data) - 5000])
    (folder / "noise.bin").write_bytes(bytes(range(256)) * 8)
    return folder


@pytest.fixture
def archive(archive_template, tmp_path):
    folder = tmp_path / "exam"
    shutil.copytree(archive_template, folder)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler():
    """A Dask cluster in this process (threads): the address a user would give with --scheduler."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster:
        yield cluster.scheduler_address


def test_dask_scheduler_writes_json_summary_and_lists_bad_files(archive, scheduler, tmp_path, capsys):
    out = tmp_path / "results"
    combined = tmp_path / "all.json"
    rc = main(["analyze", str(archive), "--scheduler", scheduler, "--out-dir", str(out), "--json", str(combined)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""  # no progress bar (not a terminal), no Dask log lines
    lines = captured.out.splitlines()
    assert lines[0].split()[:3] == ["file", "status", "frames"]
    assert [line.split()[:2] for line in lines[1:5]] == [
        ["cine_000.dcm", "ok"], ["cine_001.dcm", "ok"], ["cut.dcm", "failed"], ["noise.bin", "failed"]]
    assert f"Dask scheduler {scheduler} (2 workers)" in lines[-1]
    assert f"2 of 4 files analysed, {2 * N_FRAMES} frames" in lines[-1] and "2 failed, 0 partial" in lines[-1]
    assert sorted(p.name for p in out.iterdir()) == ["cine_000.json", "cine_001.json", "summary.csv", "summary.md"]
    doc = json.loads((out / "cine_001.json").read_text())
    assert doc["schema"] == "echosclero.analysis/1" and len(doc["frames"]) == N_FRAMES
    assert doc["calibration"]["source"] == "dicom"
    assert [f["index"] for f in doc["frames"]] == list(range(N_FRAMES))
    rows = {r["name"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows["noise.bin"]["reason"] == "not a DICOM or video file"
    assert rows["cut.dcm"]["status"] == "failed" and "truncated" in rows["cut.dcm"]["reason"]
    assert rows["cine_000.dcm"]["status"] == "ok" and rows["cine_000.dcm"]["frames"] == str(N_FRAMES)
    everything = json.loads(combined.read_text())
    assert everything["schema"] == "echosclero.analysis/1"
    assert everything["files"][1]["frames"] == doc["frames"]
    assert {e["name"] for e in everything["errors"]} == {"cut.dcm", "noise.bin"}


def test_scheduler_with_options_and_forced_progress_bar(archive, scheduler, tmp_path, capsys):
    out = tmp_path / "results"
    rc = main(["analyze", str(archive), "--scheduler", scheduler, "--out-dir", str(out), "--max-frames", "2",
               "--progress"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "4/4" in captured.err  # the progress bar, forced on, counts files
    assert len(json.loads((out / "cine_000.json").read_text())["frames"]) == 2


@pytest.mark.slow
def test_default_local_cluster_of_worker_processes(archive, tmp_path, capfd):
    """The default: a local Dask cluster of processes (spawned; slow to start on a busy machine)."""
    out = tmp_path / "results"
    rc = main(["analyze", str(archive), "--workers", "2", "--out-dir", str(out)])
    captured = capfd.readouterr()  # file descriptors: what the worker processes print too
    assert rc == 0, captured.err
    assert captured.err == ""  # worker processes log nothing
    assert "local Dask cluster (2 worker processes)" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["cine_000.json", "cine_001.json", "summary.csv", "summary.md"]
    rows = {r["name"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert [r["status"] for r in rows.values()] == ["ok", "ok", "failed", "failed"]


def test_unreachable_scheduler_one_line_exit_2(archive, capsys):
    port = _free_port()
    rc = main(["analyze", str(archive), "--scheduler", f"tcp://127.0.0.1:{port}", "--scheduler-timeout-s", "2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1
    assert err.startswith(f"echosclero: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")


def test_no_file_analysable_is_an_error_but_the_summary_is_written(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(b"garbage")
    (folder / "b.txt").write_text("notes")
    out = tmp_path / "results"
    rc = main(["analyze", str(folder), "--out-dir", str(out), "--workers", "1"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.count("\n") == 1
    assert "no file could be analysed (a.dcm: not a DICOM or video file and 1 more)" in captured.err
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["name"], r["status"]) for r in rows] == [("a.dcm", "failed"), ("b.txt", "failed")]


def test_empty_folder_and_misplaced_options(tmp_path, archive, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["analyze", str(empty)]) == 2
    assert "holds no file to analyse" in capsys.readouterr().err
    assert main(["analyze", "sim:gsv_injection", "--workers", "2"]) == 2
    assert "--workers: only for folders" in capsys.readouterr().err
    assert main(["analyze", str(archive), "--duration-s", "3"]) == 2
    assert "--duration-s: only for live streams" in capsys.readouterr().err
    assert main(["analyze", str(archive), "--video", str(tmp_path / "v.mp4"), "--workers", "2"]) == 2
    assert "--video writes one annotated video in this process" in capsys.readouterr().err


def test_workers_1_runs_in_process_with_the_old_folder_json(archive, tmp_path, capsys):
    rc = main(["analyze", str(archive), "--workers", "1", "--json", "-"])
    captured = capsys.readouterr()
    assert rc == 0
    doc = json.loads(captured.out)  # stdout holds the document only
    assert doc["schema"] == "echosclero.analysis/1" and doc["frames"] == []
    assert len(doc["files"]) == 2 and len(doc["errors"]) == 2
    assert [r["status"] for r in doc["summary"]] == ["ok", "ok", "failed", "failed"]
