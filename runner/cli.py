"""The command line: parse arguments, dispatch to one command function, map failures.

Heavy modules are imported inside the branches so that `wtrun --version` and
`wtrun --help` stay fast.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from . import __version__
from .errors import UsageError, WtrunError

if TYPE_CHECKING:
    from .run import Options

COMMANDS = (
    "run",
    "prepare",
    "validate",
    "diff",
    "review",
    "status",
    "logs",
    "clean",
    "render",
    "sync",
    "revise",
    "matrix",
    "pr",
    "records",
    "schema",
    "demo",
    "init",
    "help",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def _parser() -> tuple[argparse.ArgumentParser, Mapping[str, argparse.ArgumentParser]]:
    """The parser, and the parser of each command by name (for `wtrun help COMMAND`)."""
    p = _Parser(
        prog="wtrun",
        description=(
            "Run several AI coding agents in parallel on one repository, from a reviewed YAML "
            "plan: one git worktree, branch and pull request per task."
        ),
        epilog="`wtrun PLAN` is short for `wtrun run PLAN`. Start with `wtrun demo`.",
    )
    p.add_argument("--version", action="version", version=f"wtrun {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def plan_cmd(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("plan", metavar="PLAN", help="the plan file (YAML)")
        return c

    run = plan_cmd("run", "the whole run: worktrees, setup, agents, checks, pull requests")
    run.add_argument(
        "--task",
        action="append",
        default=[],
        metavar="ID",
        help="run only this task (repeatable); its parents must be ready",
    )
    run.add_argument(
        "--stack", metavar="ROOT[,ROOT...]", help="run these root tasks and their descendants only"
    )
    run.add_argument("--dry-run", action="store_true", help="print what would happen; run nothing")
    run.add_argument("--max-parallel", type=int, metavar="N", help="tasks in flight at once")
    run.add_argument("--no-pr", action="store_true", help="stop before pushing and opening PRs")
    run.add_argument("--json", action="store_true", help="JSON-lines events on stdout")
    run.add_argument(
        "--restart",
        action="append",
        default=[],
        metavar="ID",
        help="start this task again from scratch, discarding its recorded steps",
    )

    prep = plan_cmd("prepare", "worktrees, setup and instructions only; no agents")
    prep.add_argument("--task", action="append", default=[], metavar="ID")

    val = sub.add_parser(
        "validate",
        help="check plans; run nothing",
        description="Check plans against the schema and wtrun's rules. "
        "Needs no git repository and runs nothing.",
    )
    val.add_argument("plans", nargs="+", metavar="PLAN")
    val.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default=None,
        help="output format (default: github when GITHUB_ACTIONS=true, else text)",
    )

    diff = sub.add_parser("diff", help="semantic diff of two plans, as Markdown")
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW", nargs="?")
    diff.add_argument("--against", metavar="REF", help="compare PLAN with its version at REF")

    rev = sub.add_parser(
        "review",
        help="the plan review of a pull request, as Markdown",
        description="For each plan: validation (problems linked to their lines), what it can "
        "cost and do (budgets, tasks, waves, max_parallel) and its semantic diff against REF.",
    )
    rev.add_argument("plans", nargs="*", metavar="PLAN")
    rev.add_argument("--against", required=True, metavar="REF", help="the base to diff against")
    rev.add_argument(
        "--link", metavar="URL", help="link problems to URL/FILE#LINE (a blob URL at the head)"
    )

    st = plan_cmd("status", "one row per task: state, branch, worktree, cost, PR")
    st.add_argument("--json", action="store_true", help="one JSON object (a stable contract)")

    logs = sub.add_parser("logs", help="a task's setup/agent/verify logs")
    logs.add_argument("plan", metavar="PLAN")
    logs.add_argument("task", metavar="TASK")
    logs.add_argument("--step", choices=("setup", "agent", "verify"))
    logs.add_argument("-f", "--follow", action="store_true")

    clean = plan_cmd("clean", "remove the plan's worktrees safely")
    clean.add_argument("--task", action="append", default=[], metavar="ID")
    clean.add_argument(
        "--force", action="store_true", help="also drop unpushed or uncommitted work"
    )
    clean.add_argument(
        "--forget",
        action="store_true",
        help="also drop the records of pushed tasks, so a later run redoes them "
        "(refused while their PR is open, unless --force)",
    )

    render = sub.add_parser("render", help="print a task's instructions file and PR text")
    render.add_argument("plan", metavar="PLAN")
    render.add_argument("task", metavar="TASK")

    sync = plan_cmd("sync", "retarget and rebase stacked PRs whose parents merged")
    sync.add_argument("--rebase", action="store_true", help="rebase tasks behind the base")
    sync.add_argument("--delete-merged", action="store_true")

    revise = plan_cmd("revise", "send review feedback and failed checks on open PRs to the agent")
    revise.add_argument("--task", action="append", default=[], metavar="ID")
    revise.add_argument(
        "--no-pr",
        action="store_true",
        help="push nothing and comment nothing: `wtrun pr PLAN` pushes the follow-ups and "
        "answers on their PRs",
    )
    revise.add_argument(
        "--save-feedback",
        metavar="FILE",
        help="only read the new feedback (GET requests) into FILE; run no agent",
    )
    revise.add_argument(
        "--feedback",
        metavar="FILE",
        help="act on the feedback --save-feedback read into FILE instead of reading it",
    )

    plan_cmd("matrix", "GitHub Actions matrix of independent stacks (JSON)")
    pr = plan_cmd("pr", "push and open PRs for ready tasks that have none")
    pr.add_argument("--task", action="append", default=[], metavar="ID")
    pr.add_argument(
        "--merge-records",
        nargs="+",
        default=[],
        metavar="STATE_JSON",
        help="first fold in records of other runs of this plan (fan-out jobs)",
    )
    for state in ("merged", "closed"):
        pr.add_argument(
            f"--{state}",
            action="append",
            default=[],
            metavar="ID",
            help=f"with pr.provider local: mark the task's PR {state}, as a reviewer would",
        )
    rec = sub.add_parser(
        "records",
        help="pull or push the plan's records on the remote (refs/wtrun/PLAN_NAME)",
        description="Pull the plan's records from the remote and merge them into this "
        "clone's, or push this clone's records there (merged with the remote's, with a "
        "lease). They live under refs/wtrun/PLAN_NAME: a state.json, no logs.",
    )
    rec.add_argument("action", choices=("pull", "push"))
    rec.add_argument("plan", metavar="PLAN")
    rec.add_argument("--remote", metavar="NAME", help="the remote (default: the plan's)")
    schema = sub.add_parser("schema", help="print the plan JSON Schema")
    schema.add_argument(
        "--write",
        action="store_true",
        help="write it to .wtrun/plan-v1.json in this repository (where plans' modelines point)",
    )
    init = sub.add_parser(
        "init",
        help="adopt wtrun here: a starter plan, the schema, four workflows, a pre-commit entry",
        description="Write into this repository a starter plan (its schema modeline pointing at "
        ".wtrun/plan-v1.json), the plan schema, three GitHub Actions workflows using wtrun's "
        "action pinned to this version, and a pre-commit entry; then print the secrets to set.",
    )
    init.add_argument("--force", action="store_true", help="overwrite files that differ")
    init.add_argument(
        "--repository",
        metavar="OWNER/NAME",
        help="where wtrun's action and hooks come from (default: wtrun's own repository)",
    )
    demo = sub.add_parser("demo", help="the whole pipeline offline in a throwaway repository")
    demo.add_argument("--keep", metavar="DIR", help="build the sandbox in DIR and keep it")
    helper = sub.add_parser("help", help="print this help, or a command's")
    helper.add_argument("topic", metavar="COMMAND", nargs="?")
    return p, sub.choices


# Commands that read a plan, print and exit. Their process ends before garbage cycles matter,
# and the collector's passes over a large plan's objects cost more than the rest of a `diff`.
_READERS = frozenset({"validate", "diff", "review", "status", "render", "matrix", "logs"})


def _dispatch(argv: Sequence[str], own_process: bool = False) -> int:
    args_list = list(argv)
    if args_list and args_list[0] not in COMMANDS and not args_list[0].startswith("-"):
        args_list.insert(0, "run")
    parser, commands = _parser()
    if not args_list:
        parser.print_help()
        return 2
    args = parser.parse_args(args_list)
    command: str = args.command
    if own_process and (command in _READERS or getattr(args, "dry_run", False)):
        gc.disable()

    if command == "help":
        return _help(parser, commands, args.topic)
    if command == "validate":
        from .commands.validate import validate

        fmt = args.format or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
        return validate(args.plans, fmt)
    if command == "init":
        from .commands.init import REPOSITORY, init

        return init(args.force, args.repository or REPOSITORY)
    if command == "schema":
        if args.write:
            from .commands.init import write_schema

            return write_schema()
        from .plan.schema import schema_text

        sys.stdout.write(schema_text())
        return 0
    if command in ("run", "prepare"):
        from .run import run

        return run(args.plan, _run_options(args, prepare_only=command == "prepare"))
    if command == "status":
        from .commands.status import status

        return status(args.plan, args.json)
    if command == "render":
        from .commands.render import render_task

        return render_task(args.plan, args.task)
    if command == "diff":
        from .commands.diff import diff

        return diff(args.old, args.new, args.against)
    if command == "review":
        from .commands.review import review

        return review(args.plans, args.against, args.link)
    if command == "matrix":
        from .commands.matrix import matrix

        return matrix(args.plan)
    if command == "demo":
        from .commands.demo import demo

        return demo(args.keep)
    if command == "pr":
        from .commands.pr import pr_command

        marks = {**dict.fromkeys(args.merged, "merged"), **dict.fromkeys(args.closed, "closed")}
        return pr_command(args.plan, args.task, args.merge_records, marks)
    if command == "records":
        from .commands.records import records

        return records(args.action, args.plan, args.remote)
    if command == "logs":
        from .commands.logs import logs

        return logs(args.plan, args.task, args.step, args.follow)
    if command == "clean":
        from .commands.clean import clean

        return clean(args.plan, args.task, args.force, forget=args.forget)
    if command == "revise":
        from .commands.revise import revise

        return revise(
            args.plan,
            args.task,
            no_pr=args.no_pr,
            save_to=args.save_feedback,
            saved=args.feedback,
        )
    if command == "sync":
        from .sync import sync

        return sync(args.plan, rebase=args.rebase, delete_merged=args.delete_merged)
    raise UsageError(f"`wtrun {command}` is not implemented yet")


def _run_options(args: argparse.Namespace, *, prepare_only: bool) -> Options:
    from .run import Options

    # `prepare` has only --task of these flags.
    return Options(
        task_ids=tuple(args.task),
        stacks=(args.stack,) if getattr(args, "stack", None) is not None else (),
        dry_run=getattr(args, "dry_run", False),
        max_parallel=getattr(args, "max_parallel", None),
        no_pr=getattr(args, "no_pr", False),
        json=getattr(args, "json", False),
        restart=tuple(getattr(args, "restart", ())),
        prepare_only=prepare_only,
    )


def _help(
    parser: argparse.ArgumentParser,
    commands: Mapping[str, argparse.ArgumentParser],
    topic: str | None,
) -> int:
    if topic is None:
        parser.print_help()
    elif topic in commands:
        commands[topic].print_help()
    else:
        raise UsageError(
            f'unknown command "{topic}"; the commands are: {", ".join(COMMANDS)}; '
            "`wtrun help COMMAND` prints one's help"
        )
    return 0


def entry() -> int:
    """The `wtrun` command: a process of its own."""
    return main(own_process=True)


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    try:
        return _dispatch(sys.argv[1:] if argv is None else argv, own_process)
    except WtrunError as e:
        _print_error(e)
        return e.exit_code
    except KeyboardInterrupt:
        print("wtrun: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception:
        return _crash()


def _print_error(e: WtrunError) -> None:
    print(e.as_text(), file=sys.stderr)


def _crash() -> int:
    import traceback

    from . import crashlog, redact

    text = redact.text(f"wtrun {__version__}\nargv: {sys.argv!r}\n\n{traceback.format_exc()}")
    try:
        path, refused = crashlog.write(text)
    except OSError as e:
        print(
            f"wtrun: internal error (a bug in wtrun); no log could be written ({e}):\n{text}",
            file=sys.stderr,
        )
        return 3
    if refused:
        print(f"wtrun: crash logs do not go to {refused}; remove it", file=sys.stderr)
    print(f"wtrun: internal error (a bug in wtrun); details written to {path}", file=sys.stderr)
    return 3
