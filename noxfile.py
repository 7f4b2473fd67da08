"""Developer sessions: tests, lint, demo, bench, docs, build.  Every session installs what it
needs."""

from __future__ import annotations

import zipfile
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


def _install(session: nox.Session, *extras: str) -> None:
    session.install("--quiet", "--upgrade", "pip")
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("--quiet", "-e", spec)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite: unit, contract (memory, file, S3 on moto, GCS emulator) and
    integration (real PostgreSQL, pg_dump, pg_restore)."""
    _install(session, "test")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, mypy --strict and the import-linter layer contracts."""
    _install(session, "dev")
    session.run("ruff", "check", "src", "tests", "benchmarks", "tools", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "tools", "noxfile.py")
    session.run("mypy")
    session.run("lint-imports")
    session.run("python", "tools/lint_structure.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Backup, destroy, restore and check a gocdnext database on embedded PostgreSQL."""
    _install(session, "embedded")
    session.run("gocdbackup", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks; each prints ratios against a baseline measured in the same run."""
    _install(session, "test")
    # the baseline of bench_bucket_pit.py (without it, the benchmark fetches its sdist itself)
    session.install("--quiet", "s3-pit-restore==0.9")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    _install(session)
    session.install("--quiet", "mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict", "--site-dir", "build/site")


#: files the wheel must ship besides the modules (PEP 561 marker, the fixture's schema)
WHEEL_MUST_HOLD = ("gocdbackup/py.typed", "gocdbackup/drivers/gocdnext_schema.sql")


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel into dist/ and check the wheel ships py.typed."""
    session.install("--quiet", "--upgrade", "pip", "build")
    session.run("python", "-m", "build", "--outdir", "dist/")
    # the wheel this run built: the newest one (dist/ may hold older versions)
    wheel = max(Path("dist").glob("gocdbackup-*.whl"), key=lambda p: p.stat().st_mtime)
    with zipfile.ZipFile(wheel) as zf:
        missing = [name for name in WHEEL_MUST_HOLD if name not in zf.namelist()]
    if missing:
        session.error(f"{wheel} lacks {', '.join(missing)}")
    session.log(f"{wheel} holds {', '.join(WHEEL_MUST_HOLD)}")
