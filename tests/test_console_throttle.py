"""The console's login throttle (hub/console/throttle.py) on a real SQLite database, with a clock the
test moves: the limits per name and per address, the window, a right password, and two throttles over
one database (two hub processes) counting as one. The same across real processes on PostgreSQL:
tests/test_hub_workers.py."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.console.throttle import (
    FAILURE_WINDOW_S,
    MAX_ADDRESS_FAILURES,
    MAX_FAILURES,
    LoginThrottle,
    address_subject,
    login_failures,
)
from hub.storage import HubStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _throttles(tmp_path, count: int = 2):
    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    clock = Clock()
    return store, clock, [LoginThrottle(store.engine, lambda: b"k" * 32, clock) for _ in range(count)]


def test_failures_on_two_processes_count_as_one_and_age_out(tmp_path):
    store, clock, (one, two) = _throttles(tmp_path)
    for i in range(MAX_FAILURES):
        assert not one.blocked("d1", "10.0.0.1") and not two.blocked("d1", "10.0.0.1")
        (one if i % 2 else two).failed("d1", "10.0.0.1")
    assert one.blocked("d1", "10.0.0.2") and two.blocked("d1", "10.0.0.9")  # per name, from anywhere
    assert not one.blocked("d2", "10.0.0.1")  # the address is below its own limit
    clock.now += FAILURE_WINDOW_S + 1
    assert not two.blocked("d1", "10.0.0.1")
    one.failed("d3", "10.0.0.1")  # a new failure deletes the rows older than the window
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(login_failures)).scalar() == 2
    store.close()


def test_an_address_is_limited_over_names_and_a_right_password_clears_its_name(tmp_path):
    store, _clock, (one, two) = _throttles(tmp_path)
    for i in range(MAX_ADDRESS_FAILURES):
        (one if i % 2 else two).failed(f"user{i}", "10.0.0.1")
    assert one.blocked("anyone", "10.0.0.1") and not one.blocked("anyone", "10.0.0.2")
    for _ in range(MAX_FAILURES):
        one.failed("d1", "10.0.0.3")
    two.succeeded("d1")
    assert not one.blocked("d1", "10.0.0.3")
    store.close()


def test_attempts_are_counted_before_the_check_and_a_right_one_is_taken_back(tmp_path):
    store, clock, (one, two) = _throttles(tmp_path)
    tickets = [(one if i % 2 else two).attempt("d1", "10.0.0.1") for i in range(MAX_FAILURES)]
    assert all(tickets)  # the first five get a password checked (each stays a failure unless taken back)
    assert one.attempt("d1", "10.0.0.2") is None  # the sixth, from anywhere, does not
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(login_failures)).scalar() == 2 * MAX_FAILURES
    one.succeeded("d1", tickets[-1])  # the last was right: the name's failures go, and its address row
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(login_failures)).scalar() == MAX_FAILURES - 1
    assert one.attempt("d1", "10.0.0.1") is not None
    clock.now += FAILURE_WINDOW_S + 1
    assert one.attempt("d9", "10.0.0.1") is not None  # old rows go with the next attempt
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(login_failures)).scalar() == 2
    store.close()


def test_a_guesser_moving_through_its_ipv6_network_is_counted_as_one_address(tmp_path):
    """The attack: one subscriber's /64 holds 2^64 addresses, a fresh one for every guess."""
    store, _clock, (one, _two) = _throttles(tmp_path)
    for i in range(MAX_ADDRESS_FAILURES):
        assert one.attempt(f"user{i}", f"2001:db8:1:2::{i + 1:x}") is not None  # counted, then wrong
    assert one.blocked("anyone", "2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert one.attempt("anyone", "2001:db8:1:2:abcd::1") is None
    assert not one.blocked("anyone", "2001:db8:1:3::1")  # the next network is another subscriber
    store.close()


def test_address_units():
    assert address_subject("10.0.0.1") == "10.0.0.1"
    assert address_subject("::ffff:10.0.0.1") == "10.0.0.1"  # a dual-stack socket's IPv4 client
    assert address_subject("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_subject("2001:DB8:1:2::1") == address_subject("2001:db8:1:2:ffff::9")
    assert address_subject("testclient") == "testclient"
