"""The core a clinic trusts: patients, candidacy, plans, sessions, injections with dose safety, overrides,
follow-up, and the audit trail. Run on SQLite and (marked) PostgreSQL."""

from datetime import date, timedelta

import pytest

from echosclero.store.models import AuditEntry

pytestmark = []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request):
    return request.param


def test_patient_roundtrip_and_fixed_fields(client, make, auth):
    p = make.patient()
    assert p["id"] >= 1 and p["weight_kg"] == 70
    r = client.get(f"/api/patients/{p['id']}", headers=auth("nurse"))
    assert r.status_code == 200 and r.json()["family_name"] == "Doe"
    r = client.get(f"/api/patients/{p['id']}", headers=auth("front_desk"))
    assert r.json()["weight_kg"] is None and r.json()["notes"] is None  # no clinical data for the front desk
    r = client.get("/api/patients?q=do", headers=auth("sonographer"))
    assert [x["id"] for x in r.json()] == [p["id"]]


def test_full_pathway(client, make, auth, today):
    h = auth("physician")
    p = make.ready_patient()
    pid = p["id"]
    exam = make.post(
        f"/api/patients/{pid}/exams",
        {
            "exam_date": today.isoformat(),
            "limb": "left",
            "vein_map": {
                "schema": "echosclero.veinmap/1",
                "findings": [{"segment": "GSV", "leg": "L", "reflux_ms": 1200}],
            },
        },
    )
    finding = client.get(f"/api/exams/{exam['id']}", headers=h).json()["vein_map"]["findings"][0]
    assert (finding["reflux_ms"], finding["leg"], finding["status"]) == (1200, "left", "incompetent")
    make.post(
        f"/api/patients/{pid}/assessments",
        {
            "assessed_on": today.isoformat(),
            "limb": "left",
            "ceap": "C2S",
            "vcss_items": {"pain": 1, "varicose_veins": 2},
        },
    )
    assert client.get(f"/api/patients/{pid}/assessments", headers=h).json()[0]["vcss"] == 3
    plan = make.post(
        f"/api/patients/{pid}/plans",
        {
            "limb": "left",
            "items": [
                {
                    "segment": "GSV",
                    "agent": "polidocanol",
                    "form": "foam",
                    "liquid_gas_ratio": "1:4",
                    "concentration_pct": 1,
                    "planned_volume_ml": 6,
                }
            ],
        },
    )
    s = make.session(pid, plan_id=plan["id"])
    inj = make.injection(s["id"], volume_ml=4, frame_ref="1.2.3.4#12", spread_cm=8, spasm=True)
    assert inj["mass_mg"] == pytest.approx(8.0) and inj["session_totals"]["foam_ml"] == 4
    assert inj["remaining"]["foam_ml_session"] == 6
    r = client.get(f"/api/sessions/{s['id']}", headers=auth("nurse"))
    assert r.json()["totals"]["count"] == 1 and r.json()["injections"][0]["frame_ref"] == "1.2.3.4#12"
    r = client.patch(
        f"/api/sessions/{s['id']}",
        headers=auth("nurse"),
        json={
            "observation_minutes": 15,
            "observation_outcome": "uneventful",
            "compression": "stocking",
            "stocking_class": 2,
            "compression_days": 14,
            "regimen": "trunk_foam",
            "status": "closed",
        },
    )
    assert r.status_code == 200, r.text
    fus = client.get(f"/api/patients/{pid}/followups", headers=auth("sonographer")).json()
    assert [f["kind"] for f in fus] == ["early_duplex", "review", "late_review"]
    assert fus[0]["due_on"] == (today + timedelta(days=14)).isoformat()
    r = client.patch(
        f"/api/followups/{fus[0]['id']}",
        headers=auth("sonographer"),
        json={"dvt_found": False, "outcomes": [{"limb": "left", "segment": "GSV", "outcome": "partially_occluded"}]},
    )
    assert r.status_code == 200 and r.json()["status"] == "done"
    res = client.get(f"/api/patients/{pid}/residual-veins", headers=h).json()
    assert res == [
        {"limb": "left", "segment": "GSV", "outcome": "partially_occluded", "observed_on": today.isoformat()}
    ]
    c = make.post(
        f"/api/patients/{pid}/complications",
        {"type": "hyperpigmentation", "severity": "mild", "onset_on": today.isoformat(), "session_id": s["id"]},
    )
    r = client.patch(
        f"/api/complications/{c['id']}",
        headers=auth("nurse"),
        json={"resolved_on": (today + timedelta(days=60)).isoformat()},
    )
    assert r.status_code == 200
    text = client.get(f"/api/patients/{pid}/instructions", headers=auth("nurse")).json()
    assert text["regimen"] == "trunk_foam" and "14 days" in text["text"]
    make.post(
        f"/api/patients/{pid}/treatments",
        {"limb": "left", "segment": "GSV", "kind": "endovenous_laser_ablation", "treated_on": "2019-04-01"},
    )
    make.post(
        f"/api/patients/{pid}/consents", {"kind": "foam_sclerotherapy", "given": True, "signed_on": today.isoformat()}
    )


def test_daily_polidocanol_limit_refused_with_rule_and_source(client, make, auth):
    p = make.ready_patient(weight_kg=50)  # 100 mg/day
    s = make.session(p["id"], limb="left")
    for _ in range(3):
        make.injection(
            s["id"],
            segment="TRIB_CALF",
            form="liquid",
            liquid_gas_ratio=None,
            concentration_pct=1,
            volume_ml=2,
            ultrasound_confirmed=None,
        )  # 20 mg each
    s2 = make.session(p["id"], limb="right")  # the other leg, same day: the daily limit still counts
    for _ in range(2):
        make.injection(
            s2["id"], segment="TRIB_CALF", form="liquid", liquid_gas_ratio=None, concentration_pct=1, volume_ml=2
        )
    r = client.post(
        f"/api/sessions/{s2['id']}/injections",
        headers=auth("physician"),
        json={
            "segment": "TRIB_CALF",
            "agent": "polidocanol",
            "concentration_pct": 1,
            "volume_ml": 0.5,
            "form": "liquid",
        },
    )
    assert r.status_code == 422
    body = r.json()
    assert "POLIDOCANOL_DAILY_MG_PER_KG" in body["message"] and "Aethoxysklerol" in body["message"]
    assert body["detail"][0]["rule"] == "POLIDOCANOL_DAILY_MG_PER_KG"
    assert client.get(f"/api/sessions/{s2['id']}", headers=auth("physician")).json()["totals"]["count"] == 2


def test_foam_session_limit_and_physician_override_is_audited(client, make, auth, engine):
    p = make.ready_patient(weight_kg=90)
    s = make.session(p["id"])
    make.injection(s["id"], volume_ml=5)
    make.injection(s["id"], volume_ml=5)
    r = client.post(
        f"/api/sessions/{s['id']}/injections",
        headers=auth("physician"),
        json={
            "segment": "GSV",
            "agent": "polidocanol",
            "concentration_pct": 1,
            "volume_ml": 1,
            "form": "foam",
            "liquid_gas_ratio": "1:4",
        },
    )
    assert r.status_code == 422 and "FOAM_SESSION_MAX_ML" in r.json()["message"]
    reason = "Large recurrent varices, discussed with the patient; staged plan not possible"
    inj = make.injection(s["id"], volume_ml=1, override_reason=reason)
    assert inj["override_reason"] == reason and any(w["rule"] == "FOAM_SESSION_MAX_ML" for w in inj["warnings"])
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    with Session(engine) as db:
        o = db.scalars(select(AuditEntry).where(AuditEntry.action == "override")).all()
        assert len(o) == 1 and o[0].detail["reason"] == reason and o[0].username == "physician"
        assert o[0].patient_id == p["id"] and o[0].client_ip


def test_override_reason_too_short_is_refused(client, make, auth):
    p = make.ready_patient()
    s = make.session(p["id"])
    r = client.post(
        f"/api/sessions/{s['id']}/injections",
        headers=auth("physician"),
        json={
            "segment": "FV",
            "agent": "polidocanol",
            "concentration_pct": 1,
            "volume_ml": 1,
            "form": "foam",
            "liquid_gas_ratio": "1:4",
            "override_reason": "ok",
        },
    )
    assert r.status_code == 422 and "override_reason" in r.json()["message"]


def test_candidacy_gate(client, make, auth, today):
    p = make.patient()
    r = client.post(
        f"/api/patients/{p['id']}/plans",
        headers=auth("physician"),
        json={
            "limb": "left",
            "items": [
                {
                    "segment": "GSV",
                    "agent": "polidocanol",
                    "form": "foam",
                    "liquid_gas_ratio": "1:4",
                    "concentration_pct": 1,
                    "planned_volume_ml": 4,
                }
            ],
        },
    )
    assert r.status_code == 422 and "CANDIDACY_RECORDED" in r.json()["message"]
    c = make.candidacy(p["id"], present=["acute_dvt_pe", "migraine"])
    assert c["blocks_planning"] and c["absolute"][0]["code"] == "acute_dvt_pe"
    r = client.post(
        f"/api/patients/{p['id']}/sessions", headers=auth("physician"), json={"date": today.isoformat(), "limb": "left"}
    )
    assert r.status_code == 422 and "CANDIDACY_ABSOLUTE" in r.json()["message"]
    c = make.candidacy(
        p["id"], present=["acute_dvt_pe"], override_reason="Thrombus resolved on duplex today; haematology agrees"
    )
    assert not c["blocks_planning"]
    s = make.session(p["id"])
    assert any("overridden" in w["message"] for w in s["warnings"])


def test_pfo_blocks_foam_not_liquid(client, make, auth):
    p = make.patient()
    make.candidacy(p["id"], present=["symptomatic_pfo"])
    base = {"limb": "left"}
    liquid = {
        "segment": "TRIB_CALF",
        "agent": "polidocanol",
        "form": "liquid",
        "concentration_pct": 1,
        "planned_volume_ml": 2,
    }
    assert (
        client.post(
            f"/api/patients/{p['id']}/plans", headers=auth("physician"), json=base | {"items": [liquid]}
        ).status_code
        == 201
    )
    foam = liquid | {"form": "foam", "liquid_gas_ratio": "1:4"}
    assert (
        client.post(
            f"/api/patients/{p['id']}/plans", headers=auth("physician"), json=base | {"items": [foam]}
        ).status_code
        == 422
    )


def test_test_injection_policy(client, make, auth, today):
    h = auth("physician")
    r = client.put(
        "/api/rules/TEST_INJECTION_REQUIRED",
        headers=h,
        json={"value": True, "reason": "clinic policy from 2025: test dose before foam"},
    )
    assert r.status_code == 200 and r.json()["value"] is True
    p = make.ready_patient(tested=False)
    s = make.session(p["id"])
    r = client.post(
        f"/api/sessions/{s['id']}/injections",
        headers=h,
        json={
            "segment": "GSV",
            "agent": "polidocanol",
            "concentration_pct": 1,
            "volume_ml": 2,
            "form": "foam",
            "liquid_gas_ratio": "1:4",
        },
    )
    assert r.status_code == 422 and "TEST_INJECTION_REQUIRED" in r.json()["message"]
    make.post(
        f"/api/patients/{p['id']}/test-injections",
        {
            "given_on": (today - timedelta(days=2)).isoformat(),
            "agent": "polidocanol",
            "concentration_pct": 0.5,
            "volume_ml": 0.5,
            "observed_minutes": 30,
        },
    )
    make.injection(s["id"])


def test_hypersensitive_patient_first_session(client, make, auth):
    p = make.patient()
    make.candidacy(p["id"], present=["allergic_disposition"])
    make.test_injection(p["id"])
    s = make.session(p["id"])
    make.injection(s["id"], volume_ml=1)
    r = client.post(
        f"/api/sessions/{s['id']}/injections",
        headers=auth("physician"),
        json={
            "segment": "GSV",
            "agent": "polidocanol",
            "concentration_pct": 1,
            "volume_ml": 1,
            "form": "foam",
            "liquid_gas_ratio": "1:4",
        },
    )
    assert r.status_code == 422 and "HYPERSENSITIVITY_FIRST_SESSION_MAX_ML" in r.json()["message"]


def test_concentration_out_of_vein_type_range_only_warns(client, make):
    p = make.ready_patient()
    s = make.session(p["id"])
    inj = make.injection(
        s["id"], segment="TEL", form="liquid", liquid_gas_ratio=None, concentration_pct=1.0, volume_ml=0.2
    )
    assert {w["rule"] for w in inj["warnings"]} == {"CONCENTRATION_BY_VEIN_TYPE"}
    assert inj["warnings"][0]["source"].startswith("[verify]")


def test_closed_session_refuses_injections(client, make, auth):
    p = make.ready_patient()
    s = make.session(p["id"])
    client.patch(f"/api/sessions/{s['id']}", headers=auth("nurse"), json={"status": "closed"})
    r = client.post(
        f"/api/sessions/{s['id']}/injections",
        headers=auth("physician"),
        json={
            "segment": "GSV",
            "agent": "polidocanol",
            "concentration_pct": 1,
            "volume_ml": 1,
            "form": "foam",
            "liquid_gas_ratio": "1:4",
        },
    )
    assert r.status_code == 422 and "closed" in r.json()["message"]


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"weight_kg": 700}, "weight_kg"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"sex": "x"}, "sex"),
        ({"family_name": ""}, "family_name"),
        ({"family_name": "Do\x00e"}, "control"),
        ({"weight_kg": "NaN"}, "weight_kg"),
        ({"shoe_size": 42}, "shoe_size"),
    ],
)
def test_patient_validation_messages(client, auth, body, needle):
    base = {"family_name": "Doe", "given_name": "Jane", "birth_date": "1970-05-01", "sex": "female", "weight_kg": 70}
    r = client.post("/api/patients", headers=auth("physician"), json=base | body)
    assert r.status_code == 422 and needle in r.json()["message"]


@pytest.mark.parametrize(
    "patch,needle",
    [
        ({"segment": "GSW"}, "did you mean"),
        ({"agent": "bleach"}, "agent"),
        ({"liquid_gas_ratio": None}, "liquid_gas_ratio is required"),
        ({"liquid_gas_ratio": "1-4"}, "ratio"),
        ({"volume_ml": 0}, "volume_ml"),
        ({"concentration_pct": -1}, "concentration_pct"),
        ({"time": "2024-01-01T10:00:00"}, "timezone"),
        ({"liquid_gas_ration": "1:4"}, "liquid_gas_ration"),
    ],
)
def test_injection_validation_messages(client, make, auth, patch, needle):
    p = make.ready_patient()
    s = make.session(p["id"])
    body = {
        "segment": "GSV",
        "agent": "polidocanol",
        "concentration_pct": 1,
        "volume_ml": 1,
        "form": "foam",
        "liquid_gas_ratio": "1:4",
    } | patch
    r = client.post(f"/api/sessions/{s['id']}/injections", headers=auth("physician"), json=body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["message"]


def test_every_patient_read_and_write_is_audited(client, make, auth, engine):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    p = make.patient()
    client.get(f"/api/patients/{p['id']}", headers=auth("nurse"))
    client.get(f"/api/patients/{p['id']}/sessions", headers=auth("nurse"))
    with Session(engine) as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.patient_id == p["id"]).order_by(AuditEntry.id)).all()
        assert [(r.action, r.resource, r.username) for r in rows] == [
            ("create", "patient", "physician"),
            ("read", "patient", "nurse"),
            ("read", "sessions", "nurse"),
        ]
        assert all(r.at.tzinfo is not None and r.client_ip and r.path.startswith("/api/") for r in rows)


def test_audit_log_is_admin_only_and_append_only(client, make, auth, engine):
    p = make.patient()
    r = client.get(f"/api/audit?patient_id={p['id']}", headers=auth("admin"))
    assert r.status_code == 200 and r.json()[0]["action"] == "create"
    for role in ("physician", "nurse", "sonographer", "front_desk"):
        assert client.get("/api/audit", headers=auth(role)).status_code == 403
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for stmt in ("UPDATE audit_log SET username = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(stmt))


def test_date_fields(client, make, auth):
    p = make.ready_patient()
    r = client.post(
        f"/api/patients/{p['id']}/sessions", headers=auth("physician"), json={"date": "1066-10-14", "limb": "left"}
    )
    assert r.status_code == 422 and "date" in r.json()["message"]
    r = client.post(
        f"/api/patients/{p['id']}/sessions",
        headers=auth("physician"),
        json={"date": date.today().isoformat(), "limb": "middle"},
    )
    assert r.status_code == 422 and "limb" in r.json()["message"]
