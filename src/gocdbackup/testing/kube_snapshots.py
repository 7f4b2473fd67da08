"""The CSI snapshot controller of :class:`~gocdbackup.testing.kube.FakeKubeAPI`: a
``snapshot.storage.k8s.io/v1`` VolumeSnapshot of an existing claim becomes ``readyToUse``
after ``FakeKubeAPI.snapshot_delay`` seconds, with a bound content name and the claim's size as
its restore size; with ``FakeKubeAPI.snapshot_error`` set (or a claim that does not exist) its
``status.error`` says why, as the controller reports it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gocdbackup.testing.kube import FakeKubeAPI

GROUP, VERSION, PLURAL = "snapshot.storage.k8s.io", "v1", "volumesnapshots"


def snapshot_created(api: FakeKubeAPI, obj: dict[str, Any]) -> None:
    """Settle a new VolumeSnapshot's status (later, as a controller would)."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    claim = (obj.get("spec") or {}).get("source", {}).get("persistentVolumeClaimName", "")

    def settle() -> None:
        current = api.get(PLURAL, namespace, name)
        if current is None:
            return
        pvc = api.get("persistentvolumeclaims", namespace, claim)
        if api.snapshot_error or pvc is None:
            message = api.snapshot_error or f'persistentvolumeclaims "{claim}" not found'
            current["status"] = {
                "readyToUse": False,
                "error": {"message": message, "time": "2026-01-01T00:00:00Z"},
            }
        else:
            size = pvc["spec"]["resources"]["requests"]["storage"]
            current["status"] = {
                "readyToUse": True,
                "boundVolumeSnapshotContentName": f"snapcontent-{current['metadata']['uid']}",
                "restoreSize": size,
                "creationTime": "2026-01-01T00:00:00Z",
            }
        api.put(current, resource=PLURAL)

    timer = threading.Timer(api.snapshot_delay, settle)
    timer.daemon = True
    timer.start()


def claim(namespace: str, name: str, size: str = "50Gi", **spec: Any) -> dict[str, Any]:
    """A bound PersistentVolumeClaim of ``size``."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
            **spec,
        },
        "status": {"phase": "Bound"},
    }
