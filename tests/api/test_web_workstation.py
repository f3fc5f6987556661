"""The workstation's server side without a browser: sign-in cookie and CSRF, pages behind the sign-in and the
role's permissions, offline API docs, the pages' JSON (dose calculator, reflux upload, key frames, outcomes)
and the live WebSocket (origin, sign-in, newest-frame-only)."""

from __future__ import annotations

import base64
import json
import re
import struct
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from echosclero.web.live import Feed, encode_frame
from echosclero.web.session import COOKIE, csrf_token

PASSWORD = "correct horse battery staple"  # the password of tests/api/conftest.py's users
PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db40000000049454e44ae426082"
    )
).decode()


def sign_in(client: TestClient, role: str, password: str) -> str:
    r = client.post("/login", data={"username": role, "password": password, "next": "/patients"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.cookies[COOKIE]


@pytest.fixture
def doc(client, users):
    token = sign_in(client, "physician", PASSWORD)
    client.headers["X-CSRF-Token"] = csrf_token(client.app.state.settings.secret_key, token)
    return client


def test_sign_in_sets_an_httponly_samesite_cookie_and_bad_password_is_a_message(client, users):
    r = client.post("/login", data={"username": "physician", "password": "nope nope nope"}, follow_redirects=False)
    assert r.status_code == 401
    assert "wrong username or password" in r.text and 'role="alert"' in r.text
    r = client.post("/login", data={"username": "physician", "password": PASSWORD, "next": "//evil.example/"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    # the API sign-in is audited as ever: the login through the page is one more "login" entry
    r = client.get("/api/audit", headers={"Authorization": "Bearer " + _token(client, users, "admin")})
    assert any(a["action"] == "login" and a["username"] == "physician" for a in r.json())
    assert any(a["action"] == "login_failed" for a in r.json())


def _token(client, users, role):
    from echosclero.api.security import create_token

    return create_token(user_id=users[role], role=role, secret=client.app.state.settings.secret_key, minutes=5)


def test_a_cross_site_sign_in_post_is_refused(client, users):
    r = client.post("/login", data={"username": "physician", "password": PASSWORD},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and COOKIE not in r.headers.get("set-cookie", "")


def test_every_page_but_sign_in_and_the_request_form_needs_a_sign_in(client, users):
    for path in ("/", "/patients", "/patients/1", "/patients/1/mapping", "/patients/1/live", "/calendar",
                 "/outcomes", "/admin/users", "/admin/audit"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    assert client.get("/login").status_code == 200
    r = client.get("/request")
    assert r.status_code == 200 and "Ask for an appointment" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_cookie_calls_to_the_api_need_the_csrf_token(client, users):
    token = sign_in(client, "physician", PASSWORD)
    assert client.get("/api/users/me").json()["role"] == "physician"  # a read needs no token
    body = {"family_name": "Doe", "given_name": "Jane", "birth_date": "1970-05-01", "sex": "female", "weight_kg": 70}
    r = client.post("/api/patients", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["message"]
    r = client.post("/api/patients", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    good = csrf_token(client.app.state.settings.secret_key, token)
    assert client.post("/api/patients", json=body, headers={"X-CSRF-Token": good}).status_code == 201
    # the sign-out form needs it too
    assert client.post("/logout", data={"csrf": "x"}, follow_redirects=False).status_code == 403
    r = client.post("/logout", data={"csrf": good}, follow_redirects=False)
    assert r.status_code == 303 and 'es_session=""' in r.headers["set-cookie"]


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        ("front_desk", ["/patients", "/calendar", "/patients/1"], ["/outcomes", "/patients/1/mapping", "/admin/users"]),
        ("admin", ["/admin/users", "/admin/audit"], ["/patients", "/patients/1/live", "/calendar"]),
        ("sonographer", ["/patients/1/mapping", "/outcomes"], ["/admin/audit"]),
    ],
)
def test_a_role_sees_the_pages_its_permissions_allow(client, users, role, allowed, refused):
    sign_in(client, role, PASSWORD)
    for path in allowed:
        assert client.get(path).status_code == 200, (role, path)
    for path in refused:
        r = client.get(path)
        assert r.status_code == 403 and "does not have the permission" in r.text, (role, path)
    nav = client.get(allowed[0]).text
    assert ('href="/outcomes"' in nav) == (role == "sonographer")
    assert ('href="/admin/audit"' in nav) == (role == "admin")


def test_front_desk_chart_has_no_clinical_controls(client, users, make):
    p = make.patient()
    sign_in(client, "front_desk", PASSWORD)
    html = client.get(f"/patients/{p['id']}").text
    assert "not the clinical record" in html
    assert f'href="/patients/{p["id"]}/plan"' not in html  # tab hidden: the role cannot read plans


def test_unknown_page_is_a_page_and_unknown_api_path_stays_json(client, users):
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "<html" in r.text and "Page not found" in r.text
    r = client.get("/api/no-such-route")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")


def test_api_docs_are_served_from_the_package(client, users):
    r = client.get("/api/docs")
    assert r.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text) + re.findall(r"url: '([^']+)'", r.text)
    assert urls and all(u.startswith("/") for u in urls), urls  # nothing from a CDN
    for u in urls:
        assert client.get(u).status_code == 200, u
    assert client.get("/static/vendor/swagger-ui/LICENSE").status_code == 200


def test_dose_check_matches_the_plan_rules_and_limits(doc, make):
    p = make.patient(weight_kg=60)
    item = {"segment": "GSVa", "agent": "polidocanol", "form": "foam", "concentration_pct": 1,
            "liquid_gas_ratio": "1:4", "gas": "air", "planned_volume_ml": 4}
    r = doc.post("/api/web/dose-check", json={"patient_id": p["id"], "items": [item, item]})
    assert r.status_code == 200, r.text
    d = r.json()
    # foam 1:4: one fifth liquid; 8 mL of 1% foam holds 1.6 mL of liquid = 16 mg of polidocanol
    assert d["totals"]["foam_ml"] == pytest.approx(8.0)
    assert d["totals"]["polidocanol_mg"] == pytest.approx(16.0)
    assert d["limits"]["polidocanol_mg_today"] == pytest.approx(2.0 * 60)  # 2 mg/kg/day
    assert d["remaining"]["foam_ml_session"] == pytest.approx(2.0)
    assert not d["refused"]
    big = dict(item, planned_volume_ml=7)
    d = doc.post("/api/web/dose-check", json={"patient_id": p["id"], "items": [big]}).json()
    assert d["refused"] and any(v["rule"] == "FOAM_PUNCTURE_GSV_MAX_ML" for v in d["violations"])
    r = doc.post("/api/web/dose-check", json={"patient_id": 999999, "items": [item]})
    assert r.status_code == 404 and "patient 999999 not found" in r.json()["message"]


def test_dose_check_is_refused_to_a_role_without_clinical_access(client, users, auth, make):
    p = make.patient()
    r = client.post("/api/web/dose-check", headers=auth("front_desk"),
                    json={"patient_id": p["id"], "items": [{"segment": "GSVa", "agent": "polidocanol",
                                                             "form": "liquid", "concentration_pct": 1,
                                                             "planned_volume_ml": 1}]})
    assert r.status_code == 403


def test_reflux_upload_refuses_what_is_not_a_spectral_dicom(doc):
    r = doc.post("/api/web/reflux", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 422 and "notes.txt is not a DICOM file" in r.json()["message"]
    r = doc.post("/api/web/reflux", files={"file": ("empty.dcm", b"", "application/dicom")})
    assert r.status_code == 422 and "empty" in r.json()["message"]
    r = doc.post("/api/web/reflux", files={"file": ("x.dcm", b"x" * 200, "application/dicom")},
                 data={"segment": "GSVz"})
    assert r.status_code == 422 and "GSVz" in r.json()["message"]


def test_key_frames_are_kept_with_the_session_and_bad_images_refused(doc, make, tmp_path):
    doc.app.state.keyframe_dir = tmp_path / "kf"
    p = make.ready_patient()
    s = make.session(p["id"])
    r = doc.post(f"/api/web/sessions/{s['id']}/keyframes", json={"png_base64": "data:image/png;base64," + PNG_1PX,
                                                                 "frame_ref": "sim:gsv_injection#frame=3"})
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    got = doc.get(url)
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG")
    listed = doc.get(f"/api/web/sessions/{s['id']}/keyframes").json()
    assert [k["frame_ref"] for k in listed] == ["sim:gsv_injection#frame=3"]
    bad = doc.post(f"/api/web/sessions/{s['id']}/keyframes", json={"png_base64": base64.b64encode(b"GIF89a").decode()})
    assert bad.status_code == 422 and "not a PNG" in bad.json()["message"]
    assert doc.get(f"/api/web/sessions/{s['id']}/keyframes/..%2F..%2Fsecret_key").status_code == 404
    assert doc.post("/api/web/sessions/999/keyframes", json={"png_base64": PNG_1PX}).status_code == 404


def test_outcomes_count_occlusion_by_vein_type_and_complications_per_session(doc, make):
    p = make.ready_patient()
    s = make.session(p["id"])
    make.injection(s["id"], segment="GSVa", volume_ml=2)
    assert doc.patch(f"/api/sessions/{s['id']}", json={"status": "closed"}).status_code == 200
    fu = doc.get(f"/api/patients/{p['id']}/followups").json()[0]
    r = doc.patch(f"/api/followups/{fu['id']}", json={"outcomes": [
        {"limb": "left", "segment": "GSVa", "outcome": "occluded"},
        {"limb": "left", "segment": "TRIB_CALF", "outcome": "patent"},
        {"limb": "left", "segment": "AASV", "outcome": "recanalised"}]})
    assert r.status_code == 200, r.text
    make.post(f"/api/patients/{p['id']}/complications", {"type": "hyperpigmentation", "severity": "mild",
                                                          "onset_on": fu["due_on"], "session_id": s["id"]})
    d = doc.get("/api/web/outcomes").json()
    trunk = d["occlusion"]["trunk"]
    assert [(c["occluded"], c["observed"]) for c in trunk] == [(1, 2)]  # GSVa occluded, AASV recanalised
    assert d["occlusion"]["tributary"][0]["rate"] == 0.0
    assert d["sessions"] == 1
    assert d["complications"] == [{"type": "hyperpigmentation", "by_severity": {"mild": 1}, "count": 1,
                                   "per_100_sessions": 100.0}]


def test_diagram_of_an_edited_map_is_interactive_and_a_contradiction_is_a_message(doc):
    r = doc.post("/api/web/diagram", json={"findings": [{"segment": "GSVa", "leg": "right", "reflux_ms": 900}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert 'data-segment="GSVa" data-leg="right"' in r.text and 'tabindex="0"' in r.text
    r = doc.post("/api/web/diagram", json={"findings": [{"segment": "GSVa", "leg": "right", "occluded": True,
                                                         "reflux_ms": 900, "competent": False}]})
    assert r.status_code == 422 and r.json()["message"]


# --- the live WebSocket ---


def _frames(ws, n: int) -> list[dict]:
    out = []
    while len(out) < n:
        m = ws.receive()
        if m.get("text"):
            msg = json.loads(m["text"])
            assert msg["type"] != "error", msg
            continue
        data = m["bytes"]
        k = struct.unpack("<I", data[:4])[0]
        head = json.loads(data[4:4 + k])
        assert len(data) == 4 + k + head["rows"] * head["cols"] * head["channels"]
        out.append(head)
        ws.send_text('{"type":"ack"}')
    return out


def test_live_socket_needs_a_sign_in_and_refuses_another_site(client, users):
    with client.websocket_connect("/ws/live") as ws:
        msg = ws.receive_json()
        assert msg["type"] == "error" and "sign in" in msg["message"]
    with pytest.raises(Exception):  # noqa: B017 - closed before accept: the handshake fails
        with client.websocket_connect("/ws/live", headers={"Origin": "https://evil.example"}) as ws:
            ws.receive_json()


def test_live_socket_streams_engine_findings_and_names_a_bad_source(doc):
    with doc.websocket_connect("/ws/live?source=sim:gsv_injection&rate_hz=40") as ws:
        heads = _frames(ws, 4)
        ws.send_text('{"type":"stop"}')
    assert all(h["source"] == "sim:gsv_injection" and h["mm_per_px_x"] > 0 for h in heads)
    assert [h["index"] for h in heads] == sorted(h["index"] for h in heads)
    assert all({"vessels", "needle", "foam", "alerts"} <= set(h["result"]) for h in heads)
    assert any(v.get("contour_mm") for h in heads for v in h["result"]["vessels"])
    with doc.websocket_connect("/ws/live?source=sim:no_such_scenario") as ws:
        msg = ws.receive_json()
        assert msg["type"] == "error" and "no_such_scenario" in msg["message"]
    with doc.websocket_connect("/ws/live?source=/no/such/cine.dcm") as ws:
        msg = ws.receive_json()
        assert msg["type"] == "error" and "no such file" in msg["message"]
    with doc.websocket_connect("/ws/live?source=sim:gsv_injection&rate_hz=1000") as ws:
        msg = ws.receive_json()
        assert msg["type"] == "error" and "rate_hz" in msg["message"]


def test_feed_keeps_only_the_newest_frame_for_a_slow_reader():
    """A reader slower than the source gets fewer frames, each the newest; the rest are counted as dropped."""
    feed = Feed("sim:gsv_injection", rate_hz=30, precomputed=True, loop=False, max_frames=60).start()
    try:
        seen = []
        deadline = time.monotonic() + 120
        while not feed.ended and time.monotonic() < deadline:
            item = feed.take()
            if item is not None:
                seen.append(item.header["index"])
            time.sleep(0.1)  # a page drawing at 10 frames/s
        assert feed.ended and feed.error is None
        last = feed.take()
        if last is not None:
            seen.append(last.header["index"])
    finally:
        feed.stop()
    assert seen == sorted(seen) and len(set(seen)) == len(seen)  # never an older frame after a newer one
    assert feed.published == feed.taken + feed.dropped  # every frame either drawn or counted as dropped
    assert feed.dropped > len(seen)  # 30 frames/s against 10: most were replaced


def _next_message(ws) -> tuple[str, dict]:
    m = ws.receive()
    if m.get("text"):
        return "text", json.loads(m["text"])
    data = m["bytes"]
    k = struct.unpack("<I", data[:4])[0]
    return "frame", json.loads(data[4:4 + k])


def test_live_socket_keeps_one_frame_in_flight_and_sends_the_newest_after_a_slow_draw(doc):
    """A page that has not acknowledged its frame gets no other (only answers to its pings) however many
    frames the engine finishes meanwhile; once it acknowledges, it gets the newest, never the ones in between."""
    with doc.websocket_connect("/ws/live?source=sim:gsv_injection&rate_hz=30&loop=0") as ws:
        kind, first = _next_message(ws)
        while kind != "frame":
            assert first["type"] == "pong", first
            kind, first = _next_message(ws)
        assert first["sent"] == 1
        deadline = time.monotonic() + 120
        while True:  # the page is "still drawing" the first frame
            ws.send_text('{"type":"ping","t_page_ms":0}')
            kind, msg = _next_message(ws)
            assert kind == "text", f"frame {msg.get('index')} was sent before frame {first['index']} was acknowledged"
            assert msg["type"] == "pong" and msg["sent"] == 1, msg
            if msg["published"] >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert msg["published"] >= 4, "the engine published no frames in 2 minutes"
        ws.send_text('{"type":"ack"}')
        kind, second = _next_message(ws)
        while kind != "frame":
            kind, second = _next_message(ws)
        ws.send_text('{"type":"stop"}')
    # frames 2 and 3 at least were replaced in the server's one-frame slot, never sent
    assert second["sent"] == 2 and second["dropped"] >= 2
    assert second["index"] >= first["index"] + 3


def test_live_scenario_is_rendered_ahead_once_then_replayed_from_memory(monkeypatch):
    import threading

    from echosclero.sim import open_simulated_source
    from echosclero.web import live

    live._rendered.clear()
    rate = 5.0  # 30 frames of the 6 s scenario
    first = list(Feed("sim:gsv_injection", rate_hz=rate)._frames())
    again = list(Feed("sim:gsv_injection", rate_hz=rate)._frames())  # another socket, the same scenario
    with open_simulated_source("gsv_injection", seed=0, frame_rate_hz=rate) as src:
        direct = list(src.frames())
    assert len(first) == len(direct) == 30
    assert all(a is b for a, b in zip(first, again, strict=True))  # kept, not rendered again
    assert all(a.index == b.index and np.array_equal(a.pixels, b.pixels) for a, b in zip(first, direct, strict=True))
    assert not first[0].pixels.flags.writeable  # shared between sockets: nobody may draw into them
    from echosclero.guidance import Engine

    assert Engine().process(again[0]).to_json()["vessels"]  # the engine reads a kept frame without writing to it
    # a scenario too long for the memory set aside is rendered on every pass, not kept
    monkeypatch.setattr(live, "RENDERED_BYTES", 10 * first[0].pixels.nbytes)
    assert len(list(Feed("sim:gsv_injection", seed=4, rate_hz=rate)._frames())) == 30
    assert live._rendered.get(("sim:gsv_injection", 4, rate)) is None
    # a pass left before its end is not kept, and its reader thread stops (readers of other tests' sockets,
    # still finishing on a loaded machine, are not this pass's)
    before = {t for t in threading.enumerate() if t.name == "echosclero-live-reader"}
    partial = Feed("sim:gsv_injection", seed=3, rate_hz=rate)._frames()
    next(partial)
    partial.close()
    assert live._rendered.get(("sim:gsv_injection", 3, rate)) is None
    ours = [t for t in threading.enumerate() if t.name == "echosclero-live-reader" and t not in before]
    assert not any(t.is_alive() for t in ours)
    live._rendered.clear()


def test_read_ahead_is_bounded_and_hands_the_readers_error_on():
    import threading

    from echosclero.web.live import _read_ahead

    made = []

    def frames():
        for i in range(100):
            made.append(i)
            yield i
        raise ValueError("frame 100 is corrupt")

    ahead = _read_ahead(frames(), 3, threading.Event())
    assert next(ahead) == 0
    time.sleep(0.3)
    assert len(made) <= 1 + 3 + 1  # the one taken, three waiting, one in the reader's hand
    rest = []
    with pytest.raises(ValueError, match="frame 100 is corrupt"):
        for x in ahead:
            rest.append(x)
    assert rest == list(range(1, 100))


def _websocket_extensions(port: int) -> list[str]:
    """The extensions a WebSocket handshake on ``/ws/live`` agrees to when the client offers permessage-deflate."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /ws/live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
    status, *lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    assert " 101 " in status, status
    return [line for line in lines if line.lower().startswith("sec-websocket-extensions")]


def test_live_socket_sends_frames_uncompressed(app, users):
    """permessage-deflate is refused: deflating a 512 x 512 frame cost ~27 ms of the server's event loop."""
    from echosclero.web.threaded import ThreadedServer, free_port

    port = free_port(9300, 9399)
    with ThreadedServer(app, port=port):
        assert _websocket_extensions(port) == []


def test_encoded_frame_round_trips():
    px = (np.arange(6 * 5 * 3) % 251).astype(np.uint8).reshape(6, 5, 3)
    data = encode_frame(px, {"index": 7})
    k = struct.unpack("<I", data[:4])[0]
    head = json.loads(data[4:4 + k])
    assert head == {"index": 7, "rows": 6, "cols": 5, "channels": 3}
    assert np.array_equal(np.frombuffer(data[4 + k:], np.uint8).reshape(6, 5, 3), px)
    gray16 = np.array([[0, 1000], [2000, 4000]], np.uint16)
    data = encode_frame(gray16, {})
    k = struct.unpack("<I", data[:4])[0]
    assert list(data[4 + k:]) == [0, 64, 128, 255]  # scaled to the frame's maximum


# --- echosclero serve ---


def _serve(port: int, tmp_path, *extra: str):
    import os
    import subprocess
    import sys

    env = os.environ | {"ECHOSCLERO_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
                        "ECHOSCLERO_SECRET_KEY": "serve-test-secret-0123456789-abcdefghij",
                        "ECHOSCLERO_DATA_DIR": str(tmp_path)}
    return subprocess.Popen([sys.executable, "-m", "echosclero", "serve", "--port", str(port), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_serve_prints_its_address_and_logs_requests(tmp_path):
    import httpx

    from echosclero.web.threaded import free_port

    port = free_port(9300, 9399)
    proc = _serve(port, tmp_path)
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first and "api/docs" in first, first
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
                time.sleep(0.3)
        assert r.status_code == 200
        line = proc.stdout.readline()
        while "GET /login" not in line:
            line = proc.stdout.readline()
            assert line, "no request log line"
        assert '"GET /login HTTP/1.1" 200' in line
        assert _websocket_extensions(port) == []  # the live view's frames go raw under `serve` too
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_on_a_port_in_use_is_one_clear_line(tmp_path):
    import socket

    from echosclero.web.threaded import free_port

    port = free_port(9300, 9399)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        proc = _serve(port, tmp_path)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in out and "--port" in out, out
    assert "Traceback" not in out
