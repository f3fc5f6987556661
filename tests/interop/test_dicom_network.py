"""The DICOM receiver against peers no one here wrote: dcmtk's storescu/echoscu send real scanner files
(pydicom-data and itkpocus) to ``echosclero``'s receiver, which files, analyses and forwards them to an Orthanc
server started on loopback; Orthanc's REST API is then asked for every one of them. Malformed and unexpected
data are refused with the right DICOM status and the receiver keeps running.

Ports 9400-9499 (issue 14's range): Orthanc DICOM 9410 / HTTP 9411, the receiver 9412, 9413 for the refusals.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from echosclero.interop.dicomnet import STATUS, Pacs, Receiver, ReceiverConfig, echo
from echosclero.store.db import make_engine, make_sessionmaker
from echosclero.store.migrate import upgrade
from echosclero.store.models import AuditEntry, DicomInstance, Patient

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
ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)


def _data_store() -> Path | None:
    spec = importlib.util.find_spec("data_store")  # never pydicom's get_testdata_file: it reaches the network
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if folder.is_dir() else None


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian package dcmtk; .ci/run installs it)")
    return path


@pytest.fixture
def record(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'clinic.db'}")
    upgrade(engine)
    with OrmSession(engine) as db:
        from datetime import date

        db.add(Patient(family_name="Doe", given_name="Jane", birth_date=date(1970, 5, 1), sex="female", weight_kg=70))
        db.commit()
    yield make_sessionmaker(engine)
    engine.dispose()


def _http(path: str, body: dict | None = None):
    req = urllib.request.Request(f"http://127.0.0.1:{ORTHANC_HTTP}{path}",
                                 data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def orthanc(tmp_path):
    if ORTHANC is None:
        pytest.skip("Orthanc not installed (Debian package orthanc; .ci/run installs it): no PACS to forward to")
    folder = tmp_path / "orthanc"
    folder.mkdir()
    config = {
        "Name": "echosclero-test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
        "HttpServerEnabled": True, "HttpPort": ORTHANC_HTTP, "DicomServerEnabled": True, "DicomPort": ORTHANC_DICOM,
        "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [],
        "DicomCheckCalledAet": True, "UnknownSopClassAccepted": False, "DicomModalities": {},
        "DicomAlwaysAllowStore": True, "ConcurrentJobs": 1, "HttpsVerifyPeers": False,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                _http("/system")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"Orthanc exited: {(folder / 'orthanc.log').read_text()[-2000:]}")
                time.sleep(0.1)
        else:
            pytest.fail("Orthanc did not answer on its HTTP port within 30 s")
        yield Pacs("ORTHANC", "127.0.0.1", ORTHANC_DICOM)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


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


def test_storescu_to_receiver_forwarded_to_orthanc(record, orthanc, tmp_path):
    storescu = _need("storescu")
    files = _scanner_files(tmp_path)
    uids = {f.name: str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    lines: list[str] = []
    config = ReceiverConfig(storage_dir=tmp_path / "store", allowed_calling_aes=frozenset({"STORESCU"}),
                            port=RECEIVER, forward_to=orthanc, analyse_frames=3)
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
        assert all(r.forwarded_at is not None and r.forward_error is None for r in rows.values()), "\n".join(lines)
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
    assert main(["export", "--session", str(sid), "--format", "sr", "--out", str(tmp_path / "sr.dcm"),
                 "--send", f"ORTHANC@127.0.0.1:{ORTHANC_DICOM}", "--database-url", url]) == 0
    uids["sr.dcm"] = str(pydicom.dcmread(tmp_path / "sr.dcm").SOPInstanceUID)
    shutil.copy(tmp_path / "sr.dcm", tmp_path / "send" / "sr.dcm")
    # the PACS has every one, whole: same SOP Instance UID and number of frames
    for name, uid in uids.items():
        found = _http("/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": uid}})
        assert len(found) == 1, f"{name} ({uid}) not in Orthanc"
        tags = _http(f"/instances/{found[0]}/simplified-tags")
        frames = int(pydicom.dcmread(tmp_path / "send" / name, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
        assert int(tags.get("NumberOfFrames", 1) or 1) == frames, name


def _scu_store(ds, *, port: int, calling: str = "SCANNER", truncate: int = 0, change=None, monkeypatch=None):
    """C-STORE ``ds``; ``truncate`` cuts its encoding short, ``change`` sends another data set's encoding in
    its place (pynetdicom's encoder is patched: the SCU would refuse to send either)."""
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.add_requested_context(ds.SOPClassUID, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="ECHOSCLERO")
    assert assoc.is_established
    try:
        if truncate or change:
            import pynetdicom.association as pa

            real = pa.encode
            if truncate:  # a sender whose data set is cut short in the middle of an element
                monkeypatch.setattr(pa, "encode", lambda d, *a, **k: real(d, *a, **k)[:-truncate])
            else:
                monkeypatch.setattr(pa, "encode", lambda d, *a, **k: real(change(d), *a, **k))
        return assoc.send_c_store(ds).Status
    finally:
        assoc.release()


def _us_dataset() -> pydicom.Dataset:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "1", "Doe^Jane", "US"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(64)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


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
