"""Agent presets: the command lines they build, and how they read what the real CLIs print.

The outputs below were captured from the real CLIs (Claude Code 2.1.197, Codex 0.171.0, Gemini
CLI 0.61.0, aider 0.86.2) run offline against local fake APIs; docs/agent-clis.md tells how.
They are the text of the agent's log: stdout and stderr together, as `run_logged` writes it.
The end-to-end tests at the bottom run the real `claude` binary against tests/fakes/anthropic.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from fakes.anthropic import AnthropicServer, answer, write_file
from testing import claude_binary, git, make_repo
from wtrun import agents, proc, scopes
from wtrun.agents.base import AgentRun
from wtrun.errors import WtrunError
from wtrun.plan import AgentSpec, Plan, Task

# ---------------------------------------------------------------- helpers


def make_run(
    preset: str,
    tmp_path: Path,
    *,
    model: str | None = "some-model",
    args: tuple[str, ...] = (),
    budget: float | None = None,
    timeout: float = 45 * 60,
    command: tuple[str, ...] | None = None,
    env: Mapping[str, str] | None = None,
    prompt: str = "Fix the session timeout.",
) -> AgentRun:
    spec = AgentSpec(
        preset=preset, model=model, args=args, timeout_s=timeout, budget_usd=budget, command=command
    )
    task = Task(
        id="fix-987",
        title="Auth timeout",
        prompt=prompt,
        scope=("src/auth/**", "tests/auth/**"),
        agent=spec,
    )
    plan = Plan(
        path=tmp_path / "plans" / "sprint.yaml", name="sprint-12", base="main", tasks=(task,)
    )
    worktree = tmp_path / ".claude" / "worktrees" / task.id
    instructions = worktree / agents.get(preset).instructions_file
    return AgentRun(
        plan=plan,
        task=task,
        prompt=prompt,
        worktree=worktree,
        instructions=instructions,
        env=dict(env or {}),
    )


# ---------------------------------------------------------------- registry


def test_registry_names_every_preset() -> None:
    assert sorted(agents.PRESETS) == ["aider", "claude", "codex", "command", "gemini"]
    for name, preset in agents.PRESETS.items():
        assert agents.get(name) is preset
        assert preset.name == name
    with pytest.raises(KeyError):
        agents.get("cursor")


def test_instructions_files() -> None:
    files = {name: p.instructions_file for name, p in agents.PRESETS.items()}
    assert files == {
        "claude": "CLAUDE.local.md",
        "codex": "AGENTS.override.md",
        "gemini": "GEMINI.md",
        "aider": ".wtrun/instructions.md",
        "command": "AGENTS.md",
    }


@pytest.mark.parametrize(
    ("preset", "path"),
    [
        ("claude", ".claude/settings.local.json"),
        ("aider", ".aider.chat.history.md"),
        ("aider", ".aider.input.history"),
        ("aider", ".aider.tags.cache.v4/cache.db"),
    ],
)
def test_owned_paths_match_the_files_the_cli_writes(preset: str, path: str) -> None:
    assert any(scopes.matches(p, path) for p in agents.get(preset).owned_paths)


@pytest.mark.parametrize(
    "path",
    [
        ".claude/settings.json",
        "CLAUDE.md",
        ".aider.conf.yml",
        ".aiderignore",
        "src/.aider.chat.history.md",
    ],
)
def test_owned_paths_leave_the_projects_own_files_alone(path: str) -> None:
    for preset in agents.PRESETS.values():
        assert not any(scopes.matches(p, path) for p in preset.owned_paths), preset.name


# ---------------------------------------------------------------- claude

# One line each, on stdout, as `claude -p --output-format json` printed them.
CLAUDE_SUCCESS = (
    '{"type":"result","subtype":"success","is_error":false,"api_error_status":null,'
    '"duration_ms":434,"duration_api_ms":89,"ttft_ms":324,"ttft_stream_ms":322,'
    '"time_to_request_ms":302,"num_turns":2,"result":"Done: wrote hello.txt.",'
    '"stop_reason":"end_turn","session_id":"4d4f105e-60f1-4841-93df-d9baa1f15319",'
    '"total_cost_usd":0.009600000000000001,"usage":{"input_tokens":2400,'
    '"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":160,'
    '"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},'
    '"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,'
    '"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard"},'
    '"modelUsage":{"claude-sonnet-5":{"inputTokens":2400,"outputTokens":160,'
    '"cacheReadInputTokens":0,"cacheCreationInputTokens":0,"webSearchRequests":0,'
    '"costUSD":0.009600000000000001,"contextWindow":200000,"maxOutputTokens":64000}},'
    '"permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off",'
    '"uuid":"e73c1b36-820b-4ef4-8452-4b1770e2d5ee"}\n'
)
CLAUDE_API_ERROR = (  # the API answered 500: subtype still says "success"
    '{"type":"result","subtype":"success","is_error":true,"api_error_status":500,'
    '"duration_ms":877,"duration_api_ms":0,"num_turns":1,"result":"API Error: 500 scripted '
    "failure. This is a server-side issue, usually temporary — try again in a moment. If it "
    'persists, check your inference gateway (127.0.0.1:45763).","stop_reason":"stop_sequence",'
    '"session_id":"2580094f-6110-4122-bb2f-49eb995a4fd5","total_cost_usd":0,"usage":'
    '{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
    '"output_tokens":0},"modelUsage":{},"permission_denials":[],"terminal_reason":"completed",'
    '"fast_mode_state":"off","uuid":"3cb9ff58-e0c4-4f4b-af39-d2f48a8b71a8"}\n'
)
CLAUDE_MAX_TURNS = (
    '{"type":"result","subtype":"error_max_turns","duration_ms":332,"duration_api_ms":82,'
    '"is_error":true,"num_turns":2,"stop_reason":"tool_use",'
    '"session_id":"82e90a23-054a-47f1-892a-8fb185405996","total_cost_usd":0.0048000000000000004,'
    '"usage":{"input_tokens":1200,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
    '"output_tokens":80},"modelUsage":{"claude-sonnet-5":{"inputTokens":1200,'
    '"outputTokens":80,"costUSD":0.0048000000000000004}},"permission_denials":[],'
    '"terminal_reason":"max_turns","fast_mode_state":"off",'
    '"uuid":"c271a319-0de4-41ef-bdc5-4b208f912bb7",'
    '"errors":["Reached maximum number of turns (1)"]}\n'
)
CLAUDE_MAX_BUDGET = (
    '{"type":"result","subtype":"error_max_budget_usd","duration_ms":306,"duration_api_ms":0,'
    '"is_error":true,"num_turns":1,"stop_reason":"tool_use",'
    '"session_id":"c5d56e4e-b3d1-40d5-9bd8-fc52c87d3f3c","total_cost_usd":0.0048000000000000004,'
    '"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
    '"output_tokens":0},"modelUsage":{"claude-sonnet-5":{"inputTokens":1200,'
    '"outputTokens":80,"costUSD":0.0048000000000000004}},"permission_denials":[],'
    '"fast_mode_state":"off","uuid":"e97914a4-7e42-4811-af76-bf10c5bb1f80",'
    '"errors":["Reached maximum budget ($0.001)"]}\n'
)


def test_claude_argv(tmp_path: Path) -> None:
    run = make_run(
        "claude",
        tmp_path,
        model="sonnet",
        budget=5,
        args=("--max-turns", "40", "--allowed-tools", "Edit"),
    )
    assert agents.get("claude").argv(run) == [
        "claude",
        "-p",
        "--output-format",
        "json",
        "--permission-mode",
        "acceptEdits",
        "--model",
        "sonnet",
        "--max-budget-usd",
        "5",
        "--max-turns",
        "40",
        "--allowed-tools",
        "Edit",
        "--",
        "Fix the session timeout.",
    ]


def test_claude_argv_without_model_or_budget(tmp_path: Path) -> None:
    run = make_run("claude", tmp_path, model=None, budget=0.25, prompt="-v is broken")
    assert agents.get("claude").argv(run) == [
        "claude",
        "-p",
        "--output-format",
        "json",
        "--permission-mode",
        "acceptEdits",
        "--max-budget-usd",
        "0.25",
        "--",
        "-v is broken",
    ]


def test_claude_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = agents.get("claude")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert preset.env(make_run("claude", tmp_path)) == {
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"
    }
    # the plan's own value wins
    run = make_run("claude", tmp_path, env={"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"})
    assert preset.env(run) == {}
    bypass = make_run("claude", tmp_path, args=("--dangerously-skip-permissions",))
    assert "IS_SANDBOX" not in preset.env(bypass)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert preset.env(bypass)["IS_SANDBOX"] == "1"
    mode = make_run("claude", tmp_path, args=("--permission-mode", "bypassPermissions"))
    assert preset.env(mode)["IS_SANDBOX"] == "1"
    assert "IS_SANDBOX" not in preset.env(make_run("claude", tmp_path))


def test_claude_state_follows_its_config_dir(tmp_path: Path) -> None:
    preset = agents.get("claude")
    home = {"HOME": str(tmp_path)}
    assert preset.state_dirs(home) == [tmp_path / ".claude"]
    assert preset.state_paths(home) == [
        tmp_path / ".claude",
        tmp_path / ".claude.json",
        tmp_path / ".local/state/claude",
    ]
    # Its sessions and its .claude.json both move into CLAUDE_CONFIG_DIR.
    moved = {**home, "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}
    assert preset.state_dirs(moved) == [tmp_path / "cfg"]
    assert preset.state_paths(moved) == [tmp_path / "cfg", tmp_path / ".local/state/claude"]


def test_claude_result_success(tmp_path: Path) -> None:
    run = make_run("claude", tmp_path)
    log = "some warning on stderr\n" + CLAUDE_SUCCESS
    result = agents.get("claude").result(0, log, run)
    assert result.ok and result.reason is None
    assert result.cost_usd == pytest.approx(0.0096)
    assert result.details["num_turns"] == 2
    assert result.details["session_id"] == "4d4f105e-60f1-4841-93df-d9baa1f15319"
    assert result.details["input_tokens"] == 2400
    assert result.details["output_tokens"] == 160
    assert result.details["result"] == "Done: wrote hello.txt."


def test_claude_result_is_error_even_when_subtype_says_success(tmp_path: Path) -> None:
    result = agents.get("claude").result(1, CLAUDE_API_ERROR, make_run("claude", tmp_path))
    assert not result.ok
    assert result.reason == (
        "claude reported an error: API Error: 500 scripted failure. This is a server-side "
        "issue, usually temporary — try again in a moment. If it persists, check your "
        "inference gateway (127.0.0.1:45763)."
    )
    assert result.cost_usd == 0
    assert result.details["api_error_status"] == 500


def test_claude_result_max_turns(tmp_path: Path) -> None:
    result = agents.get("claude").result(1, CLAUDE_MAX_TURNS, make_run("claude", tmp_path))
    assert not result.ok
    assert result.reason == (
        "claude reported an error: Reached maximum number of turns (1) (error_max_turns)"
    )
    assert result.cost_usd == pytest.approx(0.0048)


def test_claude_result_max_budget(tmp_path: Path) -> None:
    result = agents.get("claude").result(1, CLAUDE_MAX_BUDGET, make_run("claude", tmp_path))
    assert not result.ok
    assert result.reason == (
        "claude reported an error: Reached maximum budget ($0.001) (error_max_budget_usd)"
    )
    assert result.cost_usd == pytest.approx(0.0048)


def test_claude_result_takes_the_last_result_of_an_appended_log(tmp_path: Path) -> None:
    # a resumed run appends to the same log: the newest result counts
    log = CLAUDE_MAX_TURNS + "\n" + CLAUDE_SUCCESS
    assert agents.get("claude").result(0, log, make_run("claude", tmp_path)).ok


def test_claude_result_without_result_object(tmp_path: Path) -> None:
    log = (
        "--dangerously-skip-permissions cannot be used with root/sudo privileges for "
        "security reasons\n"
    )
    result = agents.get("claude").result(1, log, make_run("claude", tmp_path))
    assert not result.ok
    assert result.reason == (
        "claude printed no result (exit code 1): --dangerously-skip-permissions cannot be used "
        "with root/sudo privileges for security reasons"
    )
    assert result.cost_usd is None
    assert "root/sudo" in str(result.details["output_tail"])


def test_claude_result_exit_code_without_error(tmp_path: Path) -> None:
    result = agents.get("claude").result(2, CLAUDE_SUCCESS, make_run("claude", tmp_path))
    assert (result.ok, result.reason) == (False, "claude exited with code 2")


# ---------------------------------------------------------------- codex

CODEX_SUCCESS = """\
WARNING: proceeding, even though we could not create PATH aliases: Refusing to create helper \
binaries under temporary dir "/tmp" (codex_home: AbsolutePathBuf("/tmp/e2e/home/.codex"))
Reading additional input from stdin...
{"type":"thread.started","thread_id":"01a2182f-f679-7742-962e-1cce3c985fbc"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for \
`gpt-test` not found. Defaulting to fallback metadata; this can degrade performance and cause \
issues."}}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"/bin/bash \
-lc \\"printf 'hi from codex\\\\\\\\n' > hello.txt\\"","aggregated_output":"","exit_code":null,\
"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash \
-lc \\"printf 'hi from codex\\\\\\\\n' > hello.txt\\"","aggregated_output":"","exit_code":0,\
"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Done: wrote \
hello.txt."}}
{"type":"turn.completed","usage":{"input_tokens":3000,"cached_input_tokens":0,\
"cache_write_input_tokens":0,"output_tokens":120,"reasoning_output_tokens":0}}
"""

CODEX_FAILED = """\
Reading additional input from stdin...
{"type":"thread.started","thread_id":"01a21830-4999-7cb3-9d4c-4246d8ecd92f"}
{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 1/5 (We’re currently experiencing high demand, \
which may cause temporary errors.)"}
{"type":"error","message":"Reconnecting... 5/5 (We’re currently experiencing high demand, \
which may cause temporary errors.)"}
{"type":"error","message":"We’re currently experiencing high demand, which may cause \
temporary errors."}
{"type":"turn.failed","error":{"message":"We’re currently experiencing high demand, which \
may cause temporary errors."}}
"""


def test_codex_argv(tmp_path: Path) -> None:
    run = make_run("codex", tmp_path, model="gpt-5-codex", args=("--add-dir", "/tmp/x"), budget=5)
    assert agents.get("codex").argv(run) == [
        "codex",
        "exec",
        "--json",
        "-s",
        "workspace-write",
        "-m",
        "gpt-5-codex",
        "--add-dir",
        "/tmp/x",
        "--",
        "Fix the session timeout.",
    ]
    assert "-m" not in agents.get("codex").argv(make_run("codex", tmp_path, model=None))
    assert agents.get("codex").env(run) == {}


def test_codex_argv_resuming(tmp_path: Path) -> None:
    # `exec resume` refuses -s and --add-dir, and runs read-only without -s: exec's options,
    # the user's too, go before `resume`, where they apply to the resumed thread.
    run = make_run("codex", tmp_path, model="gpt-5-codex", args=("--add-dir", "/tmp/x"))
    resumed = replace(run, resume="01a2182f-f679-7742-962e-1cce3c985fbc")
    assert agents.get("codex").argv(resumed) == [
        "codex",
        "exec",
        "--json",
        "-s",
        "workspace-write",
        "-m",
        "gpt-5-codex",
        "--add-dir",
        "/tmp/x",
        "resume",
        "01a2182f-f679-7742-962e-1cce3c985fbc",
        "--",
        "Fix the session timeout.",
    ]


def test_codex_session_is_the_first_thread_reported(tmp_path: Path) -> None:
    codex = agents.get("codex")
    run = make_run("codex", tmp_path)
    details = codex.result(0, CODEX_SUCCESS, run).details
    assert codex.session(details) == "01a2182f-f679-7742-962e-1cce3c985fbc"
    # A line printed later that looks like another thread does not replace it.
    later = CODEX_SUCCESS + '{"type":"thread.started","thread_id":"--last"}\n'
    assert codex.session(codex.result(0, later, run).details) == (
        "01a2182f-f679-7742-962e-1cce3c985fbc"
    )
    # Only a UUID is resumed: anything else could read as an option.
    assert codex.session({"thread_id": "--last"}) is None
    assert codex.session({}) is None


def test_codex_result_success(tmp_path: Path) -> None:
    result = agents.get("codex").result(0, CODEX_SUCCESS, make_run("codex", tmp_path))
    assert result.ok and result.reason is None
    assert result.cost_usd is None  # codex reports tokens, not cost
    assert result.details == {
        "thread_id": "01a2182f-f679-7742-962e-1cce3c985fbc",
        "last_message": "Done: wrote hello.txt.",
        "input_tokens": 3000,
        "output_tokens": 120,
    }


def test_codex_result_turn_failed(tmp_path: Path) -> None:
    result = agents.get("codex").result(1, CODEX_FAILED, make_run("codex", tmp_path))
    assert not result.ok
    assert result.reason == (
        "codex: We’re currently experiencing high demand, which may cause temporary errors."
    )


def test_codex_result_reconnect_then_success(tmp_path: Path) -> None:
    retried = CODEX_SUCCESS.replace(
        '{"type":"turn.started"}\n',
        '{"type":"turn.started"}\n{"type":"error","message":"Reconnecting... 1/5 (stream '
        'disconnected before completion: error sending request)"}\n',
    )
    assert agents.get("codex").result(0, retried, make_run("codex", tmp_path)).ok


def test_codex_result_no_events(tmp_path: Path) -> None:
    result = agents.get("codex").result(
        0, "Reading additional input from stdin...\n", make_run("codex", tmp_path)
    )
    assert not result.ok
    assert result.reason == "codex printed no JSON events: Reading additional input from stdin..."
    crashed = agents.get("codex").result(
        2, "error: unexpected argument '--bogus' found\n", make_run("codex", tmp_path)
    )
    assert crashed.reason == "codex exited with code 2: error: unexpected argument '--bogus' found"


# ---------------------------------------------------------------- gemini

GEMINI_SUCCESS = """\
Warning: 256-color support not detected. Using a terminal with at least 256-color support is \
recommended for a better visual experience.
Ripgrep is not available. Falling back to GrepTool.
{
  "session_id": "29e9cc1b-5441-4cad-9d26-e59da5acd43b",
  "response": "Done: wrote hello.txt.",
  "stats": {
    "models": {
      "gemini-test": {
        "api": {
          "totalRequests": 2,
          "totalErrors": 0,
          "totalLatencyMs": 133,
          "errorsByType": {}
        },
        "tokens": {
          "input": 2800,
          "prompt": 2800,
          "candidates": 100,
          "total": 2900,
          "cached": 0,
          "thoughts": 0,
          "tool": 0
        },
        "roles": {
          "main": {
            "totalRequests": 2,
            "totalErrors": 0,
            "totalLatencyMs": 133,
            "tokens": {
              "input": 2800,
              "prompt": 2800,
              "candidates": 100,
              "total": 2900,
              "cached": 0,
              "thoughts": 0,
              "tool": 0
            }
          }
        }
      }
    },
    "tools": {
      "totalCalls": 1,
      "totalSuccess": 1,
      "totalFail": 0,
      "totalDurationMs": 24,
      "totalDecisions": {
        "accept": 1,
        "reject": 0,
        "modify": 0,
        "auto_accept": 0
      },
      "byName": {
        "write_file": {
          "count": 1,
          "success": 1,
          "fail": 0,
          "durationMs": 24,
          "decisions": {
            "accept": 1,
            "reject": 0,
            "modify": 0,
            "auto_accept": 0
          }
        }
      }
    },
    "files": {
      "totalLinesAdded": 1,
      "totalLinesRemoved": 0
    }
  }
}"""

GEMINI_API_ERROR = """\
Ripgrep is not available. Falling back to GrepTool.
Error when talking to Gemini API Full report available at: \
/tmp/gemini-client-error-Turn.run-sendMessageStream-2026-11-26T14-09-14-186Z.json _ApiError: \
{"error":{"code":400,"message":"scripted bad request","status":"INVALID_ARGUMENT"}}
    at throwErrorIfNotOK (file:///x/@google/gemini-cli/bundle/chunk-JDPZ4CE3.js:267833:24)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
    at async Turn.run (file:///x/@google/gemini-cli/bundle/chunk-JDPZ4CE3.js:333001:24) {
  status: 400
}
{
  "session_id": "ceb58451-181b-48b8-bce8-f5b8b4b1afe2",
  "error": {
    "type": "Error",
    "message": "{\\"error\\":{\\"code\\":400,\\"message\\":\\"scripted bad request\\",\
\\"status\\":\\"INVALID_ARGUMENT\\"}}",
    "code": 400
  }
}
"""

GEMINI_UNTRUSTED = (
    "Gemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`, "
    "set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, or trust this directory "
    "in interactive mode. For more details, see "
    "https://geminicli.com/docs/cli/trusted-folders/#headless-and-automated-environments\n"
)


def test_gemini_argv(tmp_path: Path) -> None:
    run = make_run(
        "gemini",
        tmp_path,
        model="gemini-2.5-pro",
        args=("--include-directories", "/tmp"),
        prompt="-x\nsecond line",
    )
    assert agents.get("gemini").argv(run) == [
        "gemini",
        "--prompt=-x\nsecond line",
        "-o",
        "json",
        "--skip-trust",
        "--approval-mode",
        "auto_edit",
        "-m",
        "gemini-2.5-pro",
        "--include-directories",
        "/tmp",
    ]
    assert agents.get("gemini").env(run) == {}


def test_gemini_argv_resuming(tmp_path: Path) -> None:
    run = make_run("gemini", tmp_path, model="gemini-2.5-pro")
    resumed = replace(run, resume="29e9cc1b-5441-4cad-9d26-e59da5acd43b")
    assert agents.get("gemini").argv(resumed) == [
        "gemini",
        "--resume",
        "29e9cc1b-5441-4cad-9d26-e59da5acd43b",
        "--prompt=Fix the session timeout.",
        "-o",
        "json",
        "--skip-trust",
        "--approval-mode",
        "auto_edit",
        "-m",
        "gemini-2.5-pro",
    ]


def test_gemini_session_is_the_reported_session_id(tmp_path: Path) -> None:
    gemini = agents.get("gemini")
    details = gemini.result(0, GEMINI_SUCCESS, make_run("gemini", tmp_path)).details
    assert gemini.session(details) == "29e9cc1b-5441-4cad-9d26-e59da5acd43b"
    # Only a UUID is resumed: "latest", an index or an option would mean another session.
    for other in ("latest", "1", "--yolo", 7):
        assert gemini.session({"session_id": other}) is None
    assert gemini.session({}) is None


def test_gemini_result_success(tmp_path: Path) -> None:
    result = agents.get("gemini").result(0, GEMINI_SUCCESS, make_run("gemini", tmp_path))
    assert result.ok and result.cost_usd is None
    assert result.details["response"] == "Done: wrote hello.txt."
    assert result.details["input_tokens"] == 2800
    assert result.details["candidates_tokens"] == 100
    assert result.details["requests"] == 2
    assert result.details["tool_calls"] == 1


def test_gemini_result_api_error(tmp_path: Path) -> None:
    # it exits with the HTTP status modulo 256: 400 -> 144
    result = agents.get("gemini").result(144, GEMINI_API_ERROR, make_run("gemini", tmp_path))
    assert not result.ok
    assert result.reason == (
        "gemini reported an error (exit code 144): scripted bad request (400 INVALID_ARGUMENT)"
    )
    assert result.details["session_id"] == "ceb58451-181b-48b8-bce8-f5b8b4b1afe2"


def test_gemini_result_untrusted(tmp_path: Path) -> None:
    result = agents.get("gemini").result(55, GEMINI_UNTRUSTED, make_run("gemini", tmp_path))
    assert not result.ok
    assert str(result.reason).startswith(
        "gemini does not trust the worktree (exit code 55): Gemini CLI is not running in a "
        "trusted directory."
    )


def test_gemini_result_exit_0_without_json(tmp_path: Path) -> None:
    result = agents.get("gemini").result(0, "Done.\n", make_run("gemini", tmp_path))
    assert (result.ok, result.reason) == (False, "gemini printed no JSON result: Done.")


# ---------------------------------------------------------------- aider

AIDER_SUCCESS = """\
Warning: Input is not a terminal (fd=0).

HTTPSConnectionPool(host='raw.githubusercontent.com', port=443): Max retries exceeded with url: \
/BerriAI/litellm/main/model_prices_and_context_window.json (Caused by NameResolutionError(\
"HTTPSConnection(host='raw.githubusercontent.com', port=443): Failed to resolve \
'raw.githubusercontent.com' ([Errno -2] Name or service not known)"))
Aider v0.86.2
Model: openai/gpt-4o-mini with whole edit format
Git repo: ../../../.git/worktrees/t1 with 1 files
Repo-map: using 4096 tokens, auto refresh
Added .wtrun/instructions.md to the chat (read-only).

I'll create it.

hello.txt
```
hi from aider
```

Tokens: 902 sent, 16 received. Cost: $0.00014 message, $0.00014 session.

hello.txt
Applied edit to hello.txt
"""

# The endpoint was down; aider retried, gave up and exited 0. Its lines wrap at 80 columns.
AIDER_API_ERROR = """\
Warning: Input is not a terminal (fd=0).

Aider v0.86.2
Model: openai/gpt-4o-mini with whole edit format
Git repo: ../../../.git/worktrees/t1 with 1 files
Repo-map: using 4096 tokens, auto refresh
Added .wtrun/instructions.md to the chat (read-only).

litellm.InternalServerError: InternalServerError: OpenAIException - Connection\x20
error.
The API provider's servers are down or overloaded.
Retrying in 0.2 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection\x20
error.
The API provider's servers are down or overloaded.
Retrying in 32.0 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection\x20
error.
The API provider's servers are down or overloaded.

"""


def test_aider_argv(tmp_path: Path) -> None:
    run = make_run(
        "aider", tmp_path, model="openai/gpt-4o-mini", args=("--map-tokens", "0"), budget=5
    )
    assert agents.get("aider").argv(run) == [
        "aider",
        "--message=Fix the session timeout.",
        f"--read={run.instructions}",
        "--yes-always",
        "--model",
        "openai/gpt-4o-mini",
        "--no-auto-commits",
        "--no-gitignore",
        "--no-check-update",
        "--no-show-release-notes",
        "--no-show-model-warnings",
        "--no-analytics",
        "--no-pretty",
        "--map-tokens",
        "0",
    ]
    assert run.instructions == run.worktree / ".wtrun" / "instructions.md"
    assert agents.get("aider").env(run) == {}


def test_aider_result_success_with_cost(tmp_path: Path) -> None:
    result = agents.get("aider").result(0, AIDER_SUCCESS, make_run("aider", tmp_path))
    assert result.ok and result.reason is None
    assert result.cost_usd == pytest.approx(0.00014)
    assert result.details == {"messages": 1, "tokens_sent": 902, "tokens_received": 16}


def test_aider_result_api_error_with_exit_0(tmp_path: Path) -> None:
    result = agents.get("aider").result(0, AIDER_API_ERROR, make_run("aider", tmp_path))
    assert not result.ok
    assert result.reason == (
        "aider got an API error: litellm.InternalServerError: "
        "InternalServerError: OpenAIException - Connection error."
    )
    assert result.cost_usd is None


def test_aider_result_recovered_error_and_session_cost(tmp_path: Path) -> None:
    log = (
        "litellm.InternalServerError: InternalServerError: OpenAIException - scripted \n"
        "failure\nThe API provider's servers are down or overloaded.\nRetrying in 0.2 seconds...\n"
        "Tokens: 2.3k sent, 1.1k cache write, 5.6k cache hit, 300 received.\n"
        "Cost: $0.0042 message, $0.0042 session.\n"
        "Tokens: 12k sent, 1.2k received. Cost: $0.04 message, $0.05 \nsession.\n"
    )
    result = agents.get("aider").result(0, log, make_run("aider", tmp_path))
    assert result.ok
    assert result.cost_usd == pytest.approx(0.05)
    assert result.details == {"messages": 2, "tokens_sent": 14300, "tokens_received": 1500}


def test_aider_result_auth_error_not_retried(tmp_path: Path) -> None:
    log = (
        "litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API "
        "key\nprovided: test.\nThe API provider is not able to authenticate you. Check your "
        "API key.\n"
    )
    result = agents.get("aider").result(0, log, make_run("aider", tmp_path))
    assert result.reason == (
        "aider got an API error: litellm.AuthenticationError: "
        "AuthenticationError: OpenAIException - Incorrect API key provided: "
        "test."
    )


def test_aider_result_nonzero_exit(tmp_path: Path) -> None:
    result = agents.get("aider").result(
        1, "aider: error: unrecognized arguments: --bogus\n", make_run("aider", tmp_path)
    )
    assert result.reason == (
        "aider exited with code 1: aider: error: unrecognized arguments: --bogus"
    )


# ---------------------------------------------------------------- command


def test_command_argv_renders_each_item(tmp_path: Path) -> None:
    run = make_run(
        "command",
        tmp_path,
        command=(
            "my-agent",
            "--task",
            "{{ task.id }}",
            "--port={{ task.ports[0] }}",
            "{{ task.scope | join(',') }}",
            "{{ plan.name }}@{{ plan.base }}",
            "{{ task.branch }}",
            "{{ task.worktree }}",
            "{{ task.title }}: {{ task.prompt }}",
        ),
        args=("--verbose",),
        env={"WTRUN_PORTS": "3101,3102", "WTRUN_BRANCH": "worktree-fix-987"},
    )
    assert agents.get("command").argv(run) == [
        "my-agent",
        "--task",
        "fix-987",
        "--port=3101",
        "src/auth/**,tests/auth/**",
        "sprint-12@main",
        "worktree-fix-987",
        str(run.worktree),
        "Auth timeout: Fix the session timeout.",
        "--verbose",
    ]
    assert agents.get("command").env(run) == {"WTRUN_PROMPT": run.prompt}


def test_command_argv_unknown_variable(tmp_path: Path) -> None:
    run = make_run("command", tmp_path, command=("my-agent", "{{ task.idd }}"))
    with pytest.raises(WtrunError) as e:
        agents.get("command").argv(run)
    assert str(e.value) == (
        "agent.command item 2 of task \"fix-987\" ('{{ task.idd }}'): "
        'unknown variable "task.idd"; did you mean "task.id"?'
    )


def test_command_result(tmp_path: Path) -> None:
    preset = agents.get("command")
    run = make_run("command", tmp_path, command=("/opt/bin/my-agent",))
    assert preset.result(0, "done\n", run) == agents.AgentResult(True, None, None, {})
    failed = preset.result(3, "working\nboom: no such file\n", run)
    assert (failed.ok, failed.reason) == (False, "my-agent exited with code 3: boom: no such file")


@pytest.mark.parametrize(
    ("timeout", "shown"), [(45 * 60, "45m"), (7200, "2h"), (90, "1m30s"), (0.5, "0.5s")]
)
@pytest.mark.parametrize("name", sorted(agents.PRESETS))
def test_timeout_reason(tmp_path: Path, name: str, timeout: float, shown: str) -> None:
    run = make_run(name, tmp_path, timeout=timeout, command=("x",))
    result = agents.get(name).result(None, "partial output\n", run)
    assert (result.ok, result.reason) == (False, f"timed out after {shown}")


# ---------------------------------------------------------------- the real Claude Code CLI


INSTRUCTIONS = """\
## Commit conventions
- You may only change: hello.txt
- WTRUN-INSTRUCTIONS-7f3a: write plain ASCII.
"""


def _claude_worktree(tmp_path: Path, **spec: object) -> AgentRun:
    repo = make_repo(tmp_path, {"README.md": "# shop\n"}, remote=False)
    run = make_run("claude", repo, model="sonnet", timeout=120, prompt="Write hello.txt.", **spec)  # type: ignore[arg-type]
    git(repo, "worktree", "add", "-q", "-b", "worktree-fix-987", str(run.worktree), "main")
    run.instructions.write_text(INSTRUCTIONS)
    return run


def _run_claude(
    run: AgentRun, srv: AnthropicServer, log: Path, extra_env: Mapping[str, str] | None = None
) -> int | None:
    binary = claude_binary()
    preset = agents.get("claude")
    env = proc.clean_env(
        {
            "PATH": str(Path(binary).parent) + os.pathsep + os.environ["PATH"],
            "ANTHROPIC_BASE_URL": srv.url,
            "ANTHROPIC_API_KEY": "test",
            **run.env,
            **preset.env(run),
            **(extra_env or {}),
        }
    )
    for name in (
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CONFIG_DIR",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
    ):
        env.pop(name, None)
    assert env["HOME"] != str(Path("~root").expanduser()), "conftest must isolate HOME"
    outcome = proc.run_logged(
        preset.argv(run), cwd=run.worktree, env=env, log=log, timeout=run.task.agent.timeout_s
    )
    return outcome.returncode


def test_claude_cli_end_to_end(tmp_path: Path) -> None:
    claude_binary()
    run = _claude_worktree(tmp_path)
    target = run.worktree / "hello.txt"
    with AnthropicServer(
        [write_file(str(target), "hello from the fake model\n"), answer("Done: wrote hello.txt.")]
    ) as srv:
        log = tmp_path / "agent.log"
        returncode = _run_claude(run, srv, log)
    output = log.read_text()
    result = agents.get("claude").result(returncode, output, run)
    assert result.ok, f"{result.reason}\n{output}"
    assert returncode == 0
    assert target.read_text() == "hello from the fake model\n"
    assert result.cost_usd is not None and result.cost_usd > 0
    assert result.details["num_turns"] == 2
    assert result.details["result"] == "Done: wrote hello.txt."
    # the agent loop: the tool call, then the final answer
    assert len(srv.conversation) == 2
    first = srv.conversation[0].body
    assert any(tool["name"] == "Write" for tool in first["tools"])
    # CLAUDE.local.md reaches the model in the first user message, named as the user's
    # private project instructions; the system prompt does not carry it
    assert "WTRUN-INSTRUCTIONS-7f3a" in srv.conversation[0].text
    assert "WTRUN-INSTRUCTIONS-7f3a" not in str(first["system"])
    memory = str(first["messages"][0]["content"])
    assert f"Contents of {run.instructions}" in memory
    assert "WTRUN-INSTRUCTIONS-7f3a" in memory
    assert "Write hello.txt." in str(first["messages"])
    # nothing it left behind is outside the task's files and the agent's own
    status = subprocess.run(
        ["git", "status", "--porcelain", "-uall"],
        cwd=run.worktree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    preset = agents.get("claude")
    for line in status:
        path = line[3:]
        assert path in ("hello.txt", preset.instructions_file) or any(
            scopes.matches(p, path) for p in preset.owned_paths
        ), line


def test_claude_cli_max_turns_and_budget(tmp_path: Path) -> None:
    claude_binary()
    run = _claude_worktree(tmp_path, args=("--max-turns", "1"))
    script = [write_file(str(run.worktree / "hello.txt"), "hi\n"), answer("Done.")]
    with AnthropicServer(script) as srv:
        returncode = _run_claude(run, srv, tmp_path / "turns.log")
    result = agents.get("claude").result(returncode, (tmp_path / "turns.log").read_text(), run)
    assert (result.ok, result.reason) == (
        False,
        "claude reported an error: Reached maximum number of turns (1) (error_max_turns)",
    )
    assert result.cost_usd is not None and result.cost_usd > 0

    budget_run = make_run(
        "claude",
        tmp_path / "repo",
        model="sonnet",
        timeout=120,
        budget=0.001,
        prompt="Write hello.txt.",
    )
    with AnthropicServer(script) as srv:
        returncode = _run_claude(budget_run, srv, tmp_path / "budget.log")
    result = agents.get("claude").result(
        returncode, (tmp_path / "budget.log").read_text(), budget_run
    )
    assert (result.ok, result.reason) == (
        False,
        "claude reported an error: Reached maximum budget ($0.001) (error_max_budget_usd)",
    )


def test_claude_cli_api_error(tmp_path: Path) -> None:
    claude_binary()
    run = _claude_worktree(tmp_path)
    with AnthropicServer([answer("unused")], error_status=500) as srv:
        returncode = _run_claude(run, srv, tmp_path / "agent.log", {"CLAUDE_CODE_MAX_RETRIES": "0"})
    result = agents.get("claude").result(returncode, (tmp_path / "agent.log").read_text(), run)
    assert returncode == 1
    assert not result.ok
    assert str(result.reason).startswith(
        "claude reported an error: API Error: 500 scripted failure."
    )
    assert result.details["api_error_status"] == 500


def test_fake_anthropic_server_answers_without_the_cli() -> None:
    import json
    import urllib.error
    import urllib.request

    def post(url: str, body: dict[str, object]) -> tuple[str, str]:
        request = urllib.request.Request(
            url,
            json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["Content-Type"], response.read().decode()

    tools = [{"name": "Write", "input_schema": {"type": "object"}}]
    with AnthropicServer([write_file("/w/a.txt", "A"), answer("Done.")]) as srv:
        kind, text = post(
            srv.url + "/v1/messages",
            {"model": "claude-x", "tools": tools, "messages": [{"role": "user", "content": "go"}]},
        )
        message = json.loads(text)
        assert kind == "application/json"
        assert message["stop_reason"] == "tool_use"
        assert message["content"][-1]["input"] == {"file_path": "/w/a.txt", "content": "A"}
        assert message["usage"]["input_tokens"] > 0
        # streamed; the turn follows the assistant messages already in the conversation
        kind, text = post(
            srv.url + "/v1/messages?beta=true",
            {
                "model": "claude-x",
                "tools": tools,
                "stream": True,
                "messages": [
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": message["content"]},
                    {"role": "user", "content": "ok"},
                ],
            },
        )
        assert kind == "text/event-stream"
        events = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
        assert events == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert '"stop_reason": "end_turn"' in text
        # a side call (no tools) does not advance the script
        _, text = post(srv.url + "/v1/messages", {"model": "claude-x", "messages": []})
        assert json.loads(text)["stop_reason"] == "end_turn"
        _, text = post(srv.url + "/v1/messages/count_tokens", {"messages": []})
        assert json.loads(text)["input_tokens"] > 0
        srv.log_unknown = False
        with pytest.raises(urllib.error.HTTPError) as e:
            post(srv.url + "/v1/files", {})
        assert e.value.code == 404
        assert srv.unknown == ["POST /v1/files"]
        assert len(srv.conversation) == 2
        assert len(srv.requests) == 5
