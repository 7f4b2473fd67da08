"""The ``gocdbackup`` command: thin over the facade; the only module that prints or exits."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from gocdbackup import GocdBackup
from gocdbackup.errors import ConfigError, GocdBackupError, IntegrityError
from gocdbackup.model import BackupSet, Manifest, ProgressEvent
from gocdbackup.model.durations import parse_duration
from gocdbackup.model.render import human_bytes
from gocdbackup.model.retention import RetentionPlan, RetentionPolicy

F = TypeVar("F", bound=Callable[..., Any])

# soft wrap: messages stay on one line (greppable in logs), whatever the terminal width
err_console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)


#: exit codes (docs/cli.md has the table)
EXIT_OK = 0  # the job is done
EXIT_FAILED = 1  # an error: nothing partial was committed
EXIT_USAGE = 2  # the command line is wrong: nothing was done
EXIT_INCOMPLETE = 3  # done as far as it safely could: what is left and how to finish is printed
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGINT: cleaned up, nothing partial was committed

_ARGV = "gocdbackup.argv"


class State:
    def __init__(self, as_json: bool = False, debug: bool = False) -> None:
        self.as_json = as_json
        self.debug = debug
        self.storage_options: dict[str, Any] = {}
        self.artifact_options: dict[str, Any] = {}

    @property
    def argv(self) -> list[str]:
        """The arguments as typed (after the program name), for the commands we print."""
        ctx = click.get_current_context(silent=True)
        return list(ctx.meta.get(_ARGV, ())) if ctx is not None else []


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).as_json = True


def _json_option() -> click.Option:
    return click.Option(
        ["--json", "as_json"],
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print one JSON document on stdout (also accepted before the command).",
    )


class _Command(click.Command):
    """Every command also takes ``--json`` after its name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_json_option())


class _Group(click.Group):
    command_class = _Command
    group_class = type  # subgroups are _Group too


def _wants_json(argv: list[str]) -> bool:
    end = argv.index("--") if "--" in argv else len(argv)
    return "--json" in argv[:end]


class _Main(_Group):
    """The top-level group: records the arguments as typed (the commands printed for the user
    to run next are built from them) and, with ``--json``, prints usage errors as JSON too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGV] = list(args)
        return super().parse_args(ctx, args)

    def main(  # type: ignore[override]
        self, args: list[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        extra.pop("standalone_mode", None)
        try:
            code = super().main(argv, prog_name or "gocdbackup", standalone_mode=False, **extra)
        except click.ClickException as exc:
            if _wants_json(argv):
                click.echo(_error_document("usage", exc.format_message()))
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            err_console.print("[bold red]interrupted[/]")
            sys.exit(EXIT_INTERRUPTED)
        if isinstance(code, int) and code:
            sys.exit(code)
        return code


def _error_document(code: str, message: str, problems: Any = ()) -> str:
    return json.dumps(
        {"error": {"code": code, "message": message, "problems": list(problems)}}, indent=2
    )


def _command_line(
    argv: list[str],
    *,
    drop: tuple[str, ...] = (),
    drop_flags: tuple[str, ...] = (),
    add: tuple[str, ...] = (),
) -> str:
    """``gocdbackup`` with ``argv`` less the options ``drop`` (with their values) and the
    flags ``drop_flags``, plus ``add``: a command that runs as printed, in the same shell."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        name, eq, _ = arg.partition("=")
        if name in drop_flags:
            i += 1
        elif name in drop:
            i += 1 if eq else 2
        else:
            out.append(arg)
            i += 1
    return shlex.join(["gocdbackup", *out, *add])


def _given(argv: list[str], option: str) -> list[str]:
    """Every ``option VALUE`` / ``option=VALUE`` as typed, in order, ready to be carried over."""
    out: list[str] = []
    i = 0
    while i < len(argv) and argv[i] != "--":
        name, eq, value = argv[i].partition("=")
        if name == option:
            if eq:
                out += [option, value]
            elif i + 1 < len(argv):
                out += [option, argv[i + 1]]
                i += 1
        i += 1
    return out


def _next_steps(state: State, lines: list[tuple[str, str | None]]) -> None:
    """What is left, each with the exact command that finishes it (stderr: stdout stays the
    result, or the JSON document)."""
    if state.as_json:
        return
    for text, command in lines:
        err_console.print(f"[yellow]left to do:[/] {text}", highlight=False)
        if command:
            err_console.print(f"  {command}", highlight=False, markup=False, soft_wrap=True)


def _emit(state: State, document: Any, human: Callable[[], None]) -> None:
    if state.as_json:
        click.echo(json.dumps(document, indent=2, default=str))
    else:
        human()


#: how the library's parameter words read on the command line
_FLAGS = (
    ("allow_empty_store=True", "--allow-empty-store"),
    ("read_data_percent", "--read-data"),
    ("fail_on_missing=True", "--fail-on-missing"),
    ("replace=True", "--replace"),
    ("confirm=", "--confirm "),
)


def _cli_words(message: str) -> str:
    for word, flag in _FLAGS:
        message = message.replace(word, flag)
    return message


def _fail(state: State, exc: BaseException, code: int = EXIT_FAILED) -> NoReturn:
    message = _cli_words(str(exc) or type(exc).__name__)
    problems = getattr(exc, "problems", ()) or ()
    if state.as_json:
        click.echo(_error_document(getattr(exc, "code", "error"), message, problems))
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    for p in list(problems)[:50]:
        err_console.print(f"  - {p}", highlight=False, markup=False)
    if state.debug:
        err_console.print_exception()
    sys.exit(code)


@contextmanager
def _errors(state: State) -> Iterator[None]:
    try:
        yield
    except GocdBackupError as exc:
        _fail(state, exc)
    except KeyboardInterrupt:
        if state.as_json:
            click.echo(_error_document("interrupted", "interrupted: nothing partial was committed"))
        err_console.print("[bold red]interrupted[/]: cleaned up; nothing partial was committed")
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit:
        raise
    except click.ClickException:
        raise  # usage errors: click prints them and exits 2
    except Exception as exc:  # a bug: still one line, and nothing partial was committed
        if state.debug:
            raise
        _fail(state, RuntimeError(f"internal error ({type(exc).__name__}); rerun with --debug"))


class _Bar:
    """Adapts progress events to a rich progress bar (only on a terminal, never with --json)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Bar:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[amount]}"),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def __call__(self, event: ProgressEvent) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(event.phase)
        if task is None:
            task = self._progress.add_task(event.phase, total=event.total, amount="")
            self._tasks[event.phase] = task
        self._progress.update(task, completed=event.done, total=event.total, amount=_amount(event))


def _amount(event: ProgressEvent) -> str:
    if event.unit == "bytes":
        done = f"{event.done / 1048576:.1f}"
        return f"{done}/{event.total / 1048576:.1f} MiB" if event.total else f"{done} MiB"
    return (
        f"{event.done}/{event.total} {event.unit}" if event.total else f"{event.done} {event.unit}"
    )


def _progress_enabled(state: State) -> bool:
    return not state.as_json and err_console.is_terminal


def _configure_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = RichHandler(console=err_console, show_path=False, show_time=debug)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s")
    logging.getLogger("gocdbackup").setLevel(level)


def _storage_options(values: tuple[str, ...]) -> dict[str, Any]:
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
    ctx.ensure_object(State).storage_options = _storage_options(values)


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


def _remember_artifact_options(
    ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> None:
    ctx.ensure_object(State).artifact_options = _storage_options(values)


def artifact_options(fn: F) -> F:
    return click.option(
        "--artifacts-option",
        "artifacts_option",
        multiple=True,
        metavar="KEY=VALUE",
        expose_value=False,
        callback=_remember_artifact_options,
        help="An fsspec storage option for --artifacts, e.g. endpoint_url=http://minio:9000 "
        "or version_aware=true (repeatable; never printed).",
    )(fn)


def transfers_option(fn: F) -> F:
    return click.option(
        "--transfers",
        type=click.IntRange(1, 256),
        default=8,
        show_default=True,
        help="Artefact objects copied or restored at once.",
    )(fn)


def db_option(fn: F) -> F:
    fn = click.option(
        "--pg-bindir",
        metavar="DIR",
        help="Directory holding pg_dump/pg_restore (default: discovered).",
    )(fn)
    return click.option(
        "--db",
        envvar="GOCDBACKUP_DB",
        required=True,
        metavar="DSN",
        help="libpq connection string or URI; PG* variables are honoured "
        "(default: $GOCDBACKUP_DB).",
    )(fn)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--debug", is_flag=True, help="Debug logging and tracebacks on errors.")
@click.option("-v", "--verbose", count=True, help="Log what is being done.")
@click.version_option(package_name="gocdbackup")
@click.pass_context
def main(ctx: click.Context, as_json: bool, debug: bool, verbose: int) -> None:
    """Consistent, encrypted, verifiable backups of a gocdnext installation."""
    _configure_logging(verbose, debug)
    state = ctx.ensure_object(State)
    state.as_json = state.as_json or as_json
    state.debug = debug


def _open(
    state: State, repo: str, password_file: str | None, progress: _Bar | None = None, **kw: Any
) -> GocdBackup:
    return GocdBackup(
        repo,
        password_file=password_file,
        progress=progress if progress and progress.enabled else None,
        storage_options=state.storage_options,
        artifact_options=state.artifact_options,
        **kw,
    )


@main.command()
@repo_options
@click.pass_obj
def init(state: State, repo: str, password_file: str | None) -> None:
    """Create a new, empty, encrypted repository."""
    with _errors(state):
        gb = GocdBackup.init(
            repo, password_file=password_file, storage_options=state.storage_options
        )
        cfg = gb.repository.config
        _emit(
            state,
            {"repo": gb.url, "repo_id": cfg.repo_id},
            lambda: out_console.print(
                f"initialised repository {gb.url} (id {cfg.repo_id})", highlight=False
            ),
        )


@main.command()
@repo_options
@db_option
@click.option("--label", default="", help="A free-text label stored with the backup.")
@click.option(
    "--artifacts",
    envvar="GOCDBACKUP_ARTIFACTS",
    metavar="STORE_URL",
    help="gocdnext's artefact store (file:///var/lib/gocdnext/artifacts, s3://bucket, "
    "gs://bucket): back up the objects the database references, at the same "
    "point in time; 'auto' reads where it is from gocdnext's platform settings "
    "(default: $GOCDBACKUP_ARTIFACTS).",
)
@click.option(
    "--secret-key-file",
    type=click.Path(dir_okay=False),
    help="gocdnext's application key, for --artifacts auto (default: $GOCDNEXT_SECRET_KEY).",
)
@click.option(
    "--fail-on-missing",
    is_flag=True,
    help="Fail (commit nothing) if a ready object is missing from the store.",
)
@artifact_options
@transfers_option
@click.pass_obj
def backup(
    state: State,
    *,
    repo: str,
    password_file: str | None,
    db: str,
    pg_bindir: str | None,
    label: str,
    artifacts: str | None,
    secret_key_file: str | None,
    fail_on_missing: bool,
    transfers: int,
) -> None:
    """Back up the database (and its artefact store) into the repository."""
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        gb = _open(state, repo, password_file, bar, pg_bindir=pg_bindir, transfers=transfers)
        b = gb.backup(
            db,
            label=label,
            artifacts=artifacts,
            fail_on_missing=fail_on_missing,
            secret_key_file=secret_key_file,
        )
    _emit(state, b.summary(), lambda: _print_backup_line(b))


def _print_backup_line(b: BackupSet) -> None:
    out_console.print(b.describe(), highlight=False, markup=False)


@main.command(name="list")
@repo_options
@click.pass_obj
def list_(state: State, repo: str, password_file: str | None) -> None:
    """List the backups in the repository, oldest first."""
    with _errors(state):
        backups = _open(state, repo, password_file).list_backups()
    _emit(state, backups.rows(), lambda: _print_list(backups))


def _print_list(backups: list[BackupSet]) -> None:
    table = Table(
        Column("id", no_wrap=True),
        Column("created (UTC)", no_wrap=True),
        Column("label", min_width=5),
        Column("database", min_width=8),
        Column("goose", min_width=5),
        Column("size", no_wrap=True, justify="right"),
        Column("stored", no_wrap=True, justify="right"),
        Column("dedup", min_width=5, justify="right"),
        box=None,
    )
    for b in backups:
        s = b.summary()
        table.add_row(
            b.id,
            f"{b.created_at:%Y-%m-%d %H:%M}",
            b.label,
            b.database.name,
            "-" if b.point.goose_version is None else str(b.point.goose_version),
            human_bytes(b.size_bytes),
            human_bytes(b.stored_bytes),
            f"{s['dedup_ratio']:.0%}",
        )
    out_console.print(table if backups else "no backups yet")


def _mib(n: int) -> str:
    return human_bytes(n)


@main.command()
@click.argument("backup_id")
@repo_options
@click.pass_obj
def show(state: State, backup_id: str, repo: str, password_file: str | None) -> None:
    """Show one backup: consistency point, database, tables."""
    with _errors(state):
        b = _open(state, repo, password_file).get_backup(backup_id)
    doc = Manifest(backup=b).to_dict()
    for c in doc["components"]:
        c["chunks"] = len(c["chunks"])
    doc["summary"] = b.summary()
    _emit(state, doc, lambda: _print_show(b))


def _print_show(b: BackupSet) -> None:
    out_console.print(b.describe(), highlight=False, markup=False)
    p = b.point
    facts = Table(Column("", style="bold"), "", box=None, show_header=False)
    facts.add_row("label", b.label or "-")
    facts.add_row("pinned", b.pin or "no")
    facts.add_row("snapshot", p.snapshot_at.isoformat())
    facts.add_row("WAL LSN", f"{p.wal_lsn} (timeline {p.timeline})")
    facts.add_row("server", f"PostgreSQL {p.server_version}, pg_dump {b.database.pg_dump_version}")
    facts.add_row(
        "goose version",
        "absent (no goose_db_version table)" if p.goose_version is None else str(p.goose_version),
    )
    if b.artifacts:
        facts.add_row("artefacts", b.describe_artifacts())
    out_console.print(facts)
    table = Table("table", Column("rows", justify="right"), box=None)
    for t in b.database.tables:
        table.add_row(t.name, f"{t.rows:,}")
    out_console.print(table)


@main.command()
@click.argument("backup_id")
@repo_options
@db_option
@click.option("--replace", is_flag=True, help="Replace the target database if it exists.")
@click.option("--confirm", required=True, metavar="ID", help="Repeat the backup id.")
@click.option(
    "--artifacts",
    envvar="GOCDBACKUP_ARTIFACTS",
    metavar="STORE_URL",
    help="Also write the backup's artefact objects back into this store "
    "(default: $GOCDBACKUP_ARTIFACTS).",
)
@artifact_options
@transfers_option
@click.pass_obj
def restore(
    state: State,
    *,
    backup_id: str,
    repo: str,
    password_file: str | None,
    db: str,
    pg_bindir: str | None,
    replace: bool,
    confirm: str,
    artifacts: str | None,
    transfers: int,
) -> None:
    """Restore a backup into the database --db names (created if absent)."""
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        gb = _open(state, repo, password_file, bar, pg_bindir=pg_bindir, transfers=transfers)
        report = gb.restore(backup_id, db, confirm=confirm, replace=replace, artifacts=artifacts)
    _emit(
        state,
        report.summary(),
        lambda: out_console.print(
            f"restored {report.backup_id} into {report.database!r}: {report.tables_checked} "
            f"tables and {report.rows_checked:,} rows match the backup, "
            + (
                "no goose version (as in the backup)"
                if report.goose_version is None
                else f"goose {report.goose_version}"
            ),
            highlight=False,
        ),
    )


def _percent(value: str) -> float:
    """``10``, ``10%`` or ``10.5%`` as a number from 0 to 100; anything else is a usage
    error (exit code 2), raised while click parses the command line."""
    text = value.strip().removesuffix("%").strip()
    try:
        percent = float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a percentage") from None
    if not 0.0 <= percent <= 100.0:  # also NaN and infinities
        raise click.BadParameter(f"{value!r} is not between 0 and 100 %")
    return percent


@main.command()
@click.argument("backup_id", required=False)
@repo_options
@click.option(
    "--read-data",
    default="0",
    metavar="PERCENT",
    help="Also download, decrypt and hash this share of the data (10, 10% or 10.5%; at "
    "least one chunk of each part of each backup).",
    callback=lambda _ctx, _param, value: _percent(value),
)
@click.pass_obj
def verify(
    state: State, backup_id: str | None, repo: str, password_file: str | None, read_data: float
) -> None:
    """Check the repository's backups (structure, and optionally a sample of the data); name
    every damaged blob and what it breaks."""
    with _errors(state):
        report = _open(state, repo, password_file).verify(backup_id, read_data=read_data)
    _emit(state, report.summary(), lambda: _print_verify(report.checks, report.problems))
    if not report.ok:
        if not state.as_json:
            err_console.print("[bold red]error:[/] the repository is damaged")
        sys.exit(1)


def _print_verify(checks: Any, problems: Any) -> None:
    """One line per backup, then one per damaged blob of it naming what the blob breaks."""
    for c in checks:
        out_console.print(
            ("ok      " if c.ok else "DAMAGED ") + str(c), highlight=False, markup=False
        )
        for d in c.damaged:
            out_console.print(f"          {d.describe()}", highlight=False, markup=False)
    for p in problems:
        out_console.print(f"DAMAGED {p}", highlight=False, markup=False)


@main.command()
@click.argument("backup_id")
@repo_options
@click.option("--to", "to_repo", required=True, metavar="URL", help="The target repository.")
@click.option(
    "--to-password-file",
    type=click.Path(dir_okay=False),
    help="Passphrase of the target (default: $GOCDBACKUP_TO_PASSWORD, else the "
    "source's passphrase).",
)
@click.pass_obj
def copy(
    state: State,
    *,
    backup_id: str,
    repo: str,
    password_file: str | None,
    to_repo: str,
    to_password_file: str | None,
) -> None:
    """Copy a backup to a second repository (3-2-1), re-encrypted with its keys."""
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        source = _open(state, repo, password_file, bar)
        to_password = os.environ.get("GOCDBACKUP_TO_PASSWORD") or None
        if to_password_file is None and to_password is None:
            target = _open(state, to_repo, password_file)
        else:
            target = GocdBackup(to_repo, password=to_password, password_file=to_password_file)
        result = source.copy(backup_id, target)
    s = result.summary()
    _emit(
        state,
        s,
        lambda: out_console.print(
            f"{backup_id} is already in {to_repo}"
            if result.already_there
            else f"copied {backup_id} to {to_repo}: {s['blobs_written']} new blobs, "
            f"{_mib(s['bytes_written'])} written and read back",
            highlight=False,
        ),
    )


def policy_options(fn: F) -> F:
    for flag, help_text in reversed(
        [
            ("--keep-last", "Keep the N newest successful backups."),
            ("--keep-daily", "Keep the newest backup of each of the last N days that have one."),
            ("--keep-weekly", "... of each of the last N ISO weeks that have one."),
            ("--keep-monthly", "... of each of the last N months that have one."),
            ("--keep-yearly", "... of each of the last N years that have one."),
        ]
    ):
        fn = click.option(flag, type=click.IntRange(min=0), default=0, metavar="N", help=help_text)(
            fn
        )
    fn = click.option(
        "--keep-within", metavar="DURATION", help="Keep every backup younger than this (e.g. 7d)."
    )(fn)
    return click.option(
        "--tz",
        default="UTC",
        show_default=True,
        metavar="ZONE",
        help="Time zone that days, weeks and months are counted in.",
    )(fn)


def _policy(kw: dict[str, Any]) -> RetentionPolicy:
    within = kw.pop("keep_within")
    return RetentionPolicy(
        keep_last=kw.pop("keep_last"),
        keep_daily=kw.pop("keep_daily"),
        keep_weekly=kw.pop("keep_weekly"),
        keep_monthly=kw.pop("keep_monthly"),
        keep_yearly=kw.pop("keep_yearly"),
        keep_within=_duration(within) if within else None,
        tz=kw.pop("tz"),
    )


@main.group()
def retention() -> None:
    """Forget old backups by a daily/weekly/monthly/yearly policy (pins are always kept)."""


def _print_plan(plan: RetentionPlan) -> None:
    table = Table(Column("id", no_wrap=True), "action", "reasons", box=None)
    for d in plan.decisions:
        table.add_row(d.backup_id, "keep" if d.keep else "[red]forget[/]", ", ".join(d.reasons))
    out_console.print(table)
    out_console.print(plan.summary(), highlight=False, markup=False)


@retention.command(name="plan")
@repo_options
@policy_options
@click.pass_obj
def retention_plan(state: State, /, repo: str, password_file: str | None, **kw: Any) -> None:
    """Show what the policy keeps and forgets, and the plan id to confirm (changes nothing)."""
    with _errors(state):
        plan = _open(state, repo, password_file).plan_retention(_policy(kw))
    _emit(state, plan.to_dict(), lambda: _print_plan(plan))


@retention.command(name="apply")
@repo_options
@policy_options
@click.option("--confirm", required=True, metavar="PLAN_ID", help="The id 'retention plan' showed.")
@click.pass_obj
def retention_apply(
    state: State, /, repo: str, password_file: str | None, confirm: str, **kw: Any
) -> None:
    """Forget what the plan forgets; refused if the plan is no longer the confirmed one."""
    with _errors(state):
        gb = _open(state, repo, password_file)
        plan = gb.plan_retention(_policy(kw))
        forgotten = gb.apply_retention(plan, confirm=confirm)
    gc_command = _command_line(
        [],
        add=(
            "gc",
            *_given(state.argv, "--repo"),
            *_given(state.argv, "--password-file"),
            *_given(state.argv, "--storage-option"),
        ),
    )
    _emit(
        state,
        {**plan.to_dict(), "forgotten": list(forgotten), "next": gc_command},
        lambda: out_console.print(
            f"forgot {len(forgotten)} backup(s); their space is reclaimed by: {gc_command}",
            highlight=False,
            markup=False,
        ),
    )


def _duration(value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@repo_options
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Keep unreferenced blobs younger than this (a backup may be writing them).",
)
@click.pass_obj
def gc(state: State, repo: str, password_file: str | None, dry_run: bool, grace: str) -> None:
    """Delete the blobs no backup references (after retention forgot backups)."""
    with _errors(state):
        result = _open(state, repo, password_file).gc(grace=_duration(grace), dry_run=dry_run)
    s = result.summary()

    def human() -> None:
        verb = "would delete" if dry_run else "deleted"
        count = s["to_delete"] if dry_run else s["deleted"]
        size = s["reclaimable_bytes"] if dry_run else s["deleted_bytes"]
        out_console.print(
            f"{verb} {count} of {s['blobs']} blobs ({_mib(size)}); "
            f"{s['too_recent']} unreferenced blobs are younger than {s['grace']}",
            highlight=False,
        )

    _emit(state, s, human)


@main.command()
@repo_options
@click.option(
    "--stale",
    is_flag=True,
    required=True,
    help="Remove expired lock files (the only kind this command removes).",
)
@click.pass_obj
def unlock(state: State, repo: str, password_file: str | None, stale: bool) -> None:
    """Remove stale locks left by crashed processes; live locks are never removed."""
    with _errors(state):
        removed = _open(state, repo, password_file).unlock_stale()
    _emit(
        state,
        {"removed": removed},
        lambda: out_console.print(f"removed {len(removed)} stale lock(s)", highlight=False),
    )


@main.command()
@click.argument("backup_id")
@repo_options
@click.option("--reason", required=True, help="Why it is kept (e.g. 'legal hold').")
@click.pass_obj
def pin(state: State, backup_id: str, repo: str, password_file: str | None, reason: str) -> None:
    """Pin a backup: retention never forgets it."""
    with _errors(state):
        b = _open(state, repo, password_file).pin(backup_id, reason=reason)
    _emit(state, b.summary(), lambda: out_console.print(f"pinned {b.id}: {b.pin}", highlight=False))


@main.command()
@click.argument("backup_id")
@repo_options
@click.pass_obj
def unpin(state: State, backup_id: str, repo: str, password_file: str | None) -> None:
    """Remove a backup's pin."""
    with _errors(state):
        b = _open(state, repo, password_file).unpin(backup_id)
    _emit(state, b.summary(), lambda: out_console.print(f"unpinned {b.id}", highlight=False))


@main.group()
def key() -> None:
    """The repository's key slots: several passphrases can open one repository."""


@key.command(name="list")
@repo_options
@click.pass_obj
def key_list(state: State, repo: str, password_file: str | None) -> None:
    """List the key slots (ids and labels, never key material)."""
    with _errors(state):
        keys = _open(state, repo, password_file).list_keys()

    def human() -> None:
        table = Table("id", "label", "created (UTC)", "in use", box=None)
        for k in keys:
            table.add_row(k["id"], k["label"], k["created_at"][:16], "*" if k["in_use"] else "")
        out_console.print(table)

    _emit(state, keys, human)


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
    with _errors(state):
        key_id = _open(state, repo, password_file).add_key(
            password_file=new_password_file, label=label
        )
    _emit(
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
    with _errors(state):
        _open(state, repo, password_file).remove_key(key_id)
    _emit(
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
    with _errors(state):
        key_id = _open(state, repo, password_file).change_password(password_file=new_password_file)
    _emit(
        state,
        {"id": key_id},
        lambda: out_console.print(f"passphrase changed (now key {key_id})", highlight=False),
    )


@main.command()
@click.pass_obj
def demo(state: State) -> None:
    """Run the whole story on an embedded PostgreSQL: backup, destroy, restore, check."""
    from gocdbackup.demo import run_demo  # noqa: PLC0415 - heavy, only for this command

    def on_step(step: Any) -> None:
        if not state.as_json:
            out_console.print(
                f"[green]✓[/] {step.name:<38} {step.seconds:6.2f}s  [dim]{step.detail}[/]",
                highlight=False,
            )

    with _errors(state):
        report = run_demo(on_step=on_step)
    if state.as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "steps": report.rows(),
                    "total_seconds": round(report.total_seconds, 2),
                },
                indent=2,
            )
        )
    elif report.ok:
        out_console.print(
            f"[bold green]demo OK[/] in {report.total_seconds:.1f}s: the "
            "database and its artefact store were backed up, destroyed and restored "
            "with every table, row count, goose version, secret and object intact"
        )
    if not report.ok:
        _fail(state, IntegrityError("the demo's checks failed"))


def _register() -> None:
    from gocdbackup.cli_orphans import orphans, runbook  # noqa: PLC0415 - it imports this module
    from gocdbackup.cli_sandbox import sandbox  # noqa: PLC0415 - it imports this module

    main.add_command(orphans)
    main.add_command(runbook)
    main.add_command(sandbox)


if __name__ == "__main__":  # pragma: no cover - ``python -m gocdbackup.cli``
    from gocdbackup.cli import main as registered  # the module proper, with every group

    registered()
else:
    _register()
