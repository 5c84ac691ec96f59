"""A local Anthropic Messages API that plays a scripted conversation, for the real Claude Code CLI.

    with AnthropicServer([write_file("hello.txt", "hi\\n"), answer("Done.")]) as srv:
        env = {"ANTHROPIC_BASE_URL": srv.url, "ANTHROPIC_API_KEY": "test", ...}
        ...
        srv.requests          # every request: method, path, headers, parsed JSON body
        srv.conversation      # only the agent's own turns (requests that offer tools)

The agent's turn is chosen from the request itself, not from a counter: the number of assistant
messages already in `messages` is the index into the script, so a retried request gets the same
answer. Requests that offer no tools are the CLI's side calls (titles, summaries, probes); they get
a short text answer and do not advance the script. Once the script is used up every agent turn is
its last turn again, so a CLI that loops stops at `end_turn` anyway.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.model_api import Handler, Request, ScriptedServer

# Claude Code's file-writing tool, as its requests list it (2.1.197): {file_path, content}.
WRITE_TOOL = "Write"


@dataclass(frozen=True)
class Turn:
    """One assistant message: content blocks in the Messages API shape, and why it stopped."""

    content: tuple[dict[str, Any], ...]
    stop_reason: str = "end_turn"
    input_tokens: int = 1200
    output_tokens: int = 80


def answer(text: str) -> Turn:
    """A final text answer that ends the conversation."""
    return Turn(({"type": "text", "text": text},), "end_turn")


def tool_use(name: str, tool_input: dict[str, Any], text: str | None = None) -> Turn:
    """A call of one of the CLI's tools, optionally after a line of text."""
    blocks: list[dict[str, Any]] = []
    if text:
        blocks.append({"type": "text", "text": text})
    blocks.append(
        {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:24]}",
            "name": name,
            "input": tool_input,
        }
    )
    return Turn(tuple(blocks), "tool_use")


def write_file(path: str, content: str) -> Turn:
    """Claude Code's Write tool on `path` (absolute, or relative to the CLI's working folder)."""
    return tool_use(WRITE_TOOL, {"file_path": path, "content": content}, text=f"I'll write {path}.")


@dataclass
class AnthropicServer(ScriptedServer):
    """The fake API; a context manager that serves on 127.0.0.1 on a free port."""

    name = "fake-anthropic"
    error_status: int | None = None  # answer every /v1/messages with this HTTP error instead

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def agent_turn(self, request: Request) -> bool:
        """Whether the request is the agent loop's own: a /v1/messages call offering tools."""
        return (
            request.method == "POST"
            and request.path.startswith("/v1/messages")
            and not request.path.startswith("/v1/messages/count_tokens")
            and isinstance(request.body, dict)
            and bool(request.body.get("tools"))
        )

    def _turn_for(self, body: dict[str, Any]) -> Turn:
        done = sum(1 for m in body.get("messages", ()) if m.get("role") == "assistant")
        return self._turn_after(done)


def _side_answer() -> Turn:
    # Side calls sometimes ask for JSON (e.g. a session title); a small JSON object reads as
    # text to the ones that want prose and parses for the ones that want JSON.
    return Turn(
        ({"type": "text", "text": '{"title": "Scripted task"}'},),
        "end_turn",
        input_tokens=50,
        output_tokens=10,
    )


def _message(turn: Turn, model: str) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(turn.content),
        "stop_reason": turn.stop_reason,
        "stop_sequence": None,
        "usage": _usage(turn),
    }


def _usage(turn: Turn) -> dict[str, Any]:
    return {
        "input_tokens": turn.input_tokens,
        "output_tokens": turn.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }


def _events(turn: Turn, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The SSE events of one streamed message, as the Messages API sends them."""
    start = _message(turn, model)
    start.update(content=[], stop_reason=None)
    start["usage"] = dict(_usage(turn), output_tokens=1)
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(turn.content):
        if block["type"] == "text":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            text = block["text"]
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
        elif block["type"] == "tool_use":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": block["id"],
                        "name": block["name"],
                        "input": {},
                    },
                },
            )
            raw = json.dumps(block["input"])
            for piece in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
        else:
            raise ValueError(f"unsupported content block type {block['type']!r}")
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": turn.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": turn.output_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _handler_for(fake_api: AnthropicServer) -> type[BaseHTTPRequestHandler]:
    class FakeHandler(Handler):
        fake = fake_api

        def _headers(self) -> dict[str, str]:
            return {"request-id": f"req_{uuid.uuid4().hex[:24]}"}

        def _not_found(self, request: Request) -> None:
            self._unknown(
                request,
                {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": f"no route {request.path}"},
                },
            )

        def do_HEAD(self) -> None:
            self._record(None)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            request = self._record(None)
            path = self.path.split("?", 1)[0]
            if path in ("/", "/health", "/v1"):
                self._json(HTTPStatus.OK, {"ok": True})
            elif path == "/v1/models":
                self._json(
                    HTTPStatus.OK,
                    {"data": [], "has_more": False, "first_id": None, "last_id": None},
                )
            else:
                self._not_found(request)

        def do_POST(self) -> None:
            body = self._read_body()
            request = self._record(body)
            path = self.path.split("?", 1)[0]
            if path == "/v1/messages/count_tokens":
                self._json(HTTPStatus.OK, {"input_tokens": max(1, len(request.text) // 4)})
                return
            if path != "/v1/messages" or not isinstance(body, dict):
                self._not_found(request)
                return
            if fake_api.error_status is not None:
                self._json(
                    fake_api.error_status,
                    {
                        "type": "error",
                        "error": {"type": "api_error", "message": "scripted failure"},
                    },
                )
                return
            turn = fake_api._turn_for(body) if fake_api.agent_turn(request) else _side_answer()
            model = str(body.get("model") or "claude-sonnet-4-5")
            if body.get("stream"):
                self._stream(turn, model)
            else:
                self._json(HTTPStatus.OK, _message(turn, model))

        def _stream(self, turn: Turn, model: str) -> None:
            self._start_stream()
            for name, data in _events(turn, model):
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

    return FakeHandler
