"""Request dependencies: database session, the current user, permissions, audit and rules.

Each route asks for one :class:`Ctx` through ``Depends(need(Permission.X))``; the permission is attached
to the dependency (``need(...).permission``) so that tests can check every route against every role.
Writes and their audit entries are committed together by :meth:`Ctx.commit`, before the response is sent:
an acknowledged write is durable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from echosclero.api.errors import HTTPProblem
from echosclero.api.security import decode_token
from echosclero.api.settings import Settings
from echosclero.clinic.roles import Permission, Role, can
from echosclero.clinic.rules import RuleBook, RuleViolationError, Violation
from echosclero.store.models import AuditEntry, RuleValue, User

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False)


def get_db(request: Request) -> Iterator[Session]:
    db = request.app.state.sessionmaker()
    try:
        yield db
    finally:
        db.close()


DB = Annotated[Session, Depends(get_db)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def audit_entry(
    request: Request,
    user: User | None,
    action: str,
    resource: str,
    *,
    resource_id: object = None,
    patient_id: int | None = None,
    status: int | None = None,
    detail: dict | None = None,
    username: str | None = None,
) -> AuditEntry:
    d = dict(detail or {})
    if status is not None:
        d["status"] = status
    return AuditEntry(
        user_id=user.id if user else None,
        username=(user.username if user else username or "")[:64],
        role=user.role if user else "",
        action=action,
        resource=resource,
        resource_id=None if resource_id is None else str(resource_id),
        patient_id=patient_id,
        method=request.method,
        path=str(request.url.path)[:500],
        client_ip=client_ip(request),
        detail=d,
    )


@dataclass
class Ctx:
    db: Session
    user: User
    request: Request

    @property
    def settings(self) -> Settings:
        return settings_of(self.request)

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    def can(self, permission: Permission) -> bool:
        return can(self.user.role, permission)

    def audit(
        self,
        action: str,
        resource: str,
        resource_id: object = None,
        *,
        patient_id: int | None = None,
        **detail: Any,
    ) -> None:
        self.db.add(
            audit_entry(
                self.request,
                self.user,
                action,
                resource,
                resource_id=resource_id,
                patient_id=patient_id,
                detail=detail,
            )
        )

    def commit(self) -> None:
        self.db.commit()

    def rules(self) -> RuleBook:
        values = {rv.code: rv.value for rv in self.db.scalars(select(RuleValue))}
        book = RuleBook()
        return book.with_values({k: v for k, v in values.items() if k in book.rules})

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


def _user_from_token(request: Request, db: Session, token: str | None) -> User:
    unauthorized = HTTPProblem(
        401, "a valid access token is required (POST /api/token)", {"WWW-Authenticate": "Bearer"}
    )
    if not token:
        raise unauthorized
    try:
        claims = decode_token(token, secret=settings_of(request).secret_key)
        user_id = int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError, KeyError):
        raise unauthorized from None
    user = db.get(User, user_id)
    if user is None or not user.active:
        raise unauthorized
    return user


def need(permission: Permission):
    """Dependency factory: the request's :class:`Ctx`, once the user holds ``permission``."""

    def dependency(request: Request, db: DB, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Ctx:
        user = _user_from_token(request, db, token)
        if not can(user.role, permission):
            db.rollback()
            db.add(audit_entry(request, user, "denied", "permission", detail={"needed": permission.value}))
            db.commit()
            raise HTTPProblem(403, f"your role ({user.role}) does not have the permission {permission.value}")
        # Release the connection before the route runs in another worker thread: holding it across the
        # thread hop deadlocks a saturated thread pool on a small connection pool (one connection on SQLite).
        db.commit()
        return Ctx(db=db, user=user, request=request)

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def authenticated(request: Request, db: DB, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Ctx:
    """Any signed-in user (for ``/api/users/me``)."""
    user = _user_from_token(request, db, token)
    db.commit()  # release the connection (see need())
    return Ctx(db=db, user=user, request=request)


authenticated.permission = None  # type: ignore[attr-defined]
