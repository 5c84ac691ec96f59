"""Time the conflict prediction after a run: 50 ready tasks, 1,225 pairs, plus each task
against the base's tip.

    python bench/conflicts.py [--tasks 50] [--files 2000] [--workers N] [--threads 4]

A generated repository: `--files` files in one module folder per task, a `package-lock.json`
and a `CHANGELOG.md`. Each task's branch changes three files of its own module and adds one;
every fifth task also changes the lockfile (so those pairs conflict), every seventh appends to
the changelog. The base then moves on by one commit that touches the changelog.

What is timed is `wtrun.conflicts.predict`, the call the end of a run and `wtrun sync` make:
a merge per pair that may run together (all of them here: no task is stacked) and per task
against the base, in `git merge-tree --stdin` processes (one per core, or --workers); side by
side with the way before, one `git merge-tree --write-tree` process per merge from a pool of
--threads, whose results must be the same.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import tempfile
import time
from pathlib import Path

from wtrun.conflicts import default_workers, merge_conflicts, merge_many, predict, quarantine
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


def per_pair(git: Git, jobs: list[tuple[str, str]], env: dict[str, str], workers: int) -> list:
    """The way before `--stdin`: one `git merge-tree` process per merge, from a thread pool."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: merge_conflicts(git, job[0], job[1], env=env), jobs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None, help="git processes (default: cores)")
    parser.add_argument("--threads", type=int, default=4, help="threads of the per-pair way")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wtrun-bench-") as tmp:
        started = time.perf_counter()
        repo, heads, tip = make_repo(Path(tmp), args.tasks, args.files)
        made = time.perf_counter() - started
        g = Git(repo)
        print(
            f"repository: {args.files} files, {args.tasks} task branches "
            f"({made:.1f}s to generate); git {git(repo, 'version').split()[-1]}, "
            f"{os.cpu_count()} CPUs; best of {args.repeat}, interleaved"
        )
        ids = list(heads)
        jobs = [(heads[a], heads[b]) for i, a in enumerate(ids) for b in ids[i + 1 :]]
        jobs += [(tip, heads[t]) for t in ids]
        workers = args.workers or default_workers()
        old = new = float("inf")
        for _ in range(args.repeat):
            with quarantine(g) as env:
                started = time.perf_counter()
                before = per_pair(g, jobs, env, args.threads)
                old = min(old, time.perf_counter() - started)
            started = time.perf_counter()
            prediction = predict(g, heads, lambda a, b: True, tip, workers=workers)
            new = min(new, time.perf_counter() - started)
            with quarantine(g) as env:
                if merge_many(g, jobs, env, processes=workers) != before:
                    raise SystemExit("the two ways disagree")
        print(
            f"{len(jobs)} merges ({len(jobs) - len(ids)} pairs + {len(ids)} against the base); "
            f"{len(prediction.pairs)} conflicting pairs, {len(prediction.base)} tasks "
            "conflicting with the base (the same either way)"
        )
        print(f"  process per merge ({args.threads} threads):   {old:6.2f} s")
        print(
            f"  merge-tree --stdin ({workers} process{'es' if workers != 1 else ''}): "
            f"{new:6.2f} s   ({old / new:.1f}x faster; target < 1.5 s)"
        )


if __name__ == "__main__":
    main()
