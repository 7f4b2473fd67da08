"""L2: the use cases, as functions of ports and an :class:`~gocdbackup.context.OpContext`.

Automation that needs a composition the facade does not offer calls these directly."""

from gocdbackup.ops.backup import DUMP_KIND, take_backup
from gocdbackup.ops.catalog import get_backup, list_backups
from gocdbackup.ops.copy import copy_backup
from gocdbackup.ops.gc import collect_garbage
from gocdbackup.ops.pins import pin_backup, unpin_backup
from gocdbackup.ops.restore import restore_backup
from gocdbackup.ops.retention import apply_retention, plan_retention
from gocdbackup.ops.verify import verify_repository

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
