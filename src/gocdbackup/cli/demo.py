"""``gocdbackup demo``: the whole story on an embedded PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import click

from gocdbackup.cli.common import JsonCommand, State, fail, handle_errors, out_console
from gocdbackup.errors import IntegrityError


@click.command(cls=JsonCommand)
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

    with handle_errors(state):
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
            "with every table, row count, goose version, secret and object intact, and a "
            "restore drill of the backup passed"
        )
    if not report.ok:
        fail(state, IntegrityError("the demo's checks failed"))
