"""An in-memory :class:`~gocdbackup.ports.SecretStore`: the Secrets of one namespace, for unit
tests of the Kubernetes secrets backend's backup, check and restore without an API server."""

from __future__ import annotations

from attrs import define, field

from gocdbackup.errors import KubernetesError
from gocdbackup.model.project_secrets import KubeSecret


@define
class FakeSecretStore:
    """Secrets by name; ``fail_writes`` makes :meth:`write_secret` fail after that many
    writes (None: never)."""

    namespace: str = "gocdnext"
    secrets: dict[str, KubeSecret] = field(factory=dict)
    fail_writes: int | None = None

    def add(self, *secrets: KubeSecret) -> None:
        for secret in secrets:
            self.secrets[secret.name] = secret

    def list_secrets(self) -> list[KubeSecret]:
        return [self.secrets[n] for n in sorted(self.secrets)]

    def read_secret(self, name: str) -> KubeSecret | None:
        return self.secrets.get(name)

    def write_secret(self, secret: KubeSecret) -> str:
        if self.fail_writes is not None:
            if self.fail_writes <= 0:
                raise KubernetesError(f"writing Secret {secret.name!r} failed (injected)")
            self.fail_writes -= 1
        outcome = "replaced" if secret.name in self.secrets else "created"
        self.secrets[secret.name] = secret
        return outcome
