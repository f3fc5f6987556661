"""Helpers of the browser tests: a real workstation server (uvicorn in a thread, on a loopback port from
9300-9399) over a fresh database, the Chromium check (nothing downloaded; skipped with the reason when absent),
sign-in, axe-core, screenshots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from echosclero.api.security import hash_password, use_fast_hashing
from echosclero.store.models import User
from echosclero.web.threaded import ThreadedServer
from echosclero.web.threaded import free_port as _free_port

use_fast_hashing()  # tests only

CHROMIUM = os.environ.get("ECHOSCLERO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
SECRET = "browser-test-secret-0123456789-abcdefghijklmnop"
PASSWORD = "correct horse battery staple"
ROLES = ["physician", "sonographer", "nurse", "front_desk", "admin"]
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def free_port() -> int:
    """A free loopback port in this project's range for the browser tests (issue 13: 9300-9399)."""
    return _free_port(9300, 9399)


def chromium_or_skip() -> str:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` (Debian), or set "
                    "ECHOSCLERO_CHROMIUM")
    return CHROMIUM


class Server:
    def __init__(self, tmp: Path) -> None:
        from echosclero.api.app import create_app
        from echosclero.api.settings import Settings
        from echosclero.store.db import make_engine
        from echosclero.store.migrate import upgrade

        url = f"sqlite:///{tmp / 'clinic.db'}"
        self.engine = make_engine(url)
        upgrade(self.engine)
        self.app = create_app(Settings(database_url=url, secret_key=SECRET, clinic_name="Vein Clinic Test",
                                       clinic_phone="+44 20 0000 0000"), engine=self.engine, migrate=False)
        self.app.state.keyframe_dir = tmp / "keyframes"
        from sqlalchemy.orm import Session

        self.users = {}
        with Session(self.engine) as db:
            pw = hash_password(PASSWORD)
            for role in ROLES:
                u = User(username=role, full_name=f"Test {role.replace('_', ' ')}", role=role, password_hash=pw,
                         active=True)
                db.add(u)
                db.flush()
                self.users[role] = u.id
            db.commit()
        self.port = free_port()
        self.threaded = ThreadedServer(self.app, port=self.port)
        self.base = self.threaded.base

    def __enter__(self) -> Server:
        self.threaded.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.threaded.__exit__(*exc)
        self.engine.dispose()


def sign_in(page, role: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(role)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def axe_violations(page, *, impacts=("serious", "critical")) -> list[dict]:
    """axe-core (vendored, 4.14.1) on the current page: violations of the given impacts."""
    # served from the page's own origin, so that the page's Content-Security-Policy stays in force
    page.route("**/__tests__/axe.min.js", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    page.add_script_tag(url="/__tests__/axe.min.js")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def shot(page, name: str, **kw) -> Path:
    IMG.mkdir(parents=True, exist_ok=True)
    path = IMG / f"workstation-{name}.png"
    page.screenshot(path=str(path), **kw)
    return path
