"""Killing the server (SIGKILL) in the middle of a burst of writes loses nothing that was acknowledged."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from echosclero.api.security import create_token, hash_password
from echosclero.store.db import make_engine
from echosclero.store.migrate import upgrade
from echosclero.store.models import Patient, User
from echosclero.store.testing import postgres_database, reset_postgres

SECRET = "sigkill-secret-key-0123456789-abcdefghijklmnop"
PG_URL = os.environ.get("ECHOSCLERO_TEST_POSTGRES_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_acknowledged_writes_survive_sigkill(tmp_path, backend):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'clinic.db'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL not available: set ECHOSCLERO_TEST_POSTGRES_URL")
        url = postgres_database(PG_URL, "kill_" + os.environ.get("PYTEST_XDIST_WORKER", "main"))
    engine = make_engine(url)
    upgrade(engine)
    if backend == "postgres":
        reset_postgres(engine)
    with OrmSession(engine) as db:
        u = User(username="doc", role="physician", password_hash=hash_password("x" * 12), active=True)
        db.add(u)
        db.commit()
        token = create_token(user_id=u.id, role="physician", secret=SECRET, minutes=10)
    port = _free_port()
    env = os.environ | {
        "ECHOSCLERO_DATABASE_URL": url,
        "ECHOSCLERO_SECRET_KEY": SECRET,
        "ECHOSCLERO_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "echosclero", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"server did not start: {proc.stderr.read().decode()[-2000:] if proc.poll() else ''}")
            time.sleep(0.1)
        acked: list[tuple[int, str]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(n: int) -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=5) as c:
                i = 0
                while not stop.is_set() and i < 2000:
                    name = f"Kill{n}x{i}"
                    try:
                        r = c.post(
                            "/api/patients",
                            json={
                                "family_name": name,
                                "given_name": "T",
                                "birth_date": "1970-01-01",
                                "sex": "female",
                                "weight_kg": 60,
                            },
                        )
                    except httpx.HTTPError:
                        return
                    if r.status_code == 201:
                        with lock:
                            acked.append((r.json()["id"], name))
                    i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)  # mid-burst
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert len(acked) > 10, "the burst did not get going before the kill"
    engine.dispose()
    engine = make_engine(url)
    with OrmSession(engine) as db:
        stored = dict(db.execute(select(Patient.id, Patient.family_name)).all())
    lost = [(i, n) for i, n in acked if stored.get(i) != n]
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}"
    engine.dispose()
