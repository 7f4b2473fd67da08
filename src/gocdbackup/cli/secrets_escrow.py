"""``gocdbackup secrets escrow|recover|recipient|escrows``: gocdnext's application key kept
apart from the backups, sealed for a passphrase and/or recipients, or on paper; and read back.
The commands are added to the ``secrets`` group in :mod:`gocdbackup.cli.app`."""

from __future__ import annotations

import os
import sys

import click
from rich.table import Table

from gocdbackup import escrow_key, list_escrows, recover_key, save_recipient
from gocdbackup._escrow import ESCROW_PASSPHRASE_ENV
from gocdbackup.cli.common import JsonCommand, State, emit, err_console, handle_errors, out_console
from gocdbackup.cli.options import k8s_key, kube_options, secret_key_k8s_option, storage_options


def _remember_options(ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> None:
    """``KEY=VALUE`` fsspec options for the escrow's store, kept in the state like
    ``--storage-option``."""
    ctx.ensure_object(State).storage_options = storage_options(values)


_store_option = click.option(
    "--storage-option",
    multiple=True,
    metavar="KEY=VALUE",
    expose_value=False,
    callback=_remember_options,
    help="An fsspec storage option for the escrow's store, e.g. "
    "endpoint_url=http://minio:9000 (repeatable; never printed).",
)
_passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False),
    help=f"File holding the escrow passphrase (default: ${ESCROW_PASSPHRASE_ENV}; asked for "
    "on a terminal when nothing else opens the escrow).",
)
_replace_option = click.option(
    "--replace", is_flag=True, help="Overwrite the output file if it exists."
)


def _ask(confirm: bool) -> str | None:
    """The passphrase typed at the terminal (twice when escrowing); None off a terminal."""
    if not sys.stdin.isatty():
        return None
    value: str = click.prompt(
        "Escrow passphrase", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return value


@click.command(cls=JsonCommand, name="escrow")
@click.option(
    "--secret-key-file",
    type=click.Path(dir_okay=False),
    help="gocdnext's application key (default: $GOCDNEXT_SECRET_KEY).",
)
@click.option("--to", metavar="URL", help="Store to write the sealed key to (not the repository).")
@click.option(
    "--paper",
    metavar="FILE",
    help="Write the paper form (the key in checked hex lines) to FILE ('-': standard output).",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="PUBKEY",
    help="A recipient's public key (base64 or hex; see 'secrets recipient'); repeatable.",
)
@_passphrase_option
@click.option(
    "--repo",
    envvar="GOCDBACKUP_REPO",
    metavar="URL",
    help="The backup repository, which --to must stay out of (default: $GOCDBACKUP_REPO).",
)
@click.option("--no-repo", is_flag=True, help="There is no repository to keep --to apart from.")
@_store_option
@_replace_option
@secret_key_k8s_option
@kube_options
@click.pass_obj
def escrow(
    state: State,
    *,
    secret_key_file: str | None,
    secret_key_k8s: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    to: str | None,
    paper: str | None,
    recipients: tuple[str, ...],
    passphrase_file: str | None,
    repo: str | None,
    no_repo: bool,
    replace: bool,
) -> None:
    """Escrow the application key: sealed (passphrase and/or recipients) to --to, and/or on
    paper.  Prints the key's fingerprint, never the key (except the paper form with -)."""
    if to is None and paper is None:
        raise click.UsageError("give --to URL, --paper FILE, or both")
    if to is not None and repo is None and not no_repo:
        raise click.UsageError(
            "give --repo URL (or $GOCDBACKUP_REPO), the repository --to must stay out of, "
            "or --no-repo"
        )
    if paper == "-" and state.as_json:
        raise click.UsageError(
            "--paper - writes the paper form to standard output: not with --json"
        )
    passphrase = None
    wants_secret = to is not None and not recipients and not passphrase_file
    if wants_secret and not os.environ.get(ESCROW_PASSPHRASE_ENV):
        passphrase = _ask(confirm=True)
    with handle_errors(state):
        key = k8s_key(secret_key_k8s, secret_key_file, kubeconfig, kube_context)
        result = escrow_key(
            repo_url=None if no_repo else repo,
            to=to,
            paper=True if paper == "-" else paper,
            recipients=recipients,
            passphrase=passphrase,
            passphrase_file=passphrase_file,
            secret_key_file=secret_key_file,
            secret_key=key,
            storage_options=state.storage_options,
            replace=replace,
        )
    if paper == "-" and result.paper is not None:
        click.echo(result.paper, nl=False)
    console = err_console if paper == "-" else out_console

    def human() -> None:
        if result.location:
            opens = ["a passphrase"] if result.passphrase else []
            opens += [f"{len(result.recipients)} recipient(s)"] if result.recipients else []
            console.print(
                f"escrowed to {result.location}, opened by {' or '.join(opens)}", highlight=False
            )
        if result.paper_file:
            console.print(
                f"paper form written to {result.paper_file}: print it, check it, then delete "
                "the file",
                highlight=False,
            )
        console.print(f"application key fingerprint: {result.fingerprint}", highlight=False)

    emit(state, result.summary(), human)


@click.command(cls=JsonCommand, name="recover")
@click.option("--from", "source", metavar="URL", help="The escrow's store, or one escrow's URL.")
@click.option("--paper", metavar="FILE", help="The retyped paper form.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the key (64 hex characters, mode 0600).",
)
@_passphrase_option
@click.option(
    "--private-key-file",
    type=click.Path(dir_okay=False),
    help="A recipient's private key (from 'secrets recipient').",
)
@click.option("--fingerprint", metavar="FP", help="The key expected (its fingerprint).")
@_store_option
@_replace_option
@click.pass_obj
def recover(
    state: State,
    *,
    source: str | None,
    paper: str | None,
    out: str,
    passphrase_file: str | None,
    private_key_file: str | None,
    fingerprint: str | None,
    replace: bool,
) -> None:
    """Recover the application key from an escrow (--from) or its paper form (--paper) into
    --out, its fingerprint checked.  The key is never printed."""
    if (source is None) == (paper is None):
        raise click.UsageError("give one of --from URL and --paper FILE")
    passphrase = None
    if (
        source is not None
        and not passphrase_file
        and not private_key_file
        and not os.environ.get(ESCROW_PASSPHRASE_ENV)
    ):
        passphrase = _ask(confirm=False)
    with handle_errors(state):
        found = recover_key(
            source=source,
            paper=paper,
            passphrase=passphrase,
            passphrase_file=passphrase_file,
            private_key_file=private_key_file,
            fingerprint=fingerprint,
            out=out,
            replace=replace,
            storage_options=state.storage_options,
        )

    def human() -> None:
        for skipped in found.skipped:
            err_console.print(f"[yellow]skipped[/] {skipped}", highlight=False)
        out_console.print(
            f"key written to {out} (escrowed {found.written.isoformat()}, from "
            f"{found.source}); application key fingerprint: {found.fingerprint}",
            highlight=False,
            markup=False,
        )

    emit(state, {**found.summary(), "out": out}, human)


@click.command(cls=JsonCommand, name="recipient")
@click.option(
    "--private-key-out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the new private key (mode 0600): keep it offline.",
)
@_replace_option
@click.pass_obj
def recipient(state: State, *, private_key_out: str, replace: bool) -> None:
    """Make an escrow recipient: writes its private key, prints its public key (the last
    word), which 'secrets escrow --recipient' takes."""
    with handle_errors(state):
        public = save_recipient(private_key_out, replace=replace)
    emit(
        state,
        {"public_key": public, "private_key_file": private_key_out},
        lambda: out_console.print(
            f"private key written to {private_key_out}; public key: {public}",
            highlight=False,
            markup=False,
        ),
    )


@click.command(cls=JsonCommand, name="escrows")
@click.argument("url")
@_store_option
@click.pass_obj
def escrows(state: State, *, url: str) -> None:
    """List the escrows in the store URL, newest first (read from their names)."""
    with handle_errors(state):
        entries = list_escrows(url, state.storage_options)

    def human() -> None:
        table = Table("written (UTC)", "fingerprint", "name", box=None)
        for e in entries:
            table.add_row(e.written_at.strftime("%Y-%m-%d %H:%M:%S"), e.fingerprint, e.name)
        out_console.print(table)

    emit(state, [e.summary() for e in entries], human)
