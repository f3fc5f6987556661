"""Peers for the DICOM tests that no one here wrote: an Orthanc server (Debian package) started and stopped on
loopback with a temporary configuration, asked through its REST API; dcmtk's tools; and a pynetdicom SCU that
sends test data sets (and, for the refusal tests, broken encodings of them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest

from echosclero.interop.dicomnet import Pacs

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian package dcmtk; .ci/run installs it)")
    return path


class Orthanc:
    """An Orthanc PACS on loopback (AE title ORTHANC) that a test can start, stop and start again; its
    database lives in ``folder`` so that what it stored survives a restart."""

    def __init__(self, folder: Path, *, dicom_port: int, http_port: int):
        if ORTHANC is None:
            pytest.skip("Orthanc not installed (Debian package orthanc; .ci/run installs it): no PACS to forward to")
        self.folder, self.http_port = Path(folder), http_port
        self.peer = Pacs("ORTHANC", "127.0.0.1", dicom_port)
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "echosclero-test", "StorageDirectory": str(self.folder / "db"),
            "IndexDirectory": str(self.folder / "db"), "HttpServerEnabled": True, "HttpPort": http_port,
            "DicomServerEnabled": True, "DicomPort": dicom_port, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "Plugins": [], "DicomCheckCalledAet": True,
            "UnknownSopClassAccepted": False, "DicomModalities": {}, "DicomAlwaysAllowStore": True,
            "ConcurrentJobs": 1, "HttpsVerifyPeers": False,
        }
        (self.folder / "orthanc.json").write_text(json.dumps(config))
        self._proc: subprocess.Popen | None = None
        self._log = None

    def http(self, path: str, body: dict | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}",
                                     data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def find(self, sop_instance_uid: str) -> list[str]:
        """Orthanc's ids of the instances with this SOP Instance UID."""
        return self.http("/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance_uid}})

    def start(self) -> Orthanc:
        self._log = open(self.folder / "orthanc.log", "a")  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen([ORTHANC, str(self.folder / "orthanc.json")], stdout=self._log,
                                      stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                self.http("/system")
                return self
            except OSError:
                if self._proc.poll() is not None:
                    pytest.fail(f"Orthanc exited: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
                time.sleep(0.1)
        pytest.fail("Orthanc did not answer on its HTTP port within 30 s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def us_dataset(patient_id: str = "1", **elements) -> pydicom.Dataset:
    """A small valid US image (8x8, explicit VR little endian) with fresh UIDs."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = patient_id, "Doe^Jane", "US"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(64)
    for k, v in elements.items():
        setattr(ds, k, v)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def scu_store(ds, *, port: int, calling: str = "SCANNER", truncate: int = 0, change=None, monkeypatch=None):
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
