"""SQLite durability modes: group commit (one WAL fsync for every commit that finished before it began), FULL,
NORMAL; and the process lock that queues server processes on one SQLite file."""

import os
import threading
import time
from datetime import date

import pytest
from sqlalchemy import text

from echosclero.store.db import WalSync, commit, make_engine, make_sessionmaker, wal_sync_of
from echosclero.store.migrate import upgrade
from echosclero.store.models import Patient


def _synchronous(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA synchronous").scalar()


@pytest.mark.parametrize("mode,pragma,group", [("GROUP", 1, True), ("FULL", 2, False), ("NORMAL", 1, False)])
def test_modes(tmp_path, monkeypatch, mode, pragma, group):
    monkeypatch.setenv("ECHOSCLERO_SQLITE_SYNCHRONOUS", mode)
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    assert _synchronous(engine) == pragma and (wal_sync_of(engine) is not None) == group
    engine.dispose()


def test_default_is_group_and_bad_mode_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("ECHOSCLERO_SQLITE_SYNCHRONOUS", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    assert wal_sync_of(engine) is not None
    engine.dispose()
    monkeypatch.setenv("ECHOSCLERO_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ValueError, match="GROUP, FULL, NORMAL"):
        make_engine(f"sqlite:///{tmp_path / 'd.db'}")


def test_commit_returns_after_a_wal_fsync_that_began_after_it(tmp_path, monkeypatch):
    monkeypatch.delenv("ECHOSCLERO_SQLITE_SYNCHRONOUS", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    synced: list[tuple[str, float]] = []
    real = os.fsync

    def spy(fd):
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), time.monotonic()))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    maker = make_sessionmaker(engine)
    with maker() as db:
        db.add(Patient(family_name="A", given_name="B", birth_date=date(1970, 1, 1), sex="female", weight_kg=60))
        db.flush()
        before = time.monotonic()
        commit(db)
        assert any(path.endswith("c.db-wal") and t >= before for path, t in synced)
        n = len(synced)
        db.execute(text("SELECT 1"))
        commit(db)  # nothing written: nothing to wait for
        assert len(synced) == n
    engine.dispose()


def test_one_fsync_covers_the_commits_that_wait_together(tmp_path):
    sync = WalSync(tmp_path / "c.db")
    (tmp_path / "c.db-wal").write_bytes(b"x")
    runs: list[tuple[float, float]] = []
    real = sync._fsync

    def slow():
        t0 = time.monotonic()
        time.sleep(0.05)
        real()
        runs.append((t0, time.monotonic()))

    sync._fsync = slow
    calls: list[tuple[float, float]] = []
    lock = threading.Lock()

    def waiter():
        t0 = time.monotonic()
        sync.wait()
        with lock:
            calls.append((t0, time.monotonic()))

    threads = [threading.Thread(target=waiter) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 16 and len(runs) <= 4 < 16  # grouped
    for called, returned in calls:  # each waiter was covered by an fsync that started after it was called
        assert any(called <= start and end <= returned for start, end in runs)


def test_missing_wal_needs_no_fsync(tmp_path):
    sync = WalSync(tmp_path / "gone.db")
    sync.wait()
    assert sync.fsyncs == 0


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_process_lock_held_while_a_connection_is_checked_out(tmp_path):
    import fcntl

    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    lock_path = tmp_path / "c.db.echosclero-lock"

    def free() -> bool:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        assert not free()  # another process would queue here
    assert free()
    engine.dispose()
