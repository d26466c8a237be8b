"""A static file server on 127.0.0.1 for a cnnport web site, standard library only.

With ``isolated`` (the default) every response carries the cross-origin isolation
headers (``Cross-Origin-Opener-Policy: same-origin``, ``Cross-Origin-Embedder-Policy:
require-corp``), so the page gets ``SharedArrayBuffer`` and onnxruntime-web runs WASM on
several threads. Without them the server is what any plain static host is, and the page
runs on one thread.

Example:
    >>> with SiteServer("site/") as server:                 # doctest: +SKIP
    ...     print(server.url)
    http://127.0.0.1:41234/
"""

from __future__ import annotations

import functools
import http.server
import logging
import threading
from pathlib import Path
from typing import ClassVar

__all__ = ["ISOLATION_HEADERS", "SiteServer"]

logger = logging.getLogger(__name__)

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Python's mimetypes reads the system's tables, which may lack these; a module script
# served as text/plain is refused by the browser, a wasm file compiles slower.
TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".png": "image/png",
    ".y4m": "application/octet-stream",
}


class _Handler(http.server.SimpleHTTPRequestHandler):
    isolated = True
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        **TYPES,
    }

    def end_headers(self) -> None:
        if self.isolated:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A browser that closes a tab mid-download resets the connection: not an error of
        # the server, and no traceback on the console of `cnnport web --serve`.
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("%s closed the connection early", client_address[0])
            return
        super().handle_error(request, client_address)


class SiteServer:
    """Serves ``root`` on 127.0.0.1 from a background thread until closed.

    Args:
        root: the folder to serve.
        port: 0 picks a free port.
        isolated: send the cross-origin isolation headers (multi-threaded WASM).
    """

    def __init__(self, root: str | Path, port: int = 0, isolated: bool = True) -> None:
        self.root = Path(root)
        handler = type("Handler", (_Handler,), {"isolated": isolated})
        self._server = _Server(("127.0.0.1", port), functools.partial(handler, directory=str(self.root)))
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread: threading.Thread | None = None

    def start(self) -> SiteServer:
        """Serves in a background thread; a second call (``with SiteServer(...).start()``)
        does nothing, where it once started a second loop that ``close`` waited on for ever."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serves in this thread until interrupted."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
