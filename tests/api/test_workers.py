"""``echosclero serve --workers 2``: several server processes on one database write a complete audit log
(one entry per acknowledged read and write, none lost or doubled), and every acknowledged write is stored."""

import threading

import httpx
import pytest
from server_process import fresh_database, physician_token, running_server
from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession

from echosclero.store.db import make_engine
from echosclero.store.models import AuditEntry, Patient

SECRET = "workers-secret-key-0123456789-abcdefghijklmnop"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_workers_keep_a_complete_audit_log(tmp_path, backend):
    url = fresh_database(backend, tmp_path, "workers")
    token = physician_token(url, secret=SECRET)
    engine = make_engine(url)
    created: list[int] = []
    lock = threading.Lock()
    with running_server(url, secret=SECRET, workers=2) as (_proc, base):

        def client(n: int) -> None:
            # a new connection per request, so that both processes take requests
            for i in range(25):
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
                    r = c.post(
                        "/api/patients",
                        json={
                            "family_name": f"W{n}x{i}",
                            "given_name": "T",
                            "birth_date": "1970-01-01",
                            "sex": "female",
                            "weight_kg": 60,
                        },
                    )
                    assert r.status_code == 201, r.text
                    pid = r.json()["id"]
                    assert c.get(f"/api/patients/{pid}").status_code == 200
                with lock:
                    created.append(pid)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert len(created) == 100 and len(set(created)) == 100
    with OrmSession(engine) as db:
        stored = set(db.scalars(select(Patient.id)))
        audit = db.execute(
            select(AuditEntry.resource, AuditEntry.action, AuditEntry.resource_id, func.count())
            .where(AuditEntry.resource == "patient")
            .group_by(AuditEntry.resource, AuditEntry.action, AuditEntry.resource_id)
        ).all()
    assert set(created) <= stored
    per = {(action, rid): n for _, action, rid, n in audit}
    assert all(per.get(("create", str(pid))) == 1 and per.get(("read", str(pid))) == 1 for pid in created)
    assert sum(per.values()) == 200
    engine.dispose()
