"""Escrowing the application key and recovering it: the use cases over a MemoryStore, and the
facade over a real ``file://`` store and local files."""

from __future__ import annotations

import logging
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

import gocdbackup
from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfigError,
    EscrowDamaged,
    EscrowLocked,
    EscrowMismatch,
    NotFound,
    PaperFormError,
    UnsupportedFormat,
)
from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.model.escrow_keys import generate_recipient
from gocdbackup.ops.escrow import escrow_key, list_escrows, recover_key
from gocdbackup.testing import FakeClock, MemoryStore

KEY = os.urandom(32)
PASS = b"correct horse battery staple"
ALICE, BOB = generate_recipient(), generate_recipient()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(clock: FakeClock) -> OpContext:
    return OpContext(clock=clock)


def test_escrow_and_recover_through_the_passphrase_and_each_recipient(
    ctx: OpContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gocdbackup")
    store = MemoryStore("memory://escrow")
    result = escrow_key(
        KEY,
        store,
        repo_url="memory://backups",
        passphrase=PASS,
        recipients=[ALICE[1], BOB[1]],
        ctx=ctx,
    )
    fp = fingerprint(KEY)
    assert result.fingerprint == fp
    assert result.name is not None
    assert result.name.startswith(f"gocdnext-key-{fp}-")
    assert result.location == f"memory://escrow/{result.name}"
    assert result.recipients == (ALICE[1], BOB[1])
    assert result.passphrase
    assert result.paper is None
    assert list(store.objects) == [result.name]
    for opened in (
        recover_key(store, passphrase=PASS),
        recover_key(store, private_key=ALICE[0]),
        recover_key(store, private_key=BOB[0], fingerprint=fp.upper()),
    ):
        assert opened.key == KEY
        assert opened.fingerprint == fp
        assert opened.source == result.location
    # the key is nowhere but sealed: not in the store, the results, their summaries, the logs
    produced = [
        *(data.decode() for data in store.objects.values()),
        repr(result),
        str(result.summary()),
        repr(opened),
        str(opened.summary()),
        opened._repr_html_(),
        result._repr_html_(),
        caplog.text,
    ]
    assert fp in caplog.text
    for text in produced:
        assert KEY.hex() not in text.lower()


def test_the_paper_form_comes_back_as_text_and_reads_back(ctx: OpContext) -> None:
    result = escrow_key(KEY, repo_url=None, paper=True, ctx=ctx)
    assert result.location is None
    assert result.paper is not None
    assert "paper" not in repr(result).replace("paper_file", "")
    assert result.summary()["paper"] is True
    assert recover_key(paper=result.paper).key == KEY
    lines = result.paper.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("4:"))
    at = next(n for n in range(2, len(lines[i])) if lines[i][n] in "0123456789abcdef")
    typo = "1" if lines[i][at] != "1" else "2"  # one hex digit mistyped as another
    lines[i] = lines[i][:at] + typo + lines[i][at + 1 :]
    with pytest.raises(PaperFormError, match=f"key line 4 \\(line {i + 1} of the text\\)"):
        recover_key(paper="\n".join(lines))


@pytest.mark.parametrize(
    ("to", "repo"),
    [
        ("memory://backups", "memory://backups"),
        ("memory://backups/escrow", "memory://backups"),
        ("memory://backups", "memory://backups/nightly"),
        ("s3://bucket/gocdnext", "s3://bucket/gocdnext/"),
        ("s3://bucket/gocdnext/keys", "s3a://bucket/gocdnext"),
    ],
)
def test_an_escrow_in_the_repository_is_refused_before_anything_is_written(
    ctx: OpContext, to: str, repo: str
) -> None:
    store = MemoryStore(to)
    with pytest.raises(ConfigError, match="kept apart from the backups"):
        escrow_key(KEY, store, repo_url=repo, passphrase=PASS, ctx=ctx)
    with pytest.raises(ConfigError, match="kept apart"):
        escrow_key(KEY, store, repo_url=["memory://elsewhere", repo], passphrase=PASS, ctx=ctx)
    assert store.objects == {}


def test_a_sibling_prefix_of_the_same_bucket_is_allowed(ctx: OpContext) -> None:
    store = MemoryStore("s3://bucket/escrow")
    escrow_key(KEY, store, repo_url="s3://bucket/backups", recipients=[ALICE[1]], ctx=ctx)
    assert len(store.objects) == 1


def test_wrong_secrets_and_damage_are_typed(ctx: OpContext) -> None:
    store = MemoryStore("memory://escrow")
    result = escrow_key(KEY, store, repo_url=None, passphrase=PASS, recipients=[ALICE[1]], ctx=ctx)
    assert result.name is not None
    with pytest.raises(EscrowLocked):
        recover_key(store, passphrase=b"not the passphrase at all")
    with pytest.raises(EscrowLocked):
        recover_key(store, private_key=BOB[0])
    data = bytearray(store.objects[result.name])
    at = data.index(b'"wrapped": "') + 20
    data[at] = ord("A") if data[at] != ord("A") else ord("B")
    store.objects[result.name] = bytes(data)
    with pytest.raises(EscrowDamaged):
        recover_key(store, passphrase=PASS)


def test_a_fingerprint_mismatch_is_refused(ctx: OpContext) -> None:
    store = MemoryStore("memory://escrow")
    result = escrow_key(KEY, store, repo_url=None, recipients=[ALICE[1]], ctx=ctx)
    other = "0" * 16
    with pytest.raises(EscrowMismatch, match=f"no escrow of the key {other}"):
        recover_key(store, private_key=ALICE[0], fingerprint=other)
    with pytest.raises(EscrowMismatch, match=f"not the key {other}"):
        recover_key(store, name=result.name, private_key=ALICE[0], fingerprint=other)
    paper = escrow_key(KEY, repo_url=None, paper=True, ctx=ctx).paper
    assert paper is not None
    with pytest.raises(EscrowMismatch, match="the paper form holds the key"):
        recover_key(paper=paper, fingerprint=other)


def test_escrows_are_listed_newest_first_and_tried_in_that_order(
    ctx: OpContext, clock: FakeClock
) -> None:
    store = MemoryStore("memory://escrow")
    old = escrow_key(KEY, store, repo_url=None, passphrase=PASS, ctx=ctx)
    clock.advance(timedelta(days=1))
    new = escrow_key(KEY, store, repo_url=None, recipients=[ALICE[1]], ctx=ctx)
    assert [e.name for e in list_escrows(store)] == [new.name, old.name]
    got = recover_key(store, passphrase=PASS)  # the newest has no passphrase: the older opens
    assert got.key == KEY
    assert got.source.endswith(str(old.name))
    assert len(got.skipped) == 1
    assert got.skipped[0].startswith(str(new.name))
    # an unreadable newer escrow of the same key does not stand in the way either
    clock.advance(timedelta(days=1))
    broken = f"gocdnext-key-{fingerprint(KEY)}-20990101T000000Z.json"
    store.write(broken, b"{}")
    got = recover_key(store, passphrase=PASS)
    assert got.key == KEY
    assert [s.split(":")[0] for s in got.skipped] == [broken, new.name]
    with pytest.raises(UnsupportedFormat):
        recover_key(store, name=broken, passphrase=PASS)
    # escrows of two keys: the caller chooses
    other = os.urandom(32)
    escrow_key(other, store, repo_url=None, passphrase=PASS, ctx=ctx)
    with pytest.raises(ConfigError, match="escrows of 2 keys"):
        recover_key(store, passphrase=PASS)
    assert recover_key(store, passphrase=PASS, fingerprint=fingerprint(other)).key == other
    with pytest.raises(NotFound):
        recover_key(MemoryStore(), passphrase=PASS)


def test_the_op_needs_somewhere_to_escrow_and_a_secret(ctx: OpContext) -> None:
    with pytest.raises(ConfigError, match="to=URL"):
        escrow_key(KEY, repo_url=None, ctx=ctx)
    with pytest.raises(ConfigError, match="passphrase or recipients"):
        escrow_key(KEY, MemoryStore(), repo_url=None, ctx=ctx)
    with pytest.raises(ConfigError, match="one escrow"):
        recover_key()
    with pytest.raises(ConfigError, match="needs a passphrase"):
        recover_key(MemoryStore())


# -- the facade, over a real file:// store -----------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_facade_escrows_to_a_file_store_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text(KEY.hex() + "\n")
    pass_file = tmp_path / "escrow.pass"
    pass_file.write_text(PASS.decode() + "\n")
    escrow_dir, repo_dir = tmp_path / "escrow", tmp_path / "repo"
    repo_dir.mkdir()
    result = gocdbackup.escrow_key(
        repo_url=str(repo_dir),
        to=escrow_dir.as_uri(),
        paper=tmp_path / "paper.txt",
        recipients=[ALICE[1]],
        passphrase_file=pass_file,
        secret_key_file=key_file,
    )
    assert result.name is not None
    envelope = escrow_dir / result.name
    assert envelope.is_file()
    assert result.paper_file == str(tmp_path / "paper.txt")
    assert _mode(tmp_path / "paper.txt") == 0o600
    for path in tmp_path.rglob("*"):  # the key in clear only where it was read from
        if path.is_file() and path != key_file:
            assert KEY.hex() not in path.read_text().lower()

    out = tmp_path / "recovered.key"
    got = gocdbackup.recover_key(source=escrow_dir.as_uri(), passphrase_file=pass_file, out=out)
    assert out.read_text() == KEY.hex() + "\n"
    assert _mode(out) == 0o600
    assert got.source == f"{escrow_dir.as_uri()}/{result.name}"
    with pytest.raises(ConfigError, match="exists"):
        gocdbackup.recover_key(source=str(escrow_dir), passphrase_file=pass_file, out=out)
    private_file = tmp_path / "alice.key"
    private_file.write_text(ALICE[0] + "\n")
    monkeypatch.delenv("GOCDBACKUP_ESCROW_PASSPHRASE", raising=False)
    by_object = gocdbackup.recover_key(source=str(envelope), private_key_file=private_file)
    assert by_object.key == KEY
    by_paper = gocdbackup.recover_key(paper=tmp_path / "paper.txt", out=out, replace=True)
    assert by_paper.key == KEY
    assert [e.name for e in gocdbackup.list_escrows(str(escrow_dir))] == [result.name]


def test_the_facade_refuses_the_repository_however_it_is_spelt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "keys").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(repo)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOCDNEXT_SECRET_KEY", KEY.hex())
    for to in ("repo/keys", str(link / "keys"), (repo / "keys").as_uri(), "./repo"):
        with pytest.raises(ConfigError, match="kept apart"):
            gocdbackup.escrow_key(repo_url=repo.as_uri(), to=to, recipients=[ALICE[1]])
    assert list((repo / "keys").iterdir()) == []
    with pytest.raises(TypeError):
        gocdbackup.escrow_key(to="escrow", recipients=[ALICE[1]])  # type: ignore[call-arg]


def test_the_facade_reads_the_passphrase_from_the_environment_and_saves_recipients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOCDNEXT_SECRET_KEY", KEY.hex())
    monkeypatch.setenv("GOCDBACKUP_ESCROW_PASSPHRASE", PASS.decode())
    public = gocdbackup.save_recipient(tmp_path / "carol.key")
    assert _mode(tmp_path / "carol.key") == 0o600
    with pytest.raises(ConfigError, match="exists"):
        gocdbackup.save_recipient(tmp_path / "carol.key")
    result = gocdbackup.escrow_key(repo_url=None, to=str(tmp_path / "e"), recipients=[public])
    assert result.passphrase
    assert result.recipients == (public,)
    assert gocdbackup.recover_key(source=str(tmp_path / "e")).key == KEY
    monkeypatch.delenv("GOCDBACKUP_ESCROW_PASSPHRASE")
    got = gocdbackup.recover_key(
        source=str(tmp_path / "e"), private_key_file=tmp_path / "carol.key"
    )
    assert got.key == KEY
    paper = tmp_path / "paper.txt"
    paper.write_text("left here")
    with pytest.raises(ConfigError, match="exists"):
        gocdbackup.escrow_key(repo_url=None, paper=paper)
    assert paper.read_text() == "left here"
