"""Password hashing (argon2id) and access tokens (JWT, HS256)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["create_token", "decode_token", "hash_password", "use_fast_hashing", "verify_password"]

_hasher = PasswordHasher()  # argon2-cffi defaults (RFC 9106 low-memory profile)
_DUMMY = _hasher.hash("not a password")


def use_fast_hashing() -> None:
    """Cheap argon2 parameters. For test suites only: never call this in a deployment."""
    global _hasher, _DUMMY
    _hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    _DUMMY = _hasher.hash("not a password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists (``password_hash=None`` checks a dummy hash)."""
    try:
        ok = _hasher.verify(password_hash or _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


ALGORITHM = "HS256"


def create_token(*, user_id: int, role: str, secret: str, minutes: int) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": str(user_id),
        "role": role,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
        "typ": "access",
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_token(token: str, *, secret: str) -> dict:
    """The token's claims; raises ``jwt.InvalidTokenError`` when it is forged, expired or malformed."""
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    if claims.get("typ") != "access":
        raise jwt.InvalidTokenError("not an access token")
    return claims
