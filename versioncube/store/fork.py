"""Refuse to run Icechunk in a process forked from one that already used it.

Icechunk's runtime threads do not survive ``fork()``: a forked child that touches a repository
hangs forever. Rather than hang, versioncube raises :class:`UnsafeProcessError` there. Start
worker processes with the "spawn" or "forkserver" method instead.
"""

from __future__ import annotations

import os

from versioncube.errors import UnsafeProcessError

_used_here = False
_forked_after_use = False


def note_icechunk_use() -> None:
    """Remember that this process started Icechunk, so a forked child can be recognised."""
    global _used_here
    if not _used_here:
        _used_here = True
        os.register_at_fork(after_in_child=_after_fork_in_child)


def check_not_forked() -> None:
    if _forked_after_use:
        raise UnsafeProcessError(
            "this process was created by fork() after its parent used Icechunk, which then "
            "hangs; start it with the 'spawn' or 'forkserver' method, e.g. "
            "multiprocessing.get_context('spawn')"
        )


def _after_fork_in_child() -> None:
    global _forked_after_use
    _forked_after_use = True
