"""The workstation served from a thread of this process (tests and benchmarks: no subprocess start-up)."""

from __future__ import annotations

import os
import socket
import threading
import time

__all__ = ["ThreadedServer", "free_port"]


def free_port(lo: int, hi: int) -> int:
    """A free loopback port in ``lo..hi``, starting at a place that depends on the pytest-xdist worker (so that
    parallel workers rarely race for the same one)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = hi - lo + 1
    start = lo + (int("".join(c for c in worker if c.isdigit()) or 0) * 37 + os.getpid()) % n
    for port in [*range(start, hi + 1), *range(lo, start)]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


class ThreadedServer:
    """``with ThreadedServer(app, port=...) as s:`` serves ``app`` on ``s.base`` until the block ends."""

    def __init__(self, app, *, port: int, host: str = "127.0.0.1") -> None:
        import uvicorn

        self.base = f"http://{host}:{port}"
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", ws="websockets-sansio",
                                ws_per_message_deflate=False,  # frames go raw: deflate cost ~27 ms a frame
                                lifespan="off", http="echosclero.api.http:NoDelayHTTPProtocol")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="echosclero-workstation", daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the workstation did not start on {self.base}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
