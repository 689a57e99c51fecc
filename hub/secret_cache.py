"""Device secrets cached in each hub process: the SELECT of a device's secret on every signed request
was a fifth of the hub's CPU.

A secret read from the database is kept for ``ttl_s`` seconds. Rotating a secret in this process
(``kiosk hub device add`` on a running hub's store, the console) forgets it at once; another hub
process on the same database keeps the old secret until its copy is ``ttl_s`` old, so a rotated secret
is refused everywhere within ``ttl_s``. Unknown devices are not cached: a flood of made-up device ids
neither fills the cache nor delays a device registered a moment later. At most ``max_entries`` secrets
are kept (the least recently read go first).

With ``load_all`` (the hub's store gives it), every registered device's secret is read in one query at
most once per ``ttl_s``, when a request finds the copy older than that: a fleet whose devices each
report once a minute would otherwise miss a 5 s cache on nearly every request. The same rule holds: a
copy is never older than ``ttl_s``, and a device not in it (unknown, or registered since) is read on
its own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

SECRET_TTL_S = 5.0  # how long another process may still accept a secret rotated elsewhere
MAX_ENTRIES = 100_000  # a province's devices, with room


class SecretCache:
    def __init__(
        self,
        load: Callable[[str], bytes | None],
        ttl_s: float = SECRET_TTL_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        load_all: Callable[[], dict[str, bytes]] | None = None,
    ):
        self._load = load
        self._load_all = load_all
        self._every: dict[str, bytes] = {}  # load_all's copy, read at _every_at
        self._every_at = -float("inf")
        self._every_lock = threading.Lock()  # one reader of every secret at a time
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, device_id: str) -> bytes | None:
        """The device's secret, from the cache when fresh, else from the database; None if unknown."""
        now = self._clock()
        if self._load_all is not None:
            every = self._fresh_copy(now)
            if device_id in every:
                return every[device_id]
        with self._lock:
            entry = self._entries.get(device_id)
            if entry is not None and now - entry[0] < self.ttl_s:
                self._entries.move_to_end(device_id)
                return entry[1]
        secret = self._load(device_id)  # outside the lock: one slow read holds no other request up
        with self._lock:
            if secret is None:
                self._entries.pop(device_id, None)
            else:
                self._entries[device_id] = (now, secret)
                self._entries.move_to_end(device_id)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return secret

    def _fresh_copy(self, now: float) -> dict[str, bytes]:
        """Every device's secret as read less than ``ttl_s`` ago, read again now if older."""
        if now - self._every_at < self.ttl_s:
            return self._every
        with self._every_lock:
            if self._clock() - self._every_at >= self.ttl_s:  # not read by another thread meanwhile
                assert self._load_all is not None
                read_at = self._clock()
                self._every, self._every_at = self._load_all(), read_at
            return self._every

    def holds(self, device_id: str) -> bool:
        """Whether ``get`` would answer from the cache now, without reading the database."""
        now = self._clock()
        if self._load_all is not None and now - self._every_at < self.ttl_s and device_id in self._every:
            return True
        with self._lock:
            entry = self._entries.get(device_id)
            return entry is not None and now - entry[0] < self.ttl_s

    def forget(self, device_id: str) -> None:
        """Drop a device's cached secret (its secret was just changed in this process)."""
        with self._lock:
            self._entries.pop(device_id, None)
        with self._every_lock:
            self._every = {k: v for k, v in self._every.items() if k != device_id}
