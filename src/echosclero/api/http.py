"""The HTTP protocol ``echosclero serve`` runs under uvicorn: uvicorn's own, with ``TCP_NODELAY`` set on every
connection.

asyncio sets ``TCP_NODELAY`` on a connection only when its socket says ``IPPROTO_TCP``; uvicorn's socket for
``--workers N`` is created with protocol 0, so its connections kept Nagle's algorithm, and each request after
the first on a keep-alive connection waited ~40 ms for the peer's delayed ACK (measured: 44 ms per request
with 2 workers against 1 ms with one).
"""

from __future__ import annotations

import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["NoDelayHTTPProtocol"]


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def connection_made(self, transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - a socket that refuses the option works without it
                pass
        super().connection_made(transport)
