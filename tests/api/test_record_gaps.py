"""CEAP and vein-map validation at entry, the exam's leg diagram, canister foam (Varithena), and rate limits
that hold across server processes. Run on SQLite and (marked) PostgreSQL."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session as OrmSession

from echosclero.api.app import create_app
from echosclero.store.db import make_engine
from echosclero.store.models import AuditEntry, Exam


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request):
    return request.param


PASSWORD = "correct horse battery staple"  # as in conftest.py
VEIN_MAP = {
    "schema": "echosclero.veinmap/1",
    "findings": [
        {"segment": "SFJ", "leg": "left", "reflux_ms": 1800},
        {"segment": "GSVa", "leg": "L", "diameter_mm": 7.2, "reflux_ms": 2400, "label": ""},
        {"segment": "CPV", "leg": "left", "diameter_mm": 4.1, "reflux_ms": 800, "label": "Cockett II"},
        {"segment": "SSV", "leg": "left", "competent": True},
    ],
}


def _exam(client, make, auth, pid, vein_map, limb="left"):
    return client.post(
        f"/api/patients/{pid}/exams",
        headers=auth("sonographer"),
        json={"exam_date": "2024-03-01", "limb": limb, "vein_map": vein_map},
    )


@pytest.mark.parametrize(
    "ceap,stored",
    [
        ("C2", "C2"),
        ("c2, 4a s", "C2,4aS"),
        ("C2,4a,S Ep As,p Pr", "C2,4aS Ep As,p Pr"),
        ("C2r,6rA Ep As,d Pr,o(r:GSVa,SSV; o:POPV)", "C2r,6rA Ep As,d Pr,o(r:GSVa,SSV; o:POPV)"),
    ],
)
def test_ceap_is_validated_and_stored_canonical(client, make, auth, ceap, stored):
    p = make.patient()
    r = client.post(
        f"/api/patients/{p['id']}/assessments",
        headers=auth("sonographer"),
        json={"assessed_on": "2024-03-01", "limb": "left", "ceap": ceap},
    )
    assert r.status_code == 201, r.text
    assert r.json()["ceap"] == stored


@pytest.mark.parametrize(
    "ceap,needle",
    [
        ("C7", "unknown CEAP clinical class 'C7'"),
        ("C4", "unknown CEAP clinical class 'C4'"),  # split into C4a/b/c in 2020
        ("C0,2S", "C0 (no visible signs) cannot be combined with C2"),
        ("C2,2rS", "C2r replaces C2"),
        ("C2S Ep As Pn", "give Pr and/or Po, or An"),
        ("C2S Es As Pr", "cannot read CEAP"),
        ("C2S Ep As,p Pr(r:XYZ)", "unknown CEAP anatomic segment"),
        ("varicose", "cannot read the CEAP clinical class"),
    ],
)
def test_bad_ceap_is_a_422_naming_the_problem(client, make, auth, ceap, needle):
    p = make.patient()
    r = client.post(
        f"/api/patients/{p['id']}/assessments",
        headers=auth("sonographer"),
        json={"assessed_on": "2024-03-01", "limb": "left", "ceap": ceap},
    )
    assert r.status_code == 422 and needle in r.json()["message"], r.text
    assert r.json()["detail"][0]["loc"] == ["body", "ceap"]


def test_vein_map_is_validated_and_stored_canonical(client, make, auth):
    p = make.patient()
    r = _exam(client, make, auth, p["id"], VEIN_MAP)
    assert r.status_code == 201, r.text
    stored = client.get(f"/api/exams/{r.json()['id']}", headers=auth("nurse")).json()["vein_map"]
    by = {(f["segment"], f["label"]): f for f in stored["findings"]}
    assert stored["schema"] == "echosclero.veinmap/1" and by[("GSVa", "")]["leg"] == "left"
    assert by[("GSVa", "")]["status"] == "incompetent" and by[("SSV", "")]["status"] == "competent"
    assert by[("CPV", "Cockett II")]["incompetent"] is True  # >= 500 ms and >= 3.5 mm
    empty = _exam(client, make, auth, p["id"], {"schema": "echosclero.veinmap/1"})
    assert empty.status_code == 201 and empty.json()["vein_map"]["findings"] == []


def _map(*findings):
    return {"schema": "echosclero.veinmap/1", "findings": list(findings)}


@pytest.mark.parametrize(
    "vein_map,limb,needle",
    [
        ({"segments": [{"code": "GSV"}]}, "left", "vein_map.segments: Extra inputs are not permitted"),
        ({"schema": "echosclero.veinmap/0", "findings": []}, "left", "vein_map.schema"),
        (_map({"segment": "XYZ", "leg": "left"}), "left", "XYZ"),
        (_map({"segment": "GSV", "leg": "up"}), "left", "'left' or 'right'"),
        (_map({"segment": "GSVa", "leg": "left", "reflux_ms": 2000, "competent": True}), "left", "marked competent"),
        (_map({"segment": "GSVa", "leg": "left", "occluded": True, "reflux_ms": 900}), "left", "has no flow"),
        (_map({"segment": "GSVa", "leg": "left"}, {"segment": "GSVa", "leg": "left"}), "left", "already mapped"),
        (_map({"segment": "SSV", "leg": "right"}), "left", "right leg"),
        (_map({"segment": "SSV", "leg": "left", "diameter_mm": 0}), "left", "diameter_mm"),
        (_map({"segment": "SSV", "leg": "left", "occluded": "maybe"}), "left", "occluded"),
        (_map({"segment": "SSV", "leg": "left", "diamter_mm": 4}), "left", "diamter_mm"),
    ],
)
def test_bad_vein_map_is_a_422_naming_the_problem(client, make, auth, vein_map, limb, needle):
    p = make.patient()
    r = _exam(client, make, auth, p["id"], vein_map, limb)
    assert r.status_code == 422 and needle in r.json()["message"], r.text


def test_leg_diagram_svg_and_png_audited(client, make, auth, engine):
    p = make.patient()
    exam = _exam(client, make, auth, p["id"], VEIN_MAP).json()
    r = client.get(f"/api/exams/{exam['id']}/diagram", headers=auth("nurse"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.startswith("<svg") and "GSVa 7.2 mm 2400 ms" in r.text and "#d62728" in r.text
    r = client.get(f"/api/exams/{exam['id']}/diagram?format=png", headers=auth("physician"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n" and len(r.content) > 5000
    assert client.get(f"/api/exams/{exam['id']}/diagram?format=gif", headers=auth("nurse")).status_code == 422
    assert client.get(f"/api/exams/{exam['id']}/diagram", headers=auth("front_desk")).status_code == 403
    assert client.get("/api/exams/999999/diagram", headers=auth("nurse")).status_code == 404
    with OrmSession(engine) as db:
        reads = db.scalars(select(AuditEntry).where(AuditEntry.resource == "exam_diagram")).all()
    assert [(a.username, a.patient_id, a.detail["format"]) for a in reads] == [
        ("nurse", p["id"], "svg"),
        ("physician", p["id"], "png"),
    ]


def test_diagram_of_a_map_stored_before_validation_is_a_409(client, make, auth, engine):
    p = make.patient()
    exam = _exam(client, make, auth, p["id"], VEIN_MAP).json()
    with OrmSession(engine) as db:  # as revision 0002 stored it: any JSON object
        db.execute(update(Exam).where(Exam.id == exam["id"]).values(vein_map={"segments": [{"code": "GSV"}]}))
        db.commit()
    r = client.get(f"/api/exams/{exam['id']}/diagram", headers=auth("nurse"))
    assert r.status_code == 409 and "cannot be drawn" in r.json()["message"]


def _canister(**kw):
    return {
        "segment": "GSV",
        "agent": "polidocanol",
        "concentration_pct": 1,
        "volume_ml": 5,
        "form": "canister_foam",
        "liquid_gas_ratio": None,  # the factory's default is "1:4"
        "ultrasound_confirmed": True,
    } | kw


def test_canister_foam_label_limits(client, make, auth, today):
    p = make.ready_patient()
    s = make.session(p["id"])
    inj = make.injection(s["id"], **_canister())
    assert inj["form"] == "canister_foam" and inj["liquid_gas_ratio"] is None
    assert inj["mass_mg"] == pytest.approx(6.5)  # [verify] 1.3 mg of polidocanol per mL of canister foam
    assert inj["session_totals"]["canister_foam_ml"] == 5 and inj["session_totals"]["foam_ml"] == 0
    assert inj["remaining"]["canister_foam_ml_session"] == 10
    r = make.injection(s["id"], 422, **_canister(volume_ml=5.5))
    assert r["violations"][0]["rule"] == "CANISTER_FOAM_INJECTION_MAX_ML" and "[label] Varithena" in r["message"]
    make.injection(s["id"], **_canister())
    make.injection(s["id"], **_canister(volume_ml=4))
    r = make.injection(s["id"], 422, **_canister(volume_ml=2))  # 16 mL in the session (and the day)
    assert [v["rule"] for v in r["violations"]] == ["CANISTER_FOAM_SESSION_MAX_ML", "CANISTER_FOAM_DAILY_MAX_ML"]
    # compounded foam has its own limits: 10 mL per session (consensus), not the canister's 15 mL
    make.injection(s["id"], volume_ml=2)


def test_canister_foam_sessions_five_days_apart(client, make, today):
    """The interval is counted between the days of the injections' own times."""
    p = make.ready_patient()

    def at(d):  # this moment's clock time on day d (never in the future)
        return (datetime.now().astimezone() - (today - d)).isoformat()

    first = make.session(p["id"], on=today - timedelta(days=5))
    make.injection(first["id"], time=at(today - timedelta(days=5)), **_canister(volume_ml=1))
    later = make.session(p["id"], on=today - timedelta(days=2))
    r = make.injection(later["id"], 422, time=at(today - timedelta(days=2)), **_canister(volume_ml=1))
    assert "CANISTER_FOAM_SESSION_INTERVAL_DAYS" in {v["rule"] for v in r["violations"]}
    after = make.session(p["id"], on=today)
    assert make.injection(after["id"], time=at(today), **_canister(volume_ml=1))["warnings"] == []


@pytest.mark.parametrize(
    "patch,needle",
    [
        ({"concentration_pct": 3}, "concentration_pct 1"),
        ({"agent": "sodium_tetradecyl_sulfate"}, "agent polidocanol"),
        ({"liquid_gas_ratio": "1:4"}, "leave liquid_gas_ratio and gas out"),
        ({"gas": "co2_o2"}, "leave liquid_gas_ratio and gas out"),
    ],
)
def test_canister_foam_is_polidocanol_1_percent(client, make, auth, patch, needle):
    p = make.ready_patient()
    s = make.session(p["id"])
    r = make.injection(s["id"], 422, **_canister(**patch))
    assert needle in r["message"]


def test_pregnancy_is_a_relative_contraindication(client, make, auth):
    p = make.patient()
    c = make.candidacy(p["id"], present=["pregnancy"])
    assert not c["blocks_planning"] and [x["code"] for x in c["relative"]] == ["pregnancy"]
    assert "NICE CG168" in c["relative"][0]["source"] and "[guideline] UIP" in c["relative"][0]["source"]
    s = make.session(p["id"])
    assert any(w["rule"] == "CANDIDACY_RELATIVE" and "NICE" in w["message"] for w in s["warnings"])


def test_deep_vein_injection_warns_as_a_verify_rule(client, make, auth):
    p = make.ready_patient()
    s = make.session(p["id"])
    inj = make.injection(s["id"], segment="FV", volume_ml=1)
    w = [x for x in inj["warnings"] if x["rule"] == "DEEP_VEIN_TARGET"]
    assert w and w[0]["enforcement"] == "warn" and w[0]["source"].startswith("[verify]")


def _second_process(settings, engine):
    """Another server process on the same database: its own engine, its own app state."""
    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    return create_app(settings, engine=other, migrate=False), other


def test_public_form_limit_holds_across_processes(client, settings, engine):
    from fastapi.testclient import TestClient

    ok = {"name": "Pat Public", "phone": "+44 20 7946 0000"}
    assert [client.post("/api/public/appointment-requests", json=ok).status_code for _ in range(3)] == [202] * 3
    app2, engine2 = _second_process(settings, engine)
    try:
        with TestClient(app2) as c2:
            codes = [c2.post("/api/public/appointment-requests", json=ok).status_code for _ in range(3)]
            assert codes == [202, 202, 429]  # 5 per hour per address, counted by both processes
            r = c2.post("/api/public/appointment-requests", json=ok)
            assert r.status_code == 429 and int(r.headers["Retry-After"]) > 3000
        assert client.post("/api/public/appointment-requests", json=ok).status_code == 429
    finally:
        engine2.dispose()


def test_failed_sign_ins_limited_across_processes(client, settings, engine, users):
    from fastapi.testclient import TestClient

    def sign_in(c, password):
        return c.post("/api/token", data={"username": "nurse", "password": password}).status_code

    assert [sign_in(client, PASSWORD) for _ in range(3)] == [200] * 3  # successes do not count
    assert [sign_in(client, "wrong") for _ in range(6)] == [401] * 6
    app2, engine2 = _second_process(settings, engine)
    try:
        with TestClient(app2) as c2:
            assert [sign_in(c2, "wrong") for _ in range(5)] == [401] * 4 + [429]  # 10 failures per 15 min
            assert sign_in(c2, PASSWORD) == 429  # even the right password, until the window passes
        assert sign_in(client, PASSWORD) == 429
    finally:
        engine2.dispose()
    with OrmSession(engine) as db:
        failed = db.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed")).all()
    assert len(failed) == 10 and {a.username for a in failed} == {"nurse"}
