"""FHIR R4 export of a patient's pathway as a Bundle (type ``collection``), validated with ``fhir.resources``.

Resources: Patient; Condition (varicose veins of the lower limb, one per assessed leg, CEAP as its stage and
VCSS as a note); Observation per mapped segment (reflux duration in ms, vessel lumen diameter in mm, with the
segment as body site and a reference to the source DICOM image by its UID where the value came from one);
Procedure per session (ultrasound-guided sclerotherapy); MedicationAdministration per injection (the
sclerosant, its dose as volume and mass); CarePlan per plan (its items as activities, the aftercare regimen
as a note); Appointment per booked appointment and per scheduled follow-up.

Codes: SNOMED CT for the condition (72866009 *Varicose veins of lower extremity*), the body sites (the vein
segments' codes of :mod:`echosclero.clinic.segments`, the limbs 32153003 / 62175007), the lumen diameter
(397413000 *Vessel lumen diameter*); ATC for the sclerosants (C05BB02 polidocanol, C05BB04 sodium tetradecyl
sulfate); UCUM for units; HL7 terminology for categories and statuses. Where no standard code exists (the
reflux duration of a vein segment as one observable, the sclerotherapy procedure as a single concept in the
free SNOMED CT subsets we can check) the concept is coded in EchoSclero's own code system
(:data:`LOCAL_SYSTEM`) with a text, so that a receiver never mistakes it for a standard code.

Validated with the R4B models of fhir.resources (R4B is R4 with errata; none of the resources above differs).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

from echosclero import __version__
from echosclero.clinic.segments import get_segment
from echosclero.errors import InputError
from echosclero.interop.record import Pathway

__all__ = ["LOCAL_SYSTEM", "pathway_bundle"]

SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
LOCAL_SYSTEM = "https://echosclero.org/fhir/CodeSystem/echosclero"
ID_SYSTEM = "https://echosclero.org/fhir/NamingSystem/patient-record-number"
_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://echosclero.org/fhir")
_LIMB = {"left": ("32153003", "Structure of left lower limb"), "right": ("62175007", "Structure of right lower limb")}
_AGENT = {
    "polidocanol": ("C05BB02", "polidocanol"),
    "sodium_tetradecyl_sulfate": ("C05BB04", "sodium tetradecyl sulfate"),
}


def _uuid(*parts) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, '/'.join(map(str, parts)))}"


def _cc(system: str, code: str, display: str, text: str | None = None) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": text or display}


def _limb(leg: str) -> dict:
    code, display = _LIMB[leg]
    return _cc(SCT, code, display, f"{leg} lower limb")


def _site(segment: str, leg: str) -> list[dict]:
    seg = get_segment(segment)
    out = [_limb(leg)]
    if seg.snomed:
        out.insert(0, _cc(SCT, seg.snomed, seg.name, f"{leg} {seg.name}"))
    else:
        out.insert(0, {"text": f"{leg} {seg.name} ({seg.code})"})
    return out


def _dt(d) -> str:
    if isinstance(d, datetime):
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).isoformat()
    return datetime.combine(d, time(0), tzinfo=UTC).date().isoformat()


def _derived(link_uid: str | None) -> list[dict]:
    if not link_uid:
        return []
    return [{"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{link_uid}"},
             "display": "source ultrasound image (DICOM SOP Instance UID)"}]


def pathway_bundle(pw: Pathway) -> dict:
    """The Bundle as a JSON-ready dict, validated (an invalid resource raises :class:`InputError`)."""
    p = pw.patient
    pref = _uuid("Patient", p.id)
    subject = {"reference": pref, "display": f"{p.given_name} {p.family_name}"}
    entries: list[dict] = []

    def add(resource: dict, *key) -> str:
        url = _uuid(resource["resourceType"], *key)
        entries.append({"fullUrl": url, "resource": resource})
        return url

    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": ID_SYSTEM, "value": str(p.id)}],
        "name": [{"family": p.family_name, "given": [p.given_name]}],
        "gender": p.sex if p.sex in ("female", "male", "other") else "unknown",
        "birthDate": p.birth_date.isoformat(),
    }
    telecom = [{"system": "phone", "value": p.phone}] if p.phone else []
    telecom += [{"system": "email", "value": p.email}] if p.email else []
    if telecom:
        patient["telecom"] = telecom
    entries.append({"fullUrl": pref, "resource": patient})
    latest: dict[str, object] = {}
    for a in pw.assessments:
        latest[a.limb] = a
    for leg, a in latest.items():
        if leg not in _LIMB:
            continue
        cond = {
            "resourceType": "Condition",
            "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "verificationStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed",
                                      "Confirmed"),
            "category": [_cc("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item",
                             "Problem List Item")],
            "code": _cc(SCT, "72866009", "Varicose veins of lower extremity", "chronic venous disease"),
            "bodySite": [_limb(leg)],
            "subject": subject,
            "recordedDate": _dt(a.assessed_on),
        }
        if a.ceap:
            cond["stage"] = [{"summary": {"text": f"CEAP {a.ceap}"},
                              "type": _cc(LOCAL_SYSTEM, "ceap-2020", "CEAP 2020 classification")}]
        if a.vcss is not None:
            cond["note"] = [{"text": f"VCSS {a.vcss} on {a.assessed_on.isoformat()}"}]
        add(cond, "Condition", p.id, leg)
    links = {}
    for results in pw.exam_results.values():
        for r in results:
            links[(r.exam_id, r.leg, r.segment, r.kind)] = r.sop_instance_uid
    for exam in pw.exams:
        for f in pw.vein_map(exam).findings:
            leg = f.leg.value
            common = {
                "resourceType": "Observation",
                "status": "final",
                "category": [_cc("http://terminology.hl7.org/CodeSystem/observation-category", "imaging", "Imaging")],
                "subject": subject,
                "effectiveDateTime": _dt(exam.exam_date),
                "bodySite": _site(f.segment, leg)[0],
                "method": {"text": "duplex ultrasound"},
            }
            if f.reflux_ms is not None:
                obs = common | {
                    "code": _cc(LOCAL_SYSTEM, "reflux-duration", "Venous reflux duration",
                                "reflux duration (retrograde flow after release of augmentation)"),
                    "valueQuantity": {"value": float(f.reflux_ms), "unit": "ms", "system": UCUM, "code": "ms"},
                }
                if f.incompetent is not None:
                    obs["interpretation"] = [_cc("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                                 "A" if f.incompetent else "N",
                                                 "Abnormal" if f.incompetent else "Normal",
                                                 "incompetent" if f.incompetent else "competent")]
                derived = _derived(links.get((exam.id, leg, f.segment, "reflux")))
                if derived:
                    obs["derivedFrom"] = derived
                add(obs, "Observation", exam.id, leg, f.segment, f.label, "reflux")
            if f.diameter_mm is not None:
                obs = common | {
                    "code": _cc(SCT, "397413000", "Vessel lumen diameter"),
                    "valueQuantity": {"value": float(f.diameter_mm), "unit": "mm", "system": UCUM, "code": "mm"},
                }
                derived = _derived(links.get((exam.id, leg, f.segment, "analysis")))
                if derived:
                    obs["derivedFrom"] = derived
                add(obs, "Observation", exam.id, leg, f.segment, f.label, "diameter")
    for plan in pw.plans:
        activities = [{"detail": {
            "status": "completed" if plan.status == "done" else "not-started",
            "description": f"{i.segment}: {i.agent} {i.form} {i.concentration_pct:g}%, "
                           f"up to {i.planned_volume_ml:g} ml",
            "code": {"text": "sclerotherapy"},
        }} for i in plan.items]
        care = {
            "resourceType": "CarePlan",
            "status": "active" if plan.status == "active" else ("completed" if plan.status == "done" else "revoked"),
            "intent": "plan",
            "title": f"Sclerotherapy plan, {plan.limb} leg",
            "subject": subject,
            "created": _dt(plan.created_at),
            "activity": activities or [{"detail": {"status": "not-started", "description": "no item"}}],
        }
        regimens = sorted({r.session.regimen for r in pw.sessions
                           if r.session.plan_id == plan.id and r.session.regimen})
        if regimens or plan.notes:
            care["note"] = [{"text": t} for t in ([plan.notes] if plan.notes else []) +
                            [f"aftercare regimen {x}" for x in regimens]]
        add(care, "CarePlan", plan.id)
    for rec in pw.sessions:
        s = rec.session
        start = s.started_at or datetime.combine(s.session_date, time(0), tzinfo=UTC)
        proc = {
            "resourceType": "Procedure",
            "status": "completed" if s.status == "closed" else "in-progress",
            "code": _cc(LOCAL_SYSTEM, "us-guided-sclerotherapy", "Ultrasound-guided sclerotherapy of leg veins"),
            "subject": subject,
            "performedPeriod": {"start": _dt(start)} | ({"end": _dt(s.ended_at)} if s.ended_at else {}),
            "bodySite": [_limb(s.limb)] if s.limb in _LIMB else [],
        }
        plan_ref = _uuid("CarePlan", s.plan_id) if s.plan_id else None
        if plan_ref:
            proc["basedOn"] = [{"reference": plan_ref}]
        if s.observation_minutes is not None:
            proc["note"] = [{"text": f"observed {s.observation_minutes:g} min: {s.observation_outcome or '-'}; "
                                     f"compression {s.compression or '-'}"}]
        pref_proc = add(proc, "Procedure", s.id)
        for i in rec.injections:
            code, name = _AGENT.get(i.agent, (None, i.agent))
            med = _cc(ATC, code, name, f"{name} {i.concentration_pct:g}% {i.form}") if code else {"text": name}
            add({
                "resourceType": "MedicationAdministration",
                "status": "completed",
                "medicationCodeableConcept": med,
                "subject": subject,
                "effectiveDateTime": _dt(i.injected_at),
                "partOf": [{"reference": pref_proc}],
                "dosage": {
                    "text": f"{i.volume_ml:g} ml {i.form}" + (f" {i.liquid_gas_ratio}" if i.liquid_gas_ratio else "")
                            + f" of {i.concentration_pct:g}% ({i.mass_mg:g} mg) into the {i.segment}",
                    "site": _site(i.segment, s.limb)[0] if s.limb in _LIMB else {"text": i.segment},
                    "route": _cc(SCT, "47625008", "Intravenous route"),
                    "dose": {"value": float(i.volume_ml), "unit": "ml", "system": UCUM, "code": "mL"},
                },
                "note": [{"text": f"drug mass {i.mass_mg:g} mg"}],
            }, "MedicationAdministration", i.id)
    for a in pw.appointments:
        status = {"booked": "booked", "cancelled": "cancelled", "completed": "fulfilled", "no_show": "noshow"}.get(
            a.status, "booked")
        add({
            "resourceType": "Appointment",
            "status": status,
            "serviceType": [{"text": a.kind.replace("_", " ")}],
            "start": _dt(a.start_at),
            "minutesDuration": int(a.duration_min),
            "participant": [{"actor": subject, "status": "accepted"}],
        }, "Appointment", a.id)
    for f in pw.followups:
        if f.status != "scheduled":
            continue
        add({
            "resourceType": "Appointment",
            "status": "proposed",
            "serviceType": [{"text": f"follow-up: {f.kind.replace('_', ' ')}"}],
            "description": f.purpose or f.kind,
            "requestedPeriod": [{"start": _dt(f.due_on), "end": _dt(f.due_on)}],
            "participant": [{"actor": subject, "status": "needs-action"}],
        }, "Appointment", "followup", f.id)
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NS, f"bundle/{p.id}")),
        "meta": {"tag": [{"system": LOCAL_SYSTEM, "code": "echosclero-export",
                          "display": f"EchoSclero {__version__}"}]},
        "type": "collection",
        "timestamp": datetime.now(UTC).isoformat(),
        "entry": entries,
    }
    return validate_bundle(bundle)


def validate_bundle(bundle: dict) -> dict:
    """Validate with fhir.resources (R4B models); returns the bundle as fhir.resources serialises it."""
    import json

    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    try:
        model = Bundle.model_validate(bundle)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise InputError(f"the FHIR bundle does not validate at {where}: {first['msg']}") from None
    return json.loads(model.model_dump_json(exclude_none=True))
