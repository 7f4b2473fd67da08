"""The demo: the whole backup story on an embedded PostgreSQL, in well under a minute.

Start a throwaway server, create a gocdnext-shaped database, back it up into an encrypted
repository, destroy the database, restore it, and check that every table, every row count, the
goose version and every encrypted secret came back; then drill the backup (restore it again
into scratch, check it the way gocdnext's guide checks a restore by hand, tear it down).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from attrs import define, field

from gocdbackup._drill import run_drill
from gocdbackup._facade import GocdBackup
from gocdbackup.context import ProgressSink
from gocdbackup.drivers import gocdnext_fixture as fixture
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.local_server import LocalPostgres
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.drill import DrillReport
from gocdbackup.model.render import html_table
from gocdbackup.model.restore import RestoreReport
from gocdbackup.model.verify import VerifyReport


@define
class DemoStep:
    name: str
    seconds: float
    detail: str


@define
class DemoReport:
    steps: list[DemoStep] = field(factory=list)
    backup: BackupSet | None = None
    restore: RestoreReport | None = None
    verify: VerifyReport | None = None
    drill: DrillReport | None = None
    secrets_checked: int = 0
    objects_checked: int = 0
    ok: bool = False

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"step": s.name, "seconds": round(s.seconds, 2), "detail": s.detail} for s in self.steps
        ]

    def _repr_html_(self) -> str:
        return html_table(self.rows(), caption="demo: " + ("OK" if self.ok else "FAILED"))


def run_demo(
    *,
    progress: ProgressSink | None = None,
    on_step: Callable[[DemoStep], object] | None = None,
    spec: fixture.FixtureSpec | None = None,
    keep_dir: str | None = None,
) -> DemoReport:
    """Run the demo; every step is reported to ``on_step`` as it finishes."""
    report = DemoReport()

    @contextmanager
    def step(name: str) -> Iterator[list[str]]:
        detail: list[str] = []
        started = time.perf_counter()
        yield detail
        s = DemoStep(name=name, seconds=time.perf_counter() - started, detail=" ".join(detail))
        report.steps.append(s)
        if on_step is not None:
            on_step(s)

    work = keep_dir or tempfile.mkdtemp(prefix="gocdbackup-demo-")
    store_url = f"file://{work}/artifacts"  # laid out like /var/lib/gocdnext/artifacts
    secret_key = os.urandom(32)  # this demo's GOCDNEXT_SECRET_KEY
    try:
        with ExitStack() as stack:
            with step("start embedded PostgreSQL") as d:
                pg = stack.enter_context(LocalPostgres.start())
                d.append(f"127.0.0.1:{pg.port}")
            with step("create gocdnext database and artefacts") as d:
                fixture.create_database(pg.dsn(), "gocdnext")
                fixture.build(pg.dsn("gocdnext"), spec, secret_key=secret_key)
                objects = fixture.write_objects(pg.dsn("gocdnext"), FsspecStore(store_url))
                d.append(f"schema at goose 86, runs, jobs, logs, secrets; {objects} objects")
            with step("init encrypted repository") as d:
                gb = GocdBackup.init(
                    f"file://{work}/repo", password=os.urandom(16).hex(), progress=progress
                )
                d.append(gb.url)
            with step("backup") as d:
                report.backup = gb.backup(
                    pg.dsn("gocdnext"),
                    label="demo",
                    artifacts=store_url,
                    secret_key=secret_key.hex(),
                )
                d.append(report.backup.describe())
            with step("destroy the database and the store") as d:
                fixture.drop_database(pg.dsn(), "gocdnext")
                shutil.rmtree(f"{work}/artifacts")
                d.append("DROP DATABASE gocdnext; rm -r the artefact store")
            with step("restore both") as d:
                bid = report.backup.id
                report.restore = gb.restore(
                    bid, pg.dsn("gocdnext"), confirm=bid, artifacts=store_url
                )
                d.append(
                    f"{report.restore.tables_checked} tables, "
                    f"{report.restore.rows_checked} rows, goose "
                    f"{report.restore.goose_version}: all equal to the backup; "
                    f"{dict(report.restore.artifacts).get('written', 0)} objects written back"
                )
            with step("check secrets, objects, repository") as d:
                report.secrets_checked = fixture.decrypt_all(pg.dsn("gocdnext"), secret_key)
                report.objects_checked, problems = fixture.check_objects(
                    pg.dsn("gocdnext"), FsspecStore(store_url)
                )
                report.verify = gb.verify(read_data=100)
                d.append(
                    f"{report.secrets_checked} encrypted values decrypt; "
                    f"{report.objects_checked} referenced objects present and intact"
                    f"{'' if not problems else f' EXCEPT {len(problems)}'}; "
                    f"repository verify {'OK' if report.verify.ok else 'FAILED'}"
                )
            with step("restore drill") as d:
                report.drill = run_drill(
                    gb,
                    scratch_db=pg.dsn(),
                    secret_key=secret_key.hex(),
                    sample=1.0,
                    raise_on_failure=False,
                )
                d.append(report.drill.verdict())
        report.ok = bool(
            report.drill is not None
            and report.drill.ok
            and report.verify
            and report.verify.ok
            and report.secrets_checked
            and report.objects_checked
            and not problems
        )
    finally:
        if keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return report
