"""Reports and exchange through the API: PDF procedure report and handout, DICOM SR (dciodvfy), FHIR Bundle
(fhir.resources), results attached to exams and sessions, the roles and the audit."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import pytest
from interop_seed import make_results, seed_pathway
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from echosclero.store.models import AuditEntry


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"))


@pytest.fixture
def record(client, make, auth, results):
    return seed_pathway(client, make, auth, results)


def test_seed_smoke(client, auth, record, tmp_path):
    h = auth("physician")
    for fmt, magic in (("pdf", b"%PDF"), ("sr", None), ("fhir", b"{")):
        r = client.get(f"/api/sessions/{record['session_id']}/export", params={"format": fmt}, headers=h)
        assert r.status_code == 200, r.text
        (tmp_path / f"out.{fmt}").write_bytes(r.content)
    r = client.get(f"/api/patients/{record['patient_id']}/handout", headers=h)
    assert r.status_code == 200, r.text
    (tmp_path / "handout.pdf").write_bytes(r.content)
    shutil.copytree(tmp_path, "/tmp/wt14/out", dirs_exist_ok=True)
