"""``gocdbackup shard run|finish``: the artefact copy of a detached backup (``backup --detach``),
one shard at a time (a pod of a Kubernetes Indexed Job each, say), then the commit."""

from __future__ import annotations

from typing import NoReturn

import click

from gocdbackup._shards import finish_shards, run_shard
from gocdbackup.cli.common import (
    EXIT_INCOMPLETE,
    JsonCommand,
    JsonGroup,
    State,
    carried,
    command_line,
    emit,
    fail,
    handle_errors,
    next_steps,
    out_console,
)
from gocdbackup.cli.options import artifact_options, open_repo, repo_options, transfers_option
from gocdbackup.errors import ShardsMissing


@click.group(cls=JsonGroup)
def shard() -> None:
    """The shards of a detached backup (backup --detach): run each, then finish."""


@shard.command(name="run", cls=JsonCommand)
@click.argument("backup_id")
@repo_options
@click.option(
    "--index",
    type=click.IntRange(0, None),
    envvar="JOB_COMPLETION_INDEX",
    required=True,
    help="The shard to run (default: $JOB_COMPLETION_INDEX, set in a Kubernetes Indexed Job).",
)
@click.option(
    "--artifacts",
    metavar="STORE_URL",
    help="The artefact store (default: the one the backup was planned for).",
)
@artifact_options
@transfers_option
@click.pass_obj
def run(
    state: State,
    *,
    backup_id: str,
    repo: str,
    password_file: str | None,
    index: int,
    artifacts: str | None,
    transfers: int,
) -> None:
    """Copy one shard's objects into the repository; run it again after a failure or a kill
    (what was copied is reused, a shard done already is not done again)."""
    with handle_errors(state):
        gb = open_repo(state, repo, password_file, transfers=transfers)
        part = run_shard(gb, backup_id, index, artifacts=artifacts)
    counts = part.counts()
    emit(
        state,
        {"id": backup_id, "index": index, "artifacts": counts},
        lambda: out_console.print(
            f"shard {index} of {backup_id}: {counts['total']:,} object(s), "
            f"{counts['copied']:,} copied, {counts['reused']:,} reused",
            highlight=False,
        ),
    )


@shard.command(name="finish", cls=JsonCommand)
@click.argument("backup_id")
@repo_options
@click.option(
    "--db",
    envvar="GOCDBACKUP_DB",
    metavar="DSN",
    help="gocdnext's database: objects a shard did not find are told apart (retired by "
    "gocdnext meanwhile, or missing). Default: $GOCDBACKUP_DB.",
)
@click.pass_obj
def finish(
    state: State, *, backup_id: str, repo: str, password_file: str | None, db: str | None
) -> None:
    """Commit the detached backup once every shard is done; otherwise name the shards still
    missing, with the command that runs each, and exit 3."""
    with handle_errors(state):
        gb = open_repo(state, repo, password_file)
        try:
            backup = finish_shards(gb, backup_id, db=db)
        except ShardsMissing as exc:
            _missing(state, backup_id, exc)  # exits 3
    emit(state, backup.summary(), lambda: out_console.print(backup.describe(), highlight=False))


def _missing(state: State, backup_id: str, exc: ShardsMissing) -> NoReturn:
    words = carried(state.argv, "--repo", "--password-file", "--storage-option")
    next_steps(
        state,
        [
            (
                f"shard {n}",
                command_line([], add=("shard", "run", backup_id, "--index", str(n), *words)),
            )
            for n in exc.missing
        ],
    )
    fail(state, exc, EXIT_INCOMPLETE)


__all__ = ["shard"]
