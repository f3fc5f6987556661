"""The forwarding queue and patient matching against a real PACS: Orthanc is stopped while images and SRs are
sent, so that they are queued with their error; it is started, and the receiver's own loop (images), the
``dicom-forward`` command and the API (SRs) deliver them; Orthanc's REST API is then asked for each one.
Objects are filed by record number, by a stored MRN (Patient ID or Other Patient IDs), or queued unmatched
and filed by hand (command and API, with roles and audit).

Ports 9420-9429 (issue 14's range), one set per test: Orthanc DICOM/HTTP 9420/9421 and receiver 9422; Orthanc
9424/9425; Orthanc 9426/9427 and receiver 9423. The module's tests run on one xdist worker (``--dist loadgroup``).
"""

from __future__ import annotations

import time
from datetime import date

import pydicom
import pytest
from dicom_peers import scu_store, us_dataset
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset
from sqlalchemy import select

from echosclero.cli import main
from echosclero.interop.dicomnet import STATUS, Pacs, Receiver, ReceiverConfig
from echosclero.interop.dicomqueue import RetryPolicy
from echosclero.store.models import AuditEntry, DicomInstance, Patient, Session

ORTHANC_DICOM, ORTHANC_HTTP, RECEIVER, ORTHANC_2_DICOM, ORTHANC_2_HTTP = 9420, 9421, 9422, 9424, 9425
ORTHANC_3_DICOM, ORTHANC_3_HTTP, RECEIVER_3 = 9426, 9427, 9423
pytestmark = pytest.mark.xdist_group("dicom-forwarding")


def _wait(check, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout_s:g} s")


def _rows(record) -> dict[str, DicomInstance]:
    with record() as db:
        return {r.sop_instance_uid: r for r in db.scalars(select(DicomInstance))}


def test_retry_policy_doubles_to_a_cap_and_refuses_nonsense():
    p = RetryPolicy(max_attempts=5, base_s=60, max_wait_s=3600)
    assert [p.wait_s(n) for n in (1, 2, 3, 4, 7, 8)] == [60, 120, 240, 480, 3600, 3600]
    for bad in ({"max_attempts": 0}, {"base_s": 0}, {"base_s": 100, "max_wait_s": 10}):
        with pytest.raises(Exception, match="must be"):
            RetryPolicy(**bad)


def test_receiver_queues_while_pacs_is_down_then_its_loop_delivers(record, orthanc_server, tmp_path, capsys):
    with record() as db:
        db.add(Patient(family_name="Roe", given_name="Rita", birth_date=date(1962, 3, 4), sex="female",
                       mrn="H-778812"))
        db.commit()
    pacs = orthanc_server(ORTHANC_DICOM, ORTHANC_HTTP)  # made, not started: the PACS is down
    lines: list[str] = []
    policy = {"retry_base_s": 0.4, "retry_poll_s": 0.1, "max_forward_attempts": 50}
    config = ReceiverConfig(storage_dir=tmp_path / "store", allowed_calling_aes=frozenset({"SCANNER"}), port=RECEIVER,
                            forward_to=pacs.peer, analyse=False, **policy)
    other = Dataset()
    other.PatientID = "H-778812"
    sent = {  # Patient ID (and Other Patient IDs) -> the patient and the way it must be matched
        "by_mrn": (us_dataset("H-778812"), 2, "mrn"),
        "by_other_id": (us_dataset("SCAN-0042", OtherPatientIDsSequence=[other]), 2, "mrn"),
        "by_number": (us_dataset("1"), 1, "record_number"),
        "disagree": (us_dataset("1", OtherPatientIDsSequence=[other]), None, None),  # patient 1, or 2 by MRN
        "nobody": (us_dataset("XYZ-1"), None, None),
    }
    receiver = Receiver(config, record, on_event=lines.append).start()
    try:
        for ds, _, _ in sent.values():
            assert scu_store(ds, port=RECEIVER) == STATUS["success"]
        uids = {k: str(ds.SOPInstanceUID) for k, (ds, _, _) in sent.items()}
        # every one stored and filed (or queued), its forward failed and is kept with the error
        rows = _wait(lambda: (r := _rows(record)) and len(r) == 5 and all(x.forward_attempts >= 1 for x in r.values())
                     and r, 30, "five objects tried once")
        for key, (_, patient, how) in sent.items():
            r = rows[uids[key]]
            assert (r.patient_id, r.matched_by, r.status) == (patient, how, "filed" if patient else "unmatched"), key
            assert r.forward_status == "retrying" and "no answer" in r.forward_error, (key, r.forward_error)
            assert r.forward_peer == str(pacs.peer) and r.next_forward_at is not None
        assert any("record number and MRN disagree" in ln for ln in lines), lines
        # the receiver's loop keeps trying, waiting longer after each failure
        _wait(lambda: all(x.forward_attempts >= 3 for x in _rows(record).values()), 30, "three attempts each")
        with record() as db:
            tries = db.scalars(select(AuditEntry).where(AuditEntry.resource == "dicom_forward",
                                                        AuditEntry.resource_id == str(rows[uids["by_mrn"]].id))
                               .order_by(AuditEntry.id)).all()
        gaps = [(b.at - a.at).total_seconds() for a, b in zip(tries, tries[1:], strict=False)]
        assert [t.detail["attempt"] for t in tries] == list(range(1, len(tries) + 1))
        assert all(g >= 0.4 * 2 ** i - 0.05 for i, g in enumerate(gaps[:2])), gaps  # 0.4 s, 0.8 s, ...
        assert {t.username for t in tries} == {"dicom:ECHOSCLERO"}
        # the PACS comes back: the loop delivers every one by itself, and Orthanc has them
        pacs.start()
        _wait(lambda: all(x.forward_status == "forwarded" for x in _rows(record).values()), 60, "all forwarded")
    finally:
        receiver.stop()
    for key, uid in uids.items():
        assert len(pacs.find(uid)) == 1, key
    rows = _rows(record)
    assert all(r.forward_error is None and r.forwarded_at is not None and r.next_forward_at is None
               for r in rows.values())
    # the unmatched ones, filed by hand from the command line
    url = ["--database-url", str(record.kw["bind"].url)]
    assert main(["dicom-file", "--list", *url]) == 0
    out = capsys.readouterr().out
    assert "2 unmatched" in out and "XYZ-1" in out
    nobody = rows[uids["nobody"]]
    assert main(["dicom-file", str(nobody.id), "--patient", "2", *url]) == 0
    assert f"filed instance {nobody.id}" in capsys.readouterr().out
    with record() as db:
        r = db.get(DicomInstance, nobody.id)
        assert (r.status, r.patient_id, r.matched_by) == ("filed", 2, "hand")
        a = db.scalars(select(AuditEntry).where(AuditEntry.resource == "dicom_instance",
                                                AuditEntry.method == "CLI")).one()
        assert a.patient_id == 2 and a.detail["dicom_patient_id"] == "XYZ-1"
    for argv, needle in ((["dicom-file", "999", "--patient", "1"], "no DICOM instance 999"),
                         (["dicom-file", str(nobody.id), "--patient", "999"], "no patient 999"),
                         (["dicom-file", str(nobody.id)], "give --list, or an instance")):
        assert main([*argv, *url]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


def _session(record) -> int:
    with record() as db:
        s = Session(patient_id=1, session_date=date.today(), limb="left")
        db.add(s)
        db.commit()
        return s.id


def test_sr_send_queued_gives_up_after_max_attempts_and_is_requeued(record, orthanc_server, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setenv("ECHOSCLERO_DICOM_DIR", str(tmp_path / "dicom"))
    url = ["--database-url", str(record.kw["bind"].url)]
    pacs = orthanc_server(ORTHANC_2_DICOM, ORTHANC_2_HTTP)
    sid = _session(record)
    # the PACS is down: the SR is written, kept and queued; exit 1 says it is not delivered
    assert main(["export", "--session", str(sid), "--format", "sr", "--out", str(tmp_path / "sr.dcm"),
                 "--send", str(pacs.peer), *url]) == 1
    out = capsys.readouterr().out
    assert "failed (attempt 1)" in out and "dicom-forward --list" in out
    uid = str(pydicom.dcmread(tmp_path / "sr.dcm").SOPInstanceUID)
    inst = _rows(record)[uid]
    assert (inst.forward_status, inst.forward_attempts, inst.matched_by, inst.patient_id) == (
        "retrying", 1, "export", 1)
    assert pydicom.dcmread(inst.path).SOPInstanceUID == uid  # the queued copy lives in the DICOM store
    assert main(["dicom-forward", "--list", *url]) == 0
    assert f"{inst.id}\tretrying\t1\t" in capsys.readouterr().out
    # its wait (60 s) is not over: --retry leaves it
    assert main(["dicom-forward", "--retry", *url]) == 0
    assert "0 forwarded, 0 failed" in capsys.readouterr().out and _rows(record)[uid].forward_attempts == 1
    # --now tries it; with at most 2 attempts this is the last: final state "failed"
    assert main(["dicom-forward", "--retry", "--now", "--max-attempts", "2", *url]) == 1
    assert "gave up" in capsys.readouterr().out
    r = _rows(record)[uid]
    assert (r.forward_status, r.forward_attempts, r.next_forward_at) == ("failed", 2, None) and r.forward_error
    # a failed one is left alone by every retry, even once the PACS is back
    pacs.start()
    assert main(["dicom-forward", "--retry", "--now", *url]) == 0
    assert _rows(record)[uid].forward_attempts == 2 and pacs.find(uid) == []
    assert main(["dicom-forward", "--list", "--status", "failed", *url]) == 0
    assert "1 forward(s)" in capsys.readouterr().out
    # re-armed by hand: delivered
    assert main(["dicom-forward", "--requeue", str(r.id), *url]) == 0
    assert f"forwarded {uid} to {pacs.peer}" in capsys.readouterr().out
    r = _rows(record)[uid]
    assert (r.forward_status, r.forward_attempts, r.forward_error) == ("forwarded", 1, None)
    assert len(pacs.find(uid)) == 1
    with record() as db:
        a = db.scalars(select(AuditEntry).where(AuditEntry.resource == "dicom_forward").order_by(AuditEntry.id)).all()
    assert [x.detail["status"] for x in a] == ["retrying", "failed", "forwarded"]
    assert {x.username for x in a} == {"cli"} and {x.patient_id for x in a} == {1}
    for argv, needle in ((["dicom-forward", "--requeue", str(r.id)], "delivered to"),
                         (["dicom-forward", "--requeue", "999"], "no DICOM instance 999"),
                         (["dicom-forward", "--retry", "--to", "nonsense"], "must read AE_TITLE@HOST:PORT"),
                         (["dicom-forward", "--retry", "--max-attempts", "0"], "must be at least 1")):
        assert main([*argv, *url]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("echosclero: error:") and needle in err[0], err


@pytest.fixture
def api(record, tmp_path):
    """The API on the test record with the PACS of ECHOSCLERO_PACS; one user per role; a factory of apps."""
    from echosclero.api.app import create_app
    from echosclero.api.security import create_token, hash_password, use_fast_hashing
    from echosclero.api.settings import Settings
    from echosclero.clinic.roles import Role
    from echosclero.store.models import User

    use_fast_hashing()
    secret, engine = "test-secret-key-0123456789-abcdefghijklmnop", record.kw["bind"]
    ids = {}
    with record() as db:
        for role in Role:
            u = User(username=role.value, role=role.value, password_hash=hash_password("x" * 12), active=True)
            db.add(u)
            db.flush()
            ids[role.value] = u.id
        db.commit()

    def client(pacs: str) -> TestClient:
        settings = Settings(database_url=str(engine.url), secret_key=secret, pacs=pacs,
                            dicom_dir=str(tmp_path / "dicom"))
        return TestClient(create_app(settings, engine=engine, migrate=False))

    def auth(role: str) -> dict:
        return {"Authorization": "Bearer " + create_token(user_id=ids[role], role=role, secret=secret, minutes=5)}

    return client, auth


def test_api_sends_sr_to_the_pacs_queues_it_when_down_and_files_by_mrn(api, record, orthanc_server, tmp_path):
    make_client, auth = api
    pacs = orthanc_server(ORTHANC_3_DICOM, ORTHANC_3_HTTP)
    sid = _session(record)
    with make_client(str(pacs.peer)) as c:
        # patients carry an MRN, one patient each
        r = c.post("/api/patients", headers=auth("front_desk"), json={
            "family_name": "Roe", "given_name": "Rita", "birth_date": "1962-03-04", "sex": "female", "mrn": "H-1"})
        assert r.status_code == 201 and r.json()["mrn"] == "H-1", r.text
        rita = r.json()["id"]
        r = c.post("/api/patients", headers=auth("front_desk"), json={
            "family_name": "Poe", "given_name": "Pia", "birth_date": "1980-01-02", "sex": "female", "mrn": "H-1"})
        assert r.status_code == 409 and "already patient" in r.json()["message"]
        r = c.patch("/api/patients/1", headers=auth("front_desk"), json={"mrn": "H-1"})
        assert r.status_code == 409
        r = c.patch("/api/patients/1", headers=auth("front_desk"), json={"mrn": "bad\\mrn"})
        assert r.status_code == 422
        assert c.patch("/api/patients/1", headers=auth("front_desk"), json={"mrn": "H-2"}).json()["mrn"] == "H-2"
        # the PACS is down: the SR is kept and queued (202), with the error
        for role in ("nurse", "front_desk", "sonographer"):
            assert c.post(f"/api/sessions/{sid}/send-sr", headers=auth(role)).status_code == 403, role
        r = c.post(f"/api/sessions/{sid}/send-sr", headers=auth("physician"))
        assert r.status_code == 202, r.text
        queued = r.json()
        assert queued["forward_status"] == "retrying" and "no answer" in queued["forward_error"]
        assert (queued["patient_id"], queued["matched_by"], queued["forward_attempts"]) == (1, "export", 1)
        q = c.get("/api/dicom/forwarding", headers=auth("nurse"))
        assert q.status_code == 200 and [x["id"] for x in q.json()] == [queued["id"]]
        assert c.get("/api/dicom/forwarding", headers=auth("front_desk")).status_code == 403
        # the PACS is back: forwarded now by hand (exam:write), Orthanc has it
        assert c.post(f"/api/dicom/instances/{queued['id']}/forward", headers=auth("nurse")).status_code == 403
        r = c.post(f"/api/dicom/instances/{queued['id']}/forward", headers=auth("sonographer"))
        assert r.status_code == 202 and (r.json()["forward_status"], r.json()["forward_attempts"]) == ("retrying", 2)
        pacs.start()
        r = c.post(f"/api/dicom/instances/{queued['id']}/forward", headers=auth("sonographer"))
        assert r.status_code == 201 and r.json()["forward_status"] == "forwarded", r.text
        assert len(pacs.find(queued["sop_instance_uid"])) == 1
        r = c.post(f"/api/dicom/instances/{queued['id']}/forward", headers=auth("sonographer"))
        assert r.status_code == 409 and "already" in r.json()["message"]
        # with the PACS up, the SR goes at once (201)
        r = c.post(f"/api/sessions/{sid}/send-sr", headers=auth("physician"))
        assert r.status_code == 201 and r.json()["forward_status"] == "forwarded"
        assert len(pacs.find(r.json()["sop_instance_uid"])) == 1
        sr = pydicom.dcmread(_stored_path(record, r.json()["id"]))  # the copy kept in the DICOM store
        assert sr.Modality == "SR" and sr.PatientID == "1" and sr.SOPInstanceUID == r.json()["sop_instance_uid"]
        assert c.get("/api/dicom/forwarding", headers=auth("nurse")).json() == []
        done = c.get("/api/dicom/forwarding", params={"status": "forwarded"}, headers=auth("nurse")).json()
        assert len(done) == 2
        assert c.post("/api/sessions/999999/send-sr", headers=auth("physician")).status_code == 404
    # received objects, matched by the MRN given through the API, or filed by hand from the unmatched queue
    receiver = Receiver(ReceiverConfig(storage_dir=tmp_path / "store",
                                       allowed_calling_aes=frozenset({"SCANNER"}), port=RECEIVER_3, analyse=False),
                        record).start()
    try:
        by_mrn, stray = us_dataset("H-1"), us_dataset("WARD-7")
        assert scu_store(by_mrn, port=RECEIVER_3) == scu_store(stray, port=RECEIVER_3) == STATUS["success"]
        assert receiver.wait_idle(30)
    finally:
        receiver.stop()
    rows = _rows(record)
    assert (rows[by_mrn.SOPInstanceUID].patient_id, rows[by_mrn.SOPInstanceUID].matched_by) == (rita, "mrn")
    assert rows[by_mrn.SOPInstanceUID].forward_status is None  # no PACS given to this receiver
    stray_id = rows[stray.SOPInstanceUID].id
    with make_client("") as c:
        un = c.get("/api/dicom/unmatched", headers=auth("sonographer"))
        assert un.status_code == 200 and [x["dicom_patient_id"] for x in un.json()] == ["WARD-7"]
        assert c.post(f"/api/dicom/instances/{stray_id}/file", json={"patient_id": rita},
                      headers=auth("nurse")).status_code == 403
        r = c.post(f"/api/dicom/instances/{stray_id}/file", json={"patient_id": 999999}, headers=auth("sonographer"))
        assert r.status_code == 404
        r = c.post(f"/api/dicom/instances/{stray_id}/file", json={"patient_id": rita}, headers=auth("sonographer"))
        assert r.status_code == 200 and (r.json()["status"], r.json()["matched_by"]) == ("filed", "hand")
        assert c.get("/api/dicom/unmatched", headers=auth("sonographer")).json() == []
        # no PACS configured: sending is refused with the way out, nothing is queued
        r = c.post(f"/api/sessions/{sid}/send-sr", headers=auth("physician"))
        assert r.status_code == 409 and "ECHOSCLERO_PACS" in r.json()["message"]
    with record() as db:
        a = db.scalars(select(AuditEntry).where(AuditEntry.resource.in_(("dicom_forward", "dicom_instance")),
                                                AuditEntry.method != "C-STORE").order_by(AuditEntry.id)).all()
    assert [(x.username, x.action, x.resource) for x in a] == [
        ("physician", "create", "dicom_instance"), ("physician", "send", "dicom_forward"),
        ("sonographer", "send", "dicom_forward"), ("sonographer", "send", "dicom_forward"),
        ("physician", "create", "dicom_instance"), ("physician", "send", "dicom_forward"),
        ("sonographer", "update", "dicom_instance")]
    assert a[-1].patient_id == rita and a[-1].detail["filed_from"] is None


def _stored_path(record, inst_id: int):
    with record() as db:
        return db.get(DicomInstance, inst_id).path


def test_receiver_config_refuses_bad_retry_settings(tmp_path):
    for bad, needle in (({"max_forward_attempts": 0}, "at least 1"), ({"retry_poll_s": 0}, "must be positive"),
                        ({"retry_base_s": -1}, "must be positive")):
        with pytest.raises(Exception, match=needle):
            ReceiverConfig(storage_dir=tmp_path, allowed_calling_aes=frozenset({"A"}), forward_to=Pacs("P", "h", 1),
                           **bad)
