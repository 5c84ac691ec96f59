"""The built wheel works on its own: installed in a fresh venv, run from another folder.

One test on purpose: building the wheel is the slow part (several seconds), and under
pytest-xdist a module-scoped fixture would build it once per worker.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "plan-v1.json"
TIMEOUT = 120  # seconds for each step; the whole test takes well under a minute


def _run(
    args: list[str | Path], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _can_build_without_isolation() -> bool:
    """Whether the current environment can build the wheel offline (setuptools, wheel)."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(p) for p in version.split(".")[:2])
    if (major, minor) >= (70, 1):  # bdist_wheel is part of setuptools from 70.1
        return True
    return major >= 68 and importlib.util.find_spec("wheel") is not None


def _build_wheel(tmp_path: Path, env: dict[str, str]) -> Path:
    # Build from a copy: an in-tree build writes build/ and *.egg-info, which parallel
    # test runs would share.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "runner", source / "runner", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "schemas", source / "schemas", ignore=ignore)
    dist = tmp_path / "dist"
    isolation = [] if not _can_build_without_isolation() else ["--no-build-isolation"]
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", dist, source],
        tmp_path,
        env,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("wtrun-*.whl")
    return wheel


def test_wheel_installs_and_runs_from_another_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheel = _build_wheel(tmp_path, env)

    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("wtrun/plan-v1.json") == SCHEMA.read_bytes()
        assert "wtrun/py.typed" in archive.namelist()
        assert "wtrun/templates/scheduled-plans.yml" in archive.namelist()  # wtrun init

    # System site-packages give the dependencies without a download; the editable
    # install of the checkout there comes after the venv's own wtrun on sys.path.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    installed = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            wheel,
        ],
        tmp_path,
        env,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy2(ROOT / "plans" / "sprint-12.yaml", elsewhere / "plan.yaml")
    (elsewhere / "bad.yaml").write_text(
        "version: 1\ntasks:\n  - id: a\n    prompt: A.\n    scope: [/a]\n", encoding="utf-8"
    )

    where = _run([python, "-c", "import wtrun; print(wtrun.__file__)"], elsewhere, env)
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout + where.stderr

    version = _run([bindir / "wtrun", "--version"], elsewhere, env)
    assert (version.returncode, version.stdout) == (0, "wtrun 0.1.0\n"), version.stderr

    valid = _run([bindir / "wtrun", "validate", "plan.yaml"], elsewhere, env)
    assert (valid.returncode, valid.stdout, valid.stderr) == (0, "", "1 plan valid\n")

    invalid = _run([bindir / "wtrun", "validate", "bad.yaml"], elsewhere, env)
    assert invalid.returncode == 1, invalid.stderr
    assert invalid.stdout.startswith(
        'bad.yaml:5:13: scope of task "a": pattern "/a" is an absolute path; write it '
        'relative to the repository root: "a" [scope]\n'
    )

    schema = subprocess.run(
        [str(bindir / "wtrun"), "schema"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert schema.returncode == 0, schema.stderr
    assert schema.stdout == SCHEMA.read_bytes()
