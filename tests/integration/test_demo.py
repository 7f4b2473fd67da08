"""``gocdbackup demo`` (what ``nox -s demo`` runs) end to end, as a subprocess: its checks pass
and it leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_demo_passes_its_checks_and_cleans_up(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the demo makes its directories
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gocdbackup"), "--json", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    steps = [s["step"] for s in report["steps"]]
    assert steps[-2:] == ["check secrets, objects, repository", "restore drill"]
    assert "passed: 7 checks" in report["steps"][-1]["detail"]
    assert list(tmp_path.iterdir()) == []  # server, repository and store all removed
