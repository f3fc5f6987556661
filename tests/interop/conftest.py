"""Fixtures of the DICOM network tests: a migrated clinic record with one patient (record number 1), and an
Orthanc PACS on loopback (see ``dicom_peers``)."""

from __future__ import annotations

from datetime import date

import pytest
from dicom_peers import Orthanc
from sqlalchemy.orm import Session as OrmSession

from echosclero.store.db import make_engine, make_sessionmaker
from echosclero.store.migrate import upgrade
from echosclero.store.models import Patient


@pytest.fixture
def record(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'clinic.db'}")
    upgrade(engine)
    with OrmSession(engine) as db:
        db.add(Patient(family_name="Doe", given_name="Jane", birth_date=date(1970, 5, 1), sex="female", weight_kg=70))
        db.commit()
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def orthanc_server(tmp_path):
    """A factory: ``orthanc_server(dicom_port, http_port)`` -> an :class:`Orthanc` not started yet; every one
    made is stopped at teardown."""
    made: list[Orthanc] = []

    def make(dicom_port: int, http_port: int) -> Orthanc:
        made.append(Orthanc(tmp_path / f"orthanc-{dicom_port}", dicom_port=dicom_port, http_port=http_port))
        return made[-1]

    yield make
    for o in made:
        o.stop()
