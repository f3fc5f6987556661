"""Test helpers for the clinic record: fresh databases fast, on SQLite and PostgreSQL.

- :func:`migrated_sqlite_template` migrates one SQLite file; tests copy it (milliseconds) instead of
  migrating again.
- :func:`postgres_database` creates (once) a database per test worker next to the one in the URL and
  returns its URL; :func:`reset_postgres` empties every table between tests (TRUNCATE ... RESTART
  IDENTITY; the audit log's append-only trigger guards UPDATE and DELETE, not TRUNCATE).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from echosclero.store.db import make_engine
from echosclero.store.migrate import upgrade
from echosclero.store.models import Base

__all__ = ["copy_sqlite", "migrated_sqlite_template", "postgres_database", "reset_postgres"]


def migrated_sqlite_template(path: Path) -> Path:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def copy_sqlite(template: Path, dest: Path) -> str:
    shutil.copyfile(template, dest)
    return f"sqlite:///{dest}"


def postgres_database(base_url: str, suffix: str) -> str:
    url = make_url(base_url)
    name = f"{url.database}_{suffix}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def reset_postgres(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
