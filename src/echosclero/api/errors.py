"""Error responses: every refusal is a 4xx with a message a person understands, never a 500.

HTTP 422 bodies share one shape (FastAPI's validation-error shape plus a ``message``)::

    {"message": "...", "detail": [{"loc": [...], "msg": "...", "type": "...", ...}]}

Rule refusals add ``rule`` and ``source`` to each detail item, and ``violations``.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from echosclero.clinic.rules import RuleViolationError
from echosclero.errors import InputError

log = logging.getLogger("echosclero.api")


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def not_found(what: str, ident: object) -> HTTPProblem:
    return HTTPProblem(404, f"{what} {ident} not found")


def json_safe(value):
    """``value`` with whatever JSON cannot carry made printable: non-finite numbers as text, strings with lone
    surrogates (or other unencodable characters) escaped, bytes decoded. An error answer that echoes its input
    must never fail to encode (that was a 500 for ``NaN`` or ``"\\ud800"`` in any body)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, bytes):
        return json_safe(value.decode("utf-8", "backslashreplace"))
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return json_safe(str(value))


def _loc(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "request body"


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for e in exc.errors():
        e = json_safe({k: v for k, v in e.items() if k in ("loc", "msg", "type", "input")})
        if "input" in e and len(repr(e["input"])) > 200:
            e.pop("input")
        msg = e.get("msg", "")
        if msg.startswith("Value error, "):
            e["msg"] = msg[len("Value error, ") :]
        errors.append(e)
    message = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return JSONResponse(
        status_code=422,
        content=json_safe(
            jsonable_encoder(
                {"message": message, "detail": errors}, custom_encoder={bytes: lambda b: b.decode("latin-1")}
            )
        ),
    )


def _rule(request: Request, exc: RuleViolationError) -> JSONResponse:
    detail = [
        {
            "loc": ["body", v.field or "body"],
            "msg": v.text(),
            "type": "rule_violation",
            "rule": v.rule.code,
            "source": v.rule.citation,
        }
        for v in exc.violations
    ]
    return JSONResponse(
        status_code=422,
        content=json_safe(
            {
                "message": str(exc),
                "detail": detail,
                "violations": [v.as_dict() for v in exc.violations],
                "overridable": exc.overridable,
            }
        ),
    )


def _input(request: Request, exc: InputError) -> JSONResponse:
    msg = json_safe(str(exc))
    return JSONResponse(
        status_code=422,
        content={"message": msg, "detail": [{"loc": ["body"], "msg": msg, "type": "value_error"}]},
    )


def _problem(request: Request, exc: HTTPProblem) -> JSONResponse:
    msg = json_safe(exc.message)
    return JSONResponse(status_code=exc.status, content={"message": msg, "detail": msg}, headers=exc.headers)


def _starlette(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    msg = json_safe(str(exc.detail))
    return JSONResponse(
        status_code=exc.status_code, content={"message": msg, "detail": msg}, headers=getattr(exc, "headers", None)
    )


AUDITED = frozenset({401, 403, 404, 405, 409, 413, 422, 429})


def _audit_refusal(request: Request, status: int, message: str) -> None:
    """Write one audit entry for a refused request (who, if the token says; what; from where; why). Skipped
    when the route has audited it already (a denial, a failed sign-in); never raises."""
    from echosclero.api.deps import audit_row, insert_audit, load_user, token_user_id
    from echosclero.store.db import commit

    if getattr(request.state, "audited", False) or status not in AUDITED:
        return
    request.state.audited = True
    try:
        with request.app.state.sessionmaker() as db:
            user_id = token_user_id(request)
            user = load_user(db, user_id) if user_id is not None else None
            row = audit_row(
                request, user, "refused", "request", status=status, detail={"message": message[:500]}
            )
            insert_audit(db, [row])
            commit(db)
    except Exception as exc:  # noqa: BLE001 - the refusal is answered whatever happens to its audit entry
        log.warning("could not audit a refused request (%s %s): %s", request.method, request.url.path, exc)


def audited(handler):
    """An exception handler whose 4xx answers are also written to the audit log."""

    async def wrapped(request: Request, exc: Exception):
        response = handler(request, exc)
        if response.status_code in AUDITED and not getattr(request.state, "audited", False):
            body = response.body.decode("utf-8", "replace")
            await run_in_threadpool(_audit_refusal, request, response.status_code, body)
        return response

    return wrapped


def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
    log.info("integrity error: %s", exc.orig)
    return JSONResponse(
        status_code=409,
        content={
            "message": "the request conflicts with the stored record (a duplicate, or a reference to a "
            "record that does not exist)",
            "detail": "conflict",
        },
    )


def _data(request: Request, exc: DataError) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={
            "message": "a value does not fit the stored field (too long or out of range)",
            "detail": [{"loc": ["body"], "msg": "value out of range", "type": "value_error"}],
        },
    )


def _operational(request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", exc)
    return JSONResponse(
        status_code=503,
        content={"message": "the database is busy or unavailable; retry", "detail": "unavailable"},
        headers={"Retry-After": "1"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, audited(_validation))
    app.add_exception_handler(RuleViolationError, audited(_rule))
    app.add_exception_handler(InputError, audited(_input))
    app.add_exception_handler(HTTPProblem, audited(_problem))
    app.add_exception_handler(StarletteHTTPException, audited(_starlette))
    app.add_exception_handler(IntegrityError, audited(_integrity))
    app.add_exception_handler(DataError, audited(_data))
    app.add_exception_handler(OperationalError, _operational)
    app.add_exception_handler(PoolTimeout, _operational)
