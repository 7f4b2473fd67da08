"""The CLI's plumbing, shared by every command module: the consoles, the exit codes, the state
the global options set, the command classes (``--json`` before or after the command), the JSON
and human output, error handling, the progress bar, and the commands we print for the user to
run next (built from the arguments as typed)."""

from __future__ import annotations

import json
import re
import shlex
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from gocdbackup.errors import GocdBackupError
from gocdbackup.model import ProgressEvent

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

#: what is left to do: (what, the command that does it, or None)
Left = list[tuple[str, str | None]]


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


class JsonCommand(click.Command):
    """Every command also takes ``--json`` after its name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_json_option())


class JsonGroup(click.Group):
    command_class = JsonCommand
    group_class = type  # subgroups are of the same class


def _wants_json(argv: list[str]) -> bool:
    end = argv.index("--") if "--" in argv else len(argv)
    return "--json" in argv[:end]


class MainGroup(JsonGroup):
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


# -- the commands we print ---------------------------------------------------------------------


def command_line(
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
    words, omitted = without_credentials([*out, *add])
    line = shlex.join(["gocdbackup", *words])
    if omitted:
        line += (
            "  # credentials omitted: give them as before through the environment "
            "(PGPASSWORD, ~/.pgpass, GOCDBACKUP_DB, AWS_*/GOOGLE_* variables)"
        )
    return line


#: option values that may carry credentials, and storage-option keys that do
_OPTIONS_WITH_PAIRS = frozenset({"--storage-option", "--artifacts-option"})
_SECRET_KEY = re.compile(r"secret|passw|token|credential|(^|_)key$", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"^(?P<head>[a-zA-Z][\w+.-]*://[^/@:]*):[^/@]*@")
_KEYWORD_PASSWORD = re.compile(r"(^|\s)password\s*=\s*('(\\.|[^'])*'|\S*)")
_QUERY_PASSWORD = re.compile(r"([?&])password=[^&]*&?")


def without_credentials(words: list[str]) -> tuple[list[str], bool]:
    """``words`` with every password removed from connection strings and URLs, and every
    storage option whose key names a credential dropped; and whether anything was."""
    out: list[str] = []
    omitted = False
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if name in _OPTIONS_WITH_PAIRS:
            pair = value if eq else (words[i + 1] if i + 1 < len(words) else "")
            if _SECRET_KEY.search(pair.partition("=")[0]):
                omitted = True
                i += 1 if eq else 2
                continue
        clean = _KEYWORD_PASSWORD.sub("", _URI_PASSWORD.sub(r"\g<head>@", word))
        clean = _QUERY_PASSWORD.sub(r"\1", clean).rstrip("?&")
        if clean != word:
            omitted = True
        out.append(clean.strip() if clean != word else clean)
        i += 1
    return out, omitted


def given(argv: list[str], option: str) -> list[str]:
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


def carried(argv: list[str], *options: str) -> list[str]:
    """:func:`given` for each of ``options``, one after the other."""
    return [word for option in options for word in given(argv, option)]


def next_steps(state: State, lines: Left) -> None:
    """What is left, each with the exact command that finishes it (stderr: stdout stays the
    result, or the JSON document)."""
    if state.as_json:
        return
    for text, command in lines:
        err_console.print(f"[yellow]left to do:[/] {text}", highlight=False)
        if command:
            err_console.print(f"  {command}", highlight=False, markup=False, soft_wrap=True)


def left_document(left: Left) -> list[dict[str, str | None]]:
    """``left`` as the ``left`` list of a JSON document."""
    return [{"what": text, "command": command} for text, command in left]


# -- output and errors -------------------------------------------------------------------------


def emit(state: State, document: Any, human: Callable[[], None]) -> None:
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
    # before password_file=FILE, which it contains
    ("new_password_file=FILE", "--new-password-file"),
    ("password_file=FILE", "--password-file"),
    ("new_secret_key_file=FILE", "--new-secret-key-file FILE"),
    ("secret_key_file=FILE", "--secret-key-file"),
    ("pg_bindir=DIR", "--pg-bindir DIR"),
    ("repo=URL", "--repo URL"),
    ("artifacts=URL", "--artifacts URL"),
    ("unlock_stale()", "'gocdbackup unlock --stale'"),
    ("read_data=", "--read-data "),
    ("to=URL", "--to URL"),
    ("paper=FILE", "--paper FILE"),
    ("out=FILE", "--out FILE"),
    ("source=URL", "--from URL"),
    ("fingerprint=...", "--fingerprint FP"),
    ("passphrase_file=FILE", "--passphrase-file FILE"),
    ("recipients=[public key, ...]", "--recipient PUBKEY"),
)


def _cli_words(message: str) -> str:
    for word, flag in _FLAGS:
        message = message.replace(word, flag)
    return message


def fail(state: State, exc: BaseException, code: int = EXIT_FAILED) -> NoReturn:
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
def handle_errors(state: State) -> Iterator[None]:
    try:
        yield
    except GocdBackupError as exc:
        fail(state, exc)
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
        fail(state, RuntimeError(f"internal error ({type(exc).__name__}); rerun with --debug"))


# -- progress ----------------------------------------------------------------------------------


class ProgressBar:
    """Adapts progress events to a rich progress bar (only on a terminal, never with --json)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()  # events come from worker threads too

    def __enter__(self) -> ProgressBar:
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
        amount = _amount(event) + (f"  {event.message[:48]}" if event.message else "")
        with self._lock:
            task = self._tasks.get(event.phase)
            if task is None:
                task = self._progress.add_task(event.phase, total=event.total, amount="")
                self._tasks[event.phase] = task
            self._progress.update(task, completed=event.done, total=event.total, amount=amount)


def _amount(event: ProgressEvent) -> str:
    if event.unit == "bytes":
        done = f"{event.done / 1048576:.1f}"
        return f"{done}/{event.total / 1048576:.1f} MiB" if event.total else f"{done} MiB"
    return (
        f"{event.done}/{event.total} {event.unit}" if event.total else f"{event.done} {event.unit}"
    )


def progress_bar(state: State) -> ProgressBar:
    """A progress bar for one command: shown only on a terminal, never with ``--json``."""
    return ProgressBar(not state.as_json and err_console.is_terminal)
