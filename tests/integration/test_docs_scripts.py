"""The nightly script in docs/scheduling.md, run exactly as documented against a real database:
the docs cannot drift from the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_PASSWORD

pytestmark = pytest.mark.integration

DOC = Path(__file__).parents[2] / "docs" / "scheduling.md"


def nightly_script() -> str:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    (script,) = [b for b in blocks if b.startswith("#!/usr/bin/env bash\n# gocdbackup-nightly")]
    return script


def test_the_documented_nightly_script_runs(
    gocdnext_db: str, repo_url: str, tmp_path: Path
) -> None:
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "GOCDBACKUP_REPO": repo_url,
        "GOCDBACKUP_DB": gocdnext_db,
        "GOCDBACKUP_PASSWORD": REPO_PASSWORD,
    }
    subprocess.run([f"{bindir}/gocdbackup", "init"], env=env, check=True, capture_output=True)
    script = tmp_path / "gocdbackup-nightly"
    script.write_text(nightly_script())
    script.chmod(0o755)
    for _ in range(2):  # two nights
        done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [f"{bindir}/gocdbackup", "--json", "list"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    backups = json.loads(listed.stdout)
    assert len(backups) == 1  # both nights fall in one daily slot: the newer one is kept
    assert backups[0]["label"] == "nightly"
