"""A local Gemini API that plays a scripted conversation, for the real Gemini CLI.

    with GeminiServer([write_file("hello.txt", "hi\\n"), answer("Done.")]) as srv:
        srv.write_gemini_settings(gemini_home)   # API-key login, so the CLI takes our URL
        env: GOOGLE_GEMINI_BASE_URL=srv.url, GEMINI_API_KEY=anything
        ...
        srv.requests          # every request: method, path, headers, parsed JSON body
        srv.conversation      # only the agent's own turns (POST ...:streamGenerateContent)

Gemini CLI 0.61.0 with the API-key login and `GOOGLE_GEMINI_BASE_URL` streams `POST
/v1beta/models/<model>:streamGenerateContent?alt=sse`. The agent's turn is chosen from the
request itself, not from a counter: the number of model turns already in `contents` is the index
into the script, so a retried request gets the same answer, and only a conversation that carries
the earlier turns reaches the later ones. Once the script is used up every turn is its last
turn again.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

KEY_VARIABLE = "GEMINI_API_KEY"
URL_VARIABLE = "GOOGLE_GEMINI_BASE_URL"
# Gemini CLI 0.61.0's file-writing tool: {"file_path": ..., "content": ...}; offered headless
# with `--approval-mode auto_edit`.
WRITE_TOOL = "write_file"


@dataclass(frozen=True)
class Turn:
    """One model response: the `parts` of a candidate's content."""

    parts: tuple[dict[str, Any], ...]
    input_tokens: int = 1400
    output_tokens: int = 50


def answer(text: str) -> Turn:
    """A final text: the turn ends."""
    return Turn(({"text": text},))


def write_file(path: str, content: str) -> Turn:
    """A call of the CLI's write_file tool (relative to the working folder); the CLI writes it
    and asks again with the result."""
    return Turn(
        ({"functionCall": {"name": WRITE_TOOL, "args": {"file_path": path, "content": content}}},)
    )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None

    @property
    def text(self) -> str:
        """The whole body as one string, for `in` checks."""
        return json.dumps(self.body, ensure_ascii=False)


@dataclass
class GeminiServer:
    """The fake API; a context manager that serves on 127.0.0.1 on a free port."""

    script: Sequence[Turn]
    requests: list[Request] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    log_unknown: bool = True

    def __post_init__(self) -> None:
        if not self.script:
            raise ValueError("the script needs at least one turn")
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def conversation(self) -> list[Request]:
        """Requests of the agent loop itself: POST ...:streamGenerateContent."""
        with self._lock:
            return [r for r in self.requests if _is_agent_turn(r)]

    @staticmethod
    def write_gemini_settings(gemini_home: Path) -> None:
        """A settings.json selecting the API-key login, without which the CLI ignores
        `GOOGLE_GEMINI_BASE_URL`."""
        gemini_home.mkdir(parents=True, exist_ok=True)
        settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
        (gemini_home / "settings.json").write_text(json.dumps(settings), encoding="utf-8")

    def start(self) -> GeminiServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-gemini", daemon=True
        )
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

    def __enter__(self) -> GeminiServer:
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

    def _turn_for(self, body: dict[str, Any]) -> Turn:
        done = sum(1 for item in body.get("contents", ()) if _is_model_turn(item))
        return self.script[min(done, len(self.script) - 1)]


def _is_model_turn(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "model"


def _is_agent_turn(request: Request) -> bool:
    return (
        request.method == "POST"
        and request.path.split("?", 1)[0].endswith(":streamGenerateContent")
        and isinstance(request.body, dict)
    )


def _chunk(turn: Turn, model: str) -> dict[str, Any]:
    """The one SSE chunk of a streamed response: the whole turn, finished."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": list(turn.parts)},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": turn.input_tokens,
            "candidatesTokenCount": turn.output_tokens,
            "totalTokenCount": turn.input_tokens + turn.output_tokens,
        },
        "modelVersion": model,
    }


def _handler_for(fake: GeminiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the requests are recorded; stderr stays quiet

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
            fake._record(request)
            return request

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _unknown(self, request: Request) -> None:
            fake.unknown.append(f"{request.method} {request.path}")
            if fake.log_unknown:
                print(f"fake-gemini: unknown {request.method} {request.path}", file=sys.stderr)
            self._json(
                HTTPStatus.NOT_FOUND,
                {
                    "error": {
                        "code": 404,
                        "status": "NOT_FOUND",
                        "message": f"no route {request.path}",
                    }
                },
            )

        def do_GET(self) -> None:
            self._unknown(self._record(None))

        def do_POST(self) -> None:
            request = self._record(self._read_body())
            if not _is_agent_turn(request):
                self._unknown(request)
                return
            model = request.path.split("?", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
            turn = fake._turn_for(request.body)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            data = json.dumps(_chunk(turn, model))
            self.wfile.write(f"data: {data}\r\n\r\n".encode())
            self.wfile.flush()
            self.close_connection = True

    return Handler
