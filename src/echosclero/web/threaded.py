"""The workstation served from a thread of this process (tests and benchmarks: no subprocess start-up)."""

from __future__ import annotations

import threading
import time

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """``with ThreadedServer(app, port=...) as s:`` serves ``app`` on ``s.base`` until the block ends."""

    def __init__(self, app, *, port: int, host: str = "127.0.0.1") -> None:
        import uvicorn

        self.base = f"http://{host}:{port}"
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", ws="websockets-sansio",
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
