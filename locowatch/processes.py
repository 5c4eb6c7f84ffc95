"""Child processes that never outlive their parent.

A service's children (the edge supervisor's services, ingest's FSE process, the demo's
services) must die with it, even when it is killed with SIGKILL: an orphan would keep
its port from the next start, or go on writing beside its successor. Linux delivers a
chosen signal to a child when its parent dies (``prctl(PR_SET_PDEATHSIG)``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
# Loaded here, in the parent: between fork and exec a child should only make the call
# (loading a library there could wait forever on a lock another parent thread held).
_LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """In the child: get ``signum`` when the parent dies (exits at once if it already has).

    Call it first thing in a child, or as ``preexec_fn`` of ``subprocess.Popen`` (from a
    parent that runs no other threads while it forks).
    """
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        _LIBC.prctl(PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def die_with_parent_by_sigterm() -> None:
    """``preexec_fn`` form of :func:`die_with_parent` with SIGTERM (a graceful stop)."""
    die_with_parent(signal.SIGTERM)
