"""The Kubernetes driver: the official ``kubernetes`` client, configured from a kubeconfig (a
context selectable) or the pod's service account, its errors translated by status code."""

from gocdbackup.drivers.kube.client import kube_client
from gocdbackup.drivers.kube.secrets import KubeSecretStore

__all__ = ["KubeSecretStore", "kube_client"]
