"""`wtrun validate`: exact messages for bad plans, output formats, exit codes.

Each `tests/data/bad/NAME.yaml` sits beside `NAME.out`, the exact output of
`wtrun validate tests/data/bad/NAME.yaml` run from the repository root: the exit code,
stdout, then stderr. `WTRUN_REGEN_GOLDEN=1 pytest tests/test_validate.py` rewrites them;
read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from wtrun.cli import main
from wtrun.plan import PlanError, load, schema, yaml_source

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "data" / "bad"
GOLDENS = sorted(BAD.glob("*.yaml"))
REGEN = os.environ.get("WTRUN_REGEN_GOLDEN") == "1"
DIAGNOSTIC = re.compile(
    r"^(?P<file>[^:\s]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.*) "
    r"\[(?P<rule>[a-z-]+)\]$"
)

VALID = """\
version: 1
tasks:
  - id: fix-login
    prompt: Fix the login form.
    scope: [src/login/**]
"""


@pytest.fixture(autouse=True)
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def transcript(code: int, out: str, err: str) -> str:
    return f"exit: {code}\n{out}" + (f"--- stderr\n{err}" if err else "")


# ---------------------------------------------------------------- golden files


@pytest.mark.parametrize("plan", GOLDENS, ids=[p.stem for p in GOLDENS])
def test_golden(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, plan.relative_to(ROOT).as_posix())
    text = transcript(code, out, err)
    golden = plan.with_suffix(".out")
    if REGEN:
        golden.write_text(text, encoding="utf-8", newline="\n")
    assert "Traceback" not in text
    assert "internal error" not in text
    assert code == 1
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("plan", GOLDENS, ids=[p.stem for p in GOLDENS])
def test_golden_messages_follow_the_style(plan: Path) -> None:
    """Each message: at a real place in the file, lower-case, with a fix after ";" or ":"."""
    lines = plan.read_bytes().decode("utf-8", "replace").splitlines() or [""]
    found = [
        m
        for m in map(
            DIAGNOSTIC.match, plan.with_suffix(".out").read_text(encoding="utf-8").splitlines()
        )
        if m
    ]
    assert found, "a bad plan must produce at least one diagnostic"
    for m in found:
        message, line, col = m["message"], int(m["line"]), int(m["col"])
        assert m["file"] == plan.relative_to(ROOT).as_posix()
        assert 1 <= line <= len(lines), message
        assert 1 <= col <= len(lines[line - 1]) + 1, message
        assert not message[0].isupper(), message
        assert re.search(r"[;:] .+", message), f"no fix in: {message}"


def test_every_golden_has_its_output_and_the_reverse() -> None:
    assert {p.stem for p in BAD.glob("*.out")} == {p.stem for p in GOLDENS}


def test_goldens_cover_every_rule() -> None:
    rules = set()
    for out in BAD.glob("*.out"):
        rules |= {m["rule"] for m in map(DIAGNOSTIC.match, out.read_text().splitlines()) if m}
    assert rules == {
        "schema",
        "syntax",
        "version",
        "duplicate-key",
        "id",
        "after",
        "scope",
        "overlap",
        "ports",
        "template",
        "agent",
        "branch",
        "env",
    }


# ---------------------------------------------------------------- hostile input


def test_file_over_the_size_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from wtrun.plan import yaml_source as yamlsrc

    big = tmp_path / "big.yaml"
    big.write_bytes(b"version: 1\n" + b"#" * yamlsrc.MAX_BYTES)
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    code, out, _ = validate(capsys, "big.yaml")
    assert time.monotonic() - started < 2
    assert code == 1
    assert out.splitlines()[0] == (
        "big.yaml:1:1: the file is 8,388,619 bytes, over the limit of 8,388,608 bytes; split "
        "the plan into several files [syntax]"
    )


def test_alias_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(PlanError) as info:
        load(BAD / "yaml-alias-bomb.yaml")
    assert time.monotonic() - started < 2
    assert "alias bomb" in info.value.diagnostics[0].message


@pytest.mark.parametrize(
    "tasks",
    [
        "[" * 100 + "]" * 100,  # under libyaml's limit: ours fires
        "[" * 5000 + "]" * 5000,  # libyaml's flow limit fires first
        "\n" + "".join(" " * i + "-\n" for i in range(1, 1200)),  # libyaml's block limit
    ],
    ids=["ours", "libyaml-flow", "libyaml-block"],
)
def test_deep_nesting_is_refused(
    tasks: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deep.yaml").write_text("version: 1\ntasks: " + tasks + "\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = validate(capsys, "deep.yaml")
    assert code == 1
    (first,) = [line for line in out.splitlines() if line.startswith("deep.yaml:")]
    assert first.endswith(
        "the plan nests too deeply here (more than 64 levels of lists and mappings); "
        "flatten it [syntax]"
    )


def _mutations(data: Any, rng: random.Random) -> Any:
    """`data` with one value somewhere replaced by a value of another kind."""
    values: list[Any] = [
        None,
        True,
        0,
        -1,
        3.5,
        "",
        "x",
        "Bad/Id",
        "../x",
        [],
        ["x"],
        {},
        {"x": 1},
        [{"run": 1}],
        "{{ nope }}",
        "45 minutes",
        [3100],
    ]
    if isinstance(data, dict) and data and rng.random() < 0.8:
        key = rng.choice(list(data))
        data[key] = _mutations(data[key], rng)
        return data
    if isinstance(data, list) and data and rng.random() < 0.8:
        i = rng.randrange(len(data))
        data[i] = _mutations(data[i], rng)
        return data
    return rng.choice(values)


def test_random_mutations_never_crash() -> None:
    """Whatever the values, loading ends with a plan or with diagnostics, never a crash."""
    base = yaml.safe_load((ROOT / "plans" / "sprint-12.yaml").read_text())
    rng = random.Random(12)
    for _ in range(300):
        data = _mutations(json.loads(json.dumps(base)), rng)
        raw = yaml.safe_dump(data).encode()
        try:
            load("mutated.yaml", raw=raw)
        except PlanError as e:
            assert e.diagnostics


# ---------------------------------------------------------------- formats


def test_text_format_of_a_valid_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok.yaml").write_text(VALID)
    monkeypatch.chdir(tmp_path)
    assert validate(capsys, "ok.yaml") == (0, "", "1 plan valid\n")


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, "--format", "json", "tests/data/bad/after-cycle-2.yaml")
    assert (code, err) == (1, "")
    assert json.loads(out) == [
        {
            "file": "tests/data/bad/after-cycle-2.yaml",
            "line": 4,
            "col": 12,
            "rule": "after",
            "message": "tasks wait for each other in a cycle: a -> b -> a; remove `after` from "
            "one of them",
        }
    ]


def test_json_format_of_a_valid_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok.yaml").write_text(VALID)
    monkeypatch.chdir(tmp_path)
    assert validate(capsys, "--format", "json", "ok.yaml") == (0, "[]\n", "")


GITHUB_CYCLE = (
    "::error file=tests/data/bad/after-cycle-2.yaml,line=4,col=12,title=wtrun after::"
    "tasks wait for each other in a cycle: a -> b -> a; remove `after` from one of them\n"
)


def test_github_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, "--format", "github", "tests/data/bad/after-cycle-2.yaml")
    assert (code, out, err) == (1, GITHUB_CYCLE, "")


def test_github_format_is_the_default_on_github_actions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert validate(capsys, "tests/data/bad/after-cycle-2.yaml") == (1, GITHUB_CYCLE, "")
    _, out, _ = validate(capsys, "--format", "text", "tests/data/bad/after-cycle-2.yaml")
    assert out.startswith("tests/data/bad/after-cycle-2.yaml:4:12: tasks wait")


def test_github_format_escapes_properties_and_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a,b:c%.yaml").write_text("version: 1\ntasks: 100%\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = validate(capsys, "--format", "github", "a,b:c%.yaml")
    assert code == 1
    assert out == (
        "::error file=a%2Cb%3Ac%25.yaml,line=2,col=8,title=wtrun schema::tasks is a string "
        '"100%25", expected a list; write it as a list: [100%25]\n'
    )


# ---------------------------------------------------------------- several files, exit codes


def test_several_files_sorted_by_file_line_and_column(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(
        capsys,
        "tests/data/bad/after-self.yaml",
        "tests/data/bad/after-cycle-2.yaml",
        "plans/minimal.yaml",
    )
    assert code == 1
    heads = [line.split(": ")[0] for line in out.splitlines() if DIAGNOSTIC.match(line)]
    assert heads == [
        "tests/data/bad/after-cycle-2.yaml:4:12",
        "tests/data/bad/after-self.yaml:4:12",
    ]
    assert err == "\n2 problems in 2 of 3 plans\n"


def test_several_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(capsys, "plans/minimal.yaml", "plans/sprint-12.yaml") == (
        0,
        "",
        "2 plans valid\n",
    )


def test_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(capsys, "plans/nope.yaml") == (
        2,
        "",
        "wtrun: error: plans/nope.yaml: no such file\n",
    )


def test_missing_file_among_good_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(capsys, "plans/minimal.yaml", "nope.yaml") == (
        2,
        "",
        "wtrun: error: nope.yaml: no such file\n1 plan valid\n",
    )


def test_directory_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(capsys, "plans") == (
        2,
        "",
        "wtrun: error: plans: is a directory, not a plan file\n",
    )


@pytest.mark.parametrize(
    "args", [["--bogus", "plans/minimal.yaml"], ["--format", "xml", "plans/minimal.yaml"], []]
)
def test_bad_arguments_are_usage_errors(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = validate(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("wtrun: error: ")
    assert "usage: wtrun" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- the compiled validator


def _schema_inputs() -> list[Any]:
    """The data of every golden, example plan and random mutation that parses."""
    sources = [p.read_bytes() for p in [*GOLDENS, *sorted((ROOT / "plans").glob("*.yaml"))]]
    base = yaml.safe_load((ROOT / "plans" / "sprint-12.yaml").read_text())
    rng = random.Random(16)
    for _ in range(400):
        sources.append(yaml.safe_dump(_mutations(json.loads(json.dumps(base)), rng)).encode())
    sources += [b"version: true\ntasks: []\n", b"version: 1.0\ntasks: []\n"]
    inputs = []
    for raw in sources:
        doc, _ = yaml_source.read("plan.yaml", raw)
        if doc.data is not None:
            inputs.append(doc.data)
    return inputs


def test_the_compiled_validator_agrees_with_jsonschema() -> None:
    """Large plans take the compiled validator's word that they are valid: it must never
    pass what jsonschema refuses, nor refuse what it passes."""
    inputs = _schema_inputs()
    valid = 0
    for data in inputs:
        expected = not list(schema.validator().iter_errors(data))
        assert schema.compiled_valid(data) == expected, data
        valid += expected
    assert 0 < valid < len(inputs)  # both answers were asked for


def test_a_large_plan_with_one_mistake_gets_jsonschemas_message(tmp_path: Path) -> None:
    tasks = [
        {"id": f"t{i}", "prompt": "Do it.", "scope": [f"src/t{i}/**"]}
        for i in range(schema.COMPILED_FROM)
    ]
    tasks[-1]["timeout"] = "soon"
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "tasks": tasks}))
    with pytest.raises(PlanError) as raised:
        load(path)
    [problem] = raised.value.diagnostics
    assert "timeout" in problem.message
