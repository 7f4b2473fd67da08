"""``gocdbackup k8s quiesce|resume|snapshots|restore-pvc``: gocdnext's Helm release stopped for
a consistent capture (its server and agents scaled to zero, their replica counts noted on them)
and started again, also after a crash; the VolumeSnapshots of its artefact claim that backups
keep, and a claim made again from one."""

from __future__ import annotations

import click

from gocdbackup import quiesce, resume, volume_snapshots
from gocdbackup.cli.common import (
    JsonGroup,
    State,
    command_line,
    emit,
    handle_errors,
    next_steps,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import (
    k8s_release_option,
    kube_options,
    open_repo,
    repo_options,
    workload_option,
)
from gocdbackup.errors import ConfigError, ConfirmationMismatch
from gocdbackup.model.kube import REPO_LABEL, Workload


@click.group(cls=JsonGroup)
def k8s() -> None:
    """gocdnext's Helm release on Kubernetes: quiesce, resume, VolumeSnapshots."""


def release_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = workload_option(fn)
    fn = k8s_release_option(fn)
    fn = click.option("--k8s-namespace", required=True, metavar="NS", help="Its namespace.")(fn)
    return kube_options(fn)


def _document(action: str, done: list[Workload]) -> dict[str, object]:
    return {
        action: [{"kind": w.kind, "name": w.name, "replicas": w.noted} for w in done],
    }


@k8s.command(name="quiesce")
@release_options
@click.option(
    "--timeout",
    type=click.IntRange(1, 3600),
    default=300,
    show_default=True,
    help="Seconds to wait for the pods to be gone.",
)
@click.pass_obj
def k8s_quiesce(
    state: State,
    *,
    k8s_namespace: str,
    k8s_release: str | None,
    workloads: tuple[tuple[str, str], ...],
    kubeconfig: str | None,
    kube_context: str | None,
    timeout: int,
) -> None:
    """Scale the release's server and agents to zero and wait until their pods are gone
    (their replica counts are noted on them: 'k8s resume' puts them back)."""
    with handle_errors(state), progress_bar(state) as bar:
        done = quiesce(
            k8s_namespace,
            k8s_release,
            workloads=workloads,
            timeout=timeout,
            kubeconfig=kubeconfig,
            context=kube_context,
            progress=bar if bar.enabled else None,
        )
    emit(
        state,
        _document("quiesced", done),
        lambda: out_console.print(
            "quiesced: " + (", ".join(w.describe() for w in done) or "nothing to scale down"),
            highlight=False,
        ),
    )


@k8s.command(name="resume")
@release_options
@click.pass_obj
def k8s_resume(
    state: State,
    *,
    k8s_namespace: str,
    k8s_release: str | None,
    workloads: tuple[tuple[str, str], ...],
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Scale back every workload of the release that a quiesce noted (also after a crash)."""
    with handle_errors(state):
        done = resume(
            k8s_namespace,
            k8s_release,
            workloads=workloads,
            kubeconfig=kubeconfig,
            context=kube_context,
        )
    emit(
        state,
        _document("resumed", done),
        lambda: out_console.print(
            "resumed: " + (", ".join(w.describe() for w in done) or "nothing was quiesced"),
            highlight=False,
        ),
    )


@k8s.command(name="snapshots")
@click.option("--k8s-namespace", required=True, metavar="NS", help="Their namespace.")
@repo_options
@click.option(
    "--prune",
    is_flag=True,
    help="Delete this repository's VolumeSnapshots that no backup keeps any more.",
)
@kube_options
@click.pass_obj
def k8s_snapshots(
    state: State,
    *,
    k8s_namespace: str,
    repo: str,
    password_file: str | None,
    prune: bool,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """The repository's VolumeSnapshots of the artefact claim, each with the backup that keeps
    it; those no backup keeps (their backup was forgotten) go with --prune."""
    with handle_errors(state):
        gb = open_repo(state, repo, password_file)
        kept = {
            (b.volume_snapshot.namespace, b.volume_snapshot.name): b.id
            for b in gb.list_backups()
            if b.volume_snapshot is not None
        }
        snapshots = volume_snapshots(k8s_namespace, kubeconfig=kubeconfig, context=kube_context)
        ours = snapshots.list(f"{REPO_LABEL}={gb.repository.config.repo_id}")
        rows = [
            {**info.to_dict(), "backup": kept.get((info.namespace, info.name))}
            for info, _labels in ours
        ]
        unkept = [str(r["name"]) for r in rows if r["backup"] is None]
        deleted = [name for name in unkept if prune and snapshots.delete(name)]
    document = {"snapshots": rows, "unkept": unkept, "deleted": deleted}

    def human() -> None:
        for r in rows:
            keeper = f"kept by {r['backup']}" if r["backup"] else "no backup keeps it"
            out_console.print(
                f"{r['name']}: claim {r['claim']}, {r['restore_size'] or '?'}, {keeper}",
                highlight=False,
            )
        if not rows:
            out_console.print("no VolumeSnapshot of this repository", highlight=False)
        if deleted:
            out_console.print(f"deleted {len(deleted)}: {', '.join(deleted)}", highlight=False)

    emit(state, document, human)
    if unkept and not prune:
        command = command_line(state.argv, add=("--prune",))
        next_steps(state, [(f"{len(unkept)} VolumeSnapshot(s) no backup keeps", command)])


@k8s.command(name="restore-pvc")
@click.argument("backup_id")
@repo_options
@click.option("--k8s-namespace", required=True, metavar="NS", help="The claim's namespace.")
@click.option("--claim", required=True, metavar="PVC", help="The new claim's name.")
@click.option("--storage-class", metavar="CLASS", help="Its StorageClass.")
@click.option("--confirm", required=True, metavar="ID", help="Repeat the backup id.")
@kube_options
@click.pass_obj
def k8s_restore_pvc(
    state: State,
    *,
    backup_id: str,
    repo: str,
    password_file: str | None,
    k8s_namespace: str,
    claim: str,
    storage_class: str | None,
    confirm: str,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Create a new claim from the VolumeSnapshot a backup recorded (the artefact store of the
    filesystem backend, as it was at the backup); point the release at it with
    artifacts.filesystem.existingClaim."""
    with handle_errors(state):
        if confirm != backup_id:
            raise ConfirmationMismatch(f"--confirm must repeat {backup_id}; nothing was created")
        snapshot = open_repo(state, repo, password_file).get_backup(backup_id).volume_snapshot
        if snapshot is None:
            raise ConfigError(f"backup {backup_id} was taken without --snapshot-pvc")
        snapshots = volume_snapshots(k8s_namespace, kubeconfig=kubeconfig, context=kube_context)
        snapshots.restore(snapshot, claim, storage_class=storage_class)
    document = {"claim": claim, "namespace": k8s_namespace, "snapshot": snapshot.to_dict()}
    emit(
        state,
        document,
        lambda: out_console.print(
            f"created claim {k8s_namespace}/{claim} from {snapshot.describe()}; to use it: "
            f"helm upgrade … --set artifacts.filesystem.existingClaim={claim}",
            highlight=False,
        ),
    )
