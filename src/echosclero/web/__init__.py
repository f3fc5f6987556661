"""The workstation in the browser, served by ``echosclero serve`` next to the API.

:func:`install` adds to the API's FastAPI app: the pages (:mod:`echosclero.web.pages`, Jinja2 templates and
a small vanilla script layer in ``static/``, nothing to build), the browser sign-in (:mod:`echosclero.web.session`:
the API's token in an HttpOnly cookie, CSRF-protected), the live procedure WebSocket
(:mod:`echosclero.web.live`), the pages' extra JSON (:mod:`echosclero.web.data`) and the API's interactive
documentation at ``/api/docs`` from vendored Swagger UI files (offline). Vendored libraries and their
licences: ``static/vendor/README.md``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["STATIC", "install"]

STATIC = Path(__file__).parent / "static"
SWAGGER = "/static/vendor/swagger-ui"


def install(app: FastAPI, *, keyframe_dir: str | Path | None = None) -> FastAPI:
    """Serve the workstation from ``app`` (the API app of :func:`echosclero.api.app.create_app`)."""
    from echosclero.web import data, live, pages
    from echosclero.web.session import CookieAuth

    app.state.keyframe_dir = Path(keyframe_dir) if keyframe_dir else _keyframe_home(app) / "keyframes"
    app.add_middleware(CookieAuth)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(data.router)
    app.include_router(live.router)
    app.router.routes.extend(pages.routes)

    async def docs(request: Request):
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/api/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        )

    app.add_route("/api/docs", docs, include_in_schema=False)  # a plain route, as FastAPI adds its own docs

    @app.exception_handler(StarletteHTTPException)
    async def not_found_page(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith(("/api/", "/static/", "/ws/")):
            return await http_exception_handler(request, exc)
        title = "Page not found" if exc.status_code == 404 else f"Error {exc.status_code}"
        return pages.render(request, "error.html", status=exc.status_code, user=pages.signed_in(request),
                            title=title, message=f"{request.url.path}: {exc.detail}")

    return app


def _keyframe_home(app: FastAPI) -> Path:
    """Key frames live beside a SQLite database (one folder to back up), else in the data folder."""
    from echosclero.store.db import data_dir

    url = app.state.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent
    return data_dir()
