"""DICOM network services: a C-STORE/C-ECHO receiver for the scanner, and forwarding to a PACS (pynetdicom).

The receiver (:class:`Receiver`, ``echosclero dicom-receive``):

- accepts associations only from the calling AE titles of its allow-list (others are rejected at association
  time, reason "calling AE title not recognised"), and only for Verification and the storage SOP classes it
  handles (:data:`STORAGE_CLASSES`: ultrasound images and cines, secondary captures, structured reports); any
  other SOP class is refused at negotiation, so the sender reports "no presentation context";
- answers each C-STORE with a status that says what happened (PS3.4 B.2.3, PS3.7 C.4.2.1.4):
  ``0x0000`` stored; ``0xC210`` the data set cannot be decoded (*Cannot understand*); ``0xA900`` the data set
  does not match its SOP class or lacks a required identifier (SOP Instance UID, Patient ID, Study/Series
  UID); ``0xA700`` the file could not be stored (*Out of resources*). A refused object is never half-stored
  and never stops the receiver;
- files each object under the patient whose record number, or stored MRN, is its Patient ID (0010,0020) (the SR
  exports write the record number there; an MRN may also come as one of the Other Patient IDs), or puts it on
  the **unmatched queue** (``GET /api/dicom/unmatched``, filed by hand with ``POST /api/dicom/instances/{id}/file``
  or ``echosclero dicom-file``); see :mod:`echosclero.interop.dicomqueue`;
- analyses each stored image or cine with the guidance engine (at most ``analyse_frames`` frames) and keeps
  the summary with the instance (an image without calibration keeps the reason instead);
- forwards each stored object to the PACS, when one is configured, through the durable forwarding queue: a
  failure stays on the instance and is retried with a doubling wait until it is delivered or the last attempt
  fails (:class:`~echosclero.interop.dicomqueue.RetryPolicy`).

Analysis and forwarding run on one worker thread, after the C-STORE has been answered, so that a slow
analysis never holds the scanner. Between objects the same thread retries every forward of the record whose
wait is over (every ``retry_poll_s``), the SRs queued by ``export --send`` and the API included.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from echosclero.errors import InputError

__all__ = [
    "STATUS",
    "STORAGE_CLASSES",
    "Pacs",
    "Receiver",
    "ReceiverConfig",
    "echo",
    "parse_peer",
    "send_files",
]

log = logging.getLogger(__name__)

#: Storage SOP classes the receiver accepts (PS3.4 B.5).
STORAGE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.6.1": "US Image Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "US Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR Storage",
}
_IMAGE_CLASSES = set(list(STORAGE_CLASSES)[:4])
#: C-STORE status codes used (PS3.4 Table B.2-1; PS3.7 C.4.2.1.4).
STATUS = {"success": 0x0000, "out_of_resources": 0xA700, "mismatch": 0xA900, "cannot_understand": 0xC210}
_TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1.99",  # deflated
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE lossless
]
_VERIFICATION = "1.2.840.10008.1.1"
_AE_MAX = 16


def _check_ae(title: str, what: str) -> str:
    t = str(title).strip()
    if not t or len(t) > _AE_MAX or "\\" in t or not t.isprintable():
        raise InputError(f"{what} {title!r} is not an AE title (1-16 printable characters, no backslash)")
    return t


@dataclass(frozen=True, slots=True)
class Pacs:
    """A peer to forward to: its AE title, host and port (``AE@HOST:PORT``)."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_peer(text: str) -> Pacs:
    """``ORTHANC@127.0.0.1:4242`` -> :class:`Pacs`; anything else is refused with the expected form."""
    try:
        ae, rest = text.split("@", 1)
        host, port = rest.rsplit(":", 1)
        port_n = int(port)
    except ValueError:
        raise InputError(f"peer {text!r} must read AE_TITLE@HOST:PORT, e.g. PACS@10.0.0.7:104") from None
    if not (1 <= port_n <= 65535) or not host:
        raise InputError(f"peer {text!r}: port must be 1-65535 and the host non-empty")
    return Pacs(_check_ae(ae, "PACS AE title"), host, port_n)


@dataclass(slots=True)
class ReceiverConfig:
    """How the receiver listens, whom it accepts, where it stores, what it does next."""

    storage_dir: Path
    allowed_calling_aes: frozenset[str]
    ae_title: str = "ECHOSCLERO"
    host: str = "127.0.0.1"
    port: int = 11112
    forward_to: Pacs | None = None
    analyse_frames: int = 30
    analyse: bool = True
    acse_timeout_s: float = 30.0
    dimse_timeout_s: float = 60.0
    max_forward_attempts: int = 8  # see dicomqueue.RetryPolicy
    retry_base_s: float = 60.0
    retry_poll_s: float = 15.0

    def __post_init__(self) -> None:
        self.ae_title = _check_ae(self.ae_title, "AE title")
        self.allowed_calling_aes = frozenset(_check_ae(a, "allowed calling AE title") for a in self.allowed_calling_aes)
        if not self.allowed_calling_aes:
            raise InputError("no calling AE title allowed: give the scanner's with --allow AE_TITLE (one or more)")
        if not (0 <= int(self.port) <= 65535):
            raise InputError(f"port {self.port} must be 0-65535")
        if self.analyse_frames < 1:
            raise InputError(f"analyse_frames {self.analyse_frames} must be at least 1")
        self.storage_dir = Path(self.storage_dir)
        if self.retry_poll_s <= 0:
            raise InputError(f"retry poll {self.retry_poll_s} s must be positive")
        self.retry_policy  # noqa: B018 - refuse a bad policy at start

    @property
    def retry_policy(self):
        from echosclero.interop.dicomqueue import RetryPolicy

        return RetryPolicy(max_attempts=self.max_forward_attempts, base_s=self.retry_base_s,
                           max_wait_s=max(3600.0, self.retry_base_s))


def _short_pixel_data(ds, sop_class: str) -> str | None:
    """Why native (uncompressed) pixel data is shorter than its geometry needs (a truncated transfer), or None."""
    if sop_class not in _IMAGE_CLASSES or "PixelData" not in ds or ds.file_meta.TransferSyntaxUID.is_compressed:
        return None
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        need = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * (int(ds.BitsAllocated) // 8) * frames
    except (AttributeError, TypeError, ValueError):
        return "the image lacks Rows, Columns, Samples per Pixel or Bits Allocated"
    have = len(ds.PixelData)
    return f"pixel data holds {have} bytes, its geometry needs {need}: truncated" if have < need else None


def _safe(uid: str) -> str:
    return "".join(c for c in str(uid) if c.isdigit() or c == ".")[:64] or "unknown"


@dataclass
class Receiver:
    """A running receiver; :meth:`start`, then :meth:`stop` (drains the worker's queue first).

    ``sessionmaker`` opens sessions of the clinic record. ``on_event`` (optional) is called with one line per
    stored, refused, analysed or forwarded object (the CLI prints them).
    """

    config: ReceiverConfig
    sessionmaker: Callable
    on_event: Callable[[str], None] | None = None
    _server: object = field(default=None, init=False)
    _queue: queue.Queue = field(default_factory=queue.Queue, init=False)
    _worker: threading.Thread | None = field(default=None, init=False)
    counts: dict = field(default_factory=lambda: {"stored": 0, "refused": 0, "forwarded": 0, "forward_failed": 0,
                                                   "analysed": 0}, init=False)

    def _say(self, line: str) -> None:
        if self.on_event is not None:
            self.on_event(line)

    # --- the service ---

    def start(self) -> Receiver:
        from pynetdicom import AE, evt

        cfg = self.config
        try:
            cfg.storage_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the storage folder {cfg.storage_dir}: {exc.strerror}") from None
        ae = AE(ae_title=cfg.ae_title)
        ae.require_calling_aet = sorted(cfg.allowed_calling_aes)
        ae.acse_timeout = cfg.acse_timeout_s
        ae.dimse_timeout = cfg.dimse_timeout_s
        ae.network_timeout = cfg.dimse_timeout_s
        ae.maximum_pdu_size = 0
        ae.add_supported_context(_VERIFICATION)
        for uid in STORAGE_CLASSES:
            ae.add_supported_context(uid, _TRANSFER_SYNTAXES)
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, lambda event: 0x0000)]
        try:
            self._server = ae.start_server((cfg.host, int(cfg.port)), block=False, evt_handlers=handlers)
        except OSError as exc:
            raise InputError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}; "
                             "choose another --port") from None
        self._worker = threading.Thread(target=self._work, name="dicom-receive-worker", daemon=True)
        self._worker.start()
        return self

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self.config.port

    def stop(self, *, drain_s: float = 60.0) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=drain_s)
            self._worker = None

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """True once every stored object has been analysed and forwarded (for tests and batch use)."""
        import time

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.05)
        return False

    # --- C-STORE ---

    def _on_store(self, event) -> int:
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            ds.get("PatientID")  # decoding is lazy: touch the elements we read
            sop_class = str(ds.get("SOPClassUID", ""))
            sop_uid = str(ds.get("SOPInstanceUID", ""))
            for elem in ds.iterall():
                _ = elem.value
        except Exception as exc:  # noqa: BLE001 - whatever the decoder raises, the sender gets a status
            self.counts["refused"] += 1
            self._say(f"refused from {calling}: the data set cannot be decoded ({type(exc).__name__}) -> 0xC210")
            return STATUS["cannot_understand"]
        short = _short_pixel_data(ds, sop_class)
        if short:
            self.counts["refused"] += 1
            self._say(f"refused {sop_uid or '?'} from {calling}: {short} -> 0xC210")
            return STATUS["cannot_understand"]
        requested = str(event.context.abstract_syntax)
        required = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID")
        missing = [k for k in required + (("PixelData",) if sop_class in _IMAGE_CLASSES else ()) if k not in ds]
        if sop_class != requested or missing or not sop_uid:
            why = (f"its SOP class {sop_class} is not the one negotiated ({requested})" if sop_class != requested
                   else f"it lacks {', '.join(missing)}")
            self.counts["refused"] += 1
            self._say(f"refused {sop_uid or '?'} from {calling}: {why} -> 0xA900")
            return STATUS["mismatch"]
        folder = self.config.storage_dir / _safe(ds.StudyInstanceUID) / _safe(ds.SeriesInstanceUID)
        path = folder / f"{_safe(sop_uid)}.dcm"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(event.encoded_dataset())  # the bytes as sent, with their file meta: no re-encoding
            tmp.replace(path)
        except Exception as exc:  # noqa: BLE001 - a write that fails leaves nothing behind and says so
            self.counts["refused"] += 1
            self._say(f"refused {sop_uid} from {calling}: cannot store it ({exc}) -> 0xA700")
            return STATUS["out_of_resources"]
        try:
            inst_id, filed, why = self._record(ds, path=path, calling=calling)
        except Exception as exc:  # noqa: BLE001
            path.unlink(missing_ok=True)
            self.counts["refused"] += 1
            self._say(f"refused {sop_uid} from {calling}: the record is not available ({exc}) -> 0xA700")
            return STATUS["out_of_resources"]
        self.counts["stored"] += 1
        self._say(f"stored {STORAGE_CLASSES[sop_class]} {sop_uid} from {calling}: "
                  + (f"filed under patient {filed}" if filed else f"unmatched ({why})"))
        self._queue.put(inst_id)
        return STATUS["success"]

    def _record(self, ds, *, path: Path, calling: str) -> tuple[int, int | None, str | None]:
        from sqlalchemy import select

        from echosclero.interop.dicomqueue import enqueue, match_patient
        from echosclero.store.db import commit
        from echosclero.store.models import AuditEntry, DicomInstance

        pid_text = str(ds.PatientID).strip()
        with self.sessionmaker() as db:
            patient, matched_by, why = match_patient(db, ds)
            inst = db.scalars(select(DicomInstance).where(DicomInstance.sop_instance_uid == str(ds.SOPInstanceUID))
                              ).first()
            if inst is None:
                inst = DicomInstance(sop_instance_uid=str(ds.SOPInstanceUID))
                db.add(inst)
            inst.sop_class_uid = str(ds.SOPClassUID)
            inst.study_instance_uid = str(ds.StudyInstanceUID)
            inst.series_instance_uid = str(ds.SeriesInstanceUID)
            inst.modality = str(ds.get("Modality", ""))[:16]
            inst.dicom_patient_id = pid_text[:64]
            inst.dicom_patient_name = str(ds.get("PatientName", ""))[:200]
            inst.patient_id = patient.id if patient else None
            inst.status = "filed" if patient else "unmatched"
            inst.matched_by = matched_by
            inst.path = str(path)
            inst.n_frames = int(ds.get("NumberOfFrames", 1) or 1)
            inst.calling_ae = calling[:16]
            inst.analysis, inst.analysis_error = None, None
            if self.config.forward_to is not None:
                enqueue(inst, self.config.forward_to)
            else:
                inst.forward_status, inst.forwarded_at, inst.forward_error = None, None, None
            db.flush()
            db.add(AuditEntry(username=f"dicom:{calling}"[:64], action="create", resource="dicom_instance",
                              resource_id=str(inst.id), patient_id=inst.patient_id, method="C-STORE",
                              path=f"dicom-receive {self.config.ae_title}",
                              detail={"sop_instance_uid": inst.sop_instance_uid, "status": inst.status,
                                      "matched_by": matched_by, "why": why}))
            commit(db)
            return inst.id, inst.patient_id, why

    # --- after the answer: analysis and forwarding ---

    def _work(self) -> None:
        import time

        last_retry = time.monotonic()
        while True:
            try:
                inst_id = self._queue.get(timeout=self.config.retry_poll_s)
            except queue.Empty:
                inst_id = False
            if inst_id is not False:
                try:
                    if inst_id is None:
                        return
                    self._process(inst_id)
                except Exception as exc:  # noqa: BLE001 - the worker outlives any one object
                    self._say(f"instance {inst_id}: {type(exc).__name__}: {exc}")
                finally:
                    self._queue.task_done()
            if time.monotonic() - last_retry >= self.config.retry_poll_s:
                last_retry = time.monotonic()
                try:
                    self._forward(None)
                except Exception as exc:  # noqa: BLE001 - a record that is busy now is retried next time
                    self._say(f"retrying forwards: {type(exc).__name__}: {exc}")

    def _forward(self, inst_id: int | None) -> None:
        """Forward one instance (just stored), or every forward of the record whose wait is over (``None``)."""
        from echosclero.interop.dicomqueue import audit_to, due, forward
        from echosclero.store.db import commit
        from echosclero.store.models import DicomInstance

        with self.sessionmaker() as db:
            insts = [db.get(DicomInstance, inst_id)] if inst_id is not None else due(db)
            insts = [i for i in insts if i is not None and i.forward_status in ("pending", "retrying")]
            if not insts:
                return
            who = audit_to(db, username=f"dicom:{self.config.ae_title}"[:64], method="C-STORE",
                           path=f"dicom-receive {self.config.ae_title} forward")
            for o in forward(db, insts, policy=self.config.retry_policy, commit=lambda: commit(db), audit=who,
                             default_peer=self.config.forward_to, calling_ae=self.config.ae_title,
                             timeout_s=self.config.dimse_timeout_s):
                self.counts["forwarded" if o.error is None else "forward_failed"] += 1
                self._say(o.line())

    def _process(self, inst_id: int) -> None:
        from echosclero.store.db import commit
        from echosclero.store.models import DicomInstance

        with self.sessionmaker() as db:
            inst = db.get(DicomInstance, inst_id)
            path, sop_class, uid = Path(inst.path), inst.sop_class_uid, inst.sop_instance_uid
        analysis, error = None, None
        if self.config.analyse and sop_class in _IMAGE_CLASSES:
            analysis, error = self._analyse(path)
            done = error or (f"{analysis['n_frames']} frame(s), {len(analysis['alerts'])} alert(s), "
                             f"{len(analysis['vessels'])} vessel(s)")
            self._say(f"analysed {uid}: {done}")
            if analysis is not None:
                self.counts["analysed"] += 1
        with self.sessionmaker() as db:
            inst = db.get(DicomInstance, inst_id)
            inst.analysis, inst.analysis_error = analysis, error
            commit(db)
        if self.config.forward_to is not None:
            self._forward(inst_id)

    def _analyse(self, path: Path) -> tuple[dict | None, str | None]:
        from echosclero.batch.analysis import analyse_source
        from echosclero.errors import EchoScleroError
        from echosclero.interop.results import summarise_analysis
        from echosclero.sources.dicom import DicomSource

        try:
            src = DicomSource(path)
            with src:
                res = analyse_source(src, max_frames=self.config.analyse_frames, progress=False, keep_partial=True)
        except EchoScleroError as exc:
            return None, f"not analysed: {exc}"
        summary = summarise_analysis(res.document)
        summary["source"] = str(path)
        if res.error:
            summary["error"] = res.error
        return summary, None


# --- the SCU side: forwarding and checks ---


def send_files(paths: list[Path], peer: Pacs, *, calling_ae: str = "ECHOSCLERO",
               timeout_s: float = 60.0) -> list[tuple[Path, str | None]]:
    """C-STORE each file to ``peer`` over one association; per file ``None`` or the reason it failed."""
    import pydicom
    from pynetdicom import AE
    from pynetdicom.presentation import build_context

    out: list[tuple[Path, str | None]] = []
    datasets = []
    for p in paths:
        try:
            datasets.append((p, pydicom.dcmread(p)))
        except Exception as exc:  # noqa: BLE001
            out.append((p, f"not a DICOM file: {exc}"))
    if not datasets:
        return out
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    pairs = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in datasets}
    # one context per (class, transfer syntax) holding only that syntax, so that the peer cannot pick another
    # one and the file goes as it was received (no decompression, no re-encoding)
    ae.requested_contexts = [build_context(c, [t]) for c, t in sorted(pairs)][:128]
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "no answer"
        return out + [(p, f"association with {peer} {why}") for p, _ in datasets]
    try:
        for p, ds in datasets:
            try:
                status = assoc.send_c_store(ds)
            except (ValueError, RuntimeError) as exc:
                out.append((p, str(exc).splitlines()[0]))
                continue
            code = getattr(status, "Status", None)
            out.append((p, None if code in (0x0000, 0xB000, 0xB007, 0xB006) else
                        (f"peer answered status 0x{code:04X}" if code is not None else "no answer (connection lost)")))
    finally:
        assoc.release()
    return out


def echo(peer: Pacs, *, calling_ae: str = "ECHOSCLERO", timeout_s: float = 10.0) -> int | None:
    """C-ECHO ``peer``; its status (0 = success) or ``None`` when there is no association."""
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.add_requested_context(_VERIFICATION)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_echo()
        return getattr(status, "Status", None)
    finally:
        assoc.release()
