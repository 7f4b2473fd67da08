"""Reading secrets the caller points at: the repository passphrase and gocdnext's application
key, each from an explicit value, a file or an environment variable.  Values are never logged,
shown or put in a message."""

from __future__ import annotations

import os
from pathlib import Path

from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.cipher import KEY_ENV, parse_key

PASSWORD_ENV = "GOCDBACKUP_PASSWORD"  # noqa: S105 - the variable's name, not a password
NEW_PASSWORD_ENV = "GOCDBACKUP_NEW_PASSWORD"  # noqa: S105 - the variable's name


def resolve_password(
    password: str | bytes | None, password_file: str | Path | None, *, env: str = PASSWORD_ENV
) -> bytes:
    """The explicit value, else the file (one trailing newline stripped), else the
    ``GOCDBACKUP_PASSWORD`` variable."""
    if password is not None:
        value = password.encode() if isinstance(password, str) else password
    elif password_file is not None:
        value = read_secret_file(password_file, "password file")
    else:
        value = os.environ.get(env, "").encode()
    if not value:
        parameter = "new_password_file" if env == NEW_PASSWORD_ENV else "password_file"
        raise ConfigError(f"no repository passphrase: set {env} or pass {parameter}=FILE")
    return value


def read_secret_file(path: str | Path, what: str) -> bytes:
    """A secret kept in a file, one trailing newline (``\n`` or ``\r\n``) dropped, as files
    end; :class:`ConfigError` naming ``what`` if it cannot be read (never the content)."""
    try:
        value = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    return value.removesuffix(b"\n").removesuffix(b"\r")


def application_key(env: str | None = None, file: str | None = None) -> bytes:
    """gocdnext's ``GOCDNEXT_SECRET_KEY``: from ``file``, else ``env``, else the variable."""
    if file is not None:
        try:
            with open(file, encoding="ascii") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the secret key file {file}") from exc
        return parse_key(text, source=f"the secret key file {file}", from_file=True)
    value = env if env is not None else os.environ.get(KEY_ENV, "")
    if not value:
        raise ConfigError(
            f"the application key is needed: set {KEY_ENV} or pass secret_key_file=FILE"
        )
    return parse_key(value)


def given_key(secret_key: str | None = None, secret_key_file: str | None = None) -> bytes | None:
    """The application key when the caller gave one (a value, a file, or ``$GOCDNEXT_SECRET_KEY``
    set), else None; a key given but malformed is an error."""
    if secret_key is None and secret_key_file is None and not os.environ.get(KEY_ENV):
        return None
    return application_key(env=secret_key, file=secret_key_file)
