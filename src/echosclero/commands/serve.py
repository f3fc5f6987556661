"""``echosclero serve``: the workstation API on 127.0.0.1:8000 (migrates the database first)."""

from __future__ import annotations

import argparse
import os


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the workstation API (clinic record) on 127.0.0.1:8000",
        description="Serve the EchoSclero API (OpenAPI at /api/openapi.json). The database comes from "
        "ECHOSCLERO_DATABASE_URL (default: SQLite in the data folder) and is migrated on start. The token "
        "key comes from ECHOSCLERO_SECRET_KEY, or is generated once into <data folder>/secret_key (0600).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--database-url", help="overrides ECHOSCLERO_DATABASE_URL")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from echosclero.api.app import create_app
    from echosclero.errors import InputError

    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port} is not a TCP port (1-65535)")
    if args.database_url:
        os.environ["ECHOSCLERO_DATABASE_URL"] = args.database_url
    app = create_app()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
