"""One evaluator per event log: an advisory lock held for the process's lifetime."""

from __future__ import annotations

import fcntl
import os

from core.config import Config


def hold_single_instance(config: Config) -> int | None:
    """An open descriptor locking this kiosk's log for the process's lifetime; None when another kiosk
    holds it. Two evaluators on one log would each close the other's cases."""
    lock_path = config.store_path.with_name(config.store_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
