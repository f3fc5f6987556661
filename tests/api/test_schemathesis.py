"""Property-based fuzzing of every operation in the OpenAPI document: no input makes the server fail (5xx).

Bounded: ``MAX_EXAMPLES`` examples per operation (env ``ECHOSCLERO_FUZZ_EXAMPLES``), against the ASGI app
with a fresh, migrated SQLite database holding a patient, a session and an injection so that ids resolve.
"""

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from sqlalchemy.orm import Session as OrmSession

from echosclero.api.app import create_app
from echosclero.api.security import create_token, hash_password, use_fast_hashing
from echosclero.api.settings import Settings
from echosclero.store.db import make_engine
from echosclero.store.migrate import upgrade
from echosclero.store.models import User

MAX_EXAMPLES = int(os.environ.get("ECHOSCLERO_FUZZ_EXAMPLES", "10"))
SECRET = "fuzz-secret-key-0123456789-abcdefghijklmnop"
_DIR = Path(tempfile.mkdtemp(prefix="echosclero-fuzz-"))
ENGINE = make_engine(f"sqlite:///{_DIR / 'fuzz.db'}")
APP = create_app(
    Settings(database_url=str(ENGINE.url), secret_key=SECRET, public_requests_per_hour=1000),
    engine=ENGINE,
    migrate=False,
)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)
HEADERS: dict[str, dict] = {}


@pytest.fixture(scope="module", autouse=True)
def seeded():
    use_fast_hashing()
    upgrade(ENGINE)
    with OrmSession(ENGINE) as db:
        for role in ("physician", "admin", "front_desk"):
            u = User(username=role, role=role, password_hash=hash_password("x" * 12), active=True)
            db.add(u)
            db.flush()
            HEADERS[role] = {
                "Authorization": "Bearer " + create_token(user_id=u.id, role=role, secret=SECRET, minutes=60)
            }
        db.commit()
    with TestClient(APP) as c:
        h = HEADERS["physician"]
        pid = c.post(
            "/api/patients",
            headers=h,
            json={"family_name": "Fuzz", "given_name": "Z", "birth_date": "1970-01-01", "sex": "male", "weight_kg": 80},
        ).json()["id"]
        c.post(f"/api/patients/{pid}/candidacy", headers=h, json={"assessed_on": "2024-01-01", "present": []})
        c.post(
            f"/api/patients/{pid}/exams",
            headers=h,
            json={
                "exam_date": "2024-01-01",
                "limb": "both",
                "vein_map": {"schema": "echosclero.veinmap/1", "findings": [{"segment": "GSVa", "leg": "left"}]},
            },
        )
        sid = c.post(f"/api/patients/{pid}/sessions", headers=h, json={"date": "2024-01-02", "limb": "left"}).json()[
            "id"
        ]
        c.post(
            f"/api/sessions/{sid}/injections",
            headers=h,
            json={
                "segment": "GSV",
                "agent": "polidocanol",
                "concentration_pct": 1,
                "volume_ml": 1,
                "form": "foam",
                "liquid_gas_ratio": "1:4",
            },
        )
    yield
    ENGINE.dispose()


def _role(path: str) -> str:
    if path.startswith(("/api/users", "/api/audit")):
        return "admin"
    if path.startswith("/api/appointment-requests"):
        return "front_desk"
    return "physician"


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error(case):
    response = case.call(headers=HEADERS[_role(case.path)])
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}\n"
        f"body={case.body!r} query={case.query!r}"
    )
