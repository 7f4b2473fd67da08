"""``gocdbackup init``, ``backup`` and ``copy``: the commands that write a repository or a
second repository (``restore`` is in :mod:`gocdbackup.cli.restore`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

import click

from gocdbackup import (
    GocdBackup,
    physical_backup,
    quiesced,
    release_secret_key,
    snapshot_artifacts,
    volume_snapshots,
)
from gocdbackup._shards import backup_detached, backup_sharded
from gocdbackup.cli.common import (
    JsonCommand,
    Left,
    State,
    carried,
    command_line,
    emit,
    handle_errors,
    left_document,
    next_steps,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import (
    artifact_options,
    database_of,
    db_or_release_options,
    k8s_key,
    kube_options,
    open_repo,
    project_secrets_options,
    project_store,
    repo_options,
    secret_key_k8s_option,
    transfers_option,
    workload_option,
)
from gocdbackup.credentials import given_key
from gocdbackup.model import BackupSet
from gocdbackup.model.kube import VolumeSnapshotInfo
from gocdbackup.model.render import human_bytes


@click.command(cls=JsonCommand)
@repo_options
@click.pass_obj
def init(state: State, repo: str, password_file: str | None) -> None:
    """Create a new, empty, encrypted repository."""
    with handle_errors(state):
        gb = GocdBackup.init(
            repo, password_file=password_file, storage_options=state.storage_options
        )
        cfg = gb.repository.config
        emit(
            state,
            {"repo": gb.url, "repo_id": cfg.repo_id},
            lambda: out_console.print(
                f"initialised repository {gb.url} (id {cfg.repo_id})", highlight=False
            ),
        )


@click.command(cls=JsonCommand)
@repo_options
@db_or_release_options
@click.option("--label", default="", help="A free-text label stored with the backup.")
@click.option(
    "--artifacts",
    envvar="GOCDBACKUP_ARTIFACTS",
    metavar="STORE_URL",
    help="gocdnext's artefact store (file:///var/lib/gocdnext/artifacts, s3://bucket, "
    "gs://bucket): back up the objects the database references, at the same "
    "point in time; 'auto' reads where it is from gocdnext's platform settings "
    "(default: $GOCDBACKUP_ARTIFACTS).",
)
@click.option(
    "--secret-key-file",
    type=click.Path(dir_okay=False),
    help="gocdnext's application key: the backup records its fingerprint and a sampled "
    "decrypt check; also what --artifacts auto needs (default: $GOCDNEXT_SECRET_KEY).",
)
@click.option(
    "--quiesce",
    is_flag=True,
    help="With --k8s-namespace: scale gocdnext's server and agents to zero for the time of "
    "the backup (resumed however it ends; 'gocdbackup k8s resume' after a crash).",
)
@click.option(
    "--snapshot-pvc",
    is_flag=True,
    help="With --k8s-namespace: take a CSI VolumeSnapshot of the artefact claim "
    "(filesystem backend) with the backup, recorded in its manifest; with --quiesce, at the "
    "same point in time as the database.",
)
@click.option("--snapshot-class", metavar="CLASS", help="The VolumeSnapshotClass to use.")
@workload_option
@click.option(
    "--artifacts-claim",
    metavar="PVC",
    help="The artefact claim, when not <release>-gocdnext-server-artifacts "
    "(artifacts.filesystem.existingClaim).",
)
@click.option(
    "--fail-on-missing",
    is_flag=True,
    help="Fail (commit nothing) if a ready object is missing from the store.",
)
@click.option(
    "--physical",
    is_flag=True,
    help="A physical base backup of the whole server (pg_basebackup) instead of a dump of one "
    "database: with the WAL archive ('gocdbackup wal push' as archive_command) it recovers "
    "to any later time ('restore ID --pgdata DIR --target-time T').",
)
@click.option(
    "--incremental",
    is_flag=True,
    help="With --physical (PostgreSQL 17+, summarize_wal = on): only what changed since the "
    "newest physical backup in the repository, restored together with it.",
)
@click.option(
    "--shards",
    type=click.IntRange(1, 1024),
    default=None,
    help="With --artifacts: copy the artefacts in this many worker processes (each with its "
    "own connections), or with --detach, plan this many shards.",
)
@click.option(
    "--detach",
    is_flag=True,
    help="With --artifacts: dump the database, plan the artefact shards and stop; each shard "
    "is copied by 'shard run' (a Kubernetes Indexed Job's pods), then 'shard finish'.",
)
@click.option(
    "--listing",
    metavar="MANIFEST_URL",
    help="With --artifacts (a bucket): find the objects in this bucket inventory (S3 "
    "Inventory manifest.json, GCS inventory report manifest) instead of listing the bucket.",
)
@secret_key_k8s_option
@project_secrets_options
@kube_options
@artifact_options
@transfers_option
@click.pass_obj
def backup(
    state: State,
    *,
    repo: str,
    password_file: str | None,
    db: str | None,
    pg_bindir: str | None,
    k8s_namespace: str | None,
    k8s_release: str | None,
    k8s_pod: str | None,
    label: str,
    artifacts: str | None,
    secret_key_file: str | None,
    secret_key_k8s: str | None,
    secrets_namespace: str | None,
    secrets_name_template: str,
    kubeconfig: str | None,
    kube_context: str | None,
    fail_on_missing: bool,
    quiesce: bool,
    workloads: tuple[tuple[str, str], ...],
    snapshot_pvc: bool,
    snapshot_class: str | None,
    artifacts_claim: str | None,
    transfers: int,
    physical: bool,
    incremental: bool,
    shards: int | None,
    detach: bool,
    listing: str | None,
) -> None:
    """Back up the database (and its artefact store, and the project Secrets of gocdnext's
    Kubernetes secrets backend) into the repository."""
    if (shards or detach) and not (artifacts and db):
        raise click.UsageError("--shards and --detach need --db DSN and --artifacts URL")
    if listing and not artifacts:
        raise click.UsageError("--listing is the inventory of the --artifacts bucket: add it")
    if listing and ((shards and shards > 1) or detach):
        raise click.UsageError(
            "--listing is for a backup in one process: each shard looks its objects up itself"
        )
    if (shards and shards > 1) or detach:
        _sharded(state, repo, password_file, db, artifacts, shards or 1, detach, label, transfers)
        return
    if incremental and not physical:
        raise click.UsageError("--incremental is for physical backups: add --physical")
    if physical and (artifacts or k8s_namespace or secrets_namespace or secret_key_file):
        raise click.UsageError(
            "--physical backs up a server given by --db; it takes no --artifacts, "
            "--k8s-namespace, --secrets-namespace or --secret-key-file"
        )
    with handle_errors(state), progress_bar(state) as bar, ExitStack() as stack:
        key = k8s_key(secret_key_k8s, secret_key_file, kubeconfig, kube_context)
        gb = open_repo(state, repo, password_file, bar, pg_bindir=pg_bindir, transfers=transfers)
        database = database_of(
            stack,
            db=db,
            k8s_namespace=k8s_namespace,
            k8s_release=k8s_release,
            k8s_pod=k8s_pod,
            kubeconfig=kubeconfig,
            kube_context=kube_context,
        )
        if physical:
            if db is None:
                raise click.UsageError("--physical needs --db DSN (the server to back up)")
            b = physical_backup(gb, db, label=label, incremental=incremental)
            emit(state, b.summary(), lambda: _print_backup_line(b))
            return
        if (quiesce or snapshot_pvc) and k8s_namespace is None:
            raise click.UsageError("--quiesce and --snapshot-pvc need --k8s-namespace")
        if quiesce:
            assert k8s_namespace is not None
            stack.enter_context(
                quiesced(
                    k8s_namespace,
                    k8s_release,
                    workloads=workloads,
                    kubeconfig=kubeconfig,
                    context=kube_context,
                    progress=bar if bar.enabled else None,
                )
            )
        if k8s_namespace and key is None and given_key(None, secret_key_file) is None:
            # a release's own key, from the chart's Secret when it has one
            key = release_secret_key(
                k8s_namespace, k8s_release, kubeconfig=kubeconfig, context=kube_context
            )
        snapshot = None
        if snapshot_pvc:
            assert k8s_namespace is not None
            snapshot = snapshot_artifacts(
                k8s_namespace,
                k8s_release,
                repo_id=gb.repository.config.repo_id,
                claim=artifacts_claim,
                snapshot_class=snapshot_class,
                kubeconfig=kubeconfig,
                context=kube_context,
            )
            # a backup that fails leaves no snapshot behind (it would be kept by nothing)
            stack.push(_forget_on_error(snapshot, kubeconfig, kube_context))
        b = gb.backup(
            database,
            volume_snapshot=snapshot,
            label=label,
            artifacts=artifacts,
            fail_on_missing=fail_on_missing,
            secret_key=key,
            secret_key_file=secret_key_file,
            project_secrets=project_store(secrets_namespace, kubeconfig, kube_context),
            secrets_template=secrets_name_template,
            listing=listing,
        )
    emit(state, b.summary(), lambda: _print_backup_line(b))


def _forget_on_error(
    snapshot: VolumeSnapshotInfo, kubeconfig: str | None, context: str | None
) -> Callable[..., bool]:
    """An exit callback deleting ``snapshot`` when the backup it was taken for fails."""

    def leave(exc_type: type[BaseException] | None, *_: object) -> bool:
        if exc_type is not None:
            snapshots = volume_snapshots(snapshot.namespace, kubeconfig=kubeconfig, context=context)
            snapshots.delete(snapshot.name)
        return False

    return leave


def _sharded(  # noqa: PLR0917 - the command's own values, passed on once
    state: State,
    repo: str,
    password_file: str | None,
    db: str | None,
    artifacts: str | None,
    shards: int,
    detach: bool,
    label: str,
    transfers: int,
) -> None:
    assert db is not None
    assert artifacts is not None
    with handle_errors(state), progress_bar(state) as bar:
        gb = open_repo(state, repo, password_file, bar, transfers=transfers)
        if not detach:
            b = backup_sharded(gb, db, artifacts=artifacts, shards=shards, label=label)
            emit(state, b.summary(), lambda: _print_backup_line(b))
            return
        plan = backup_detached(gb, db, artifacts=artifacts, shards=shards, label=label)
    backup_id = plan.backup.id
    words = carried(state.argv, "--repo", "--password-file", "--storage-option")
    extra = carried(state.argv, "--artifacts-option")
    left: Left = [
        (
            f"each of the {shards} shard(s), anywhere (an Indexed Job of {shards} completions "
            "sets the index)",
            command_line([], add=("shard", "run", backup_id, "--index", "0", *words, *extra)),
        ),
        ("then commit it", command_line([], add=("shard", "finish", backup_id, *words))),
    ]
    doc = {
        "id": backup_id,
        "status": "awaiting_shards",
        "shards": shards,
        "store": plan.store,
        "left": left_document(left),
    }
    emit(
        state,
        doc,
        lambda: out_console.print(
            f"backup {backup_id}: database dumped, {shards} artefact shard(s) planned; "
            "not listed until every shard is done and it is finished",
            highlight=False,
        ),
    )
    next_steps(state, left)


def _print_backup_line(b: BackupSet) -> None:
    out_console.print(b.describe(), highlight=False, markup=False)


@click.command(cls=JsonCommand)
@click.argument("backup_id")
@repo_options
@click.option("--to", "to_repo", required=True, metavar="URL", help="The target repository.")
@click.option(
    "--to-password-file",
    type=click.Path(dir_okay=False),
    help="Passphrase of the target (default: $GOCDBACKUP_TO_PASSWORD, else the "
    "source's passphrase).",
)
@click.pass_obj
def copy(
    state: State,
    *,
    backup_id: str,
    repo: str,
    password_file: str | None,
    to_repo: str,
    to_password_file: str | None,
) -> None:
    """Copy a backup to a second repository (3-2-1), re-encrypted with its keys."""
    with handle_errors(state), progress_bar(state) as bar:
        source = open_repo(state, repo, password_file, bar)
        to_password = os.environ.get("GOCDBACKUP_TO_PASSWORD") or None
        if to_password_file is None and to_password is None:
            target = open_repo(state, to_repo, password_file)
        else:
            target = GocdBackup(to_repo, password=to_password, password_file=to_password_file)
        result = source.copy(backup_id, target)
    s = result.summary()
    emit(
        state,
        s,
        lambda: out_console.print(
            f"{backup_id} is already in {to_repo}"
            if result.already_there
            else f"copied {backup_id} to {to_repo}: {s['blobs_written']} new blobs, "
            f"{human_bytes(s['bytes_written'])} written and read back",
            highlight=False,
        ),
    )
