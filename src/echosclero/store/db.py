"""Engine and sessions: SQLite (WAL) in the user's data folder by default, PostgreSQL by URL.

SQLite settings: WAL journal, ``synchronous=FULL`` (an acknowledged commit survives a crash of the
process and of the machine; ``ECHOSCLERO_SQLITE_SYNCHRONOUS=NORMAL`` trades the machine-crash guarantee for
one fsync per WAL checkpoint instead of per commit, and still survives a killed process), foreign keys on,
a 30 s busy timeout, and every transaction opened with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the lock instead of failing on upgrade. A SQLite
file is used through a single pooled connection: every request writes (at least its audit entry), so
requests are serialised anyway, and queueing on the pool is much cheaper than SQLite's busy-wait backoff.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = ["data_dir", "database_url", "make_engine", "make_sessionmaker"]


def data_dir() -> Path:
    """``ECHOSCLERO_DATA_DIR``, else the platform's per-user data folder."""
    env = os.environ.get("ECHOSCLERO_DATA_DIR")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "echosclero"


def database_url() -> str:
    url = os.environ.get("ECHOSCLERO_DATABASE_URL")
    if url:
        return url
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'clinic.db'}"


def make_engine(url: str | None = None, *, echo: bool = False) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        sync = os.environ.get("ECHOSCLERO_SQLITE_SYNCHRONOUS", "FULL").upper()
        if sync not in ("FULL", "NORMAL"):
            raise ValueError(f"ECHOSCLERO_SQLITE_SYNCHRONOUS must be FULL or NORMAL, not {sync!r}")
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": 30, "isolation_level": None}}
        if memory:
            kwargs["poolclass"] = StaticPool
        else:  # one connection: writers queue on the pool (FIFO) instead of on SQLite's sleeping busy handler
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=120)
        engine = create_engine(url, echo=echo, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
