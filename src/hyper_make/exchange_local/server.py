"""Loopback front of the local exchange: ``POST /info``, ``POST /exchange`` and the ``/ws`` WebSocket, as
Hyperliquid serves them.

``LocalServer(exchange, port=0)`` binds ``127.0.0.1`` (port 0 = a free one), serves in daemon threads, and
optionally advances the market in real time (``tick_s`` of wall time = ``tick_s * speed`` of market time).
The SDK's unchanged ``Info``/``Exchange`` pointed at ``server.url`` work against it, WebSocket included
(``Info(url).subscribe({"type": "l2Book" | "trades", "coin": ...} | {"type": "userFills", "user": ...}, cb)``).

The WebSocket is a minimal RFC 6455 server on the standard library (text frames, ping/pong, close): it sends
``"Websocket connection established."`` on connect, a ``subscriptionResponse`` per subscription, the current
book on an ``l2Book`` subscription, a snapshot (``isSnapshot: true``) on a ``userFills`` one, then every update
as it happens; ``{"method": "ping"}`` is answered with ``{"channel": "pong"}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import select
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hyperliquid.websocket_manager import subscription_to_identifier, ws_msg_to_identifier

from .._validate import check_int, check_real
from .engine import LocalExchange, LocalExchangeError

#: Only loopback: the local exchange has no authentication beyond signatures and holds no real funds.
HOST = "127.0.0.1"
#: RFC 6455 handshake constant.
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_TEXT, _OP_CLOSE, _OP_PING, _OP_PONG = 0x1, 0x8, 0x9, 0xA


class _Handler(BaseHTTPRequestHandler):
    exchange: LocalExchange  # set on the per-server subclass
    stop: threading.Event
    # unbuffered reads: after a WebSocket upgrade the socket is read directly, so nothing may sit in a buffer
    rbufsize = 0
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed
        # ACK stall every keep-alive response by ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request logs would drown the terminal (and tests)."""

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if content_type == "application/json" else str(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # the client gave up waiting (its timeout): the request was still carried out, as on the exchange
            self.close_connection = True

    def _read_body(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self.rfile.read(n - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _maybe_delay(self) -> None:
        f = self.exchange.faults
        if f.http_delay_s and f.http_delay_frac:
            with self.exchange.lock:
                hit = self.exchange.fault_rng.random() < f.http_delay_frac
            if hit:  # on the exchange's clock (a virtual one in tests moves only with the market)
                until_ms = self.exchange.now_ms() + 1000 * f.http_delay_s
                while self.exchange.now_ms() < until_ms and not self.stop.wait(0.002):
                    pass

    def do_POST(self) -> None:
        if self.stop.is_set():  # closed: as from a killed process, the connection drops with no answer
            self.close_connection = True
            return
        self._maybe_delay()
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self._read_body(n) or b"null")
        except json.JSONDecodeError:
            body = None
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

    def do_GET(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key")
        if self.path != "/ws" or not key or self.headers.get("Upgrade", "").lower() != "websocket":
            self._send(404, {"code": 404, "msg": f"no endpoint GET {self.path}", "data": None})
            return
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        _WsConnection(self.connection, self.exchange, self.stop).run()


class _WsConnection:
    """One WebSocket client: its subscriptions, an outbox fed by the exchange's listeners, and the frame loop."""

    def __init__(self, sock: socket.socket, exchange: LocalExchange, stop: threading.Event) -> None:
        self.sock, self.exchange, self.stop = sock, exchange, stop
        self.subs: set[str] = set()
        self.outbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        # a message queued wakes the frame loop at once (no polling delay between the market and the client)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def _queue(self, text: str) -> None:
        self.outbox.put(text)
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (the loop is behind and will drain anyway) or closed
            pass

    def listener(self, msg: dict[str, Any]) -> None:
        if ws_msg_to_identifier(msg) in self.subs:  # type: ignore[arg-type]
            self._queue(json.dumps(msg))

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _run(self) -> None:
        self.sock.settimeout(5.0)
        self._send(_OP_TEXT, b"Websocket connection established.")
        with self.exchange.lock:
            self.exchange.listeners.append(self.listener)
        drop_after_ms = self.exchange.faults.ws_drop_after_s
        # the drop fault runs on the exchange's clock (a virtual one in tests steps it with the market)
        drop_at_ms = None if drop_after_ms is None else self.exchange.now_ms() + 1000 * drop_after_ms
        try:
            while not self.stop.is_set():
                if drop_at_ms is not None and self.exchange.now_ms() >= drop_at_ms:
                    self.sock.shutdown(socket.SHUT_RDWR)  # injected fault: the connection just drops
                    return
                ready, _, _ = select.select([self.sock, self._wake_r], [], [], 0.02)
                if self._wake_r in ready:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
                if self.sock in ready:
                    frame = self._recv_frame()
                    if frame is None:
                        return
                    op, payload = frame
                    if op == _OP_CLOSE:
                        self._send(_OP_CLOSE, payload[:2])
                        return
                    if op == _OP_PING:
                        self._send(_OP_PONG, payload)
                    elif op == _OP_TEXT:
                        self._on_text(payload.decode("utf-8", "replace"))
                while True:
                    try:
                        out = self.outbox.get_nowait()
                    except queue.Empty:
                        break
                    self._send(_OP_TEXT, out.encode())
        except (OSError, ValueError):
            return
        finally:
            with self.exchange.lock:
                if self.listener in self.exchange.listeners:
                    self.exchange.listeners.remove(self.listener)

    def _on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            self._queue(json.dumps({"channel": "error", "data": f"Invalid JSON: {text[:100]}"}))
            return
        method = msg.get("method") if isinstance(msg, dict) else None
        if method == "ping":
            self._queue(json.dumps({"channel": "pong"}))
            return
        sub = msg.get("subscription") if isinstance(msg, dict) else None
        kind = sub.get("type") if isinstance(sub, dict) else None
        if method not in ("subscribe", "unsubscribe") or kind not in ("l2Book", "trades", "userFills"):
            self._queue(json.dumps({"channel": "error", "data": f"Unsupported message: {text[:100]}"}))
            return
        ident = subscription_to_identifier(sub)  # type: ignore[arg-type]
        if method == "unsubscribe":
            self.subs.discard(ident)  # type: ignore[arg-type]
            return
        with self.exchange.lock:
            self.subs.add(ident)  # type: ignore[arg-type]
            self._queue(json.dumps({"channel": "subscriptionResponse", "data": msg}))
            if kind == "l2Book":
                book = self.exchange.info({"type": "l2Book", "coin": sub["coin"]})
                self._queue(json.dumps({"channel": "l2Book", "data": book}))
            elif kind == "userFills":
                user = str(sub["user"]).lower()
                fills = self.exchange.account(user).fills
                data = {"user": user, "isSnapshot": True, "fills": list(fills)}
                self._queue(json.dumps({"channel": "userFills", "data": data}))

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ValueError("connection closed")
            buf += chunk
        return buf

    def _recv_frame(self) -> tuple[int, bytes] | None:
        try:
            b0, b1 = self._recv_exact(2)
        except ValueError:
            return None
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._recv_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._recv_exact(8))
        mask = self._recv_exact(4) if b1 & 0x80 else b"\0\0\0\0"
        data = self._recv_exact(n)
        return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))

    def _send(self, op: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | op, n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | op, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | op, 127, n)
        self.sock.sendall(head + payload)


class LocalServer:
    """The local exchange served on ``http://127.0.0.1:<port>`` (WebSocket at ``ws://127.0.0.1:<port>/ws``).

    Parameters
    ----------
    exchange : the state machine to serve.
    port : TCP port (0 = any free port), in ``[0, 65535]``.
    tick_s : if given, a thread advances the market every ``tick_s`` seconds of wall time, ``> 0``.
    speed : market seconds per wall second for that thread, ``> 0``.
    """

    def __init__(self, exchange: LocalExchange, *, port: int = 0, tick_s: float | None = None, speed: float = 1.0):
        check_int("port", port, lo=0, hi=65535)
        self._stop = threading.Event()
        handler = type("Handler", (_Handler,), {"exchange": exchange, "stop": self._stop})
        self.exchange = exchange
        self.httpd = ThreadingHTTPServer((HOST, port), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
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
        """Stop serving, the WebSocket connections and the market thread."""
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
