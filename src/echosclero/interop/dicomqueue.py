"""The two queues of DICOM objects kept in the record: the **unmatched** ones (received, matching no patient:
filed by hand) and the **forwards** to the PACS (received images and the SRs we make, sent until delivered).

Matching (:func:`match_patient`): an object is filed under the patient whose record number is its Patient ID
(0010,0020) (the SR exports write it there), or whose stored medical record number (``patients.mrn``) is its
Patient ID or one of its Other Patient IDs (0010,1002). When these name two different patients it matches
none of them and waits in the unmatched queue: a wrong filing is worse than a late one.

Forwarding (:func:`forward`): a forward is recorded on the instance before it is tried, so that a failure
survives a restart. States: ``pending`` (never tried) -> ``forwarded``; or ``retrying`` after a failure, tried
again after a wait that doubles each time (:class:`RetryPolicy`: 1 min, 2, 4, ... at most 1 h), until
``max_attempts`` failures give the final state ``failed``, which no automatic retry touches: it is re-armed by
hand (``echosclero dicom-forward --requeue ID``, ``POST /api/dicom/instances/{id}/forward``). Each attempt
leaves its error (or none) on the instance and an audit entry. An attempt first *claims* the instance (a
conditional update that moves its next attempt out by a lease), so the receiver's loop, the command and the
API never send the same object at the same moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from echosclero.errors import InputError
from echosclero.interop.dicomnet import Pacs, parse_peer, send_files
from echosclero.store.models import AuditEntry, DicomInstance, Patient
from echosclero.store.types import utcnow

__all__ = [
    "FORWARD_STATES",
    "Outcome",
    "RetryPolicy",
    "audit_to",
    "default_dicom_dir",
    "due",
    "enqueue",
    "file_instance",
    "forward",
    "match_patient",
    "requeue",
    "store_sr",
]

#: The forward states (``None`` on an instance: no PACS was configured when it came).
FORWARD_STATES = ("pending", "retrying", "forwarded", "failed")
_OPEN = ("pending", "retrying")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a failed forward again. Operational defaults, not clinical rules: a PACS down for
    maintenance (minutes to an hour) is waited out, and after 8 failures (about 2 hours) the object is left
    for a person to look at rather than retried for ever."""

    max_attempts: int = 8
    base_s: float = 60.0  # the wait after the first failure; doubled after each further one
    max_wait_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InputError(f"max attempts {self.max_attempts} must be at least 1")
        if self.base_s <= 0 or self.max_wait_s < self.base_s:
            raise InputError(f"retry wait {self.base_s:g} s must be positive and at most {self.max_wait_s:g} s")

    def wait_s(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failure."""
        return min(self.base_s * 2 ** max(attempts - 1, 0), self.max_wait_s)


@dataclass(frozen=True, slots=True)
class Outcome:
    instance_id: int
    sop_instance_uid: str
    peer: str
    status: str  # the instance's forward state after the attempt
    attempts: int
    error: str | None
    next_at: datetime | None

    def line(self) -> str:
        if self.error is None:
            return f"forwarded {self.sop_instance_uid} to {self.peer}"
        then = (f"retry {self.next_at:%Y-%m-%d %H:%M:%S} UTC" if self.status == "retrying"
                else "gave up: requeue it with `echosclero dicom-forward --requeue "
                     f"{self.instance_id}` once the PACS answers")
        return (f"forwarding {self.sop_instance_uid} to {self.peer} failed (attempt {self.attempts}): "
                f"{self.error}; {then}")


def default_dicom_dir() -> Path:
    """Where received objects and the SRs sent are kept: ``ECHOSCLERO_DICOM_DIR``, else ``<data folder>/dicom``."""
    import os

    from echosclero.store.db import data_dir

    env = os.environ.get("ECHOSCLERO_DICOM_DIR")
    return Path(env).expanduser() if env else data_dir() / "dicom"


# --- matching and filing ---


def match_patient(db: Session, ds) -> tuple[Patient | None, str | None, str | None]:
    """The patient a received data set belongs to: ``(patient, "record_number" | "mrn", None)``, or
    ``(None, None, why)`` when it matches none or more than one."""
    pid = str(ds.get("PatientID", "") or "").strip()
    others = [str(it.get("PatientID", "") or "").strip() for it in ds.get("OtherPatientIDsSequence", None) or []]
    ids = [x for x in dict.fromkeys([pid, *others]) if x]
    found: dict[int, tuple[Patient, str]] = {}
    if ids:
        for p in db.scalars(select(Patient).where(Patient.mrn.in_([x[:64] for x in ids]))):
            found[p.id] = (p, "mrn")
    by_number = db.get(Patient, int(pid)) if pid.isdigit() and len(pid) < 10 else None
    if by_number is not None:
        found.setdefault(by_number.id, (by_number, "record_number"))
    if len(found) == 1:
        (patient, how), = found.values()
        return patient, how, None
    if not found:
        return None, None, f"Patient ID {pid!r} is no record number nor MRN in the record"
    return None, None, (f"Patient ID {pid!r} names patients {', '.join(map(str, sorted(found)))} "
                        "(record number and MRN disagree): file it by hand")


def file_instance(db: Session, inst: DicomInstance, patient_id: int) -> int | None:
    """File a received object under a patient by hand (it leaves the unmatched queue); returns the patient it
    was filed under before (``None``). Refused with a clear line for a patient that does not exist."""
    if db.get(Patient, patient_id) is None:
        raise InputError(f"no patient {patient_id} in the record")
    before = inst.patient_id
    inst.patient_id, inst.status, inst.matched_by = patient_id, "filed", "hand"
    return before


# --- the forwarding queue ---


def enqueue(inst: DicomInstance, peer: Pacs) -> None:
    """Put an instance on the forwarding queue for ``peer`` (a new object, or one received again)."""
    inst.forward_status, inst.forward_peer, inst.forward_attempts = "pending", str(peer), 0
    inst.next_forward_at, inst.forwarded_at, inst.forward_error = None, None, None


def requeue(inst: DicomInstance, peer: Pacs | None = None) -> None:
    """Re-arm a forward by hand (a ``failed`` one included): its attempts count from zero again."""
    if peer is None and not inst.forward_peer:
        raise InputError(f"instance {inst.id} has no PACS to forward to: name one (--to AE@HOST:PORT)")
    enqueue(inst, peer or parse_peer(inst.forward_peer))


def due(db: Session, *, now: datetime | None = None, ignore_wait: bool = False, limit: int = 500
        ) -> list[DicomInstance]:
    """The forwards to try now (``pending``, and ``retrying`` ones whose wait is over), oldest first."""
    stmt = select(DicomInstance).where(DicomInstance.forward_status.in_(_OPEN))
    if not ignore_wait:
        cut = now or utcnow()
        stmt = stmt.where(or_(DicomInstance.next_forward_at.is_(None), DicomInstance.next_forward_at <= cut))
    return list(db.scalars(stmt.order_by(DicomInstance.id).limit(limit)))


def _claim(db: Session, inst: DicomInstance, now: datetime, lease_s: float, ignore_wait: bool) -> bool:
    stmt = (update(DicomInstance).where(DicomInstance.id == inst.id, DicomInstance.forward_status.in_(_OPEN))
            .values(next_forward_at=now + timedelta(seconds=lease_s)).execution_options(synchronize_session=False))
    if not ignore_wait:
        stmt = stmt.where(or_(DicomInstance.next_forward_at.is_(None), DicomInstance.next_forward_at <= now))
    return db.execute(stmt).rowcount == 1


def audit_to(db: Session, **who) -> Callable[[DicomInstance, dict], None]:
    """An ``audit`` for :func:`forward` that adds the entry to ``db`` (the receiver, the commands); ``who``:
    username, role, method, path."""

    def add(inst: DicomInstance, detail: dict) -> None:
        db.add(AuditEntry(**who, action="send", resource="dicom_forward", resource_id=str(inst.id),
                          patient_id=inst.patient_id, detail=detail))

    return add


def forward(db: Session, instances: Iterable[DicomInstance], *, policy: RetryPolicy, commit: Callable[[], None],
            audit: Callable[[DicomInstance, dict], None], default_peer: Pacs | None = None,
            calling_ae: str = "ECHOSCLERO", timeout_s: float = 30.0, ignore_wait: bool = False,
            now: datetime | None = None) -> list[Outcome]:
    """Try each instance's forward once (one association per PACS) and record the outcome on it.

    ``audit(instance, detail)`` writes one audit entry per attempt (:func:`audit_to`, or the API's).
    ``default_peer`` serves instances queued without a PACS of their own. Instances another process has
    claimed, or whose wait is not over (unless ``ignore_wait``), are skipped. ``commit`` is called after the
    claim and after the outcomes are recorded.
    """
    now = now or utcnow()
    claimed: dict[str, list[DicomInstance]] = {}
    skipped: list[Outcome] = []
    for inst in instances:
        peer_text = inst.forward_peer or (str(default_peer) if default_peer else None)
        if not peer_text:
            skipped.append(Outcome(inst.id, inst.sop_instance_uid, "", inst.forward_status or "", inst.forward_attempts,
                                   "no PACS to forward to: name one (--to AE@HOST:PORT, ECHOSCLERO_PACS)",
                                   inst.next_forward_at))
            continue
        if _claim(db, inst, now, lease_s=2 * timeout_s + 60, ignore_wait=ignore_wait):
            claimed.setdefault(peer_text, []).append(inst)
    commit()
    out: list[Outcome] = []
    for peer_text, group in claimed.items():
        peer = parse_peer(peer_text)
        sent = dict(send_files([Path(i.path) for i in group], peer, calling_ae=calling_ae, timeout_s=timeout_s))
        done = utcnow()
        for inst in group:
            db.refresh(inst)
            error = sent.get(Path(inst.path), "not sent")
            inst.forward_peer = peer_text
            inst.forward_attempts = (inst.forward_attempts or 0) + 1
            inst.forward_error = error
            if error is None:
                inst.forward_status, inst.forwarded_at, inst.next_forward_at = "forwarded", done, None
            elif inst.forward_attempts >= policy.max_attempts:
                inst.forward_status, inst.next_forward_at = "failed", None
            else:
                inst.forward_status = "retrying"
                inst.next_forward_at = done + timedelta(seconds=policy.wait_s(inst.forward_attempts))
            o = Outcome(inst.id, inst.sop_instance_uid, peer_text, inst.forward_status, inst.forward_attempts, error,
                        inst.next_forward_at)
            out.append(o)
            audit(inst, {"sop_instance_uid": inst.sop_instance_uid, "peer": peer_text, "attempt": o.attempts,
                         "status": o.status, "error": error})
    commit()
    return skipped + out


def store_sr(db: Session, data: bytes, ds, *, folder: Path, patient_id: int, peer: Pacs) -> DicomInstance:
    """Keep an SR we made in the DICOM store (``STUDY/SERIES/SOP.dcm``, like a received object) and put it on
    the forwarding queue for ``peer``; the caller forwards and commits."""
    from echosclero.interop.dicomnet import _safe

    path = Path(folder) / _safe(ds.StudyInstanceUID) / _safe(ds.SeriesInstanceUID) / f"{_safe(ds.SOPInstanceUID)}.dcm"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"cannot keep the SR in the DICOM store {folder}: {exc.strerror or exc}") from None
    inst = DicomInstance(sop_instance_uid=str(ds.SOPInstanceUID), sop_class_uid=str(ds.SOPClassUID),
                         study_instance_uid=str(ds.StudyInstanceUID), series_instance_uid=str(ds.SeriesInstanceUID),
                         modality="SR", dicom_patient_id=str(ds.PatientID)[:64],
                         dicom_patient_name=str(ds.get("PatientName", ""))[:200], patient_id=patient_id,
                         status="filed", matched_by="export", path=str(path), n_frames=1, calling_ae="")
    enqueue(inst, peer)
    db.add(inst)
    db.flush()
    return inst
