"""Fixtures for the API tests: a fresh database per test (a copied, migrated SQLite file, or an emptied
PostgreSQL database), one user per role, tokens, and seeded factories."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session as OrmSession

from echosclero.api.app import create_app
from echosclero.api.security import create_token, hash_password, use_fast_hashing
from echosclero.api.settings import Settings
from echosclero.clinic.roles import Role
from echosclero.store.db import make_engine
from echosclero.store.migrate import upgrade
from echosclero.store.models import User
from echosclero.store.testing import copy_sqlite, migrated_sqlite_template, postgres_database, reset_postgres

use_fast_hashing()  # tests only

SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
PASSWORD = "correct horse battery staple"
PG_URL = os.environ.get("ECHOSCLERO_TEST_POSTGRES_URL")
ROLES = [r.value for r in Role]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    return migrated_sqlite_template(tmp_path_factory.mktemp("tpl") / "template.db")


@pytest.fixture(scope="session")
def pg_url():
    if not PG_URL:
        pytest.skip("PostgreSQL not available: set ECHOSCLERO_TEST_POSTGRES_URL (source scripts/test-postgres.sh)")
    url = postgres_database(PG_URL, "api_" + os.environ.get("PYTEST_XDIST_WORKER", "main"))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _engine(backend, request, tmp_path):
    if backend == "postgres":
        engine = make_engine(request.getfixturevalue("pg_url"))
        reset_postgres(engine)
        return engine
    return make_engine(copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "clinic.db"))


@pytest.fixture(params=["sqlite"])
def backend(request):
    return request.param


@pytest.fixture
def engine(backend, request, tmp_path):
    engine = _engine(backend, request, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(engine):
    return Settings(database_url=str(engine.url), secret_key=SECRET, public_requests_per_hour=5)


@pytest.fixture
def app(settings, engine):
    return create_app(settings, engine=engine, migrate=False)


@pytest.fixture
def users(engine):
    """One active user per role (name = role), plus a disabled physician."""
    ids = {}
    with OrmSession(engine) as db:
        pw = hash_password(PASSWORD)
        for role in ROLES:
            u = User(username=role, role=role, password_hash=pw, active=True)
            db.add(u)
            db.flush()
            ids[role] = u.id
        u = User(username="retired", role="physician", password_hash=pw, active=False)
        db.add(u)
        db.flush()
        ids["retired"] = u.id
        db.commit()
    return ids


@pytest.fixture
def client(app, users):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth(users):
    def headers(role: str) -> dict:
        return {"Authorization": "Bearer " + create_token(user_id=users[role], role=role, secret=SECRET, minutes=5)}

    return headers


class Factory:
    """Seeded records through the API (so that every factory call is also a test of the API)."""

    def __init__(self, client, auth):
        self.c, self.h = client, auth("physician")

    def post(self, path, body, status=201):
        r = self.c.post(path, json=body, headers=self.h)
        assert r.status_code == status, r.text
        return r.json()

    def patient(self, **kw):
        body = {
            "family_name": "Doe",
            "given_name": "Jane",
            "birth_date": "1970-05-01",
            "sex": "female",
            "weight_kg": 70,
        } | kw
        return self.post("/api/patients", body)

    def candidacy(self, pid, present=(), **kw):
        return self.post(
            f"/api/patients/{pid}/candidacy", {"assessed_on": date.today().isoformat(), "present": list(present)} | kw
        )

    def session(self, pid, *, limb="left", on: date | None = None, **kw):
        return self.post(f"/api/patients/{pid}/sessions", {"date": (on or date.today()).isoformat(), "limb": limb} | kw)

    def injection(self, sid, status=201, **kw):
        body = {
            "segment": "GSV",
            "agent": "polidocanol",
            "concentration_pct": 1.0,
            "volume_ml": 2.0,
            "form": "foam",
            "liquid_gas_ratio": "1:4",
            "ultrasound_confirmed": True,
        } | kw
        return self.post(f"/api/sessions/{sid}/injections", body, status)

    def test_injection(self, pid, *, agent="polidocanol", days_ago=7, reaction=False, status=201):
        body = {
            "given_on": (date.today() - timedelta(days=days_ago)).isoformat(),
            "agent": agent,
            "concentration_pct": 0.5,
            "volume_ml": 0.5,
            "reaction": reaction,
        }
        return self.post(f"/api/patients/{pid}/test-injections", body, status)

    def ready_patient(self, *, tested=True, **kw):
        """A patient with a checklist (nothing present, assessed 30 days ago) and, unless ``tested`` is false,
        a test injection of each agent without reaction a week ago (the seed clinics' pathway)."""
        p = self.patient(**kw)
        self.candidacy(p["id"], assessed_on=(date.today() - timedelta(days=30)).isoformat())
        if tested:
            for agent in ("polidocanol", "sodium_tetradecyl_sulfate"):
                self.test_injection(p["id"], agent=agent)
        return p


@pytest.fixture
def make(client, auth):
    return Factory(client, auth)


@pytest.fixture
def today():
    return date.today()


@pytest.fixture
def yesterday():
    return date.today() - timedelta(days=1)
