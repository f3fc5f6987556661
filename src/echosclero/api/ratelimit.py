"""Sliding-window rate limits kept in the database (table ``rate_limit_hits``), for the public request form
and failed sign-ins. Kept in the database rather than in memory so that a limit holds across the processes
of ``echosclero serve --workers N`` and across restarts.

A check and the hit it records belong to the caller's transaction. On SQLite every transaction holds the
write lock (``BEGIN IMMEDIATE``), so check-and-record is exact; on PostgreSQL a transaction-scoped advisory
lock on the (bucket, key) pair serialises concurrent checks of the same key.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from echosclero.store.models import RateLimitHit
from echosclero.store.types import utcnow

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``limit`` hits per ``window_s`` seconds for each key of ``bucket`` (``limit`` 0: no limit)."""

    def __init__(self, bucket: str, limit: int, window_s: float, *, clock=utcnow) -> None:
        self.bucket, self.limit, self.window = bucket, int(limit), timedelta(seconds=window_s)
        self._clock = clock

    def check(self, db: Session, key: str) -> float | None:
        """``None`` when one more hit is allowed, else the seconds to wait. Records nothing."""
        if self.limit <= 0:
            return None
        key = key[:200]
        self._lock(db, key)
        now = self._clock()
        count, oldest = db.execute(
            select(func.count(), func.min(RateLimitHit.at)).where(
                RateLimitHit.bucket == self.bucket, RateLimitHit.key == key, RateLimitHit.at > now - self.window
            )
        ).one()
        if count < self.limit:
            return None
        return max(1.0, (oldest + self.window - now).total_seconds())

    def record(self, db: Session, key: str) -> None:
        """Count one hit (and forget this bucket's hits older than the window)."""
        if self.limit <= 0:
            return
        now: datetime = self._clock()
        db.execute(
            delete(RateLimitHit).where(RateLimitHit.bucket == self.bucket, RateLimitHit.at <= now - self.window)
        )
        db.execute(insert(RateLimitHit).values(bucket=self.bucket, key=key[:200], at=now))

    def hit(self, db: Session, key: str) -> float | None:
        """:meth:`check`, and :meth:`record` when allowed."""
        wait = self.check(db, key)
        if wait is None:
            self.record(db, key)
        return wait

    def _lock(self, db: Session, key: str) -> None:
        if db.get_bind().dialect.name == "postgresql":
            digest = hashlib.blake2b(f"{self.bucket}\0{key}".encode(), digest_size=8).digest()
            db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(digest, "big", signed=True)})
