"""Store and forward under faults: a real hub process behind a fault-injecting proxy (drops, resets
before and in the middle of answers, 500s, slow answers), the hub killed and restarted, and the agent
process SIGKILLed mid-batch. Afterwards the hub holds every event exactly once, in order, chain intact."""

from __future__ import annotations

import random
import subprocess
import sys
import threading

import pytest
from test_hub_support import (
    DEVICE,
    FAULTS,
    FaultProxy,
    HubProcess,
    agent_env,
    fill_log,
    register,
    thread_hub,
    wait_until,
)

from core.events import ZERO_HASH, chain_error
from core.store import EventLog
from hub.storage import HubStore, database_url
from sync.agent import STATUS_KEY, Backoff, SyncAgent
from sync.client import HubClient


def assert_hub_holds_exactly(store: HubStore, log: EventLog) -> None:
    held = store.log_events(DEVICE, log.log_id)
    assert [e["seq"] for e in held] == list(range(1, log.head_seq() + 1))
    prev = ZERO_HASH
    for e in held:
        assert chain_error(e, prev, e["seq"]) is None
        prev = e["hash"]
    assert held == list(log.events_after(0))


def fast_agent(url: str, secret: bytes, log: EventLog, batch_events: int) -> SyncAgent:
    client = HubClient(url, DEVICE, secret, timeout_s=(1, 3))
    return SyncAgent(
        log,
        client,
        batch_events=batch_events,
        backoff=Backoff(base_s=0.02, cap_s=0.3),
        watch_interval_s=0.02,
        rng=random.Random(2),
    )


@pytest.mark.parametrize(
    "count, batch_events",
    [(600, 40), pytest.param(3000, 200, marks=pytest.mark.slow)],
)
def test_faulty_network_and_hub_restart_lose_and_double_nothing(tmp_path, count, batch_events):
    data = tmp_path / "hub"
    secret = register(data)
    hub = HubProcess(data).start()
    proxy = FaultProxy(hub.port, fault_rate=0.35, seed=count)
    hub_view = HubStore(database_url(data, None))
    stop = threading.Event()

    def agent_thread():
        with EventLog(tmp_path / "kiosk.db") as own:
            fast_agent(proxy.url, secret, own, batch_events).run(stop)

    try:
        with EventLog(tmp_path / "kiosk.db") as log:
            fill_log(log, count // 2)
            thread = threading.Thread(target=agent_thread)
            thread.start()
            wait_until(lambda: hub_view.acked_seq(DEVICE, log.log_id) >= count // 6, what="first uploads")
            hub.kill()
            fill_log(log, count // 4, seed=1)  # the kiosk keeps rating while the hub is down
            wait_until(lambda: log.get_state(STATUS_KEY)["state"] == "offline", what="agent offline")
            hub.start()
            fill_log(log, count - count // 2 - count // 4, seed=2)
            wait_until(
                lambda: hub_view.acked_seq(DEVICE, log.log_id) == log.head_seq(), timeout_s=90, what="drained"
            )
            # The hub may hold the last batch while its answer was lost on the way: the agent learns it
            # at its next attempt.
            wait_until(
                lambda: log.get_state(STATUS_KEY)["pending"] == 0, timeout_s=30, what="agent caught up"
            )
            stop.set()
            thread.join(10)
            assert_hub_holds_exactly(hub_view, log)
        assert all(proxy.counts[fault] >= 1 for fault in FAULTS), proxy.counts
    finally:
        stop.set()
        proxy.close()
        hub.kill()
        hub_view.close()


AGENT_SCRIPT = """
import sys
from sync.agent import Backoff, SyncAgent
from sync.client import HubClient
from core.store import EventLog
url, secret, path = sys.argv[1:4]
with EventLog(path) as log:
    SyncAgent(log, HubClient(url, "XHA-W03", bytes.fromhex(secret)), batch_events=20,
              backoff=Backoff(base_s=0.01, cap_s=0.1)).drain(max_failures=1000)
"""


@pytest.mark.slow
def test_agent_killed_mid_batch_20_times(tmp_path):
    rng = random.Random(20)
    with thread_hub(tmp_path / "hub") as hub, EventLog(tmp_path / "kiosk.db") as log:
        secret = register(hub.store)
        fill_log(log, 1000)
        proxy = FaultProxy(hub.port)
        proxy.hold = True
        try:
            for _ in range(20):
                agent = subprocess.Popen(
                    [sys.executable, "-c", AGENT_SCRIPT, proxy.url, secret.hex(), str(tmp_path / "kiosk.db")],
                    env=agent_env(),
                )
                # Let a few answers through, then kill the agent while the hub has stored a batch
                # whose answer it has not yet received.
                posts_to_answer = rng.randint(0, 2)
                while True:
                    method, held = proxy.answers.get(timeout=30)
                    if method == "POST" and posts_to_answer == 0:
                        break
                    posts_to_answer -= method == "POST"
                    held.set()
                agent.kill()
                agent.wait(10)
                held.set()
            proxy.hold = False
            assert fast_agent(proxy.url, secret, log, 50).drain()
            assert_hub_holds_exactly(hub.store, log)
        finally:
            proxy.close()
