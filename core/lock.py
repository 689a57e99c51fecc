"""One process per job on a log: an exclusive ``flock`` on a file beside it, held for the process's life.

``kiosk run`` holds ``kiosk.db.lock`` (two evaluators on one log would each close the other's cases) and
``kiosk sync`` holds ``kiosk.db.sync.lock`` (two agents on one log would race for its cursor). The kernel
drops the lock when the process ends, however it ends: no stale lock file to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def lock_path(store_path: Path, job: str | None = None) -> Path:
    """``kiosk.db.lock`` for the evaluator, ``kiosk.db.JOB.lock`` for another job on the same log."""
    suffix = f".{job}.lock" if job else ".lock"
    return store_path.with_name(store_path.name + suffix)


def hold_lock(path: Path) -> int | None:
    """An open descriptor holding ``path`` locked; None when another process holds it. OSError when the
    file cannot be made (a read-only folder, say)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
