"""What differs between fsspec's backends, below
:class:`~gocdbackup.drivers.fsspec_store.FsspecStore`: credentials in S3 URLs, which vendor
errors are worth retrying, a lighter botocore session for S3, the protocol names a filesystem
answers to, and atomic writes of local files."""

from __future__ import annotations

import email.utils
import os
import re
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from gocdbackup.drivers.listing import TEMP_PREFIX

_TRANSIENT_MARKERS = (
    "SlowDown",
    "Throttl",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500 Internal",
    "Connection reset",
    "ServerDisconnected",
    "timed out",
)


def redact_url(url: str) -> str:
    """The URL without any user-info (``s3://key:secret@bucket`` -> ``s3://bucket``)."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        # keep the host text as given (``hostname`` would lower-case a bucket name)
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return urlunsplit(parts)


def credentials_from_url(
    url: str, storage_options: dict[str, Any] | None
) -> tuple[str, dict[str, Any], str]:
    """``(url for fsspec, storage options, secret text to keep out of paths)``.

    s3fs does not read ``s3://KEY:SECRET@bucket/...`` itself: it would treat ``KEY:SECRET@bucket``
    as the bucket name, fail every call and put the secret into vendor error messages. So for
    ``s3``/``s3a`` the user-info becomes ``key``/``secret`` (explicit storage options win)."""
    options = dict(storage_options or {})
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, options, ""
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    if parts.scheme.lower() in ("s3", "s3a"):
        if user:
            options.setdefault("key", unquote(user))
        if password:
            options.setdefault("secret", unquote(password))
        return redact_url(url), options, userinfo
    return url, options, userinfo


#: vendor exception classes (matched by name anywhere in the class hierarchy) for a connection
#: that failed or broke off: botocore's ``ConnectionError`` (``EndpointConnectionError``, which
#: is what a reset connection surfaces as) and ``HTTPClientError`` (``ConnectionClosedError``,
#: ``ReadTimeoutError``), aiohttp's ``ClientConnectionError`` and ``ClientPayloadError``
_TRANSIENT_TYPES = frozenset(
    {
        "ConnectionError",
        "HTTPClientError",
        "ClientConnectionError",
        "ClientPayloadError",
        "IncompleteRead",
    }
)


def is_transient(exc: BaseException, *, paths: tuple[str, ...] = ()) -> bool:
    """Whether ``exc``, or the vendor error it was translated from, is worth retrying.

    The explicit ``__cause__`` chain is followed: s3fs turns ``SlowDown``/``503`` into
    ``OSError(EBUSY, "Please reduce your request rate.")`` and keeps the botocore error, which
    names the code, only as the cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if any(cls.__name__ in _TRANSIENT_TYPES for cls in type(current).__mro__):
            return True
        text = f"{type(current).__name__} {current}"
        # vendor messages quote paths (the object's or a parent's): a key holding "503" is no 503
        for path in paths:
            if path:
                text = re.sub(re.escape(path) + r"[^\s'\"]*", "", text)
        if any(m in text for m in _TRANSIENT_MARKERS):
            return True
        current = current.__cause__
    return False


def lighter_s3_session(fs: Any) -> None:
    """Give a new s3fs filesystem a botocore session whose timestamps are parsed with the
    standard library (ISO 8601 in listings, RFC 1123 in headers) instead of dateutil: the
    same aware datetimes, at a fraction of the cost (measured: dateutil was 7 % of the client's
    CPU when copying 10,000 small objects).  An instance already in use is left alone."""
    if getattr(fs, "session", None) is not None or getattr(fs, "_s3", None) is not None:
        return
    from aiobotocore.session import AioSession  # noqa: PLC0415 - only for S3 stores

    session = AioSession(**getattr(fs, "kwargs", {}))
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=_parse_timestamp
    )
    fs.session = session


def _parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp semantics (aware datetimes) without dateutil for the two formats
    S3 uses; anything else goes to botocore's own parser."""
    if isinstance(value, str):
        with suppress(ValueError):
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        with suppress(TypeError, ValueError):
            parsed = email.utils.parsedate_to_datetime(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    from botocore.utils import parse_timestamp  # noqa: PLC0415

    result: datetime = parse_timestamp(value)
    return result


def protocols(fs: Any) -> tuple[str, ...]:
    """The names a filesystem answers to (``("s3", "s3a")``, ``("gs", "gcs")``, ``("file",
    "local")``, ...)."""
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def atomic_write_stream(path: Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to a temporary file beside ``path``, sync it and rename it over
    ``path``: readers see the old file or the whole new one; the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    written = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for data in chunks:
                f.write(data)
                written += len(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written


def atomic_write(path: Path, data: bytes) -> None:
    atomic_write_stream(path, [data])
