"""Error responses: every refusal is a 4xx with a message a person understands, never a 500.

HTTP 422 bodies share one shape (FastAPI's validation-error shape plus a ``message``)::

    {"message": "...", "detail": [{"loc": [...], "msg": "...", "type": "...", ...}]}

Rule refusals add ``rule`` and ``source`` to each detail item, and ``violations``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from echosclero.clinic.rules import RuleViolationError
from echosclero.errors import InputError

log = logging.getLogger("echosclero.api")


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def not_found(what: str, ident: object) -> HTTPProblem:
    return HTTPProblem(404, f"{what} {ident} not found")


def _loc(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "request body"


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for e in exc.errors():
        e = {k: v for k, v in e.items() if k in ("loc", "msg", "type", "input")}
        if "input" in e and len(repr(e["input"])) > 200:
            e.pop("input")
        msg = e.get("msg", "")
        if msg.startswith("Value error, "):
            e["msg"] = msg[len("Value error, ") :]
        errors.append(e)
    message = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return JSONResponse(
        status_code=422,
        content=jsonable_encoder(
            {"message": message, "detail": errors}, custom_encoder={bytes: lambda b: b.decode("latin-1")}
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
        content={
            "message": str(exc),
            "detail": detail,
            "violations": [v.as_dict() for v in exc.violations],
            "overridable": exc.overridable,
        },
    )


def _input(request: Request, exc: InputError) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={"message": str(exc), "detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]},
    )


def _problem(request: Request, exc: HTTPProblem) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status, content={"message": exc.message, "detail": exc.message}, headers=exc.headers
    )


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
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(RuleViolationError, _rule)
    app.add_exception_handler(InputError, _input)
    app.add_exception_handler(HTTPProblem, _problem)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(DataError, _data)
    app.add_exception_handler(OperationalError, _operational)
    app.add_exception_handler(PoolTimeout, _operational)
