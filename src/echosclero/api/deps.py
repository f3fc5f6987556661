"""Request context: the signed-in user, permissions, the database session, audit and rules.

Each route asks for one :class:`Ctx` through ``Need(Permission.X)`` (``Depends(need(...))``); the permission
is attached to the dependency (``need(...).permission``) so that tests can check every route against every
role.

The request path, and why it has this shape (see docs/benchmarks-api.md):

1. ``need()`` is an ``async`` dependency: it verifies the access token (signature, expiry) on the event
   loop, without a database round trip and without a hop to a worker thread.
2. :class:`CtxRoute` runs the route in *one* worker thread, inside :meth:`Ctx.opened`: the user is loaded
   (still active? role still holding the permission?) in the same transaction as the route's own work,
   the response is validated and serialised there, and the session is closed before the thread returns.
   A database connection is therefore never held across a thread hop (holding one deadlocks a saturated
   thread pool on a small connection pool: one connection on SQLite).
3. Writes and their audit entries are committed together by :meth:`Ctx.commit`, which returns once the
   commit is durable (:func:`echosclero.store.db.commit`): an acknowledged write survives a crash.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from echosclero.api.errors import HTTPProblem
from echosclero.api.security import decode_token
from echosclero.api.settings import Settings
from echosclero.clinic.roles import Permission, Role, can
from echosclero.clinic.rules import RuleBook, RuleViolationError, Violation
from echosclero.store.db import commit
from echosclero.store.models import AuditEntry, RuleValue, User
from echosclero.store.types import utcnow

__all__ = [
    "DB",
    "Ctx",
    "CtxRoute",
    "CurrentUser",
    "audit_entry",
    "audit_row",
    "insert_audit",
    "load_user", "authenticated", "client_ip", "get_db", "need", "settings_of"]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False)


def get_db(request: Request) -> Iterator[Session]:
    """A session for the few routes without a :class:`Ctx` (sign-in, the public request form)."""
    db = request.app.state.sessionmaker()
    try:
        yield db
    finally:
        db.close()


DB = Annotated[Session, Depends(get_db)]


def client_ip(request: Request) -> str:
    """The client's address: the peer's, unless the peer is a configured proxy (``ECHOSCLERO_TRUSTED_PROXIES``);
    then the last ``X-Forwarded-For`` entry not itself a trusted proxy. A client cannot choose the address its
    failed sign-ins, rate limits and audit entries are counted under."""
    peer = request.client.host if request.client else ""
    networks = settings_of(request).proxy_networks
    if not networks or not _in(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, networks):
            return hop[:64] if _is_ip(hop) else peer
    return peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def audit_row(
    request: Request,
    user: CurrentUser | User | None,
    action: str,
    resource: str,
    *,
    resource_id: object = None,
    patient_id: int | None = None,
    status: int | None = None,
    detail: dict | None = None,
    username: str | None = None,
) -> dict[str, Any]:
    """One audit-log row: who, what, when (the column default), from where."""
    d = dict(detail or {})
    if status is not None:
        d["status"] = status
    return {
        "at": utcnow(),
        "user_id": user.id if user else None,
        "username": (user.username if user else username or "")[:64],
        "role": user.role if user else "",
        "action": action,
        "resource": resource,
        "resource_id": None if resource_id is None else str(resource_id),
        "patient_id": patient_id,
        "method": request.method,
        "path": str(request.url.path)[:500],
        "client_ip": client_ip(request),
        "detail": d,
    }


def audit_entry(request: Request, user: CurrentUser | User | None, action: str, resource: str, **kw: Any) -> AuditEntry:
    return AuditEntry(**audit_row(request, user, action, resource, **kw))


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The signed-in user as the request sees it (read with one light query, no ORM object)."""

    id: int
    username: str
    full_name: str
    role: str
    active: bool


_USERS = User.__table__
_USER_BY_ID = select(_USERS.c.id, _USERS.c.username, _USERS.c.full_name, _USERS.c.role, _USERS.c.active).where(
    _USERS.c.id == bindparam("user_id")
)
_AUDIT_INSERT = AuditEntry.__table__.insert()  # Core: one multi-row INSERT without the ORM's bulk machinery


def load_user(db: Session, user_id: int) -> CurrentUser | None:
    row = db.execute(_USER_BY_ID, {"user_id": user_id}).first()
    return None if row is None else CurrentUser(*row)


def insert_audit(db: Session, rows: list[dict[str, Any]]) -> None:
    """Append audit rows (built by :func:`audit_row`) in the session's transaction."""
    db.execute(_AUDIT_INSERT, rows)


class Ctx:
    """What a route needs: the session, the signed-in user, audit, rules. Usable only inside
    :meth:`opened` (which :class:`CtxRoute` calls around the route)."""

    def __init__(self, request: Request, *, user_id: int, permission: Permission | None) -> None:
        self.request = request
        self.permission = permission
        self._user_id = user_id
        self._db: Session | None = None
        self._user: CurrentUser | None = None
        self._rules: RuleBook | None = None
        self._audit: list[dict[str, Any]] = []

    @property
    def db(self) -> Session:
        if self._db is None:
            raise RuntimeError("Ctx used outside Ctx.opened(); declare the router with route_class=CtxRoute")
        return self._db

    @property
    def user(self) -> CurrentUser:
        if self._user is None:
            raise RuntimeError("Ctx used outside Ctx.opened(); declare the router with route_class=CtxRoute")
        return self._user

    @property
    def settings(self) -> Settings:
        return settings_of(self.request)

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    def can(self, permission: Permission) -> bool:
        return can(self.user.role, permission)

    @contextmanager
    def opened(self) -> Iterator[Ctx]:
        """Open the session, authorise the user against the database, close everything on exit."""
        self._db = self.request.app.state.sessionmaker()
        try:
            user = load_user(self._db, self._user_id)
            if user is None or not user.active:
                raise _unauthorized()
            self._user = user
            if self.permission is not None and not can(user.role, self.permission):
                self.audit("denied", "permission", needed=self.permission.value)
                self.commit()
                raise HTTPProblem(
                    403, f"your role ({user.role}) does not have the permission {self.permission.value}"
                )
            yield self
            if self._audit:  # a route that audits must commit: an entry must never be dropped silently
                raise RuntimeError(f"{len(self._audit)} audit entries were not committed")
        finally:
            self._audit.clear()
            self._db.close()

    def audit(
        self,
        action: str,
        resource: str,
        resource_id: object = None,
        *,
        patient_id: int | None = None,
        **detail: Any,
    ) -> None:
        """Record an audit entry; it is written with the route's other writes by :meth:`commit`."""
        if action == "denied":  # the refusal that follows is audited by this entry
            self.request.state.audited = True
        self._audit.append(
            audit_row(
                self.request, self.user, action, resource, resource_id=resource_id, patient_id=patient_id, detail=detail
            )
        )

    def commit(self) -> None:
        """Commit the route's writes with their audit entries (one transaction); returns once durable."""
        if self._audit:
            insert_audit(self.db, self._audit)
            self._audit = []
        commit(self.db)

    def release(self) -> None:
        """End the current transaction (releasing the connection) before slow work without the database."""
        self.db.rollback()

    def rules(self) -> RuleBook:
        """The rules in force (defaults with the clinic's values); read once per request."""
        if self._rules is None:
            values = {rv.code: rv.value for rv in self.db.scalars(select(RuleValue))}
            book = RuleBook()
            self._rules = book.with_values({k: v for k, v in values.items() if k in book.rules})
        return self._rules

    def forget_rules(self) -> None:
        """After changing a rule value in this request."""
        self._rules = None

    def enforce(
        self,
        violations: list[Violation],
        override_reason: str | None,
        *,
        resource: str,
        patient_id: int | None,
    ) -> list[Violation]:
        """Refuse (422) when a refusing rule is broken, unless a physician overrides with a reason.

        Returns the violations that are kept as warnings on the record (overridden refusals included).
        """
        refusing = [v for v in violations if v.refuses]
        if refusing:
            if not override_reason:
                raise RuleViolationError(refusing)
            if not self.can(Permission.OVERRIDE):
                raise HTTPProblem(
                    403,
                    f"only a physician may override a safety rule ({refusing[0].rule.code}); "
                    f"your role is {self.user.role}",
                )
            self.audit(
                "override",
                resource,
                patient_id=patient_id,
                reason=override_reason,
                violations=[v.as_dict() for v in refusing],
            )
        return violations


def _unauthorized() -> HTTPProblem:
    return HTTPProblem(401, "a valid access token is required (POST /api/token)", {"WWW-Authenticate": "Bearer"})


def _claims(request: Request, token: str | None) -> tuple[int, str]:
    """The user id and role of a valid access token (checked on every request); 401 otherwise."""
    if not token:
        raise _unauthorized()
    try:
        claims = decode_token(token, secret=settings_of(request).secret_key)
        return int(claims["sub"]), str(claims.get("role", ""))
    except (jwt.InvalidTokenError, ValueError, KeyError):
        raise _unauthorized() from None


def token_user_id(request: Request) -> int | None:
    """The user id of the request's bearer token when it is valid, else ``None`` (for auditing refusals)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    try:
        return int(decode_token(header[7:].strip(), secret=settings_of(request).secret_key)["sub"])
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError):
        return None


def _deny(request: Request, user_id: int, permission: Permission) -> None:
    """Refuse with 403 and an audit entry (401 when the user is gone or disabled)."""
    with request.app.state.sessionmaker() as db:
        user = load_user(db, user_id)
        if user is None or not user.active:
            raise _unauthorized()
        row = audit_row(request, user, "denied", "permission", detail={"needed": permission.value})
        insert_audit(db, [row])
        commit(db)
        request.state.audited = True
        raise HTTPProblem(403, f"your role ({user.role}) does not have the permission {permission.value}")


def need(permission: Permission):
    """Dependency factory: the request's :class:`Ctx` once the user holds ``permission``.

    The token's role is checked here, before the body is validated (a role without the permission learns
    nothing about the route); the user's current role and state in the database are checked again when
    the route opens the context (a role changed after the token was issued).
    """

    async def dependency(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Ctx:
        user_id, role = _claims(request, token)
        if not can(role, permission):
            await run_in_threadpool(_deny, request, user_id, permission)
        return Ctx(request, user_id=user_id, permission=permission)

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


async def authenticated(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Ctx:
    """Any signed-in user (for ``/api/users/me``)."""
    return Ctx(request, user_id=_claims(request, token)[0], permission=None)


authenticated.permission = None  # type: ignore[attr-defined]


class CtxRoute(APIRoute):
    """A route whose :class:`Ctx` is opened around the endpoint, in the endpoint's worker thread, with the
    response validated and serialised there too (one thread hop per request, no connection held across
    one). Routes without a :class:`Ctx` parameter run unchanged."""

    def __init__(self, path: str, endpoint, **kwargs) -> None:
        wants_ctx = any(_is_ctx(p.annotation) for p in inspect.signature(endpoint).parameters.values())
        if wants_ctx and not inspect.iscoroutinefunction(endpoint):
            endpoint = self._wrap(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self):
        """Before FastAPI reads the request: unknown query parameters and JSON bodies holding what JSON does not
        allow (``NaN``, ``Infinity``, numbers beyond a double, lone surrogates) are refused with 422."""
        handler = super().get_route_handler()
        known = _query_names(self.dependant)

        async def checked(request: Request) -> Response:
            unknown = sorted(set(request.query_params) - known)
            if unknown:
                raise HTTPProblem(
                    422,
                    f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                    + (f"this route takes {', '.join(sorted(known))}" if known else "this route takes none"),
                )
            if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
                check_json_body(await request.body())
            return await handler(request)

        return checked

    def _wrap(self, endpoint):
        route = self

        @functools.wraps(endpoint)
        def run(**values):
            ctx = next(v for v in values.values() if isinstance(v, Ctx))
            with ctx.opened():
                return route.render(endpoint(**values))

        return run

    def render(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        field = self.response_field
        if field is None:
            return JSONResponse(jsonable_encoder(result), status_code=self.status_code or 200)
        value, errors = field.validate(result, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=result)
        content = field.serialize_json(
            value,
            include=self.response_model_include,
            exclude=self.response_model_exclude,
            by_alias=self.response_model_by_alias,
            exclude_unset=self.response_model_exclude_unset,
            exclude_defaults=self.response_model_exclude_defaults,
            exclude_none=self.response_model_exclude_none,
        )
        return Response(content=content, status_code=self.status_code or 200, media_type="application/json")


def _query_names(dependant) -> set[str]:
    """The query parameters a route and its dependencies declare (by the name a client sends)."""
    names, stack = set(), [dependant]
    while stack:
        d = stack.pop()
        names.update(p.alias for p in d.query_params)
        stack.extend(d.dependencies)
    return names


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"{text[:40]} is beyond the range of a number")
    return v


def _bad_text(obj: Any, loc: str = "body") -> str | None:
    """The location of the first string (or key) with a lone surrogate, else ``None``."""
    stack = [(obj, loc)]
    while stack:
        o, where = stack.pop()
        if isinstance(o, str):
            try:
                o.encode("utf-8")
            except UnicodeEncodeError:
                return where
        elif isinstance(o, dict):
            for k, v in o.items():
                stack.append((k, f"{where} (a key)"))
                stack.append((v, f"{where}.{k}" if isinstance(k, str) and k.isprintable() else where))
        elif isinstance(o, list):
            stack.extend((v, f"{where}.{i}") for i, v in enumerate(o))
    return None


def check_json_body(body: bytes) -> None:
    """422 for a JSON body that is not strict JSON: ``NaN``/``Infinity``, a number beyond a double, a lone
    surrogate in a string. (Malformed JSON is left to FastAPI, which answers 422 too.)"""
    if not body:
        return
    try:
        obj = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError) and "is not a number" not in str(exc):
            return  # malformed: FastAPI's own message
        raise HTTPProblem(422, f"request body: {exc}; send finite numbers (NaN and Infinity are not JSON)") from None
    except RecursionError:
        raise HTTPProblem(422, "request body: nested too deeply") from None
    where = _bad_text(obj)
    if where is not None:
        raise HTTPProblem(422, f"{where}: text contains an invalid character (a lone surrogate)")


def _is_ctx(annotation: Any) -> bool:
    """``Ctx`` itself or ``Annotated[Ctx, ...]`` (how ``Need(...)`` declares it)."""
    return annotation is Ctx or getattr(annotation, "__origin__", None) is Ctx
