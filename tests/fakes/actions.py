"""GitHub Actions workflows run locally, for tests: each job in a fresh clone of a bare remote
with its own HOME, its `run:` steps run with bash as a runner would, and the few `uses:` steps
the workflows need done on local folders (checkout, artifacts; setup-* do nothing).

    runner = LocalRunner(tmp_path, bare, secrets={...}, inputs={"plan": "plans/p.yaml"})
    run = runner.workflow(".github/workflows/fanout.yml")
    run.jobs["prs"][0].steps[-1].code

Expressions are the small subset the workflows use: contexts (`github.token`, `secrets.X`,
`inputs.X`, `env.X`, `matrix.X`, `steps.ID.outputs.X`, `needs.JOB.outputs.X`, `runner.temp`),
`'literals'`, `a || b` and `fromJSON(x)`; a step or job `if:` is `always()`-like or not.
Install steps (`pip install`, `npm install`) are skipped: wtrun is already on PATH.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
READ_TOKEN = "ghs_read_only_token_for_tests"
TOKEN_VARIABLES = ("GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

Hook = Callable[[Path], None]


def load(path: str | Path) -> dict[str, Any]:
    """A workflow or action file (its `on:` key reads as True: YAML 1.1)."""
    data: dict[str, Any] = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
    return data


@dataclass
class StepRun:
    name: str
    env: dict[str, str]
    code: int
    output: str
    may_fail: bool = False  # `continue-on-error: true`


@dataclass
class JobRun:
    name: str
    workspace: Path
    steps: list[StepRun] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(s.code != 0 and not s.may_fail for s in self.steps)


@dataclass
class WorkflowRun:
    jobs: dict[str, list[JobRun]] = field(default_factory=dict)


def evaluate(expr: str, ctx: Mapping[str, Any]) -> Any:
    for alternative in expr.split("||"):
        value = _term(alternative.strip(), ctx)
        if value:
            return value
    return ""


def _term(term: str, ctx: Mapping[str, Any]) -> Any:
    if term.startswith("'") and term.endswith("'"):
        return term[1:-1]
    if term.startswith("fromJSON(") and term.endswith(")"):
        return json.loads(evaluate(term[len("fromJSON(") : -1], ctx))
    value: Any = ctx
    for part in term.split("."):
        value = value.get(part, "") if isinstance(value, Mapping) else ""
    return value


def interpolate(text: str, ctx: Mapping[str, Any]) -> Any:
    """A string with `${{ }}` replaced; a whole-string expression keeps its type."""
    whole = _EXPR.fullmatch(text.strip())
    if whole and "}}" not in whole.group(1):
        return evaluate(whole.group(1), ctx)
    return _EXPR.sub(lambda m: str(evaluate(m.group(1), ctx)), text)


def _always(condition: Any) -> bool:
    return isinstance(condition, str) and ("always()" in condition or "cancelled()" in condition)


class LocalRunner:
    def __init__(
        self,
        root: Path,
        remote: Path,
        *,
        token: str = "ghs_write_token_for_tests",
        secrets: Mapping[str, str] | None = None,
        inputs: Mapping[str, str] | None = None,
        after: Mapping[str, Hook] | None = None,
        github: Mapping[str, Any] | None = None,
        head: str | None = None,
    ) -> None:
        """`after` maps a step's name to a function called with the job's workspace once that
        step ran (a process left behind by the agent, say); `github` adds to the `github`
        context (`base_ref`, `run_attempt`); `head` is the branch checkout checks out (a pull
        request's)."""
        self.root = root
        self.remote = remote
        self.token = token
        self.secrets = dict(secrets or {})
        self.inputs = dict(inputs or {})
        self.after = dict(after or {})
        self.github = dict(github or {})
        self.head = head
        self.artifacts = root / "artifacts"
        self._jobs = 0

    # ------------------------------------------------------------ workflows and jobs

    def workflow(self, path: str | Path) -> WorkflowRun:
        data = load(path)
        run = WorkflowRun()
        needs: dict[str, Any] = {}
        for name, job in data["jobs"].items():
            wanted = [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])
            upstream_failed = any(needs[n]["result"] != "success" for n in wanted)
            if upstream_failed and not _always(job.get("if")):
                needs[name] = {"result": "skipped", "outputs": {}}
                continue
            ctx = self._context(data, {n: needs[n] for n in wanted})
            ctx["github"]["token"] = self._token(job.get("permissions", data.get("permissions")))
            runs = [self._job(name, job, ctx, m) for m in self._matrix(job, ctx)]
            run.jobs[name] = runs
            failed = any(j.failed for j in runs)
            outputs = runs[0].outputs if len(runs) == 1 else {}
            needs[name] = {"result": "failure" if failed else "success", "outputs": outputs}
        return run

    def _context(self, data: dict[str, Any], needs: dict[str, Any]) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "github": {"token": self.token, "run_id": "7", "run_attempt": "1", **self.github},
            "secrets": self.secrets,
            "inputs": self.inputs,
            "needs": needs,
            "env": {},
        }
        ctx["env"] = self._env(data.get("env", {}), ctx)
        return ctx

    def _token(self, permissions: Any) -> str:
        """`github.token` has the job's permissions: the write token only where one is granted."""
        grants = permissions.values() if isinstance(permissions, dict) else [permissions]
        return self.token if any(g in ("write", "write-all") for g in grants) else READ_TOKEN

    def _matrix(self, job: dict[str, Any], ctx: dict[str, Any]) -> list[dict[str, Any]]:
        matrix = job.get("strategy", {}).get("matrix")
        if matrix is None:
            return [{}]
        value = interpolate(matrix, ctx) if isinstance(matrix, str) else matrix
        return list(value["include"])

    def _job(
        self, name: str, job: dict[str, Any], ctx: dict[str, Any], matrix: dict[str, Any]
    ) -> JobRun:
        self._jobs += 1
        folder = self.root / f"job-{self._jobs}-{name}"
        home, temp, workspace = folder / "home", folder / "temp", folder / "workspace"
        for d in (home, temp, workspace):  # a workspace is there before any checkout
            d.mkdir(parents=True)
        (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
        ctx = {**ctx, "matrix": matrix, "steps": {}, "runner": {"temp": str(temp)}}
        ctx["env"] = {**ctx["env"], **self._env(job.get("env", {}), ctx)}
        result = JobRun(name, workspace)
        base = self._base_env(home, temp, workspace)
        for step in job["steps"]:
            if result.failed and not _always(step.get("if")):
                break
            env = {**base, **ctx["env"], **self._env(step.get("env", {}), ctx)}
            done = self._step(step, env, {**ctx, "env": {**ctx["env"], **env}}, workspace)
            result.steps.append(done)
            done.may_fail = bool(step.get("continue-on-error"))
            hook = self.after.get(done.name)
            if hook is not None:
                hook(workspace)
        outputs = job.get("outputs", {})
        result.outputs = {k: str(interpolate(v, ctx)) for k, v in outputs.items()}
        return result

    def _env(self, env: Mapping[str, Any], ctx: dict[str, Any]) -> dict[str, str]:
        return {k: str(interpolate(str(v), ctx)) for k, v in env.items()}

    def _base_env(self, home: Path, temp: Path, workspace: Path) -> dict[str, str]:
        """What a runner gives every step: no token unless the workflow passes one."""
        env = {k: v for k, v in os.environ.items() if k not in TOKEN_VARIABLES}
        env.update(
            HOME=str(home),
            GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
            RUNNER_TEMP=str(temp),
            GITHUB_WORKSPACE=str(workspace),
            GITHUB_ACTIONS="true",
            CI="true",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        return env

    # ------------------------------------------------------------ steps

    def _step(
        self, step: dict[str, Any], env: dict[str, str], ctx: dict[str, Any], workspace: Path
    ) -> StepRun:
        name = str(step.get("name") or step.get("uses") or step.get("run", "").split("\n")[0])
        if "uses" in step:
            with_ = {k: interpolate(str(v), ctx) for k, v in step.get("with", {}).items()}
            self._uses(step["uses"].split("@")[0], with_, workspace)
            return StepRun(name, env, 0, "")
        script = str(step["run"])
        if re.match(r"(pip|npm) install", script.strip()) or name.startswith("Install"):
            return StepRun(name, env, 0, "skipped: wtrun is installed")
        script = str(interpolate(script, ctx))
        output_file = Path(env["RUNNER_TEMP"]) / f"output-{len(ctx['steps'])}"
        output_file.touch()
        env = {**env, "GITHUB_OUTPUT": str(output_file)}
        env["GITHUB_STEP_SUMMARY"] = str(Path(env["RUNNER_TEMP"]) / "summary.md")
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if "id" in step:
            ctx["steps"][step["id"]] = {"outputs": _outputs(output_file.read_text())}
        return StepRun(name, env, proc.returncode, proc.stdout + proc.stderr)

    def _uses(self, action: str, with_: dict[str, Any], workspace: Path) -> None:
        if action == "actions/checkout":
            subprocess.run(["git", "clone", "-q", str(self.remote), str(workspace)], check=True)
            if self.head:
                subprocess.run(["git", "checkout", "-q", self.head], cwd=workspace, check=True)
            if str(with_.get("persist-credentials", "true")).lower() != "false":
                basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
                subprocess.run(
                    ["git", "config", "http.https://github.com/.extraheader", f"basic {basic}"],
                    cwd=workspace,
                    check=True,
                )
        elif action == "actions/upload-artifact":
            source = workspace / with_["path"]
            if source.is_dir():
                shutil.copytree(source, self.artifacts / with_["name"], symlinks=True)
        elif action == "actions/download-artifact":
            self._download(with_, workspace)

    def _download(self, with_: dict[str, Any], workspace: Path) -> None:
        path = workspace / with_.get("path", ".")
        if "name" in with_:
            if (self.artifacts / with_["name"]).is_dir():
                shutil.copytree(self.artifacts / with_["name"], path, dirs_exist_ok=True)
            return
        prefix = str(with_["pattern"]).rstrip("*")
        for artifact in sorted(self.artifacts.glob(f"{prefix}*")):
            shutil.copytree(artifact, path / artifact.name, dirs_exist_ok=True)


def _outputs(text: str) -> dict[str, str]:
    """`name=value` lines of $GITHUB_OUTPUT."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
