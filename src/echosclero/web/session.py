"""Signing in from a browser: the API's access token kept in an HttpOnly cookie, with CSRF protection.

The browser never holds the token in script-readable storage. ``POST /login`` runs the API's own sign-in
(``POST /api/token``: the same password check, rate limit and audit entry) and stores the token in the
cookie ``es_session`` (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS, expiring with the token).

:class:`CookieAuth` (ASGI middleware) lets the pages' scripts call the API with that cookie: a request under
``/api/`` that carries the cookie and no ``Authorization`` header gets ``Authorization: Bearer <cookie>``, so
every permission check, audit entry and safety rule is the API's, unchanged. A state-changing request
(anything but GET/HEAD/OPTIONS) must also carry ``X-CSRF-Token``: an HMAC of the token under the server's
key, which only the server's pages hand out (``<meta name="csrf-token">``); a cross-site form cannot read
it, and ``SameSite=Strict`` keeps the cookie off cross-site requests anyway (defence in depth).
"""

from __future__ import annotations

import hashlib
import hmac
import json

import jwt
from starlette.requests import Request

from echosclero.api.deps import CurrentUser, load_user
from echosclero.api.security import decode_token

__all__ = ["COOKIE", "CookieAuth", "csrf_token", "signed_in", "token_of"]

COOKIE = "es_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(secret: str, token: str) -> str:
    """The CSRF token bound to one session token (stateless: recomputed on each request)."""
    return hmac.new(secret.encode(), b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: str, token: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(secret, token), given)


def token_of(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def signed_in(request: Request) -> CurrentUser | None:
    """The user of the session cookie when its token is valid and the user still active; else ``None``."""
    cached = getattr(request.state, "es_user", False)
    if cached is not False:
        return cached
    user = None
    token = token_of(request)
    try:
        user_id = int(decode_token(token, secret=request.app.state.settings.secret_key)["sub"]) if token else None
    except (jwt.InvalidTokenError, ValueError, KeyError):
        user_id = None
    if user_id is not None:
        with request.app.state.sessionmaker() as db:
            user = load_user(db, user_id)
    request.state.es_user = user if user is not None and user.active else None
    return request.state.es_user


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for k, v in headers:
        if k == b"cookie":
            for part in v.decode("latin-1").split(";"):
                name, _, value = part.strip().partition("=")
                if name == COOKIE and value:
                    return value
    return None


class CookieAuth:
    """ASGI middleware: the session cookie stands for ``Authorization: Bearer`` on ``/api/`` requests,
    with the CSRF header required on state-changing ones."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            headers = scope["headers"]
            if not any(k == b"authorization" for k, _ in headers):
                token = _cookie(headers)
                if token is not None:
                    if scope["method"] not in SAFE_METHODS:
                        given = next((v.decode("latin-1") for k, v in headers if k == CSRF_HEADER.encode()), None)
                        secret = scope["app"].state.settings.secret_key
                        if not csrf_ok(secret, token, given):
                            await _refuse(send)
                            return
                    scope = dict(scope, headers=[*headers, (b"authorization", b"Bearer " + token.encode("latin-1"))])
        await self.app(scope, receive, send)


async def _refuse(send) -> None:
    message = "the request lacks the page's CSRF token (X-CSRF-Token); reload the page and try again"
    body = json.dumps({"message": message, "detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
