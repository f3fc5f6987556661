"""``echosclero serve`` in a subprocess on a free loopback port, for the tests that need a real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(url: str, *, secret: str, workers: int = 1, env: dict | None = None) -> Iterator[tuple]:
    """Yields ``(process, base_url)`` once ``/api/health`` answers; stops the server (if still running) after."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "echosclero", "serve", "--port", str(port), "--workers", str(workers)],
        env=os.environ | {"ECHOSCLERO_DATABASE_URL": url, "ECHOSCLERO_SECRET_KEY": secret} | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"server did not start: {proc.stderr.read().decode()[-2000:] if proc.poll() else ''}")
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def fresh_database(backend: str, tmp_path, name: str) -> str:
    """A migrated, empty database: a SQLite file under ``tmp_path``, or a PostgreSQL database (skips when
    ``ECHOSCLERO_TEST_POSTGRES_URL`` is not set)."""
    from echosclero.store.db import make_engine
    from echosclero.store.migrate import upgrade
    from echosclero.store.testing import postgres_database, reset_postgres

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'clinic.db'}"
    else:
        pg = os.environ.get("ECHOSCLERO_TEST_POSTGRES_URL")
        if not pg:
            pytest.skip("PostgreSQL not available: set ECHOSCLERO_TEST_POSTGRES_URL")
        url = postgres_database(pg, f"{name}_" + os.environ.get("PYTEST_XDIST_WORKER", "main"))
    engine = make_engine(url)
    upgrade(engine)
    if backend == "postgres":
        reset_postgres(engine)
    engine.dispose()
    return url


def physician_token(url: str, *, secret: str) -> str:
    """Creates the physician ``doc`` and returns an access token for it."""
    from sqlalchemy.orm import Session

    from echosclero.api.security import create_token, hash_password
    from echosclero.store.db import make_engine
    from echosclero.store.models import User

    engine = make_engine(url)
    with Session(engine) as db:
        u = User(username="doc", role="physician", password_hash=hash_password("x" * 12), active=True)
        db.add(u)
        db.commit()
        token = create_token(user_id=u.id, role="physician", secret=secret, minutes=10)
    engine.dispose()
    return token
