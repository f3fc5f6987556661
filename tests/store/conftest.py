"""Storage fixtures: an empty database on SQLite (tmp file) or PostgreSQL (marked ``postgres``)."""

import os

import pytest
from sqlalchemy import text

from echosclero.store.db import make_engine
from echosclero.store.testing import postgres_database

PG_URL = os.environ.get("ECHOSCLERO_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request, tmp_path):
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'clinic.db'}")
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL not available: set ECHOSCLERO_TEST_POSTGRES_URL (source scripts/test-postgres.sh)")
        url = postgres_database(PG_URL, "store_" + os.environ.get("PYTEST_XDIST_WORKER", "main"))
        engine = make_engine(url)
        with engine.begin() as conn:  # an empty database: drop everything from an earlier test
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    yield engine
    engine.dispose()
