"""Killing the server (SIGKILL) in the middle of a burst of writes loses nothing that was acknowledged."""

import signal
import threading
import time

import httpx
import pytest
from server_process import fresh_database, physician_token, running_server
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from echosclero.store.db import make_engine
from echosclero.store.models import Patient

SECRET = "sigkill-secret-key-0123456789-abcdefghijklmnop"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_acknowledged_writes_survive_sigkill(tmp_path, backend):
    url = fresh_database(backend, tmp_path, "kill")
    token = physician_token(url, secret=SECRET)
    engine = make_engine(url)
    with running_server(url, secret=SECRET, env={"ECHOSCLERO_DATA_DIR": str(tmp_path)}) as (proc, base):
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
    assert len(acked) > 10, "the burst did not get going before the kill"
    engine.dispose()
    engine = make_engine(url)
    with OrmSession(engine) as db:
        stored = dict(db.execute(select(Patient.id, Patient.family_name)).all())
    lost = [(i, n) for i, n in acked if stored.get(i) != n]
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}"
    engine.dispose()
