"""The EchoSclero HTTP API (FastAPI): ``create_app()``; OpenAPI at ``/api/openapi.json``."""

from echosclero.api.app import create_app

__all__ = ["create_app"]
