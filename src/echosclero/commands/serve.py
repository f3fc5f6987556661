"""``echosclero serve``: the workstation on 127.0.0.1:8000: the browser pages, the live view and the API
(migrates the database first). It prints the address it listens on and logs each request (``--no-access-log``
turns the request log off).

With ``--workers N`` the API runs in N server processes (uvicorn workers) sharing the port. The database is
migrated and the token key created once, in this process, before the workers start. Several processes on
one SQLite file are safe: WAL lets them read concurrently, every transaction begins with ``BEGIN IMMEDIATE``
and writers queue on the file lock (30 s busy timeout), the group-commit fsync covers commits of every
process, and the audit log stays append-only (database triggers refuse UPDATE and DELETE). Rate limits
are kept in the database, so they hold across processes.
"""

from __future__ import annotations

import argparse
import os

MAX_WORKERS = 32


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the workstation (browser pages, live view, clinic record API) on 127.0.0.1:8000",
        description="Serve the EchoSclero workstation: open the printed address in a browser and sign in "
        "(create the first user with `echosclero users create NAME --role admin`). API documentation at "
        "/api/docs (works offline), "
        "OpenAPI at /api/openapi.json. The database comes from "
        "ECHOSCLERO_DATABASE_URL (default: SQLite in the data folder) and is migrated on start. The token "
        "key comes from ECHOSCLERO_SECRET_KEY, or is generated once into <data folder>/secret_key (0600). Behind a "
        "reverse proxy, name it in ECHOSCLERO_TRUSTED_PROXIES (e.g. 127.0.0.1): X-Forwarded-For is read from it "
        "only. The daily dose limits count the days of ECHOSCLERO_CLINIC_TIMEZONE (e.g. Europe/Paris; default: "
        "the server's zone).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help=f"server processes sharing the port (default 1, at most {MAX_WORKERS}); about one per core. "
        "With PostgreSQL each process keeps up to 30 connections",
    )
    p.add_argument("--database-url", help="overrides ECHOSCLERO_DATABASE_URL")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="server messages at this level and above (default warning); requests are logged apart")
    p.add_argument("--no-access-log", dest="access_log", action="store_false",
                   help="do not log each request (method, path, status) on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from echosclero.api.app import create_app
    from echosclero.api.settings import Settings
    from echosclero.errors import InputError
    from echosclero.store.db import make_engine
    from echosclero.store.migrate import upgrade

    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port} is not a TCP port (1-65535)")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise InputError(f"--workers {args.workers} must be from 1 to {MAX_WORKERS}")
    if args.database_url:
        os.environ["ECHOSCLERO_DATABASE_URL"] = args.database_url
    _check_port_free(args.host, args.port)
    settings = Settings.from_env()  # creates the key file once, before any worker reads it
    engine = make_engine(settings.database_url)
    upgrade(engine)  # once, here: workers never migrate
    engine.dispose()
    common = {
        "host": args.host,
        "port": args.port,
        "log_level": None,  # levels come from log_config: server messages at --log-level, requests at info
        "log_config": _log_config(args.log_level, access=args.access_log),
        "access_log": args.access_log,
        "http": "echosclero.api.http:NoDelayHTTPProtocol",
        # the API reads X-Forwarded-For itself, from ECHOSCLERO_TRUSTED_PROXIES only (uvicorn trusts 127.0.0.1)
        "proxy_headers": False,
        "ws": "websockets-sansio",  # the live view's WebSocket
        # frames go raw: deflating a 512 x 512 frame took ~27 ms of the event loop (and the page's time to inflate)
        "ws_per_message_deflate": False,
    }
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '') else shown}:{args.port}/"
    import logging

    logging.disable(logging.NOTSET)  # the CLI silences library logging; the server's own log is wanted here
    print(f"EchoSclero workstation: {url}  (API docs {url}api/docs; Ctrl-C stops)", flush=True)
    if args.workers == 1:
        uvicorn.run(create_app(settings, migrate=False), **common)
    else:
        uvicorn.run("echosclero.api.app:create_worker_app", factory=True, workers=args.workers, **common)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """A clear message instead of uvicorn's traceback when the port is taken."""
    import socket

    from echosclero.errors import InputError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another server running there? "
                "choose another port with --port"
            ) from None


def _log_config(level: str, *, access: bool) -> dict:
    """uvicorn's logging set-up with server messages at ``level`` and the request log at info."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["uvicorn"]["level"] = level.upper()
    cfg["loggers"]["uvicorn.error"] = {"level": level.upper()}
    cfg["loggers"]["uvicorn.access"]["level"] = "INFO" if access else "WARNING"
    return cfg
