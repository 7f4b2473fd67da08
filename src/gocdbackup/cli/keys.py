"""``gocdbackup key list|add|remove|passwd``: the repository's key slots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Table

from gocdbackup.cli.common import JsonGroup, State, emit, handle_errors, out_console
from gocdbackup.cli.options import open_repo, repo_options

F = TypeVar("F", bound=Callable[..., Any])


@click.group(cls=JsonGroup)
def key() -> None:
    """The repository's key slots: several passphrases can open one repository."""


@key.command(name="list")
@repo_options
@click.pass_obj
def key_list(state: State, repo: str, password_file: str | None) -> None:
    """List the key slots (ids and labels, never key material)."""
    with handle_errors(state):
        keys = open_repo(state, repo, password_file).list_keys()

    def human() -> None:
        table = Table("id", "label", "created (UTC)", "in use", box=None)
        for k in keys:
            table.add_row(k["id"], k["label"], k["created_at"][:16], "*" if k["in_use"] else "")
        out_console.print(table)

    emit(state, keys, human)


def new_password_option(fn: F) -> F:
    return click.option(
        "--new-password-file",
        type=click.Path(dir_okay=False),
        help="File holding the new passphrase (default: $GOCDBACKUP_NEW_PASSWORD).",
    )(fn)


@key.command(name="add")
@repo_options
@new_password_option
@click.option("--label", default="", help="What this key is for (e.g. 'break-glass').")
@click.pass_obj
def key_add(
    state: State, repo: str, password_file: str | None, new_password_file: str | None, label: str
) -> None:
    """Add a key slot for another passphrase."""
    with handle_errors(state):
        key_id = open_repo(state, repo, password_file).add_key(
            password_file=new_password_file, label=label
        )
    emit(
        state,
        {"id": key_id, "label": label},
        lambda: out_console.print(f"added key {key_id}", highlight=False),
    )


@key.command(name="remove")
@click.argument("key_id")
@repo_options
@click.pass_obj
def key_remove(state: State, key_id: str, repo: str, password_file: str | None) -> None:
    """Remove a key slot (not the last one, not the one in use)."""
    with handle_errors(state):
        open_repo(state, repo, password_file).remove_key(key_id)
    emit(
        state,
        {"removed": key_id},
        lambda: out_console.print(f"removed key {key_id}", highlight=False),
    )


@key.command(name="passwd")
@repo_options
@new_password_option
@click.pass_obj
def key_passwd(
    state: State, repo: str, password_file: str | None, new_password_file: str | None
) -> None:
    """Change the passphrase of the key in use (rewraps the keys; data is not re-encrypted)."""
    with handle_errors(state):
        key_id = open_repo(state, repo, password_file).change_password(
            password_file=new_password_file
        )
    emit(
        state,
        {"id": key_id},
        lambda: out_console.print(f"passphrase changed (now key {key_id})", highlight=False),
    )
