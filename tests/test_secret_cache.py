"""The device-secret cache: a secret read once per process and ``ttl_s``; a rotated secret refused at
once by the process that rotated it, and within ``ttl_s`` by another process on the same database."""

from __future__ import annotations

import time

from test_hub_support import fill_log, post_events, register, thread_hub, wait_until

from core.store import EventLog
from hub.secret_cache import SecretCache
from hub.storage import HubStore


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_secret_is_read_once_per_ttl_and_forgotten_on_rotation():
    reads: list[str] = []
    secrets = {"A": b"a" * 32}
    clock = Clock()

    def load(device_id):
        reads.append(device_id)
        return secrets.get(device_id)

    cache = SecretCache(load, ttl_s=5.0, clock=clock)
    assert [cache.get("A") for _ in range(100)] == [b"a" * 32] * 100 and reads == ["A"]
    secrets["A"] = b"b" * 32
    clock.now = 4.9
    assert cache.get("A") == b"a" * 32  # another process rotated it: still the old one, within the TTL
    clock.now = 5.0
    assert cache.get("A") == b"b" * 32 and reads == ["A", "A"]
    secrets["A"] = b"c" * 32
    cache.forget("A")  # rotated in this process
    assert cache.get("A") == b"c" * 32
    # Unknown devices are read every time: made-up ids fill nothing, a new device is known at once.
    assert cache.get("X") is None and cache.get("X") is None and reads.count("X") == 2
    secrets["X"] = b"x" * 32
    assert cache.get("X") == b"x" * 32


def test_every_secret_is_read_in_one_query_at_most_once_per_ttl():
    """With ``load_all``, a fleet's requests read every secret once per TTL, not each device's on its own;
    a rotation elsewhere is seen within the TTL, here at once; a device not in the copy is read alone."""
    reads: list[str] = []
    secrets = {"A": b"a" * 32, "B": b"b" * 32}
    clock = Clock()

    def load(device_id):
        reads.append(device_id)
        return secrets.get(device_id)

    def load_all():
        reads.append("*")
        return dict(secrets)

    cache = SecretCache(load, ttl_s=5.0, clock=clock, load_all=load_all)
    assert not cache.holds("A")
    assert [cache.get(d) for d in "ABAB" * 25] == [b"a" * 32, b"b" * 32] * 50 and reads == ["*"]
    assert cache.holds("A") and not cache.holds("C")
    secrets["A"] = b"A" * 32  # rotated by another process
    clock.now = 4.9
    assert cache.get("A") == b"a" * 32
    clock.now = 5.0
    assert not cache.holds("A")
    assert cache.get("A") == b"A" * 32 and cache.get("B") == b"b" * 32 and reads == ["*", "*"]
    secrets["B"] = b"2" * 32
    cache.forget("B")  # rotated in this process: read at once, on its own
    assert cache.get("B") == b"2" * 32 and reads == ["*", "*", "B"]
    secrets["C"] = b"c" * 32  # registered since the copy was read: known at once
    assert cache.get("C") == b"c" * 32 and cache.get("X") is None and cache.get("X") is None
    assert reads == ["*", "*", "B", "C", "X", "X"]


def test_the_cache_is_bounded():
    cache = SecretCache(lambda d: d.encode(), max_entries=3)
    for device in "ABCDE":
        cache.get(device)
    assert list(cache._entries) == ["C", "D", "E"]


def all_events(log: EventLog) -> list[dict]:
    return list(log.events_after(0))


def test_a_rotated_secret_is_refused_at_once_here_and_within_the_ttl_elsewhere(tmp_path):
    with thread_hub(tmp_path / "hub") as hub, EventLog(tmp_path / "k.db") as log:
        fill_log(log, 3)
        old = register(hub.store)
        assert post_events(hub.url, old, log.log_id, all_events(log)).status_code == 200  # now cached
        new = register(hub.store)  # rotated in the hub's own process
        assert post_events(hub.url, old, log.log_id, all_events(log)).status_code == 401
        assert post_events(hub.url, new, log.log_id, all_events(log)).status_code == 200

        # Another process (its own store, its own cache) rotates it: refused here within the TTL.
        hub.store.secret_cache.ttl_s = 1.0
        other = HubStore(hub.store.url)
        try:
            newer = bytes.fromhex(other.add_device("XHA-W03")[0])
        finally:
            other.close()
        rotated_at = time.monotonic()
        wait_until(
            lambda: post_events(hub.url, new, log.log_id, all_events(log)).status_code == 401,
            timeout_s=5,
            what="the secret rotated elsewhere refused",
        )
        assert time.monotonic() - rotated_at < 1.0 + 1.0
        assert post_events(hub.url, newer, log.log_id, all_events(log)).status_code == 200
