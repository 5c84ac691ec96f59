"""A local OpenAI Responses API that plays a scripted conversation, for the real Codex CLI.

    with OpenAIServer([run_command("printf hi > hello.txt"), answer("Done.")]) as srv:
        srv.write_codex_config(codex_home)   # points codex at srv.url with a key in FAKE_KEY
        ...
        srv.requests          # every request: method, path, headers, parsed JSON body
        srv.conversation      # only the agent's own turns (POST /v1/responses)

Codex ignores `OPENAI_BASE_URL`; it reaches another endpoint through a `model_provider` in
`$CODEX_HOME/config.toml` with `wire_api = "responses"`, and then streams `POST
<base_url>/responses`. The agent's turn is chosen from the request itself, not from a counter:
the number of model outputs already in `input` (assistant messages and function calls) is the
index into the script, so a retried request gets the same answer, and only a conversation that
carries the earlier turns reaches the later ones. Once the script is used up every turn is its
last turn again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from fakes.model_api import Handler, Request, ScriptedServer

KEY_VARIABLE = "FAKE_OPENAI_KEY"
# The tool Codex 0.171.0 offers for shell commands when it knows nothing of the model:
# {"cmd": "..."}; it writes files through it.
SHELL_TOOL = "exec_command"


@dataclass(frozen=True)
class Turn:
    """One model response: output items in the Responses API shape."""

    output: tuple[dict[str, Any], ...]
    input_tokens: int = 1500
    output_tokens: int = 60


def answer(text: str) -> Turn:
    """A final assistant message: the turn ends."""
    return Turn(
        (
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            },
        )
    )


def run_command(cmd: str) -> Turn:
    """A call of Codex's shell tool; Codex runs it and asks again with its output."""
    return Turn(
        (
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:24]}",
                "call_id": f"call_{uuid.uuid4().hex[:24]}",
                "name": SHELL_TOOL,
                "arguments": json.dumps({"cmd": cmd}),
                "status": "completed",
            },
        )
    )


@dataclass
class OpenAIServer(ScriptedServer):
    """The fake API; a context manager that serves on 127.0.0.1 on a free port."""

    name = "fake-openai"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def agent_turn(self, request: Request) -> bool:
        """Whether the request is the agent loop's own: POST /v1/responses."""
        return (
            request.method == "POST"
            and request.path.split("?", 1)[0] == "/v1/responses"
            and isinstance(request.body, dict)
        )

    def write_codex_config(self, codex_home: Path, model: str = "gpt-test") -> None:
        """A config.toml that sends Codex here, its key read from `KEY_VARIABLE`."""
        codex_home.mkdir(parents=True, exist_ok=True)
        (codex_home / "config.toml").write_text(
            f'model = "{model}"\n'
            'model_provider = "fake"\n'
            "\n"
            "[model_providers.fake]\n"
            'name = "fake"\n'
            f'base_url = "{self.url}/v1"\n'
            'wire_api = "responses"\n'
            f'env_key = "{KEY_VARIABLE}"\n'
            "request_max_retries = 0\n"
            "stream_max_retries = 0\n",
            encoding="utf-8",
        )

    def _turn_for(self, body: dict[str, Any]) -> Turn:
        done = sum(1 for item in body.get("input", ()) if _is_model_output(item))
        return self._turn_after(done)


def _is_model_output(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if item.get("type") == "function_call":
        return True
    return item.get("type") == "message" and item.get("role") == "assistant"


def _usage(turn: Turn) -> dict[str, Any]:
    return {
        "input_tokens": turn.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": turn.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": turn.input_tokens + turn.output_tokens,
    }


def _events(turn: Turn, model: str) -> Iterator[dict[str, Any]]:
    """The SSE events of one streamed response, as the Responses API sends them."""
    response = {
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "model": model,
        "status": "in_progress",
        "output": [],
    }
    yield {"type": "response.created", "response": response}
    for index, item in enumerate(turn.output):
        yield {"type": "response.output_item.added", "output_index": index, "item": item}
        if item["type"] == "message":
            text = item["content"][0]["text"]
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                yield {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "delta": piece,
                }
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    done = dict(response, status="completed", output=list(turn.output), usage=_usage(turn))
    yield {"type": "response.completed", "response": done}


def _handler_for(fake_api: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class FakeHandler(Handler):
        fake = fake_api

        def _not_found(self, request: Request) -> None:
            self._unknown(
                request,
                {"error": {"type": "not_found", "message": f"no route {request.path}"}},
            )

        def do_GET(self) -> None:
            request = self._record(None)
            if self.path.split("?", 1)[0] == "/v1/models":
                self._json(HTTPStatus.OK, {"object": "list", "data": []})
            else:
                self._not_found(request)

        def do_POST(self) -> None:
            request = self._record(self._read_body())
            if not fake_api.agent_turn(request):
                self._not_found(request)
                return
            turn = fake_api._turn_for(request.body)
            self._start_stream()
            for event in _events(turn, str(request.body.get("model") or "gpt-test")):
                data = json.dumps(event)
                self.wfile.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
                self.wfile.flush()

    return FakeHandler
