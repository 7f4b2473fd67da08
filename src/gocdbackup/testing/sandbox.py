"""A real gocdnext installation to try things on: :func:`fill_store` (the objects a gocdnext
database's rows reference, in a real store) and :func:`sandbox` (server, database, filled store
and an empty repository, all under one directory)."""

from __future__ import annotations

import atexit
import os
import secrets
import shlex
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from attrs import define, field

from gocdbackup._facade import GocdBackup
from gocdbackup.drivers import gocdnext_fixture
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import FixtureSpec
from gocdbackup.drivers.local_server import LocalPostgres
from gocdbackup.drivers.postgres.server import dsn_without_password
from gocdbackup.errors import ConfigError
from gocdbackup.model.render import kv_table
from gocdbackup.ports import ObjectStore


def fill_store(
    dsn: str,
    store: str | ObjectStore,
    *,
    storage_options: dict[str, Any] | None = None,
    seed: int = 0,
) -> int:
    """Put a real object into ``store`` for every object the gocdnext database at ``dsn``
    references; the number of objects written.

    That is a small ``.tar.gz`` for every ``ready`` artefact and ``ready`` cache row, and a
    gzipped log for every job whose logs are archived (``job_runs.logs_archive_uri``), each at
    the key its row names.  Like gocdnext's agents, it then records each artefact's and cache's
    true size and SHA-256 in its row, so ``dsn`` must be allowed to update those tables (the
    role that built the database is).  Pending rows get no object, as in gocdnext.  The
    contents are random, from ``seed``.

    ``store`` is an :class:`~gocdbackup.ports.ObjectStore` or an fsspec URL
    (``file:///…``, ``s3://bucket/prefix``, ``gs://…``), opened with ``storage_options``.
    Typically used on a database made by :func:`build_gocdnext_fixture`::

        build_gocdnext_fixture(dsn, FixtureSpec(), secret_key=os.urandom(32))
        fill_store(dsn, "file:///tmp/artifacts")
    """
    target = FsspecStore(store, storage_options) if isinstance(store, str) else store
    return gocdnext_fixture.write_objects(dsn, target, seed=seed)


SANDBOX_DATABASE = "gocdnext"
_PASSPHRASE_FILE = "repo-passphrase"  # noqa: S105 - a file name


@define(kw_only=True, eq=False, repr=False)
class Sandbox:
    """A throwaway gocdnext installation, all under :attr:`dir`: an embedded PostgreSQL holding
    a gocdnext-shaped database, an artefact store filled with the objects its rows reference,
    and an empty, initialised repository.  Made by :func:`sandbox`; :meth:`close` (or the end
    of its ``with`` block) stops the server and removes everything."""

    #: the directory everything lives in
    dir: Path
    #: libpq DSN of the gocdnext database, as the server's superuser (its password is a
    #: throwaway one, but it is in here: not shown by ``repr``)
    db: str = field(repr=False)
    #: the artefact store's URL (``file://…``)
    artifacts: str
    #: the repository's URL (``file://…``), initialised, no backups yet
    repo: str
    #: file holding the repository's passphrase (mode 0600)
    password_file: Path
    #: objects written into the artefact store
    objects: int
    #: the database's ``GOCDNEXT_SECRET_KEY`` (32 bytes), to check its encrypted values
    secret_key: bytes = field(repr=False)
    _stack: ExitStack = field(init=False, factory=ExitStack, repr=False)

    @property
    def password(self) -> str:
        """The repository's passphrase (read from :attr:`password_file`)."""
        return self.password_file.read_text()

    def env(self) -> dict[str, str]:
        """The environment the CLI reads: ``GOCDBACKUP_DB``, ``GOCDBACKUP_REPO``,
        ``GOCDBACKUP_ARTIFACTS`` and ``GOCDBACKUP_PASSWORD`` (the passphrase itself), e.g.
        ``subprocess.run(["gocdbackup", "list"], env={**os.environ, **sb.env()})``."""
        return {
            "GOCDBACKUP_DB": self.db,
            "GOCDBACKUP_REPO": self.repo,
            "GOCDBACKUP_ARTIFACTS": self.artifacts,
            "GOCDBACKUP_PASSWORD": self.password,
        }

    def exports(self) -> list[str]:
        """:meth:`env` as POSIX shell ``export`` lines; the passphrase is read from its file
        when the line runs (``"$(cat …)"``), so it is never printed."""
        lines = [
            f"export {name}={shlex.quote(value)}"
            for name, value in self.env().items()
            if name != "GOCDBACKUP_PASSWORD"
        ]
        lines.append(f'export GOCDBACKUP_PASSWORD="$(cat {shlex.quote(str(self.password_file))})"')
        return lines

    def close(self) -> None:
        """Stop the server and remove everything the sandbox made (again: nothing)."""
        atexit.unregister(self.close)
        self._stack.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _summary(self) -> list[tuple[str, Any]]:
        return [
            ("dir", str(self.dir)),
            ("db", dsn_without_password(self.db)),
            ("artifacts", f"{self.artifacts} ({self.objects} objects)"),
            ("repo", self.repo),
            ("password_file", str(self.password_file)),
        ]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._summary())
        return f"Sandbox({fields})"

    def _repr_html_(self) -> str:
        return kv_table(self._summary(), caption="gocdbackup sandbox")


def _sandbox_dir(directory: str | Path | None, stack: ExitStack) -> Path:
    """The sandbox's directory, made now (or, if it exists, checked empty); ``stack`` removes
    what was made.  Its removal is registered before it is made: an interrupt right after the
    ``mkdir`` must not leave it behind."""
    if directory is not None:
        path = Path(directory).absolute()
        if path.exists():
            if not path.is_dir() or any(path.iterdir()):
                raise ConfigError(f"the sandbox directory {path} is not an empty directory")
            stack.callback(_empty, path)  # it was there before: leave it, empty
            return path
        if _make_dir(path, stack):
            return path
        raise ConfigError(f"the sandbox directory {path} was just made by someone else")
    while True:
        path = Path(tempfile.gettempdir()) / f"gocdbackup-sandbox-{secrets.token_hex(6)}"
        if _make_dir(path, stack):
            return path


def _make_dir(path: Path, stack: ExitStack) -> bool:
    """Make ``path`` (mode 0700, with its parents), removed with ``stack``; False if it
    exists already (then it is not ours, and left alone)."""
    ours = [True]

    def remove() -> None:
        if ours[0]:
            shutil.rmtree(path, ignore_errors=True)

    stack.callback(remove)
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        ours[0] = False
        return False
    return True


def _empty(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def sandbox(
    directory: str | Path | None = None,
    *,
    spec: FixtureSpec | None = None,
    pg_bindir: str | None = None,
) -> Sandbox:
    """Start a throwaway gocdnext installation to try gocdbackup on (a few seconds).

    Starts an embedded PostgreSQL (the ``embedded`` extra, or a ``pg_bindir``
    with ``initdb`` and ``pg_ctl``) listening on 127.0.0.1 only, creates a gocdnext-shaped
    database (``spec``; small by default), fills an artefact store with the objects its rows
    reference (:func:`fill_store`) and initialises an empty repository whose passphrase is in
    a file.  Everything lives under ``directory``, which must be absent or empty (default: a
    new temporary directory).  Use it as a context manager, or call :meth:`Sandbox.close`
    (also done at interpreter exit)::

        with sandbox() as sb:
            gb = GocdBackup(sb.repo, password_file=sb.password_file)
            gb.backup(sb.db, artifacts=sb.artifacts)
    """
    with ExitStack() as stack:
        path = _sandbox_dir(directory, stack)
        server = stack.enter_context(
            LocalPostgres.start(
                bindir=pg_bindir, password=secrets.token_hex(16), parent_dir=str(path)
            )
        )
        secret_key = os.urandom(32)
        gocdnext_fixture.create_database(server.dsn(), SANDBOX_DATABASE)
        db = server.dsn(SANDBOX_DATABASE)
        gocdnext_fixture.build(db, spec, secret_key=secret_key)
        (path / "artifacts").mkdir()
        artifacts = f"file://{path}/artifacts"  # laid out like /var/lib/gocdnext/artifacts
        objects = fill_store(db, artifacts)
        password_file = path / _PASSPHRASE_FILE
        password_file.touch(mode=0o600)
        password_file.write_text(secrets.token_urlsafe(24))
        repo = f"file://{path}/repo"
        GocdBackup.init(repo, password_file=password_file)
        made = Sandbox(
            dir=path,
            db=db,
            artifacts=artifacts,
            repo=repo,
            password_file=password_file,
            objects=objects,
            secret_key=secret_key,
        )
        made._stack = stack.pop_all()  # ready: from now on close() tears it down
    atexit.register(made.close)
    return made
