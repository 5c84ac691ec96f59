"""Whether a task's pushed work is on the base already: how `wtrun sync` learns that a
`local` PR was merged by hand, with no forge to say so.

Only the head wtrun recorded as pushed counts, never where the branch points now: the agent
works in the branch's worktree and can move it anywhere, onto the base too. The work is on
the base when, in the history of the base's tip:

- the pushed head is there (a merge commit, a fast-forward);
- or a commit C since the task's start commit, changing one of the files the task changed,
  has exactly the tree that merging the pushed head into C's first parent gives: what
  `git merge --squash` and a commit make of it. Trees are compared whole, so no other work
  on the base passes for the task's, and a commit that changes nothing never counts.

Changes edited while merging, or commits replayed one by one onto a base that had moved, are
not recognised: `wtrun pr PLAN --merged ID` says the PR merged by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conflicts import quarantine
from .git import Git


@dataclass(frozen=True)
class Landing:
    commit: str  # the pushed head itself, or the base's commit that squashed it
    squashed: bool

    def describe(self, base: str) -> str:
        if self.squashed:
            return f"squashed as {self.commit[:12]}"
        return f"its pushed head {self.commit[:12]} is on {base}"


def landed(git: Git, pushed: str, start: str, tip: str) -> Landing | None:
    """Where the task's work (`start`..`pushed`) reached the base's `tip`; None when it did
    not, or when this repository lacks the commits to tell."""
    if pushed == start or git.rev_parse(pushed) is None or git.rev_parse(start) is None:
        return None
    if git.ok("merge-base", "--is-ancestor", pushed, tip):
        return Landing(pushed, squashed=False)
    files = git.changed_paths(start, pushed)
    if not files:
        return None
    # Paths on stdin (after `--`): a task may change more files than fit on a command line.
    listed = "".join(f"{line}\n" for line in (tip, f"^{start}", "--", *files))
    out = git("log", "--format=%H %T", "--stdin", input=listed, env={"GIT_LITERAL_PATHSPECS": "1"})
    candidates = [line.split(" ") for line in out.splitlines()]
    if not candidates:
        return None
    with quarantine(git) as env:  # the merged trees are thrown away
        for commit, tree in candidates:
            r = git.run(
                *("merge-tree", "--write-tree", "--no-messages", f"{commit}^1", pushed),
                check=False,
                env=env,
            )
            if r.returncode == 0 and r.stdout.strip() == tree:
                return Landing(commit, squashed=True)
    return None
