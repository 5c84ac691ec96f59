"""Time the conflict prediction after a run: 50 ready tasks, 1,225 pairs, plus each task
against the base's tip.

    python bench/conflicts.py [--tasks 50] [--files 2000] [--workers N] [--serial]

A generated repository: `--files` files in one module folder per task, a `package-lock.json`
and a `CHANGELOG.md`. Each task's branch changes three files of its own module and adds one;
every fifth task also changes the lockfile (so those pairs conflict), every seventh appends to
the changelog. The base then moves on by one commit that touches the changelog.

What is timed is `wtrun.conflicts.predict`, the call the end of a run and `wtrun sync` make:
one `git merge-tree --write-tree` per pair that may run together (all of them here: no task is
stacked) and per task against the base, in a thread pool. `--serial` times one thread too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from wtrun.conflicts import default_workers, predict
from wtrun.git import Git

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str, input: str | None = None, index: Path | None = None) -> str:
    env = dict(ENV, GIT_INDEX_FILE=str(index)) if index else ENV
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, input=input, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(root: Path, tasks: int, files: int) -> tuple[Path, dict[str, str], str]:
    """The repository, each task's head, and the base's tip."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    per_module = max(1, files // tasks)
    for m in range(tasks):
        folder = repo / "src" / f"mod{m:02d}"
        folder.mkdir(parents=True)
        for f in range(per_module):
            (folder / f"file{f:03d}.ts").write_text(
                "".join(f"export const v{i} = {m * 1000 + f + i};\n" for i in range(20))
            )
    (repo / "package-lock.json").write_text(
        '{\n  "lockfileVersion": 3,\n'
        + "".join(f'  "dep{i}": "1.0.{i}",\n' for i in range(200))
        + '  "end": true\n}\n'
    )
    (repo / "CHANGELOG.md").write_text("# Changelog\n\n## Unreleased\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")

    heads: dict[str, str] = {}
    index = root / "index"
    for m in range(tasks):
        # Plumbing on a private index: no checkout per task.
        git(repo, "read-tree", base, index=index)
        changes = {
            f"src/mod{m:02d}/file{f:03d}.ts": f"export const changed = {m};\n"
            for f in range(min(3, per_module))
        }
        changes[f"src/mod{m:02d}/new.ts"] = f"export const added = {m};\n"
        if m % 5 == 0:
            lock = (repo / "package-lock.json").read_text()
            changes["package-lock.json"] = lock.replace(
                '"dep100": "1.0.100"', f'"dep100": "2.{m}.0"'
            )
        if m % 7 == 0:
            changes["CHANGELOG.md"] = (repo / "CHANGELOG.md").read_text() + f"- task {m}\n"
        for path, text in changes.items():
            blob = git(repo, "hash-object", "-w", "--stdin", input=text)
            git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", index=index)
        tree = git(repo, "write-tree", index=index)
        heads[f"task-{m:02d}"] = git(repo, "commit-tree", tree, "-p", base, "-m", f"task {m}")
    git(repo, "read-tree", base, index=index)
    text = (repo / "CHANGELOG.md").read_text() + "- released 1.2\n"
    blob = git(repo, "hash-object", "-w", "--stdin", input=text)
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},CHANGELOG.md", index=index)
    tip = git(repo, "commit-tree", git(repo, "write-tree", index=index), "-p", base, "-m", "tip")
    return repo, heads, tip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--serial", action="store_true", help="also time one thread")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wtrun-bench-") as tmp:
        started = time.perf_counter()
        repo, heads, tip = make_repo(Path(tmp), args.tasks, args.files)
        made = time.perf_counter() - started
        pairs = args.tasks * (args.tasks - 1) // 2
        print(
            f"repository: {args.files} files, {args.tasks} task branches "
            f"({made:.1f}s to generate); git {git(repo, 'version').split()[-1]}, "
            f"{os.cpu_count()} CPUs"
        )
        workers = args.workers or default_workers()
        runs = [("pool", workers)] + ([("serial", 1)] if args.serial else [])
        for label, n in runs:
            started = time.perf_counter()
            prediction = predict(Git(repo), heads, lambda a, b: True, tip, workers=n)
            seconds = time.perf_counter() - started
            print(
                f"{label:>6}: {prediction.merges} merges ({pairs} pairs + {args.tasks} "
                f"against the base) with {n} thread{'s' if n != 1 else ''}: {seconds:.2f}s "
                f"({seconds / prediction.merges * 1000:.1f} ms each); "
                f"{len(prediction.pairs)} conflicting pairs, "
                f"{len(prediction.base)} tasks conflicting with the base"
            )


if __name__ == "__main__":
    main()
