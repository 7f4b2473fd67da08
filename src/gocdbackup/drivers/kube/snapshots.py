"""CSI VolumeSnapshots (``snapshot.storage.k8s.io/v1``) of gocdnext's artefact claim (the
filesystem backend): taken and waited for until ``readyToUse``, labelled with the repository
and backup that keep them, listed, deleted, and restored as a new claim (``dataSource``).
The snapshot controller's ``status.error`` surfaces as :class:`VolumeSnapshotFailed`."""

from __future__ import annotations

import logging
import time
from typing import Any

from kubernetes import client

from gocdbackup.context import OpContext
from gocdbackup.drivers.kube.client import call
from gocdbackup.errors import KubernetesError, KubernetesNotFound, VolumeSnapshotFailed
from gocdbackup.model.kube import VolumeSnapshotInfo

log = logging.getLogger("gocdbackup.drivers.kube")

GROUP, VERSION, PLURAL = "snapshot.storage.k8s.io", "v1", "volumesnapshots"
_POLL = 0.5


def _info(doc: dict[str, Any]) -> VolumeSnapshotInfo:
    meta, spec, status = doc["metadata"], doc.get("spec") or {}, doc.get("status") or {}
    return VolumeSnapshotInfo(
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        claim=str((spec.get("source") or {}).get("persistentVolumeClaimName") or ""),
        content=str(status.get("boundVolumeSnapshotContentName") or ""),
        restore_size=str(status.get("restoreSize") or ""),
        snapshot_class=str(spec.get("volumeSnapshotClassName") or ""),
    )


class VolumeSnapshots:
    """The VolumeSnapshots of one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._api, self._ns = api, namespace
        self._custom = client.CustomObjectsApi(api)

    def _get(self, name: str) -> dict[str, Any]:
        doc: dict[str, Any] = call(
            self._api,
            f"reading VolumeSnapshot {self._ns}/{name}",
            self._custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self._ns,
            PLURAL,
            name,
        )
        return doc

    def take(
        self,
        claim: str,
        *,
        name: str,
        labels: dict[str, str],
        snapshot_class: str | None,
        ctx: OpContext,
        timeout: float = 600.0,
    ) -> VolumeSnapshotInfo:
        """Snapshot ``claim`` as ``name`` and wait until it is ready to use."""
        spec: dict[str, Any] = {"source": {"persistentVolumeClaimName": claim}}
        if snapshot_class:
            spec["volumeSnapshotClassName"] = snapshot_class
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": self._ns, "labels": labels},
            "spec": spec,
        }
        what = f"snapshotting claim {self._ns}/{claim}"
        call(
            self._api,
            what,
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            self._ns,
            PLURAL,
            body,
        )
        deadline = time.monotonic() + timeout
        while True:
            doc = self._get(name)
            status = doc.get("status") or {}
            if status.get("readyToUse"):
                info = _info(doc)
                log.info("%s is ready", info.describe())
                return info
            error = status.get("error") or {}
            if error:
                raise VolumeSnapshotFailed(
                    f"the snapshot controller could not snapshot claim {self._ns}/{claim}: "
                    f"{error.get('message') or 'no message'} (VolumeSnapshot {name} is left for "
                    "inspection; delete it with kubectl)"
                )
            ctx.check()
            if time.monotonic() > deadline:
                raise VolumeSnapshotFailed(
                    f"VolumeSnapshot {self._ns}/{name} of claim {claim} was not ready after "
                    f"{timeout:.0f} s"
                )
            time.sleep(_POLL)

    def list(self, selector: str = "") -> list[tuple[VolumeSnapshotInfo, dict[str, str]]]:
        """Every VolumeSnapshot (with its labels), by name."""
        doc = call(
            self._api,
            f"listing the VolumeSnapshots of namespace {self._ns!r}",
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self._ns,
            PLURAL,
            label_selector=selector or None,
        )
        items = [(i, (i.get("metadata") or {}).get("labels") or {}) for i in doc.get("items") or []]
        return sorted(((_info(i), dict(lab)) for i, lab in items), key=lambda x: x[0].name)

    def delete(self, name: str) -> bool:
        """Delete ``name``; False if it was already gone."""
        try:
            call(
                self._api,
                f"deleting VolumeSnapshot {self._ns}/{name}",
                self._custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                self._ns,
                PLURAL,
                name,
            )
        except KubernetesNotFound:
            return False
        return True

    def restore(
        self, snapshot: VolumeSnapshotInfo, claim: str, *, storage_class: str | None
    ) -> None:
        """A new claim ``claim`` holding the snapshot's data (its size the snapshot's)."""
        spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": snapshot.restore_size or "1Gi"}},
            "dataSource": {"name": snapshot.name, "kind": "VolumeSnapshot", "apiGroup": GROUP},
        }
        if storage_class:
            spec["storageClassName"] = storage_class
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": self._ns},
            "spec": spec,
        }
        core = client.CoreV1Api(self._api)
        what = f"creating claim {self._ns}/{claim} from VolumeSnapshot {snapshot.name}"
        try:
            call(
                self._api,
                what,
                core.create_namespaced_persistent_volume_claim,
                self._ns,
                body,
            )
        except KubernetesError as exc:
            if exc.status == 409:
                raise KubernetesError(
                    f"{what}: a claim of that name exists; choose another name", status=409
                ) from None
            raise
