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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from fakes.model_api import Handler, Request, ScriptedServer

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


@dataclass
class GeminiServer(ScriptedServer):
    """The fake API; a context manager that serves on 127.0.0.1 on a free port."""

    name = "fake-gemini"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def agent_turn(self, request: Request) -> bool:
        """Whether the request is the agent loop's own: POST ...:streamGenerateContent."""
        return (
            request.method == "POST"
            and request.path.split("?", 1)[0].endswith(":streamGenerateContent")
            and isinstance(request.body, dict)
        )

    @staticmethod
    def write_gemini_settings(gemini_home: Path) -> None:
        """A settings.json selecting the API-key login, without which the CLI ignores
        `GOOGLE_GEMINI_BASE_URL`."""
        gemini_home.mkdir(parents=True, exist_ok=True)
        settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
        (gemini_home / "settings.json").write_text(json.dumps(settings), encoding="utf-8")

    def _turn_for(self, body: dict[str, Any]) -> Turn:
        done = sum(1 for item in body.get("contents", ()) if _is_model_turn(item))
        return self._turn_after(done)


def _is_model_turn(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "model"


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


def _handler_for(fake_api: GeminiServer) -> type[BaseHTTPRequestHandler]:
    class FakeHandler(Handler):
        fake = fake_api

        def _not_found(self, request: Request) -> None:
            self._unknown(
                request,
                {
                    "error": {
                        "code": 404,
                        "status": "NOT_FOUND",
                        "message": f"no route {request.path}",
                    }
                },
            )

        def do_GET(self) -> None:
            self._not_found(self._record(None))

        def do_POST(self) -> None:
            request = self._record(self._read_body())
            if not fake_api.agent_turn(request):
                self._not_found(request)
                return
            model = request.path.split("?", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
            turn = fake_api._turn_for(request.body)
            self._start_stream()
            data = json.dumps(_chunk(turn, model))
            self.wfile.write(f"data: {data}\r\n\r\n".encode())
            self.wfile.flush()

    return FakeHandler
