"""Store locations compared as places: whether two store URLs name the same bucket and one
prefix lies inside the other (the same place, or one holding the other).  Pure: local paths
are compared as given, so callers resolve them first (absolute, symlinks followed)."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

from attrs import frozen

#: schemes that name the same kind of store
_ALIASES = {"s3a": "s3", "s3n": "s3", "gcs": "gs", "local": "file", "": "file"}
#: schemes whose URL is a path (no bucket): the host part, if any, is part of the path
_PATH_SCHEMES = frozenset({"file", "memory"})


@frozen
class Location:
    """A store URL as a place: scheme, bucket (empty for path-like stores) and prefix (no
    leading or trailing ``/``; empty for the whole bucket or the file system's root)."""

    scheme: str
    bucket: str
    prefix: str

    def overlaps(self, other: Location) -> bool:
        """Same scheme and bucket, and one prefix equal to or inside the other."""
        if (self.scheme, self.bucket) != (other.scheme, other.bucket):
            return False
        a, b = self.prefix, other.prefix
        return a == b or not a or not b or a.startswith(b + "/") or b.startswith(a + "/")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


def parse_location(url: str) -> Location:
    """``url`` normalised: the scheme lower-cased and its aliases merged (``s3a`` → ``s3``,
    ``gcs`` → ``gs``, a bare path → ``file``), user-info, port, query and fragment dropped,
    the bucket lower-cased, the prefix with ``.``, ``..`` and repeated ``/`` resolved."""
    text = url.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme, path, host = "file", text, ""
    else:
        path = parts.path
        host = parts.netloc.rpartition("@")[2].partition(":")[0]
    scheme = _ALIASES.get(scheme, scheme)
    if scheme in _PATH_SCHEMES:
        if host and host.lower() != "localhost":
            path = f"{host}/{path}"
        host = ""
    prefix = posixpath.normpath("/" + path).strip("/") if path.strip("/") else ""
    return Location(scheme=scheme, bucket=host.lower(), prefix=prefix)


def overlapping(a: str, b: str) -> bool:
    """Whether store URLs ``a`` and ``b`` are the same place or one holds the other."""
    return parse_location(a).overlaps(parse_location(b))
