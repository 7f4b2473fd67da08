"""Kubernetes as a backup sees it: the workloads a quiesce scales down (and what they ran)."""

from __future__ import annotations

from attrs import evolve, field, frozen

#: the annotation a quiesce writes on each workload: its replica count before it
QUIESCE_ANNOTATION = "gocdbackup.io/replicas-before-quiesce"


@frozen(kw_only=True)
class Workload:
    """A Deployment or StatefulSet: its replicas now, the count a quiesce noted (None: not
    quiesced), and its pods' selector."""

    kind: str
    name: str
    replicas: int
    noted: int | None = None
    selector: dict[str, str] = field(factory=dict)

    def noting(self, replicas: int) -> Workload:
        return evolve(self, noted=replicas)

    def describe(self) -> str:
        count = self.replicas if self.noted is None else self.noted
        return f"{self.kind} {self.name} ({count} replica(s))"


#: the label a backup's VolumeSnapshot carries: the id of the repository whose backups keep
#: it (which backup keeps it is in the manifests)
REPO_LABEL = "gocdbackup.io/repository"


@frozen(kw_only=True)
class VolumeSnapshotInfo:
    """A CSI VolumeSnapshot of gocdnext's artefact claim, taken with a backup (in its
    manifest): where it is, what it holds, the content it is bound to."""

    namespace: str
    name: str
    claim: str
    content: str = ""  # status.boundVolumeSnapshotContentName: the snapshot's handle
    restore_size: str = ""  # status.restoreSize, e.g. "50Gi"
    snapshot_class: str = ""

    def describe(self) -> str:
        size = f", {self.restore_size}" if self.restore_size else ""
        return f"VolumeSnapshot {self.namespace}/{self.name} of claim {self.claim}{size}"

    def to_dict(self) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "claim": self.claim,
            "content": self.content,
            "restore_size": self.restore_size,
            "snapshot_class": self.snapshot_class,
        }
