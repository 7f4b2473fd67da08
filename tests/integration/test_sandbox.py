"""``gocdbackup.testing.fill_store``, ``gocdbackup.testing.sandbox()`` and ``gocdbackup
sandbox``: a real embedded PostgreSQL, real file stores, the CLI as a subprocess whose printed
lines are run exactly as printed, and signals sent for real."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from gocdbackup import ConfigError, GocdBackup, PostgresError
from gocdbackup.cli import main
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import check_objects
from gocdbackup.testing import (
    FixtureSpec,
    LocalPostgres,
    MemoryStore,
    decrypt_gocdnext,
    fill_store,
    sandbox,
)

pytestmark = pytest.mark.integration

BINDIR = Path(sys.executable).parent
STARTUP_TIMEOUT = 180  # seconds for the sandbox to print that it is ready


def _cli_env() -> dict[str, str]:
    """This environment without any GOCDBACKUP_ setting, with this venv's scripts on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOCDBACKUP_")}
    env["PATH"] = str(BINDIR) + os.pathsep + env.get("PATH", "")
    return env


def _sandbox_argv(*args: str) -> list[str]:
    """``gocdbackup [args] sandbox``; until ``sandbox`` is registered on the CLI, through a
    launcher that registers it exactly as ``gocdbackup.cli`` will."""
    if "sandbox" in main.commands:
        return [str(BINDIR / "gocdbackup"), *args]
    launcher = (
        "import sys; from gocdbackup.cli import main; "
        "from gocdbackup.cli.sandbox import sandbox; "
        "main.add_command(sandbox); sys.argv[0] = 'gocdbackup'; main()"
    )
    return [sys.executable, "-c", launcher, *args]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _port(dsn: str) -> int:
    return int(psycopg.conninfo.conninfo_to_dict(dsn)["port"] or 0)


# -- fill_store ------------------------------------------------------------------------------------


def test_fill_store_writes_every_referenced_object(gocdnext_db: str, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/artifacts"
    written = fill_store(gocdnext_db, url)
    checked, problems = check_objects(gocdnext_db, FsspecStore(url))
    assert written == checked > 0
    assert problems == []  # present, and with the SHA-256 its row now records
    with psycopg.connect(gocdnext_db) as conn:
        pending = conn.execute("SELECT storage_key FROM caches WHERE status <> 'ready'").fetchall()
    assert pending  # the fixture has pending caches: gocdnext stores nothing for them
    assert not any(FsspecStore(url).exists(k) for (k,) in pending)


def test_fill_store_takes_any_object_store_and_is_repeatable(gocdnext_db: str) -> None:
    first, second = MemoryStore(), MemoryStore()
    assert fill_store(gocdnext_db, first, seed=7) == fill_store(gocdnext_db, second, seed=7)
    assert first.objects == second.objects
    assert check_objects(gocdnext_db, second)[1] == []


# -- testing.sandbox() -----------------------------------------------------------------------------


def test_sandbox_is_a_working_installation_and_leaves_nothing(tmp_path: Path) -> None:
    where = tmp_path / "sb"
    with sandbox(where, spec=FixtureSpec(projects=1, runs_per_pipeline=5)) as sb:
        assert sb.dir == where
        assert _port_open(_port(sb.db))
        assert sb.password_file.parent == where
        assert sb.password_file.stat().st_mode & 0o077 == 0
        # the store holds what the database references, intact
        assert check_objects(sb.db, FsspecStore(sb.artifacts)) == (sb.objects, [])
        # the database's secrets open with the sandbox's GOCDNEXT_SECRET_KEY
        with psycopg.connect(sb.db) as conn:
            (blob,) = conn.execute(
                "SELECT value_enc FROM secrets WHERE value_enc IS NOT NULL LIMIT 1"
            ).fetchone() or (None,)
        assert blob is not None
        decrypt_gocdnext(sb.secret_key, bytes(blob))
        # the repository is initialised and empty; the passphrase is the file's
        gb = GocdBackup(sb.repo, password_file=sb.password_file)
        assert list(gb.list_backups()) == []
        backup = gb.backup(sb.db, label="sandbox", artifacts=sb.artifacts)
        assert dict(backup.artifacts)["copied"] == sb.objects
        # what the CLI reads, and never the superuser password in its repr
        env = sb.env()
        assert set(env) == {
            "GOCDBACKUP_DB",
            "GOCDBACKUP_REPO",
            "GOCDBACKUP_ARTIFACTS",
            "GOCDBACKUP_PASSWORD",
        }
        assert env["GOCDBACKUP_PASSWORD"] == sb.password
        secret = psycopg.conninfo.conninfo_to_dict(sb.db)["password"]
        assert secret
        assert str(secret) not in repr(sb)
        assert str(secret) not in sb._repr_html_()
        assert sb.password not in "\n".join(sb.exports())
        port = _port(sb.db)
    assert not where.exists()
    assert not _port_open(port)
    sb.close()  # again: nothing left to do


def test_sandbox_in_an_existing_empty_directory_leaves_it_empty(tmp_path: Path) -> None:
    sb = sandbox(tmp_path, spec=FixtureSpec(projects=1, runs_per_pipeline=2))
    try:
        assert {p.name for p in tmp_path.iterdir()} >= {"artifacts", "repo", "repo-passphrase"}
    finally:
        sb.close()
    assert tmp_path.is_dir()
    assert list(tmp_path.iterdir()) == []


def test_sandbox_refuses_a_directory_in_use(tmp_path: Path) -> None:
    keep = tmp_path / "precious.txt"
    keep.write_text("mine")
    with pytest.raises(ConfigError, match="not an empty directory"):
        sandbox(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_sandbox_in_a_long_directory_with_spaces(tmp_path: Path) -> None:
    # past a Unix socket's longest name (the server then listens on 127.0.0.1 only), and
    # with spaces (pg_ctl hands the server's options to a shell)
    where = tmp_path / ("a sandbox with spaces " + "x" * 80)
    with (
        sandbox(where, spec=FixtureSpec(projects=1, runs_per_pipeline=2)) as sb,
        psycopg.connect(sb.db) as conn,
    ):
        assert conn.execute("SELECT count(*) FROM projects").fetchone() == (1,)
    assert not where.exists()


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(PostgresError, match=r"did not start: .*shared_buffers"):
        LocalPostgres.start(parent_dir=str(tmp_path), settings={"shared_buffers": "bogus"})
    assert list(tmp_path.iterdir()) == []


# -- gocdbackup sandbox ----------------------------------------------------------------------------


class Running:
    """The ``gocdbackup sandbox`` process; its stdout read line by line in a thread."""

    def __init__(self, argv: list[str], stderr_path: Path) -> None:
        self._stderr = stderr_path.open("w")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=_cli_env(),
        )
        self.stderr_path = stderr_path
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def read_until(self, predicate: object, timeout: float = STARTUP_TIMEOUT) -> list[str]:
        """Lines up to and including the first for which ``predicate(line)`` is true."""
        out: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no ready line in {timeout}s: {out} {self.stderr()}")
            if line is None:
                pytest.fail(f"the sandbox ended early: {out} {self.stderr()}")
            out.append(line)
            if callable(predicate) and predicate(line):
                return out

    def rest(self) -> str:
        lines = []
        while (line := self._lines.get(timeout=60)) is not None:
            lines.append(line)
        return "\n".join(lines)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=120)
        self._stderr.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for r in started:  # a failed test must not leave a sandbox behind
        r.kill()


def _printed_block(lines: list[str], heading: str) -> list[str]:
    """The lines after ``heading`` (and its blank line) up to the next blank line."""
    start = lines.index(heading) + 2
    end = lines.index("", start)
    return lines[start:end]


def test_cli_sandbox_prints_lines_that_work_and_ctrl_c_removes_everything(
    tmp_path: Path, running: list[Running]
) -> None:
    where = tmp_path / "sandbox"
    r = Running(_sandbox_argv("sandbox", "--dir", str(where)), tmp_path / "stderr")
    running.append(r)
    lines = r.read_until(lambda line: line.startswith("Press Ctrl-C"))
    exports = _printed_block(lines, "In another terminal:")
    commands = _printed_block(lines, "then try:")
    assert [e.split("=")[0] for e in exports] == [
        "export GOCDBACKUP_DB",
        "export GOCDBACKUP_REPO",
        "export GOCDBACKUP_ARTIFACTS",
        "export GOCDBACKUP_PASSWORD",
    ]
    passphrase = (where / "repo-passphrase").read_text()
    assert passphrase not in "\n".join(lines)  # read from its file, never printed
    assert where.is_dir()

    # another terminal: the exports, then every command exactly as printed
    script = tmp_path / "try.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(exports + commands) + "\n")
    done = subprocess.run(
        ["bash", str(script)], env=_cli_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored" in done.stdout

    assert r.stop(signal.SIGINT) == 0, r.stderr()  # Ctrl-C is how a sandbox ends
    assert not where.exists()
    assert "sandbox stopped" in r.stderr()
    port = int(exports[0].split("port=")[1].split()[0])
    assert not _port_open(port)


def test_cli_sandbox_json_prints_one_document_and_sigterm_cleans_up(
    tmp_path: Path, running: list[Running]
) -> None:
    r = Running(_sandbox_argv("--json", "sandbox"), tmp_path / "stderr")
    running.append(r)
    text = "\n".join(r.read_until(lambda line: line == "}"))
    doc = json.loads(text)
    where = Path(doc["dir"])
    assert where.is_dir()
    assert set(doc["env"]) == {"GOCDBACKUP_DB", "GOCDBACKUP_REPO", "GOCDBACKUP_ARTIFACTS"}
    assert doc["objects"] > 0
    env = {
        **_cli_env(),
        **doc["env"],
        "GOCDBACKUP_PASSWORD": Path(doc["password_file"]).read_text(),
    }
    backed = subprocess.run(
        ["gocdbackup", "--json", "backup", "--artifacts", doc["env"]["GOCDBACKUP_ARTIFACTS"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert backed.returncode == 0, backed.stderr
    listed = subprocess.run(
        ["gocdbackup", "--json", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert [b["id"] for b in json.loads(listed.stdout)] == [json.loads(backed.stdout)["id"]]

    assert r.stop(signal.SIGTERM) == 0, r.stderr()
    assert r.rest() == ""  # stdout held the one JSON document and nothing else
    assert not where.exists()
    assert not _port_open(_port(doc["env"]["GOCDBACKUP_DB"]))


def test_cli_sandbox_refuses_a_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    done = subprocess.run(
        _sandbox_argv("sandbox", "--dir", str(tmp_path)),
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "not an empty directory" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_cli_sandbox_stopped_while_starting_leaves_nothing(
    tmp_path: Path, running: list[Running]
) -> None:
    where = tmp_path / "sandbox"
    r = Running(_sandbox_argv("sandbox", "--dir", str(where)), tmp_path / "stderr")
    running.append(r)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while "starting the sandbox" not in r.stderr():  # printed once signals are handled
        assert time.monotonic() < deadline, r.stderr()
        assert r.proc.poll() is None, r.stderr()
        time.sleep(0.01)
    code = r.stop(signal.SIGTERM)
    # stopped while starting: cleaned up, 130 ("interrupted"); or it was just ready: 0
    assert code in (0, 130), r.stderr()
    assert not where.exists()
    left = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if str(where) in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []  # no PostgreSQL process of this sandbox is left
