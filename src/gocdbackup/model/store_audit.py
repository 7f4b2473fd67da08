"""How safe an artefact bucket's own settings keep it, the pure core: the settings a driver
reads (:class:`BucketSettings`) judged against gocdnext's backup guide ("enable bucket
versioning + a 30-day retention rule") and what a restore to a point in time needs
(:func:`audit_findings`)."""

from __future__ import annotations

from attrs import frozen

#: what the checks are called (``store audit --skip CHECK`` accepts a known shortfall)
CHECKS = ("versioning", "lifecycle", "replication", "object_lock", "encryption", "public_access")


@frozen(kw_only=True)
class BucketSettings:
    """What the store says about itself.  ``None`` anywhere: it could not be read (the
    reason is in ``unreadable``)."""

    provider: str  # "s3", "gcs" or "file"
    bucket: str
    #: "enabled", "suspended" (S3: versions kept, new writes not versioned) or "off"
    versioning: str | None
    #: enabled lifecycle rules
    lifecycle_rules: int | None = None
    #: the shortest age at which a rule expires noncurrent versions (None: no such rule)
    noncurrent_expiry_days: int | None = None
    replication: bool | None = None
    object_lock: bool | None = None
    #: the default encryption ("AES256", "aws:kms", "google-managed", "customer-managed")
    encryption: str | None = None
    public_access_blocked: bool | None = None
    #: check name -> why it could not be read (an error code, never a message with secrets)
    unreadable: tuple[tuple[str, str], ...] = ()


@frozen(kw_only=True)
class Finding:
    check: str
    ok: bool
    #: what was found
    detail: str
    #: what to do when it falls short ("" when ok)
    advice: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail, "advice": self.advice}


def versioning_advice(s: BucketSettings) -> str:
    if s.provider == "s3":
        return (
            f"enable versioning: aws s3api put-bucket-versioning --bucket {s.bucket} "
            "--versioning-configuration Status=Enabled (without it an overwritten or deleted "
            "artefact is gone, and the bucket cannot be rolled back to a point in time)"
        )
    if s.provider == "gcs":
        return (
            f"enable Object Versioning: gcloud storage buckets update gs://{s.bucket} "
            "--versioning (without it the bucket cannot be rolled back to a point in time)"
        )
    return (
        "a filesystem store keeps no versions: snapshot its volume (gocdbackup k8s snapshot, "
        "CSI VolumeSnapshots) at each backup, or move the artefacts to a versioned bucket"
    )


def _versioning(s: BucketSettings) -> Finding:
    state = s.versioning
    if state == "enabled":
        return Finding(check="versioning", ok=True, detail="enabled")
    detail = {
        None: "could not be read",
        "suspended": "suspended: versions written before are kept, new writes replace the "
        "current object",
    }.get(state, "off")
    return Finding(check="versioning", ok=False, detail=detail, advice=versioning_advice(s))


def _lifecycle(s: BucketSettings, keep_days: int) -> Finding:
    if s.provider == "file":
        return Finding(check="lifecycle", ok=True, detail="not applicable to a filesystem store")
    if s.lifecycle_rules is None:
        return Finding(
            check="lifecycle",
            ok=False,
            detail="could not be read",
            advice="grant the backup identity read access to the bucket's lifecycle rules",
        )
    days = s.noncurrent_expiry_days
    if days is None:
        return Finding(
            check="lifecycle",
            ok=False,
            detail=f"{s.lifecycle_rules} rule(s), none expires noncurrent versions",
            advice=f"add a rule expiring noncurrent versions after {keep_days} days (the "
            "backup retention): without one every overwritten or deleted artefact is kept, "
            "and paid for, forever",
        )
    if days < keep_days:
        return Finding(
            check="lifecycle",
            ok=False,
            detail=f"noncurrent versions expire after {days} day(s)",
            advice=f"keep noncurrent versions at least {keep_days} days (the backup "
            f"retention): a restore to a time more than {days} day(s) ago cannot roll the "
            "bucket back",
        )
    return Finding(
        check="lifecycle", ok=True, detail=f"noncurrent versions expire after {days} day(s)"
    )


def _flag(
    s: BucketSettings, check: str, value: bool | None, *, yes: str, no: str, advice: str
) -> Finding:
    if value is None:
        why = dict(s.unreadable).get(check, "unknown")
        return Finding(check=check, ok=False, detail=f"could not be read ({why})", advice=advice)
    return Finding(
        check=check, ok=value, detail=yes if value else no, advice="" if value else advice
    )


def audit_findings(s: BucketSettings, *, keep_days: int = 30) -> list[Finding]:
    """One finding per check in :data:`CHECKS`, each with the guide's advice when it falls
    short; ``keep_days`` is the backup retention the noncurrent versions must outlive."""
    if s.provider == "file":
        local = "not applicable to a filesystem store"
        return [
            _versioning(s),
            _lifecycle(s, keep_days),
            *(Finding(check=c, ok=True, detail=local) for c in CHECKS[2:]),
        ]
    where = "another region or account" if s.provider == "s3" else "a dual- or multi-region bucket"
    lock = (
        "S3 Object Lock (governance mode) on a new bucket"
        if s.provider == "s3"
        else "a bucket retention policy or soft delete"
    )
    return [
        _versioning(s),
        _lifecycle(s, keep_days),
        _flag(
            s,
            "replication",
            s.replication,
            yes="configured",
            no="not configured",
            advice=f"replicate the bucket to {where}: versions protect against deletes, "
            "not against losing the bucket or the account",
        ),
        _flag(
            s,
            "object_lock",
            s.object_lock,
            yes="enabled",
            no="not enabled",
            advice=f"protect versions from deletion with {lock}, so stolen credentials "
            "cannot purge the history a point-in-time restore needs",
        ),
        _flag(
            s,
            "encryption",
            None if "encryption" in dict(s.unreadable) else s.encryption is not None,
            yes=f"default encryption {s.encryption}",
            no="no default encryption",
            advice="turn on default encryption (SSE-S3 or SSE-KMS)",
        ),
        _flag(
            s,
            "public_access",
            s.public_access_blocked,
            yes="public access blocked",
            no="public access not blocked",
            advice="block public access on the bucket: artefacts and logs hold build output",
        ),
    ]


@frozen(kw_only=True)
class StoreAudit:
    store: str
    settings: BucketSettings
    findings: tuple[Finding, ...]
    #: checks the caller accepts falling short (``store audit --skip``)
    skipped: tuple[str, ...] = ()

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok and f.check not in self.skipped]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, object]:
        return {
            "store": self.store,
            "provider": self.settings.provider,
            "ok": self.ok,
            "skipped": list(self.skipped),
            "findings": [f.to_dict() for f in self.findings],
        }
