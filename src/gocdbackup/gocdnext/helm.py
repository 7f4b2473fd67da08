"""The names gocdnext's Helm chart gives to what a backup needs: every object is named
``<release>-gocdnext-<part>`` (truncated to 63 characters, no de-duplication, no
``fullnameOverride``), so a release called ``gocdnext`` gives ``gocdnext-gocdnext-server``."""

from __future__ import annotations

from attrs import frozen

CHART = "gocdnext"
#: the label every object of a release carries, valued with the release's name
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
#: the development database: user, password and database are all ``gocdnext``
DEV_DATABASE = "gocdnext"
POSTGRES_CONTAINER = "postgres"
#: the key of the application key in the chart's own Secret, and in an existing one
SECRET_KEY_ITEM = "secret-key"  # noqa: S105 - the item's name in the Secret
EXISTING_SECRET_KEY_ITEM = "SECRET_KEY"  # noqa: S105 - the item's name


def full_name(release: str, part: str) -> str:
    """``<release>-gocdnext-<part>``, cut to Kubernetes' 63 characters as the chart does."""
    return f"{release}-{CHART}"[:63].rstrip("-") + f"-{part}" if part else f"{release}-{CHART}"


@frozen(kw_only=True)
class ReleaseNames:
    """What a release's objects are called (each overridable by the caller)."""

    release: str
    server: str
    agent: str
    postgres_statefulset: str
    postgres_pod: str
    artifacts_pvc: str
    tokens_secret: str

    @classmethod
    def of(cls, release: str) -> ReleaseNames:
        postgres = full_name(release, "postgres")
        return cls(
            release=release,
            server=full_name(release, "server"),
            agent=full_name(release, "agent"),
            postgres_statefulset=postgres,
            postgres_pod=f"{postgres}-0",
            artifacts_pvc=full_name(release, "server-artifacts"),
            tokens_secret=full_name(release, "server-tokens"),
        )

    @property
    def writers(self) -> tuple[tuple[str, str], ...]:
        """The workloads that write to the database and the artefact store, as (kind, name):
        a quiesce scales these to zero (the web UI only talks to the server)."""
        return (("Deployment", self.server), ("StatefulSet", self.agent))
