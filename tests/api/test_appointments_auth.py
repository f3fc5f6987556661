"""Sign-in, users, appointments with the 48 h notice rule, reminders, and the public request form."""

from datetime import UTC, datetime, timedelta

PASSWORD = "correct horse battery staple"  # as in conftest.py


def iso(hours):
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def test_token_flow_and_failed_logins(client, users):
    r = client.post("/api/token", data={"username": "nurse", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["role"] == "nurse"
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/api/users/me", headers=h).json()["username"] == "nurse"
    assert client.post("/api/token", data={"username": "nurse", "password": "wrong"}).status_code == 401
    assert client.post("/api/token", data={"username": "ghost", "password": "x"}).status_code == 401
    assert client.post("/api/token", data={"username": "retired", "password": PASSWORD}).status_code == 401
    assert client.post("/api/token", data={}).status_code == 422


def test_login_rate_limit(client, users):
    codes = [client.post("/api/token", data={"username": "admin", "password": "nope"}).status_code for _ in range(12)]
    assert codes[:10] == [401] * 10 and codes[-1] == 429


def test_admin_manages_users(client, auth):
    r = client.post(
        "/api/users",
        headers=auth("admin"),
        json={"username": "carol", "password": "a long enough pw", "role": "sonographer"},
    )
    assert r.status_code == 201
    assert client.post("/api/token", data={"username": "carol", "password": "a long enough pw"}).status_code == 200
    assert (
        client.patch(f"/api/users/{r.json()['id']}", headers=auth("admin"), json={"active": False}).status_code == 200
    )
    assert client.post("/api/token", data={"username": "carol", "password": "a long enough pw"}).status_code == 401
    r = client.post("/api/users", headers=auth("admin"), json={"username": "dave", "password": "short", "role": "x"})
    assert r.status_code == 422 and "password" in r.json()["message"] and "role" in r.json()["message"]


def test_booking_notice_rule_and_reminders(client, make, auth):
    p = make.patient()
    h = auth("front_desk")
    far = client.post(
        "/api/appointments", headers=h, json={"patient_id": p["id"], "kind": "sclerotherapy", "start": iso(24 * 7)}
    ).json()
    near = client.post(
        "/api/appointments", headers=h, json={"patient_id": p["id"], "kind": "duplex", "start": iso(24)}
    ).json()
    assert (
        client.post(
            "/api/appointments", headers=h, json={"patient_id": p["id"], "kind": "duplex", "start": iso(-1)}
        ).status_code
        == 422
    )
    r = client.patch(f"/api/appointments/{far['id']}", headers=h, json={"start": iso(24 * 8)})
    assert r.status_code == 200
    r = client.patch(f"/api/appointments/{near['id']}", headers=h, json={"start": iso(30)})
    assert r.status_code == 422 and "APPOINTMENT_NOTICE_HOURS" in r.json()["message"]
    r = client.patch(
        f"/api/appointments/{near['id']}", headers=h, json={"start": iso(30), "override_reason": "Patient asked, ill"}
    )
    assert r.status_code == 200 and r.json()["late_change"] is True  # a late change, recorded as one
    # a late cancellation is recorded (as late, with the clinic's policy), never refused
    r = client.post(f"/api/appointments/{near['id']}/cancel", headers=h, json={"reason": "patient ill"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["late_change"] is True
    assert r.json()["late_change_policy"] and "48 h notice" in r.json()["warnings"][0]["message"]
    assert client.post(f"/api/appointments/{near['id']}/cancel", headers=h, json={"reason": "again"}).status_code == 422
    due = client.get("/api/appointments/reminders/due", headers=h).json()
    assert due == []  # the near one is cancelled; the far one is outside 48 h
    soon = client.post(
        "/api/appointments", headers=h, json={"patient_id": p["id"], "kind": "followup", "start": iso(20)}
    ).json()
    assert [a["id"] for a in client.get("/api/appointments/reminders/due", headers=h).json()] == [soon["id"]]
    client.post(f"/api/appointments/{soon['id']}/reminder-sent", headers=h)
    assert client.get("/api/appointments/reminders/due", headers=h).json() == []
    listed = client.get(f"/api/appointments?patient_id={p['id']}&days=30", headers=auth("nurse")).json()
    assert {a["id"] for a in listed} == {far["id"], near["id"], soon["id"]}


def test_public_form_validated_rate_limited_and_queued(client, auth):
    ok = {
        "name": "Pat Public",
        "email": "pat@example.org",
        "preferred_times": "Tuesday mornings",
        "reason": "visible veins on the calf",
    }
    r = client.post("/api/public/appointment-requests", json=ok)
    assert r.status_code == 202 and r.json()["received"]
    r = client.post("/api/public/appointment-requests", json={"name": "No Contact"})
    assert r.status_code == 422 and "e-mail address or a telephone number" in r.json()["message"]
    r = client.post("/api/public/appointment-requests", json=ok | {"website": "http://spam"})
    assert r.status_code == 202  # honeypot: same answer, not queued
    q = client.get("/api/appointment-requests", headers=auth("front_desk")).json()
    assert [x["name"] for x in q] == ["Pat Public"]
    assert client.get("/api/appointment-requests", headers=auth("nurse")).status_code == 403
    codes = [client.post("/api/public/appointment-requests", json=ok).status_code for _ in range(5)]
    assert codes[-1] == 429  # 5 per hour per address
    p_id = client.post(
        "/api/patients",
        headers=auth("front_desk"),
        json={
            "family_name": "Public",
            "given_name": "Pat",
            "birth_date": "1980-01-01",
            "sex": "other",  # no weight_kg: clinical data, which the front desk does not write
        },
    ).json()["id"]
    a = client.post(
        "/api/appointments",
        headers=auth("front_desk"),
        json={"patient_id": p_id, "kind": "consultation", "start": iso(72), "request_id": q[0]["id"]},
    )
    assert a.status_code == 201
    assert (
        client.get("/api/appointment-requests?status=booked", headers=auth("front_desk")).json()[0]["appointment_id"]
        == a.json()["id"]
    )


def test_rules_listing_and_editing(client, auth):
    rules = client.get("/api/rules", headers=auth("front_desk")).json()
    by = {r["code"]: r for r in rules}
    assert by["POLIDOCANOL_DAILY_MG_PER_KG"]["value"] == 2.0 and by["POLIDOCANOL_DAILY_MG_PER_KG"]["mark"] == "label"
    assert all(r["source"] for r in rules)
    assert (
        client.put(
            "/api/rules/FOAM_SESSION_MAX_ML", headers=auth("nurse"), json={"value": 8, "reason": "clinic prefers less"}
        ).status_code
        == 403
    )
    r = client.put(
        "/api/rules/FOAM_SESSION_MAX_ML", headers=auth("physician"), json={"value": -1, "reason": "a reason here"}
    )
    assert r.status_code == 422
    r = client.put(
        "/api/rules/FOAM_SESSION_MAX_ML",
        headers=auth("physician"),
        json={"value": 8, "reason": "clinic prefers 8 mL per session"},
    )
    assert r.json()["value"] == 8 and r.json()["default"] == 10
    assert (
        client.put(
            "/api/rules/NOPE", headers=auth("physician"), json={"value": 8, "reason": "clinic prefers"}
        ).status_code
        == 404
    )


def test_templates_editable_and_checked(client, make, auth):
    r = client.put(
        "/api/instruction-templates/aftercare",
        headers=auth("nurse"),
        json={"body": "Dear {{ patient.given_name }}, wear stockings {{ regimen.stocking_days }} days."},
    )
    assert r.status_code == 200
    p = make.patient()
    t = client.get(f"/api/patients/{p['id']}/instructions?regimen=spider", headers=auth("nurse")).json()
    assert t["text"] == "Dear Jane, wear stockings 3 days."
    r = client.put("/api/instruction-templates/aftercare", headers=auth("nurse"), json={"body": "{{ oops }}"})
    assert r.status_code == 422 and "does not render" in r.json()["message"]
    r = client.get(f"/api/patients/{p['id']}/instructions?regimen=nope", headers=auth("nurse"))
    assert r.status_code == 422 and "spider" in r.json()["message"]
