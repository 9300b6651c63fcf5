"""HTTP front of the local exchange on loopback: ``POST /info`` and ``POST /exchange`` as Hyperliquid serves them.

``LocalServer(exchange, port=0)`` binds ``127.0.0.1`` (port 0 = a free one), serves in a daemon thread, and
optionally advances the market in real time (``tick_s`` of wall time = ``tick_s * speed`` of market time).
The SDK's unchanged ``Info``/``Exchange`` pointed at ``server.url`` work against it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .._validate import check_int, check_real
from .engine import LocalExchange, LocalExchangeError

#: Only loopback: the local exchange has no authentication beyond signatures and holds no real funds.
HOST = "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    exchange: LocalExchange  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request logs would drown the terminal (and tests)."""

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if content_type == "application/json" else str(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(n) or b"null")
        except json.JSONDecodeError:
            self._send(422, "Failed to deserialize the JSON body into the target type", "text/plain")
            return
        if not isinstance(body, dict):
            self._send(422, "Failed to deserialize the JSON body into the target type", "text/plain")
            return
        try:
            if self.path == "/info":
                self._send(200, self.exchange.info(body))
            elif self.path == "/exchange":
                self._send(200, self.exchange.exchange(body))
            else:
                self._send(404, {"code": 404, "msg": f"no endpoint {self.path}", "data": None})
        except LocalExchangeError as exc:
            # the SDK turns a 4xx JSON {code, msg, data} into ClientError
            self._send(422, {"code": 422, "msg": str(exc), "data": None})


class LocalServer:
    """The local exchange served on ``http://127.0.0.1:<port>``.

    Parameters
    ----------
    exchange : the state machine to serve.
    port : TCP port (0 = any free port), in ``[0, 65535]``.
    tick_s : if given, a thread advances the market every ``tick_s`` seconds of wall time, ``> 0``.
    speed : market seconds per wall second for that thread, ``> 0``.
    """

    def __init__(self, exchange: LocalExchange, *, port: int = 0, tick_s: float | None = None, speed: float = 1.0):
        check_int("port", port, lo=0, hi=65535)
        handler = type("Handler", (_Handler,), {"exchange": exchange})
        self.exchange = exchange
        self.httpd = ThreadingHTTPServer((HOST, port), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._stop = threading.Event()
        serve = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="hyper-make-exchange", daemon=True)
        self._threads = [serve]
        if tick_s is not None:
            tick = check_real("tick_s", tick_s, lo=0.0, lo_open=True, unit="s")
            step = tick * check_real("speed", speed, lo=0.0, lo_open=True)
            self._threads.append(threading.Thread(target=self._run_market, args=(tick, step), daemon=True))
        for t in self._threads:
            t.start()

    @property
    def url(self) -> str:
        """Base URL to give the SDK."""
        return f"http://{HOST}:{self.port}"

    def _run_market(self, tick_s: float, step_s: float) -> None:
        while not self._stop.wait(tick_s):
            self.exchange.advance(step_s)

    def close(self) -> None:
        """Stop serving and the market thread."""
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
