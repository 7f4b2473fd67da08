"""PostgreSQL in a pod (the gocdnext Helm chart's bundled database): the same
:class:`~gocdbackup.drivers.postgres.PostgresServer`, with its SQL carried by a port-forward
tunnel and pg_dump / pg_restore run in the pod's container over exec, their data streamed
through the API server (never to a local file).  So a backup exports its snapshot on a
tunnelled session, reads gocdnext's rows in it, and the pod's ``pg_dump --snapshot`` dumps
exactly that snapshot: one consistency point, as for a local server."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from kubernetes import client
from psycopg.conninfo import make_conninfo

from gocdbackup.drivers.kube.exec import PodProcess, pod_output
from gocdbackup.drivers.kube.tunnel import PortTunnel
from gocdbackup.drivers.postgres.gocdnext import goose_version
from gocdbackup.drivers.postgres.server import PostgresServer
from gocdbackup.drivers.postgres.tools import PgTool, Running
from gocdbackup.errors import ToolTooOld
from gocdbackup.gocdnext.helm import DEV_DATABASE, POSTGRES_CONTAINER

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
#: the variables worth passing to a tool in the pod (by ``env``): never a password
_PASSED = ("PGOPTIONS",)


class KubeExecPostgres(PostgresServer):
    """The database ``dbname`` of the PostgreSQL in ``container`` of ``pod``: SQL through a
    port-forward of ``port`` as ``user`` (``password`` for that TCP login), tools in the pod
    over exec, connecting to the pod's own server as ``user`` (its local socket)."""

    #: the tools run in the pod: no file of this machine reaches them (no ``pg_restore -j``)
    tools_read_local_files = False

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        pod: str,
        container: str = POSTGRES_CONTAINER,
        *,
        dbname: str = DEV_DATABASE,
        user: str = DEV_DATABASE,
        password: str | None = None,
        port: int = 5432,
    ) -> None:
        self._api, self._namespace, self._pod, self._container = api, namespace, pod, container
        self._user = user
        self._tools: dict[str, PgTool] = {}
        self._tunnel = PortTunnel(api, namespace, pod, port)
        dsn = make_conninfo(
            host="127.0.0.1",
            port=str(self._tunnel.local_port),
            dbname=dbname,
            user=user,
            **({"password": password} if password else {}),
        )
        super().__init__(dsn, schema_version=goose_version)

    def __repr__(self) -> str:
        return f"KubeExecPostgres({self.where!r})"

    @property
    def where(self) -> str:
        return f"pod {self._namespace}/{self._pod}, database {self.name}"

    def close(self) -> None:
        """Stop the tunnel (sessions still open through it end)."""
        self._tunnel.close()

    def __enter__(self) -> KubeExecPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def source_id(self) -> str:
        return f"k8s://{self._namespace}/{self._pod}/{self.name} ({super().source_id()})"

    # -- the tools run in the pod --------------------------------------------------------------

    def tool_conninfo(self, dbname: str | None = None) -> str:
        return make_conninfo(dbname=dbname or self.name, user=self._user)

    def tool_env(self) -> dict[str, str]:
        return {}

    def find_tool(self, name: str, min_major: int, *, prefer_major: int | None) -> PgTool:
        tool = self._tools.get(name)
        if tool is None:  # asked once per tool: a restore by tables runs it many times
            code, out, err = pod_output(
                self._api, self._namespace, self._pod, self._container, [name, "--version"]
            )
            found = _VERSION.search(out)
            if code != 0 or found is None:
                raise ToolTooOld(
                    f"no {name} in container {self._container} of pod {self._namespace}/"
                    f"{self._pod} ({(err or out).strip()[:200] or f'exit code {code}'})"
                )
            version = found.group(0).split()[-1]
            tool = PgTool(name=name, path=name, version=version, major=int(found.group(1)))
            self._tools[name] = tool
        if tool.major < min_major:
            raise ToolTooOld(
                f"the pod's {name} is PostgreSQL {tool.major}; PostgreSQL {min_major} or newer "
                "is needed"
            )
        return tool

    def run_tool(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        stdout: int | None,
        tool: str,
        stdin: int | None = subprocess.DEVNULL,
    ) -> AbstractContextManager[Running]:
        passed = [f"{k}={env[k]}" for k in _PASSED if env.get(k)]
        argv = ["env", *passed, *args] if passed else list(args)
        return self._run(
            argv, stdin=stdin == subprocess.PIPE, stdout=stdout == subprocess.PIPE, tool=tool
        )

    @contextmanager
    def _run(self, argv: list[str], *, stdin: bool, stdout: bool, tool: str) -> Iterator[Running]:
        with tempfile.TemporaryFile() as err:
            proc = PodProcess(
                self._api,
                self._namespace,
                self._pod,
                self._container,
                argv,
                stdin=stdin,
                stdout=stdout,
                stderr=err,
            )
            running = Running(proc, err, tool)
            try:
                yield running
            finally:
                running.reap()
