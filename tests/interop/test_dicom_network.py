"""The DICOM receiver against peers no one here wrote: dcmtk's storescu/echoscu send real scanner files
(pydicom-data and itkpocus) to ``echosclero``'s receiver, which files, analyses and forwards them to an Orthanc
server started on loopback; Orthanc's REST API is then asked for every one of them. Malformed and unexpected
data are refused with the right DICOM status and the receiver keeps running.

Ports 9400-9499 (issue 14's range): Orthanc DICOM 9410 / HTTP 9411, the receiver 9412, 9413 for the refusals.
"""

from __future__ import annotations

import copy
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from dicom_peers import need as _need
from dicom_peers import scu_store as _scu_store
from dicom_peers import us_dataset as _us_dataset
from sqlalchemy import select

from echosclero.interop.dicomnet import STATUS, Pacs, Receiver, ReceiverConfig, echo
from echosclero.store.models import AuditEntry, DicomInstance

DATA = Path(__file__).parent.parent / "data" / "itkpocus"
ORTHANC_DICOM, ORTHANC_HTTP, RECEIVER, RECEIVER_2 = 9410, 9411, 9412, 9413
#: Real scanner files of pydicom-data: Aloka (implicit VR), a JPEG 2000 US, an RLE cine, a JPEG colour cine.
PYDICOM_DATA = ["gdcm-US-ALOKA-16.dcm", "US1_J2KR.dcm", "OBXXXX1A_rle_2frame.dcm", "color3d_jpeg_baseline.dcm"]
#: storescu's option that proposes a file's own transfer syntax (dcmtk storescu --help), so it is sent as it is.
STORESCU_TS_OPTION = {
    "1.2.840.10008.1.2": "-xi", "1.2.840.10008.1.2.1": "-xe", "1.2.840.10008.1.2.2": "-xb",
    "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw", "1.2.840.10008.1.2.5": "-xr",
}


def _data_store() -> Path | None:
    spec = importlib.util.find_spec("data_store")  # never pydicom's get_testdata_file: it reaches the network
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if folder.is_dir() else None


@pytest.fixture
def orthanc(orthanc_server):
    return orthanc_server(ORTHANC_DICOM, ORTHANC_HTTP).start()


def _scanner_files(tmp_path: Path) -> list[Path]:
    store = _data_store()
    if store is None:
        pytest.skip("pydicom-data is not installed (dev dependency): no real scanner files to send")
    files = [store / n for n in PYDICOM_DATA if (store / n).is_file()] + sorted(DATA.glob("*.dcm"))
    assert len(files) >= 4, files
    out = tmp_path / "send"
    out.mkdir()
    copies = [Path(shutil.copy(f, out / f.name)) for f in files]
    # the first file is this patient's (record number 1); the others carry their scanners' patient ids
    ds = pydicom.dcmread(copies[0])
    ds.PatientID = "1"
    ds.save_as(copies[0])
    # The Sonoque files hold their SOP Instance UID only in the file meta (0002,0003), not in the data set
    # (0008,0018) where the standard wants it; storescu refuses such files ("missing SOP class (or instance)"),
    # so the UID is copied into the data set with dcmtk's dcmodify, as a PACS administrator would.
    dcmodify = _need("dcmodify")
    for f in copies:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        if "SOPInstanceUID" not in ds:
            uid = str(ds.file_meta.MediaStorageSOPInstanceUID)
            subprocess.run([dcmodify, "-nb", "-i", f"(0008,0018)={uid}", str(f)], check=True, capture_output=True)
    return copies


def test_storescu_to_receiver_forwarded_to_orthanc(record, orthanc, tmp_path, monkeypatch):
    storescu = _need("storescu")
    files = _scanner_files(tmp_path)
    uids = {f.name: str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    lines: list[str] = []
    config = ReceiverConfig(storage_dir=tmp_path / "store", allowed_calling_aes=frozenset({"STORESCU"}),
                            port=RECEIVER, forward_to=orthanc.peer, analyse_frames=3)
    receiver = Receiver(config, record, on_event=lines.append).start()
    try:
        groups: dict[str, list[str]] = {}  # one storescu per transfer syntax, proposing it first
        for f in files:
            ts = str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID)
            groups.setdefault(STORESCU_TS_OPTION.get(ts, "-x="), []).append(str(f))
        for option, group in groups.items():
            run = subprocess.run([storescu, option, "-aet", "STORESCU", "-aec", "ECHOSCLERO", "127.0.0.1",
                                  str(RECEIVER), *group], capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stdout + run.stderr
        assert receiver.wait_idle(180), lines
    finally:
        receiver.stop()
    with record() as db:
        rows = {r.sop_instance_uid: r for r in db.scalars(select(DicomInstance))}
        assert set(rows) == set(uids.values()), lines
        first = rows[uids[files[0].name]]
        assert (first.status, first.patient_id) == ("filed", 1)
        others = [rows[uids[f.name]] for f in files[1:]]
        assert all(r.status == "unmatched" and r.patient_id is None for r in others)
        assert all(r.forwarded_at is not None and r.forward_error is None and r.forward_status == "forwarded"
                   for r in rows.values()), "\n".join(lines)
        for r in rows.values():  # analysed, or the reason it could not be (a file without calibration)
            assert (r.analysis is not None) != (r.analysis_error is not None), r.path
        aloka = rows[uids["gdcm-US-ALOKA-16.dcm"]] if "gdcm-US-ALOKA-16.dcm" in uids else None
        if aloka is not None:  # calibrated by its ultrasound regions: analysed
            assert aloka.analysis is not None and aloka.analysis["n_frames"] == 1, aloka.analysis_error
        cine = rows.get(uids.get("color3d_jpeg_baseline.dcm"))
        if cine is not None:
            assert cine.n_frames == 120
        stored = [Path(r.path) for r in rows.values()]
        assert all(p.is_file() for p in stored)
        audits = db.scalars(select(AuditEntry).where(AuditEntry.resource == "dicom_instance")).all()
        assert len(audits) == len(files) and {a.username for a in audits} == {"dicom:STORESCU"}
    # an SR of the patient's session, exported and sent to the PACS by the command line
    from datetime import date

    from echosclero.cli import main
    from echosclero.store.models import Session

    with record() as db:
        s = Session(patient_id=1, session_date=date.today(), limb="left")
        db.add(s)
        db.commit()
        sid = s.id
    url = str(record.kw["bind"].url)
    monkeypatch.setenv("ECHOSCLERO_DICOM_DIR", str(tmp_path / "sent"))  # where the SR is kept for its retries
    assert main(["export", "--session", str(sid), "--format", "sr", "--out", str(tmp_path / "sr.dcm"),
                 "--send", f"ORTHANC@127.0.0.1:{ORTHANC_DICOM}", "--database-url", url]) == 0
    uids["sr.dcm"] = str(pydicom.dcmread(tmp_path / "sr.dcm").SOPInstanceUID)
    shutil.copy(tmp_path / "sr.dcm", tmp_path / "send" / "sr.dcm")
    # the PACS has every one, whole: same SOP Instance UID and number of frames
    for name, uid in uids.items():
        found = orthanc.find(uid)
        assert len(found) == 1, f"{name} ({uid}) not in Orthanc"
        tags = orthanc.http(f"/instances/{found[0]}/simplified-tags")
        frames = int(pydicom.dcmread(tmp_path / "send" / name, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
        assert int(tags.get("NumberOfFrames", 1) or 1) == frames, name


def test_malformed_and_unexpected_data_refused_receiver_keeps_running(record, tmp_path, monkeypatch):
    echoscu, storescu = _need("echoscu"), _need("storescu")
    lines: list[str] = []
    config = ReceiverConfig(storage_dir=tmp_path / "store", allowed_calling_aes=frozenset({"SCANNER", "ECHOSCU"}),
                            port=RECEIVER_2, analyse=False)
    receiver = Receiver(config, record, on_event=lines.append).start()
    peer = Pacs("ECHOSCLERO", "127.0.0.1", RECEIVER_2)

    def echo_ok() -> bool:
        return subprocess.run([echoscu, "-aet", "ECHOSCU", "-aec", "ECHOSCLERO", "127.0.0.1", str(RECEIVER_2)],
                              capture_output=True, timeout=30).returncode == 0

    try:
        assert echo_ok()
        # a calling AE title that is not on the allow-list: association rejected, no status
        assert echo(peer, calling_ae="INTRUDER") is None
        # a data set without the Patient ID: 0xA900, not stored
        bad = _us_dataset()
        del bad.PatientID
        assert _scu_store(bad, port=RECEIVER_2) == STATUS["mismatch"]
        # a data set whose SOP class is not the one negotiated (a CT object sent in an US context): 0xA900
        def as_ct(ds):
            ct = copy.deepcopy(ds)
            ct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            return ct

        assert _scu_store(_us_dataset(), port=RECEIVER_2, change=as_ct, monkeypatch=monkeypatch) == STATUS["mismatch"]
        monkeypatch.undo()
        # a data set cut short: inside its pixel data (0xC210, cannot understand), or before it, in an earlier
        # element's header (pydicom stops reading there: the image has no pixel data, 0xA900)
        for cut_bytes, status in ((7, "cannot_understand"), (83, "mismatch")):
            assert _scu_store(_us_dataset(), port=RECEIVER_2, truncate=cut_bytes, monkeypatch=monkeypatch) == \
                STATUS[status], (cut_bytes, lines[-1])
            monkeypatch.undo()
        # an SOP class the receiver does not take (CT, from pydicom's own test files): refused at negotiation
        ct_file = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
        run = subprocess.run([storescu, "-R", "-aet", "SCANNER", "-aec", "ECHOSCLERO", "127.0.0.1", str(RECEIVER_2),
                              str(ct_file)], capture_output=True, text=True, timeout=30)
        assert run.returncode != 0 or "no presentation context" in (run.stdout + run.stderr).lower()
        # still running, and a good image is stored after all of it
        assert echo_ok()
        assert _scu_store(_us_dataset(), port=RECEIVER_2) == STATUS["success"]
        assert receiver.wait_idle(30)
    finally:
        receiver.stop()
    with record() as db:
        rows = db.scalars(select(DicomInstance)).all()
    assert len(rows) == 1 and rows[0].status == "filed"  # nothing refused was stored
    assert receiver.counts["refused"] == 4, lines  # PatientID missing, CT in US, two cut short
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file() and p.suffix != ".dcm"]
