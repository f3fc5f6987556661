"""The record commands: ``echosclero export``, ``handout``, ``attach`` and ``dicom-receive`` on a record built
through the API; bad input gives one line and exit 2, never a traceback."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import pydicom
import pytest
from interop_seed import make_results, seed_pathway
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from echosclero.cli import main
from echosclero.store.models import AuditEntry


@pytest.fixture(scope="module")
def results():
    return make_results()


def test_export_handout_attach_commands(client, make, auth, results, engine, tmp_path, capsys):
    rec = seed_pathway(client, make, auth, results)
    url = ["--database-url", str(engine.url)]
    sid, pid = str(rec["session_id"]), str(rec["patient_id"])
    assert main(["export", "--session", sid, "--format", "sr", "--out", str(tmp_path / "sr.dcm"), *url]) == 0
    ds = pydicom.dcmread(tmp_path / "sr.dcm")
    assert ds.Modality == "SR" and ds.PatientID == pid
    assert main(["export", "--patient", pid, "--format", "fhir", "--out", str(tmp_path / "b.json"), *url]) == 0
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(json.loads((tmp_path / "b.json").read_text()))
    assert main(["export", "--session", sid, "--format", "pdf", "--out", str(tmp_path / "r.pdf"), *url]) == 0
    assert main(["handout", "--patient", pid, "--session", sid, "--out", str(tmp_path / "h.pdf"), *url]) == 0
    assert (tmp_path / "r.pdf").read_bytes()[:4] == (tmp_path / "h.pdf").read_bytes()[:4] == b"%PDF"
    # a second reflux result into the same exam, by the command line: the finding is updated, not duplicated
    (tmp_path / "r.json").write_text(json.dumps(results["reflux"] | {"reflux_ms": 1234.5}))
    assert main(["attach", str(tmp_path / "r.json"), "--exam", str(rec["exam_id"]), *url]) == 0
    out = capsys.readouterr().out
    assert "attached reflux result" in out and "reflux_ms 1234.5" in out and "SOP Instance UID" in out
    vm = client.get(f"/api/exams/{rec['exam_id']}", headers=auth("physician")).json()["vein_map"]["findings"]
    assert [f["reflux_ms"] for f in vm if f["segment"] == "SFJ"] == [1234.5]
    with OrmSession(engine) as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.method == "CLI")).all()
    assert sorted(r.resource for r in rows) == ["export", "export", "export", "handout", "result"]
    assert all(r.username == "cli" and r.patient_id == rec["patient_id"] for r in rows)


@pytest.mark.parametrize("argv, needle", [
    (["export", "--patient", "1", "--format", "pdf", "--out", "x.pdf"], "--patient exports FHIR only"),
    (["export", "--session", "999", "--format", "pdf", "--out", "x.pdf"], "no session 999"),
    (["export", "--session", "1", "--format", "pdf", "--out", "x.pdf", "--send", "PACS@h:1"],
     "--send sends a DICOM SR"),
    (["handout", "--patient", "999", "--out", "x.pdf"], "no patient 999"),
    (["attach", "missing.json", "--exam", "1"], "no such file: missing.json"),
    (["attach", "bad.json", "--session", "1"], "is not a JSON result"),
    (["dicom-receive", "--allow", "SCANNER", "--forward", "nonsense"], "must read AE_TITLE@HOST:PORT"),
    (["dicom-receive", "--allow", "A" * 17], "is not an AE title"),
])
def test_bad_input_one_line_exit_2(argv, needle, engine, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    assert main([*argv, "--database-url", str(engine.url)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("echosclero: error:") and needle in err[0], err
    assert not (tmp_path / "x.pdf").exists()


def test_help_teaches_with_examples(capsys):
    for cmd in ("export", "handout", "attach", "dicom-receive"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "examples:" in text and f"echosclero {cmd}" in text or cmd == "dicom-receive" and "storescu" in text


def test_sr_bytes_roundtrip_unchanged_on_reexport_of_same_content(client, make, auth, engine, tmp_path):
    """Two exports of a session share study and series (deterministic UIDs) but not the instance."""
    p = make.ready_patient()
    s = make.session(p["id"])
    url = ["--database-url", str(engine.url)]
    for name in ("a.dcm", "b.dcm"):
        assert main(["export", "--session", str(s["id"]), "--format", "sr", "--out", str(tmp_path / name), *url]) == 0
    a, b = (pydicom.dcmread(io.BytesIO((tmp_path / n).read_bytes())) for n in ("a.dcm", "b.dcm"))
    assert (a.StudyInstanceUID, a.SeriesInstanceUID) == (b.StudyInstanceUID, b.SeriesInstanceUID)
    assert a.SOPInstanceUID != b.SOPInstanceUID
    if shutil.which("dciodvfy"):  # an SR without source images is as valid
        out = subprocess.run(["dciodvfy", str(tmp_path / "a.dcm")], capture_output=True, text=True)
        assert not [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")], out.stderr


def test_handout_tells_the_booked_time_on_the_clinics_clock(client, make, auth, engine, tmp_path, monkeypatch, capsys):
    """Appointments are stored in UTC; the patient is told the clinic's time (ECHOSCLERO_CLINIC_TIMEZONE)."""
    from datetime import UTC, datetime, timedelta

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext not installed (Debian poppler-utils; .ci/run installs it)")
    p = make.ready_patient()
    when = (datetime.now(UTC) + timedelta(days=9)).replace(hour=1, minute=30, second=0, microsecond=0)
    r = client.post("/api/appointments", headers=auth("front_desk"),
                    json={"patient_id": p["id"], "kind": "sclerotherapy", "start": when.isoformat()})
    assert r.status_code == 201, r.text
    url = ["--database-url", str(engine.url)]
    monkeypatch.setenv("ECHOSCLERO_CLINIC_TIMEZONE", "Asia/Tokyo")  # UTC+9, no summer time
    assert main(["handout", "--patient", str(p["id"]), "--out", str(tmp_path / "h.pdf"), *url]) == 0
    subprocess.run(["pdftotext", str(tmp_path / "h.pdf"), str(tmp_path / "h.txt")], check=True)
    text = " ".join((tmp_path / "h.txt").read_text().split())
    assert f"Your treatment: {when + timedelta(hours=9):%A %d %B %Y}, 10:30" in text, text[:300]
    monkeypatch.setenv("ECHOSCLERO_CLINIC_TIMEZONE", "Mars/Olympus")
    capsys.readouterr()
    assert main(["handout", "--patient", str(p["id"]), "--out", str(tmp_path / "h2.pdf"), *url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a known time zone" in err[0] and not (tmp_path / "h2.pdf").exists()
