"""The repository's options (``--repo``, ``--password-file``, ``--storage-option``) and the
parsing of ``KEY=VALUE`` storage options: what every command that opens the repository
shares, importing nothing heavy (PostgreSQL's per-segment WAL hooks load only this)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gocdbackup.cli.common import State

F = TypeVar("F", bound=Callable[..., Any])


def storage_options(values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that parses as JSON (numbers, true, objects) is used as such."""
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item.split('=')[0]!r}=…")
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def _remember_storage_options(
    ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> None:
    ctx.ensure_object(State).storage_options = storage_options(values)


def repo_options(fn: F) -> F:
    fn = click.option(
        "--storage-option",
        "storage_option",
        multiple=True,
        metavar="KEY=VALUE",
        expose_value=False,
        callback=_remember_storage_options,
        help="An fsspec storage option for --repo, e.g. endpoint_url=http://minio:9000 "
        "(repeatable; never printed).",
    )(fn)
    fn = click.option(
        "--password-file",
        type=click.Path(dir_okay=False),
        help="File holding the repository passphrase; without it the passphrase itself is "
        "read from $GOCDBACKUP_PASSWORD.",
    )(fn)
    return click.option(
        "--repo",
        envvar="GOCDBACKUP_REPO",
        required=True,
        metavar="URL",
        help="Repository URL: file:///…, s3://bucket/prefix, gs://…, memory://… "
        "(default: $GOCDBACKUP_REPO).",
    )(fn)
