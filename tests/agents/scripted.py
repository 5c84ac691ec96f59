"""A scripted agent for tests: does one thing, chosen by its first argument.

    scripted.py MODE [PATH...]

edit       write each PATH and commit it (as an agent that commits its own work)
leave      write each PATH and leave it uncommitted (wtrun commits leftovers)
crash      write PATH, then exit 3
hang       start a child that sleeps, then sleep (for timeouts; the child's pid goes to PATH)
nothing    change nothing
env        write the environment it sees, as JSON, to PATH (uncommitted)
append     COUNTER PROMPT PATH...: add a JSON line with PROMPT to COUNTER (outside the
           worktree: it counts the runs), add a line to each PATH and commit them
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def write(paths: list[str]) -> None:
    for rel in paths:
        p = Path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"written by the scripted agent for {os.environ.get('WTRUN_TASK_ID')}\n")


def main() -> int:
    mode, paths = sys.argv[1], sys.argv[2:]
    print(f"scripted agent: {mode} {' '.join(paths)}", flush=True)
    if mode == "edit":
        write(paths)
        subprocess.run(["git", "add", "--", *paths], check=True)
        subprocess.run(["git", "commit", "-q", "-m", "agent: edit"], check=True)
    elif mode == "append":
        counter, prompt, files = paths[0], paths[1], paths[2:]
        Path(counter).parent.mkdir(parents=True, exist_ok=True)
        with open(counter, "a") as f:
            f.write(json.dumps({"prompt": prompt}) + "\n")
        for rel in files:
            p = Path(rel)
            p.parent.mkdir(parents=True, exist_ok=True)
            with p.open("a") as f:
                f.write(f"run {len(Path(counter).read_text().splitlines())}\n")
        subprocess.run(["git", "add", "--", *files], check=True)
        subprocess.run(["git", "commit", "-q", "-m", "agent: append"], check=True)
    elif mode == "leave":
        write(paths)
    elif mode == "crash":
        write(paths)
        print("scripted agent: crashing", flush=True)
        return 3
    elif mode == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path(paths[0]).write_text(str(child.pid))
        time.sleep(600)
    elif mode == "env":
        Path(paths[0]).write_text(json.dumps(dict(os.environ), indent=1, sort_keys=True))
    elif mode != "nothing":
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
