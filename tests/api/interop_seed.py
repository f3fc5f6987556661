"""A patient's whole pathway through the API, with real ``reflux`` and ``analyze`` results (simulated scans)
attached, for the report, SR and FHIR tests."""

from __future__ import annotations

import functools
import json
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from echosclero.cli import main

ANALYSIS_FRAMES = 30  # the needle enters the artery at frame 24 (TIP_IN_ARTERY)


@functools.cache
def make_results() -> dict:
    """``reflux`` of the simulated SFJ Doppler and ``analyze`` of the artery near miss, as the CLI writes them
    (once per test process; the files live until the process ends)."""
    folder = Path(tempfile.mkdtemp(prefix="echosclero-interop-"))
    assert main(["simulate", "sfj_reflux", "--out", str(folder / "sim"), "--seed", "1"]) == 0
    dcm = folder / "sim" / "sfj_reflux.dcm"
    assert main(["reflux", str(dcm), "--segment", "SFJ", "--json", str(folder / "r.json")]) == 0
    assert main(["analyze", "sim:artery_near_miss", "--max-frames", str(ANALYSIS_FRAMES),
                 "--json", str(folder / "a.json")]) == 0
    truth = json.loads((folder / "sim" / "truth.json").read_text())
    return {"reflux": json.loads((folder / "r.json").read_text()),
            "analysis": json.loads((folder / "a.json").read_text()),
            "doppler_dcm": dcm, "truth": truth}


def seed_pathway(client, make, auth, results: dict) -> dict:
    h = auth("physician")
    today = date.today()
    p = make.ready_patient(family_name="Example", given_name="Ann", phone="+44 20 7946 0000")
    pid = p["id"]
    exam = make.post(f"/api/patients/{pid}/exams", {
        "exam_date": (today - timedelta(days=7)).isoformat(),
        "limb": "left",
        "vein_map": {"schema": "echosclero.veinmap/1", "findings": [
            {"segment": "SFJ", "leg": "left", "reflux_ms": 1800},
            {"segment": "GSVb", "leg": "left", "diameter_mm": 4.2, "reflux_ms": 900},
            {"segment": "SSV", "leg": "left", "diameter_mm": 3.1, "reflux_ms": 200},
            {"segment": "CFV", "leg": "left", "reflux_ms": 400},
            {"segment": "CPV", "leg": "left", "label": "Cockett II", "diameter_mm": 3.8, "reflux_ms": 600},
        ]},
        "findings": "Incompetent SFJ and GSV above and below the knee; deep veins competent.",
    })
    make.post(f"/api/patients/{pid}/assessments", {
        "assessed_on": (today - timedelta(days=7)).isoformat(), "limb": "left", "ceap": "C2S Ep As,p Pr",
        "vcss_items": {"pain": 1, "varicose_veins": 2}})
    import pydicom

    ds = pydicom.dcmread(results["doppler_dcm"], stop_before_pixels=True)  # the workstation's side of the upload
    source_image = {"sop_instance_uid": ds.SOPInstanceUID, "sop_class_uid": ds.SOPClassUID,
                    "series_instance_uid": ds.SeriesInstanceUID, "study_instance_uid": ds.StudyInstanceUID}
    r = client.post(f"/api/exams/{exam['id']}/results", headers=h,
                    json={"document": results["reflux"], "source_image": source_image})
    assert r.status_code == 201, r.text
    plan = make.post(f"/api/patients/{pid}/plans", {"limb": "left", "items": [
        {"segment": "GSVa", "agent": "polidocanol", "form": "foam", "liquid_gas_ratio": "1:4",
         "concentration_pct": 1, "planned_volume_ml": 6},
        {"segment": "TRIB_CALF", "agent": "polidocanol", "form": "foam", "liquid_gas_ratio": "1:4",
         "concentration_pct": 0.5, "planned_volume_ml": 2},
    ]})
    s = make.session(pid, plan_id=plan["id"], started_at=datetime.now(UTC).replace(microsecond=0).isoformat())
    r = client.post(f"/api/sessions/{s['id']}/results", headers=h, json={"document": results["analysis"]})
    assert r.status_code == 201, r.text
    analysis = r.json()
    make.injection(s["id"], segment="GSVa", volume_ml=4, frame_ref=analysis["sop_instance_uid"] or "sim#12",
                   spread_cm=8, spasm=True)
    make.injection(s["id"], segment="TRIB_CALF", volume_ml=1.5, concentration_pct=0.5)
    r = client.patch(f"/api/sessions/{s['id']}", headers=auth("nurse"), json={
        "observation_minutes": 15, "observation_outcome": "uneventful", "compression": "bandage_then_stocking",
        "stocking_class": 2, "compression_days": 19, "regimen": "bandage_then_stocking", "status": "closed"})
    assert r.status_code == 200, r.text
    appt = client.post("/api/appointments", headers=h, json={
        "patient_id": pid, "kind": "followup", "start": (datetime.now(UTC) + timedelta(days=30)).replace(
            hour=10, minute=0, second=0, microsecond=0).isoformat(), "duration_min": 20})
    assert appt.status_code == 201, appt.text
    return {"patient_id": pid, "exam_id": exam["id"], "session_id": s["id"], "plan_id": plan["id"],
            "analysis": analysis}
