"""Engine and sessions: SQLite (WAL) in the user's data folder by default, PostgreSQL by URL.

SQLite durability (``ECHOSCLERO_SQLITE_SYNCHRONOUS``):

- ``GROUP`` (default): an acknowledged commit survives a crash of the process *and* of the machine, as
  with ``synchronous=FULL``, but one ``fsync`` of the write-ahead log covers every commit that finished
  before it started (group commit, :class:`WalSync`). The connection runs ``synchronous=NORMAL`` (SQLite
  syncs the WAL before each checkpoint and the database after it); :func:`commit` returns only once an
  fsync of the WAL that began after the commit has completed. Requests keep using the database while
  an fsync is under way, so the commit rate is no longer bounded by the disk's fsync latency (4-8 ms on
  the benchmark machine, i.e. at most ~200 commits/s with one fsync per commit).
- ``FULL``: SQLite fsyncs the WAL at every commit (one fsync per commit; same guarantee, slower).
- ``NORMAL``: no fsync before acknowledging; survives a killed process, not a power loss.

Other SQLite settings: foreign keys on, a 30 s busy timeout, and every transaction opened with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the lock instead of failing on upgrade. Within one
process a SQLite file is used through a single pooled connection: every request writes (at least its audit
entry), so requests are serialised anyway, and queueing on the pool (FIFO) is cheaper than SQLite's sleeping
busy handler. Across processes (``echosclero serve --workers N``) the checked-out connection also holds an
exclusive ``flock`` (:class:`_ProcessLock`), so processes queue on the kernel's lock rather than on that
handler; other programs on the same file (``echosclero users``) still meet the 30 s busy timeout.

Use :func:`commit` (not ``Session.commit``) wherever an acknowledgement follows the commit.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = ["WalSync", "commit", "data_dir", "database_url", "make_engine", "make_sessionmaker", "wal_sync_of"]

SQLITE_SYNC_MODES = ("GROUP", "FULL", "NORMAL")


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


class WalSync:
    """Group commit for a SQLite database in WAL mode with ``synchronous=NORMAL``.

    :meth:`wait` is called after a commit has returned: the commit's frames are then in the WAL file
    (in the page cache). It returns once an ``fsync`` of the WAL file that *started after* the call has
    completed, so the commit is on disk. One thread at a time runs the fsync (outside the lock, the GIL
    released); the callers that arrive meanwhile are all covered by the next one. Works across processes:
    fsync flushes the file, whoever wrote it.

    A WAL file that does not exist has been checkpointed into the database file and deleted by SQLite,
    which syncs the database first; a new WAL file also gets its directory entry synced once.
    """

    def __init__(self, database_path: str | os.PathLike) -> None:
        self.wal_path = Path(f"{os.fspath(database_path)}-wal")
        self._cv = threading.Condition()
        self._issued = 0  # tickets handed out (one per wait)
        self._synced = 0  # every ticket up to this one is on disk
        self._busy = False
        self._inode: int | None = None
        self.fsyncs = 0  # how many fsyncs ran (for tests and benchmarks)

    def wait(self) -> None:
        with self._cv:
            self._issued += 1
            ticket = self._issued
            while self._synced < ticket:
                if self._busy:
                    self._cv.wait()
                    continue
                self._busy = True
                target, ok = self._issued, False
                self._cv.release()
                try:
                    self._fsync()
                    ok = True
                finally:
                    self._cv.acquire()
                    self._busy = False
                    if ok:
                        self._synced = max(self._synced, target)
                    self._cv.notify_all()

    def _fsync(self) -> None:
        try:
            fd = os.open(self.wal_path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            inode = os.fstat(fd).st_ino
            if inode != self._inode and os.name == "posix":
                dfd = os.open(self.wal_path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            os.fsync(fd)
            self._inode = inode
            self.fsyncs += 1
        finally:
            os.close(fd)


class _ProcessLock:
    """An exclusive ``flock`` on ``<database>.echosclero-lock``, held while this process has its connection
    checked out (one transaction). Server processes sharing a SQLite file then queue on the kernel's lock,
    which wakes a waiter as soon as it is released, instead of on SQLite's busy handler, which sleeps
    1, 2, 5 ... 100 ms between retries and starved whole processes under load (measured: two workers
    served 98 requests/s where one served 161). Released by the kernel if the process dies."""

    def __init__(self, database_path: str | os.PathLike) -> None:
        self.path = f"{os.fspath(database_path)}.echosclero-lock"
        self._fd: int | None = None

    def acquire(self, *_args) -> None:
        import fcntl

        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self, *_args) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


_WAL_SYNCS: weakref.WeakKeyDictionary[Engine, WalSync] = weakref.WeakKeyDictionary()


def wal_sync_of(engine: Engine) -> WalSync | None:
    """The group-commit syncer of a SQLite engine in ``GROUP`` mode, else ``None``."""
    return _WAL_SYNCS.get(engine)


def _sqlite_sync_mode() -> str:
    mode = os.environ.get("ECHOSCLERO_SQLITE_SYNCHRONOUS", "GROUP").upper()
    if mode not in SQLITE_SYNC_MODES:
        raise ValueError(f"ECHOSCLERO_SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNC_MODES)}, not {mode!r}")
    return mode


def _create_private(path: str) -> None:
    """Create a new database file readable by its owner only (0600): SQLite gives its write-ahead log and
    shared-memory files the database file's permissions, so they are private too. An existing file is left as
    it is (its owner chose its mode)."""
    if not path or path.startswith("file:") or os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a folder that does not exist or cannot be written: SQLite says so itself on connect
    os.close(fd)


def make_engine(url: str | None = None, *, echo: bool = False) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        mode = "NORMAL" if memory else _sqlite_sync_mode()
        pragma_sync = "FULL" if mode == "FULL" else "NORMAL"
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
            cur.execute(f"PRAGMA synchronous={pragma_sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        path = make_url(url).database
        if not memory:
            _create_private(path)
        if mode == "GROUP":
            _WAL_SYNCS[engine] = WalSync(path)
        if not memory and os.name == "posix":
            lock = _ProcessLock(path)
            event.listen(engine, "checkout", lock.acquire)
            event.listen(engine, "checkin", lock.release)
        return engine
    # No pre-ping: it costs a round trip per checkout. A connection broken by a server restart fails one
    # request with 503 (errors._operational) and SQLAlchemy then replaces the pool's connections.
    return create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_recycle=3600)


def _mark_flush(session: Session, _flush_context) -> None:
    session.info["wrote"] = True


def _mark_statement(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info["wrote"] = True


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """Sessions that remember whether they wrote (ORM flush or an INSERT/UPDATE/DELETE statement), so that
    :func:`commit` waits for durability only when there is something to make durable."""
    maker = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
    event.listen(maker, "after_flush", _mark_flush)
    event.listen(maker, "do_orm_execute", _mark_statement)
    return maker


def commit(db: Session) -> None:
    """Commit, and return once the commit is durable (see the module notes on ``GROUP``).

    The connection goes back to the pool before the wait, so other requests proceed during the fsync.
    """
    db.commit()
    if db.info.pop("wrote", False):
        bind = db.get_bind()
        sync = wal_sync_of(bind if isinstance(bind, Engine) else bind.engine)
        if sync is not None:
            sync.wait()
