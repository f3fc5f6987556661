"""Reports and exchange through the API: PDF procedure report and handout, DICOM SR (checked by dciodvfy),
FHIR Bundle (fhir.resources), results attached to exams and sessions, the roles and the audit.

One patient's whole pathway is built through the API with real results: ``echosclero reflux`` of the
simulated SFJ Doppler cine (truth: the simulator's reflux time) and ``echosclero analyze`` of the simulated
artery near miss (the needle enters an artery: TIP_IN_ARTERY)."""

from __future__ import annotations

import io
import shutil
import subprocess

import cv2
import numpy as np
import pydicom
import pytest
from interop_seed import make_results, seed_pathway
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from echosclero.store.models import AuditEntry

#: The image path's reflux tolerance (the reflux benchmark's p95, as tests/test_sim_reflux_roundtrip.py).
REFLUX_TOL_MS = 60.0


@pytest.fixture(scope="module")
def results():
    return make_results()


@pytest.fixture
def record(client, make, auth, results):
    return seed_pathway(client, make, auth, results)


def _pdf_text(pdf: bytes, tmp_path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext not installed (Debian poppler-utils; .ci/run installs it)")
    (tmp_path / "x.pdf").write_bytes(pdf)
    subprocess.run(["pdftotext", "-layout", str(tmp_path / "x.pdf"), str(tmp_path / "x.txt")], check=True)
    return " ".join((tmp_path / "x.txt").read_text().split())


def _pages_png(pdf: bytes, tmp_path) -> list:
    (tmp_path / "p.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "p.pdf"), str(tmp_path / "page")], check=True)
    return [cv2.imread(str(p)) for p in sorted(tmp_path.glob("page*.png"))]


def _walk(items, path=()):
    for it in items:
        name = it.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in it else ""
        yield path, name, it
        if "ContentSequence" in it:
            yield from _walk(it.ContentSequence, (*path, name))


def test_results_into_the_record_with_links_back(client, auth, record, results):
    h = auth("physician")
    vm = client.get(f"/api/exams/{record['exam_id']}", headers=h).json()["vein_map"]["findings"]
    sfj = next(f for f in vm if f["segment"] == "SFJ" and f["leg"] == "left")
    got, truth = results["reflux"]["reflux_ms"], results["truth"]["reflux"]["reflux_ms"]
    assert sfj["reflux_ms"] == pytest.approx(got, abs=0.05) and abs(sfj["reflux_ms"] - truth) <= REFLUX_TOL_MS
    assert sfj["status"] == "incompetent"
    res = client.get(f"/api/patients/{record['patient_id']}/results", headers=h).json()
    reflux = next(r for r in res if r["kind"] == "reflux")
    uid = str(pydicom.dcmread(results["doppler_dcm"], stop_before_pixels=True).SOPInstanceUID)
    assert reflux["sop_instance_uid"] == uid and reflux["source"] == str(results["doppler_dcm"])
    assert (reflux["exam_id"], reflux["segment"], reflux["leg"]) == (record["exam_id"], "SFJ", "left")
    # the session: alerts with their first frame, as the analysis says, and key frames with overlays
    analysis = next(r for r in res if r["kind"] == "analysis")
    frames = results["analysis"]["frames"]
    first = next(f["index"] for f in frames if any(a["code"] == "TIP_IN_ARTERY" for a in f["alerts"]))
    alerts = {a["code"]: a for a in analysis["summary"]["alerts"]}
    assert alerts["TIP_IN_ARTERY"]["first_index"] == first
    n_alerted = sum(any(a["code"] == "TIP_IN_ARTERY" for a in f["alerts"]) for f in frames)
    assert alerts["TIP_IN_ARTERY"]["frames"] == n_alerted
    kf = next(k for k in analysis["key_frames"] if k["index"] == first)
    assert "TIP_IN_ARTERY" in kf["reason"] and kf["image"]
    r = client.get(kf["image"], headers=auth("nurse"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[0] > 100
    banner = img[2:14, :, :].reshape(-1, 3).mean(axis=0)  # the critical alert's red banner (BGR)
    assert banner[2] > 150 and banner[0] < 80, banner
    assert client.get(kf["image"], headers=auth("front_desk")).status_code == 403


def test_procedure_report_pdf(client, auth, record, tmp_path, engine):
    r = client.get(f"/api/sessions/{record['session_id']}/export", params={"format": "pdf"}, headers=auth("nurse"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = _pdf_text(r.content, tmp_path)
    for words in ("EXAMPLE, Ann", "Duplex mapping", "SFJ", "Cockett II", "Reflux traces", "Plan", "Injections",
                  "GSVa", "TRIB_CALF", "foam this session (ml) 5.5 10.0 4.5", "FOAM_SESSION_MAX_ML",
                  "Key frames", "TIP_IN_ARTERY", "observed 15 min, uneventful", "bandage 5 days and nights",
                  "early_duplex", "late_review", "CEAP C2S Ep As,p Pr"):
        assert words in text, words
    assert len(_pages_png(r.content, tmp_path)) >= 2
    with OrmSession(engine) as db:
        a = db.scalars(select(AuditEntry).where(AuditEntry.resource == "export")).all()
    assert [(x.username, x.detail["format"], x.patient_id) for x in a] == [("nurse", "pdf", record["patient_id"])]


SEED_CLINIC = (  # the seed clinics' instructions, word for word in the default templates
    "Avoid aspirin for a week before the procedure", "you will stand for part of the visit",
    "Bring a pair of shorts and your compression stocking", "tell us at least 48 hours before",
    "Walk for 10-15 minutes straight away", "For the next 4 hours keep your legs raised, with a short walk every hour",
    "Then take 30 minutes of exercise (walking) every day",
    "Keep the bandage on for 5 days and 5 nights, and keep it dry",
    "Then wear your medium-strength compression stocking (class 2) in the daytime for 2 weeks",
    "No strenuous exercise for a few days: the first 7 days after this treatment",
    "No sun or sunbed on the treated leg for 2 weeks",
    "No long-distance travel for 4 weeks", "cool them with ice", "Warning signs: call us at once",
    "Your follow-up visits",
)


def test_handout_pdf_seed_clinic_text_dates_and_edited_template(client, auth, record, tmp_path):
    h = auth("nurse")
    r = client.get(f"/api/patients/{record['patient_id']}/handout", params={"session_id": record["session_id"]},
                   headers=h)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    text = _pdf_text(r.content, tmp_path)
    for words in SEED_CLINIC:
        assert words in text, words
    assert "20 minutes" not in text
    fus = client.get(f"/api/patients/{record['patient_id']}/followups", headers=h).json()
    from datetime import date

    for f in fus:
        assert f"{date.fromisoformat(f['due_on']):%d %B %Y}" in text, f
    # the instructions endpoint honours format=pdf (it returned JSON whatever was asked)
    r2 = client.get(f"/api/patients/{record['patient_id']}/instructions", params={"format": "pdf"}, headers=h)
    assert r2.status_code == 200 and r2.headers["content-type"] == "application/pdf"
    assert client.get(f"/api/patients/{record['patient_id']}/instructions", headers=h).json()["text"]
    # the clinic edits the template; the handout follows
    body = {"body": "After your treatment, {{ patient.given_name }}\n- Keep walking: {{ regimen.bandage_days }} days"
                    " of bandage.\n"}
    assert client.put("/api/instruction-templates/aftercare", json=body, headers=h).status_code == 200
    text = _pdf_text(client.get(f"/api/patients/{record['patient_id']}/handout", headers=h).content, tmp_path)
    assert "Keep walking: 5 days of bandage." in text and "Walk for 10-15 minutes" not in text


def test_dicom_sr_tid5100_values_links_and_dciodvfy(client, auth, record, results, tmp_path):
    r = client.get(f"/api/sessions/{record['session_id']}/export", params={"format": "sr"}, headers=auth("physician"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(r.content))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33" and ds.Modality == "SR"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "5100"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "125100" and ds.PatientID == str(record["patient_id"])
    items = list(_walk(ds.ContentSequence))  # (path of concept codes, concept code, item)
    groups = [it for p, n, it in items if n == "125007" and "122774002" in p]  # measurement groups per leg

    def code(c):
        return c.ConceptNameCodeSequence[0].CodeValue

    def site(g):
        return next(c.ConceptCodeSequence[0].CodeValue for c in g.ContentSequence if code(c) == "363698007")

    def num(g, concept):
        return [float(c.MeasuredValueSequence[0].NumericValue) for c in g.ContentSequence
                if c.ValueType == "NUM" and code(c) == concept]

    by_site = {site(g): g for g in groups}
    sfj = by_site["128587003"]  # SNOMED CT saphenofemoral junction
    assert num(sfj, "103335007") == [pytest.approx(results["reflux"]["reflux_ms"], abs=0.05)]  # Duration, ms
    assert num(by_site["414368000"], "397413000") == [4.2]  # GSV below the knee: vessel lumen diameter, mm
    flow = [c for c in next(c for c in sfj.ContentSequence if c.ValueType == "NUM").ContentSequence
            if code(c) == "260674002"]
    assert flow[0].ConceptCodeSequence[0].CodeValue == "312004007"  # direction of flow: retrograde
    dur = next(c for c in sfj.ContentSequence if c.ValueType == "NUM")
    ref = next(c for c in dur.ContentSequence if c.ValueType == "IMAGE")
    uid = str(pydicom.dcmread(results["doppler_dcm"], stop_before_pixels=True).SOPInstanceUID)
    assert ref.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == uid
    lat = [it.ConceptCodeSequence[0].CodeValue for p, n, it in items if n == "272741003"]
    assert "7771000" in lat  # laterality: left
    inj = [it for p, n, it in items if n == "125007" and p[-1:] == ("71388002",)]  # the procedure's groups
    assert sorted(num(g, "118565006")[0] for g in inj) == [1.5, 4.0]  # volume, ml
    evidence = [sop.ReferencedSOPInstanceUID for st in ds.CurrentRequestedProcedureEvidenceSequence
                for se in st.ReferencedSeriesSequence for sop in se.ReferencedSOPSequence]
    assert uid in evidence
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy not installed (Debian dicom3tools; .ci/run installs it)")
    (tmp_path / "sr.dcm").write_bytes(r.content)
    out = subprocess.run(["dciodvfy", str(tmp_path / "sr.dcm")], capture_output=True, text=True)
    errors = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]
    assert not errors, "\n".join(errors)


def test_fhir_bundle_validates_with_codes(client, auth, record, results):
    from fhir.resources.R4B.bundle import Bundle

    r = client.get(f"/api/patients/{record['patient_id']}/export", headers=auth("physician"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+json"
    doc = r.json()
    Bundle.model_validate(doc)  # raises if invalid
    res = [e["resource"] for e in doc["entry"]]
    kinds = {x["resourceType"] for x in res}
    assert kinds >= {"Patient", "Condition", "Observation", "Procedure", "MedicationAdministration", "CarePlan",
                     "Appointment"}
    cond = next(x for x in res if x["resourceType"] == "Condition")
    assert cond["code"]["coding"][0] == {"system": "http://snomed.info/sct", "code": "72866009",
                                         "display": "Varicose veins of lower extremity"}
    assert cond["stage"][0]["summary"]["text"] == "CEAP C2S Ep As,p Pr"
    assert cond["bodySite"][0]["coding"][0]["code"] == "32153003"  # left lower limb
    obs = [x for x in res if x["resourceType"] == "Observation"]
    sfj = next(o for o in obs if o["bodySite"]["coding"][0]["code"] == "128587003" and "reflux" in o["code"]["text"])
    assert sfj["valueQuantity"]["value"] == pytest.approx(results["reflux"]["reflux_ms"], abs=0.05)
    assert sfj["valueQuantity"]["code"] == "ms" and sfj["interpretation"][0]["coding"][0]["code"] == "A"
    uid = str(pydicom.dcmread(results["doppler_dcm"], stop_before_pixels=True).SOPInstanceUID)
    assert sfj["derivedFrom"][0]["identifier"]["value"] == f"urn:oid:{uid}"
    diam = [o for o in obs if o["code"]["coding"][0]["code"] == "397413000"]
    assert sorted(o["valueQuantity"]["value"] for o in diam) == [3.1, 3.8, 4.2]
    meds = [x for x in res if x["resourceType"] == "MedicationAdministration"]
    assert [m["medicationCodeableConcept"]["coding"][0]["code"] for m in meds] == ["C05BB02", "C05BB02"]
    assert sorted(m["dosage"]["dose"]["value"] for m in meds) == [1.5, 4.0]
    proc = next(x for x in res if x["resourceType"] == "Procedure")
    assert all(m["partOf"][0]["reference"] == next(e["fullUrl"] for e in doc["entry"] if e["resource"] is proc)
               for m in meds)
    appts = [x for x in res if x["resourceType"] == "Appointment"]
    assert sorted(a["status"] for a in appts) == ["booked", "proposed", "proposed", "proposed"]
    # the session export in FHIR is the same bundle
    r2 = client.get(f"/api/sessions/{record['session_id']}/export", params={"format": "fhir"}, headers=auth("nurse"))
    assert len(r2.json()["entry"]) == len(doc["entry"])


def test_exports_need_clinical_read_and_bad_input_is_refused(client, make, auth, results):
    p = make.ready_patient()
    s = make.session(p["id"])
    other = make.ready_patient(family_name="Other")
    for role in ("front_desk", "admin"):
        assert client.get(f"/api/sessions/{s['id']}/export", headers=auth(role)).status_code == 403
        assert client.get(f"/api/patients/{p['id']}/handout", headers=auth(role)).status_code == 403
    h = auth("physician")
    # a session of another patient
    r = client.get(f"/api/patients/{other['id']}/handout", params={"session_id": s["id"]}, headers=h)
    assert r.status_code == 422 and "not a session of patient" in r.json()["message"]
    assert client.get("/api/sessions/999999/export", headers=h).status_code == 404
    r = client.get(f"/api/sessions/{s['id']}/export", params={"format": "docx"}, headers=h)
    assert r.status_code == 422
    # a session without exam, plan or injection still gives a report
    r = client.get(f"/api/sessions/{s['id']}/export", params={"format": "pdf"}, headers=h)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    # results: wrong schema, no segment for an exam, unknown vessel
    exam = make.post(f"/api/patients/{p['id']}/exams", {"exam_date": "2024-01-02", "limb": "left"})
    r = client.post(f"/api/exams/{exam['id']}/results", json={"document": {"schema": "x/1"}}, headers=h)
    assert r.status_code == 422 and "echosclero.reflux/1" in r.json()["message"]
    r = client.post(f"/api/exams/{exam['id']}/results", json={"document": results["analysis"]}, headers=h)
    assert r.status_code == 422 and "--segment" in r.json()["message"]
    r = client.post(f"/api/exams/{exam['id']}/results",
                    json={"document": results["analysis"], "segment": "GSVa", "vessel": "V99"}, headers=h)
    assert r.status_code == 422 and "V99" in r.json()["message"]
    r = client.post(f"/api/exams/{exam['id']}/results", json={"document": results["analysis"], "segment": "GSVa"},
                    headers=h)
    assert r.status_code == 201
    vm = client.get(f"/api/exams/{exam['id']}", headers=h).json()["vein_map"]["findings"]
    v = r.json()["summary"]["vessel"]
    diams = [ve["diameter_mm"] for f in results["analysis"]["frames"] for ve in f["vessels"] if ve["id"] == v]
    assert vm[0]["segment"] == "GSVa" and vm[0]["diameter_mm"] == pytest.approx(float(np.median(diams)), abs=0.01)
    assert client.post(f"/api/exams/{exam['id']}/results", json={"document": results["reflux"]},
                       headers=auth("nurse")).status_code == 403


def test_upload_reads_no_server_path_and_malformed_documents_are_refused(client, make, auth, results, tmp_path):
    """A document naming a file of the server gets no UIDs nor pictures from it; a malformed one is a 422."""
    p = make.ready_patient()
    s = make.session(p["id"])
    h = auth("physician")
    doc = results["analysis"] | {"source": str(results["doppler_dcm"])}  # a DICOM file on this machine
    r = client.post(f"/api/sessions/{s['id']}/results", json={"document": doc}, headers=h)
    assert r.status_code == 201 and r.json()["sop_instance_uid"] is None
    assert all(k["image"] is None for k in r.json()["key_frames"])
    for bad in ({"schema": "echosclero.analysis/1", "frames": [{"index": 0, "t_s": 0, "vessels": [1]}]},
                {"schema": "echosclero.analysis/1", "frames": "x"},
                {"schema": "echosclero.reflux/1", "reflux_ms": "slow", "trace": []}):
        r = client.post(f"/api/sessions/{s['id']}/results", json={"document": bad}, headers=h)
        assert r.status_code == 422 and "malformed" in r.json()["message"] or "frames" in r.json()["message"], r.text
    r = client.post(f"/api/sessions/{s['id']}/results", headers=h,
                    json={"document": results["analysis"], "source_image": {"sop_instance_uid": "x",
                                                                              "sop_class_uid": "1.2"}})
    assert r.status_code == 422


def test_handout_before_the_first_treatment_gives_its_booked_date(client, make, auth, tmp_path):
    from datetime import UTC, datetime, timedelta

    p = make.ready_patient(given_name="Bea")
    when = (datetime.now(UTC) + timedelta(days=10)).replace(hour=9, minute=30, second=0, microsecond=0)
    r = client.post("/api/appointments", headers=auth("front_desk"),
                    json={"patient_id": p["id"], "kind": "sclerotherapy", "start": when.isoformat()})
    assert r.status_code == 201, r.text
    text = _pdf_text(client.get(f"/api/patients/{p['id']}/handout", headers=auth("nurse")).content, tmp_path)
    assert f"Your treatment: {when:%A %d %B %Y, %H:%M}" in text and "Before your sclerotherapy, Bea" in text
    assert "Your follow-up visits" not in text  # none booked yet
