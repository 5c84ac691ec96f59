"""What the local model API fakes (anthropic, openai, gemini) share: the requests they record,
a server on a free port of 127.0.0.1 run as a context manager, and a request handler's
plumbing (JSON in and out, an unknown route, the head of an event stream)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, TypeVar

S = TypeVar("S", bound="ScriptedServer")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None

    @property
    def text(self) -> str:
        """The whole body as one string, for `in` checks (system prompt, messages, tools)."""
        return json.dumps(self.body, ensure_ascii=False)


@dataclass
class ScriptedServer:
    """Serves `handler()` on 127.0.0.1 on a free port while started, and records every
    request. A subclass is a dataclass too; it names its thread (`name`), its handler and
    the requests that are the agent loop's own (`agent_turn`)."""

    name: ClassVar[str]  # the thread's name, and the prefix of what it logs
    script: Sequence[Any]
    requests: list[Request] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    log_unknown: bool = True

    def __post_init__(self) -> None:
        if not self.script:
            raise ValueError("the script needs at least one turn")
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def agent_turn(self, request: Request) -> bool:
        raise NotImplementedError

    @property
    def conversation(self) -> list[Request]:
        """The requests of the agent loop itself (those `agent_turn` accepts), in order."""
        with self._lock:
            return [r for r in self.requests if self.agent_turn(r)]

    def _turn_after(self, done: int) -> Any:
        """The script's turn once the model has answered `done` times (its last one after
        the script ran out)."""
        return self.script[min(done, len(self.script) - 1)]

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self: S) -> S:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class Handler(BaseHTTPRequestHandler):
    """A fake's handler; a subclass sets `fake` and answers the routes it knows."""

    protocol_version = "HTTP/1.1"
    fake: ClassVar[ScriptedServer]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the requests are recorded; stderr stays quiet

    def _headers(self) -> dict[str, str]:
        """Headers every answer carries, besides the content's."""
        return {}

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _record(self, body: Any) -> Request:
        request = Request(self.command, self.path, dict(self.headers.items()), body)
        self.fake._record(request)
        return request

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in self._headers().items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _unknown(self, request: Request, error: Any) -> None:
        """404 with `error`, the API's own shape of one."""
        self.fake.unknown.append(f"{request.method} {request.path}")
        if self.fake.log_unknown:
            print(f"{self.fake.name}: unknown {request.method} {request.path}", file=sys.stderr)
        self._json(HTTPStatus.NOT_FOUND, error)

    def _start_stream(self) -> None:
        """The head of a server-sent event stream; the connection closes after it."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for name, value in self._headers().items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
