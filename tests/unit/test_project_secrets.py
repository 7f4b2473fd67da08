"""gocdnext's Kubernetes secrets backend against the fakes: the Secrets a backup keeps (only
those the template names), the check of projects against Secrets, and writing them back (a dry
run first, the backup id to confirm, a failure half-way finished by running it again)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, ConfirmationMismatch, KubernetesError
from gocdbackup.gocdnext.kube_secrets import NAME_TEMPLATE, secret_name, slug_of
from gocdbackup.model.manifest import Manifest
from gocdbackup.model.project_secrets import KubeSecret
from gocdbackup.ops import take_backup
from gocdbackup.ops.project_secrets import (
    check_project_secrets,
    load_project_secrets,
    restore_project_secrets,
)
from gocdbackup.repository import Repository
from gocdbackup.testing import FakeGocdnext, FakePostgres, FakeSecretStore

SLUGS = ["api", "web", "mobile-app"]


def project_store() -> FakeSecretStore:
    store = FakeSecretStore(namespace="ci")
    for slug in SLUGS:
        store.add(
            KubeSecret(
                name=secret_name(NAME_TEMPLATE, slug),
                data={"TOKEN": f"{slug}-token".encode()},
                labels={"team": slug},
            )
        )
    store.add(KubeSecret(name="unrelated", data={"x": b"1"}))
    return store


@pytest.fixture
def projects(db: FakePostgres, gocdnext: FakeGocdnext) -> FakeGocdnext:
    db.databases["gocdnext"].projects = list(SLUGS)
    return gocdnext


def test_the_check_names_projects_without_secrets_and_secrets_without_projects(
    projects: FakeGocdnext,
) -> None:
    store = project_store()
    assert check_project_secrets(projects, store, template=NAME_TEMPLATE).passed
    del store.secrets["gocdnext-secrets-web"]
    store.add(KubeSecret(name="gocdnext-secrets-retired", data={}))
    check = check_project_secrets(projects, store, template=NAME_TEMPLATE)
    assert not check.passed
    assert check.missing == ("web",)
    assert check.orphaned == ("gocdnext-secrets-retired",)
    assert "missing for web" in check.verdict()
    assert check.rows() == [
        {"project": "web", "problem": "no Secret"},
        {"secret": "gocdnext-secrets-retired", "problem": "no project"},
    ]


def test_a_backup_keeps_the_project_secrets_and_restore_writes_them_back(
    repo: Repository, db: FakePostgres, projects: FakeGocdnext, ctx: OpContext
) -> None:
    store = project_store()
    backup = take_backup(repo, db, ctx=ctx, gocdnext=projects, project_secrets=store)
    assert backup.kube_secrets is not None
    assert backup.kube_secrets.count == len(SLUGS)
    assert Manifest.from_json(Manifest(backup=backup).to_json()).backup == backup
    kept = load_project_secrets(repo, backup, ctx)
    assert kept is not None
    assert sorted(s.name for s in kept) == sorted(secret_name(NAME_TEMPLATE, s) for s in SLUGS)
    assert "web-token" not in repr(kept) + repr(backup) + backup.describe()

    lost = FakeSecretStore(namespace="ci")
    lost.add(KubeSecret(name="gocdnext-secrets-api", data={"TOKEN": b"changed"}))
    lost.add(KubeSecret(name="unrelated", data={"x": b"mine"}))
    dry = restore_project_secrets(repo, backup, lost, ctx=ctx)
    assert dry.dry_run
    assert dry.replaced == ("gocdnext-secrets-api",)
    assert len(dry.created) == 2
    assert lost.secrets["gocdnext-secrets-api"].data == {"TOKEN": b"changed"}
    with pytest.raises(ConfirmationMismatch):
        restore_project_secrets(repo, backup, lost, ctx=ctx, dry_run=False, confirm="other")
    lost.fail_writes = 1  # the second write fails: the first stays, a rerun finishes
    with pytest.raises(KubernetesError):
        restore_project_secrets(repo, backup, lost, ctx=ctx, dry_run=False, confirm=backup.id)
    lost.fail_writes = None
    done = restore_project_secrets(repo, backup, lost, ctx=ctx, dry_run=False, confirm=backup.id)
    assert len(done.unchanged) == 1
    assert len(done.created) + len(done.replaced) == 2
    assert {n: s.data for n, s in lost.secrets.items() if n != "unrelated"} == {
        n: s.data for n, s in store.secrets.items() if n != "unrelated"
    }
    assert lost.secrets["unrelated"].data == {"x": b"mine"}
    assert lost.secrets["gocdnext-secrets-web"].labels == {"team": "web"}


def test_a_backup_without_secrets_says_so(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    backup = take_backup(repo, db, ctx=ctx)
    with pytest.raises(ConfigError, match="holds no Kubernetes Secrets"):
        restore_project_secrets(repo, backup, FakeSecretStore(), ctx=ctx)


@pytest.mark.parametrize("template", ["gocdnext-secrets", "{slug}-{slug}", ""])
def test_a_template_without_one_slug_is_refused(template: str) -> None:
    with pytest.raises(ConfigError, match="exactly once"):
        secret_name(template, "api")


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40),
    st.sampled_from([NAME_TEMPLATE, "{slug}", "ci-{slug}-secrets"]),
)
def test_a_secret_name_gives_back_its_slug(slug: str, template: str) -> None:
    assert slug_of(template, secret_name(template, slug)) == slug
