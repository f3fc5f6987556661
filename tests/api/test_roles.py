"""Every role against every path: a role without the permission gets 403 and no data; no token gets 401.

The permission of each route is read from its dependency (``need(P).permission``), and the expected
answer from the permission table (``clinic.roles.PERMISSIONS``), so a new route cannot be forgotten:
``test_every_route_declares_a_permission`` fails until it has one.
"""

import re

import pytest
from fastapi.routing import APIRoute

from echosclero.api.app import create_app
from echosclero.api.settings import Settings
from echosclero.clinic.roles import Role, can
from echosclero.store.db import make_engine

PUBLIC = {("POST", "/api/token"), ("POST", "/api/public/appointment-requests"), ("GET", "/api/health")}
SAMPLE = {"key": "aftercare", "code": "FOAM_SESSION_MAX_ML"}


def _routes():
    app = create_app(
        Settings(database_url="sqlite://", secret_key="x" * 40), engine=make_engine("sqlite://"), migrate=False
    )
    out = []
    for r in _walk(app.routes):
        perms = [getattr(d.call, "permission", "absent") for d in r.dependant.dependencies]
        declared = [p for p in perms if p != "absent"]
        for m in sorted(r.methods):
            out.append((m, r.path, declared[0] if declared else "absent"))
    return out


def _walk(routes):
    """APIRoutes, also inside included routers (FastAPI wraps them in an _IncludedRouter)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif getattr(r, "original_router", None) is not None:
            yield from _walk(r.original_router.routes)


ROUTES = _routes()


def _url(path, pid):
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), str(pid)), path)


def test_every_route_declares_a_permission():
    assert len(ROUTES) > 40
    missing = [(m, p) for m, p, perm in ROUTES if perm == "absent" and (m, p) not in PUBLIC]
    assert not missing, f"routes without a permission dependency: {missing}"


@pytest.mark.parametrize("method,path,perm", [r for r in ROUTES if (r[0], r[1]) not in PUBLIC], ids=lambda x: str(x))
def test_no_token_is_401(client, method, path, perm):
    r = client.request(method, _url(path, 1), json={})
    assert r.status_code == 401
    r = client.request(method, _url(path, 1), json={}, headers={"Authorization": "Bearer forged.token.value"})
    assert r.status_code == 401


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_matrix(client, make, auth, role):
    p = make.ready_patient()
    s = make.session(p["id"])
    make.injection(s["id"])
    h = auth(role)
    failures = []
    for method, path, perm in ROUTES:
        if (method, path) in PUBLIC or perm is None:
            continue
        r = client.request(method, _url(path, p["id"] if "{patient_id}" in path else s["id"]), json={}, headers=h)
        allowed = can(role, perm)
        if allowed and r.status_code in (401, 403):
            failures.append(f"{role} refused {method} {path}: {r.status_code}")
        if not allowed:
            if r.status_code != 403:
                failures.append(f"{role} not refused {method} {path}: {r.status_code}")
            elif "Doe" in r.text or "GSV" in r.text:
                failures.append(f"{role} got data in a 403 from {method} {path}")
    assert not failures, "\n".join(failures)


def test_disabled_user_and_other_key_are_refused(client, users):
    from echosclero.api.security import create_token

    retired = create_token(
        user_id=users["retired"], role="physician", secret="test-secret-key-0123456789-abcdefghijklmnop", minutes=5
    )
    assert client.get("/api/patients", headers={"Authorization": f"Bearer {retired}"}).status_code == 401
    other = create_token(user_id=users["physician"], role="physician", secret="y" * 40, minutes=5)
    assert client.get("/api/patients", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    expired = create_token(
        user_id=users["physician"], role="physician", secret="test-secret-key-0123456789-abcdefghijklmnop", minutes=-1
    )
    assert client.get("/api/patients", headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_role_in_token_is_not_trusted(client, users):
    """A token claiming 'physician' for a nurse gives a nurse's rights (the role is read from the database)."""
    from echosclero.api.security import create_token

    t = create_token(
        user_id=users["nurse"], role="physician", secret="test-secret-key-0123456789-abcdefghijklmnop", minutes=5
    )
    assert client.get("/api/audit", headers={"Authorization": f"Bearer {t}"}).status_code == 403


def test_front_desk_cannot_see_clinical_fields(client, make, auth):
    p = make.patient(notes="allergic to plasters")
    for path in (f"/api/patients/{p['id']}", "/api/patients"):
        r = client.get(path, headers=auth("front_desk"))
        assert r.status_code == 200 and "allergic" not in r.text and '"weight_kg":70' not in r.text.replace(" ", "")
