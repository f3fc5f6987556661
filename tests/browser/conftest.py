"""Fixtures of the browser tests: a real workstation server over a fresh database, and Debian's Chromium
driven by Playwright (see browser_kit)."""

from __future__ import annotations

import pytest
from browser_kit import ARGS, Server, chromium_or_skip, sign_in


@pytest.fixture
def server(tmp_path):
    with Server(tmp_path) as s:
        yield s


@pytest.fixture
def browser():
    path = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser, server, request):
    pages = []

    def make(role: str | None = None, **kw):
        ctx = browser.new_context(viewport={"width": 1400, "height": 950}, base_url=server.base, **kw)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.js_errors = errors  # type: ignore[attr-defined]
        if role:
            sign_in(page, role)
        pages.append(ctx)
        return page

    yield make
    if request.node.stash.get(_FAILED, False):  # leave a screenshot of each page for the person debugging
        folder = request.getfixturevalue("tmp_path")
        for i, c in enumerate(pages):
            for j, page in enumerate(c.pages):
                page.screenshot(path=str(folder / f"failed-page-{i}-{j}.png"), full_page=True)
                print(f"screenshot of the failed page: {folder / f'failed-page-{i}-{j}.png'}")
    for c in pages:
        c.close()


@pytest.fixture(scope="session")
def doppler_dicom(tmp_path_factory):
    """The simulator's SFJ reflux cine as US DICOM, with its true reflux time."""
    import json
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("doppler")
    res = subprocess.run([sys.executable, "-m", "echosclero", "simulate", "sfj_reflux", "--out", str(out),
                          "--seed", "31", "--frame-rate-hz", "4"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    truth = json.loads((out / "truth.json").read_text())["reflux"]
    return out / "sfj_reflux.dcm", float(truth["reflux_ms"])



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        item.stash[_FAILED] = True


_FAILED = pytest.StashKey[bool]()
