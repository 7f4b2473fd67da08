"""L2: the use cases, as functions of ports and an :class:`~gocdbackup.context.OpContext`.

Automation that needs a composition the facade does not offer calls these directly."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gocdbackup.ops.backup import DUMP_KIND, take_backup
    from gocdbackup.ops.catalog import get_backup, list_backups
    from gocdbackup.ops.copy import copy_backup
    from gocdbackup.ops.gc import collect_garbage
    from gocdbackup.ops.pins import pin_backup, unpin_backup
    from gocdbackup.ops.restore import restore_backup
    from gocdbackup.ops.retention import apply_retention, plan_retention
    from gocdbackup.ops.verify import verify_repository

#: where each name lives, imported on first use (``gocdbackup.ops.wal`` alone stays light)
_LAZY = {
    "DUMP_KIND": "gocdbackup.ops.backup",
    "apply_retention": "gocdbackup.ops.retention",
    "collect_garbage": "gocdbackup.ops.gc",
    "copy_backup": "gocdbackup.ops.copy",
    "get_backup": "gocdbackup.ops.catalog",
    "list_backups": "gocdbackup.ops.catalog",
    "pin_backup": "gocdbackup.ops.pins",
    "plan_retention": "gocdbackup.ops.retention",
    "restore_backup": "gocdbackup.ops.restore",
    "take_backup": "gocdbackup.ops.backup",
    "unpin_backup": "gocdbackup.ops.pins",
    "verify_repository": "gocdbackup.ops.verify",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gocdbackup.ops' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DUMP_KIND",
    "apply_retention",
    "collect_garbage",
    "copy_backup",
    "get_backup",
    "list_backups",
    "pin_backup",
    "plan_retention",
    "restore_backup",
    "take_backup",
    "unpin_backup",
    "verify_repository",
]
