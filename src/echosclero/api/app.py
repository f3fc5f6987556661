"""The FastAPI application: ``create_app(settings)``; served by ``echosclero serve``."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from echosclero import __version__
from echosclero.api import errors
from echosclero.api.ratelimit import RateLimiter
from echosclero.api.routes import admin, appointments, auth, followup, interop, patients, treatment
from echosclero.api.settings import Settings
from echosclero.store.db import make_engine, make_sessionmaker
from echosclero.store.migrate import upgrade

__all__ = ["create_app", "create_worker_app"]

DESCRIPTION = """\
The EchoSclero clinic record. Sign in with `POST /api/token` (OAuth2 password flow) and send
`Authorization: Bearer <token>`. Every read and write of patient data is written to the audit log.

Safety rules (dose limits, contraindications, notice periods) refuse a request with HTTP 422 and a message
naming the rule and its source; a physician may override a clinical rule with `override_reason`.
The rules and their sources: `GET /api/rules`.
"""


def create_app(settings: Settings | None = None, *, engine: Engine | None = None, migrate: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()
    engine = engine or make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    app = FastAPI(
        title="EchoSclero clinic record",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # /api/docs is served by echosclero.web from vendored files (works offline)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    # rate limits live in the database: they hold across the processes of `serve --workers N`
    app.state.public_limiter = RateLimiter("public", settings.public_requests_per_hour, 3600.0)
    app.state.public_global_limiter = RateLimiter(
        "public_all", max(100, settings.public_requests_per_hour * 20), 3600.0
    )
    app.state.login_limiter = RateLimiter("login_failed", settings.login_failures_per_15min, 900.0)
    app.state.login_account_limiter = RateLimiter("login_account", settings.login_failures_per_account_15min, 900.0)
    errors.install(app)
    for module in (auth, patients, treatment, followup, appointments, admin, interop):
        app.include_router(module.router)

    @app.get("/api/health", tags=["public"])
    async def health() -> dict:
        return {"status": "ok", "version": __version__}

    from echosclero.web import install as install_workstation

    install_workstation(app)  # the browser workstation, /api/docs and the live WebSocket
    return app


def create_worker_app() -> FastAPI:
    """The app of one ``echosclero serve --workers N`` process (the parent has migrated the database)."""
    return create_app(Settings.from_env(), migrate=False)
