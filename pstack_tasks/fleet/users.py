"""Who is asking: the identity a client acts as, who the admins are, and what each may do.

A process belongs to the user who created it (``PSTACK_USER``, else the operating-system
user).  Anyone may list every process, as in pstack; only the owner, or a user named in
``PSTACK_ADMINS``, may kill one.  These checks run in the client, so they keep honest users
from stopping each other's work by mistake; they are no defence against a client that lies
about its name.  The boundary against that is Redis authentication (docs/security.md).
"""
from __future__ import annotations

import getpass
from collections.abc import Mapping

from pstack_tasks.config import settings
from pstack_tasks.exceptions import PermissionDenied


def current_user() -> str:
    """The identity this client acts as: ``PSTACK_USER``, else the operating-system user."""
    return settings().user or getpass.getuser()


def admins() -> frozenset[str]:
    """The users named in ``PSTACK_ADMINS`` (comma- or space-separated)."""
    return frozenset(name for name in settings().admins.replace(",", " ").split() if name)


def is_admin(user: str | None = None) -> bool:
    """Whether ``user`` (default: the current user) may act on every user's processes."""
    return (user or current_user()) in admins()


def check_may_kill(pid: int, record: Mapping[str, str], who: str | None = None, action: str = "kill it") -> None:
    """Refuse, with a message that names the owner, to kill (or ``action``) another user's process.

    Raises:
        PermissionDenied: ``who`` is neither the process's owner nor an admin.
    """
    who = who or current_user()
    owner = record.get("user") or ""
    if who == owner or is_admin(who):
        return
    raise PermissionDenied(f"process {pid} belongs to {owner or 'nobody'}; only {owner or 'its owner'} or an "
                           f"admin (PSTACK_ADMINS) can {action}, and you are {who}")


__all__ = ["current_user", "admins", "is_admin", "check_may_kill"]
