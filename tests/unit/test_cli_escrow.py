"""``secrets escrow|recover|recipient|escrows`` on the command line (the commands invoked on
their own: app.py adds them to the ``secrets`` group)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gocdbackup.cli import secrets_escrow
from gocdbackup.cli.common import State
from gocdbackup.gocdnext.secrets import fingerprint

KEY = os.urandom(32)


def _run(command: click.Command, args: list[str], **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        command, args, obj=State(), env={"GOCDNEXT_SECRET_KEY": KEY.hex(), **env}
    )
    return result.exit_code, result.stdout, result.stderr


def test_escrow_to_a_store_for_a_recipient_and_recover(tmp_path: Path) -> None:
    code, out, _ = _run(
        secrets_escrow.recipient, ["--private-key-out", str(tmp_path / "alice.key")]
    )
    assert code == 0
    public = out.split()[-1]
    code, out, err = _run(
        secrets_escrow.escrow,
        ["--to", str(tmp_path / "escrow"), "--recipient", public, "--repo", str(tmp_path / "repo")],
    )
    assert code == 0, err
    assert out.split()[-1] == fingerprint(KEY)
    assert KEY.hex() not in out + err
    code, out, err = _run(
        secrets_escrow.recover,
        [
            "--from",
            str(tmp_path / "escrow"),
            "--private-key-file",
            str(tmp_path / "alice.key"),
            "--out",
            str(tmp_path / "key"),
        ],
    )
    assert code == 0, err
    assert (tmp_path / "key").read_text() == KEY.hex() + "\n"
    assert out.split()[-1] == fingerprint(KEY)
    assert KEY.hex() not in out + err
    code, out, _ = _run(secrets_escrow.escrows, [str(tmp_path / "escrow"), "--json"])
    assert code == 0
    assert [e["fingerprint"] for e in json.loads(out)] == [fingerprint(KEY)]


def test_escrow_into_the_repository_exits_1_and_without_repo_is_a_usage_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    args = ["--to", str(tmp_path / "repo" / "keys"), "--passphrase-file", str(tmp_path / "pass")]
    code, _, err = _run(secrets_escrow.escrow, [*args, "--repo", (tmp_path / "repo").as_uri()])
    assert code == 1
    assert "kept apart" in err
    code, _, err = _run(secrets_escrow.escrow, args)
    assert code == 2
    assert "--no-repo" in err


def test_paper_to_standard_output_and_back_with_a_mistyped_line(tmp_path: Path) -> None:
    code, out, err = _run(secrets_escrow.escrow, ["--paper", "-"])
    assert code == 0, err
    assert "fingerprint:" in out
    assert fingerprint(KEY) in err
    lines = out.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("2:"))
    lines[i] = lines[i][:15] + ("0" if lines[i][15] != "0" else "1") + lines[i][16:]
    (tmp_path / "typed.txt").write_text("\n".join(lines))
    code, _, err = _run(
        secrets_escrow.recover,
        ["--paper", str(tmp_path / "typed.txt"), "--out", str(tmp_path / "k"), "--json"],
    )
    assert code == 1
    assert f"key line 2 (line {i + 1} of the text)" in err
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize(
    "args",
    [[], ["--paper", "-", "--json"]],
)
def test_escrow_usage_errors(args: list[str]) -> None:
    code, _, _ = _run(secrets_escrow.escrow, args)
    assert code == 2
