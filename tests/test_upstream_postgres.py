"""Reporting upward on PostgreSQL: two real ``kiosk hub upstream send`` processes drain one outbox and
never send the same record at the same time; each record reaches the stand-in province once. Skipped
when ``KIOSK_TEST_PG_URL`` is unset (``.ci/postgres.sh`` starts a server)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_hub_support import ROOT, wipe_database
from upstream_support import KEY, add_phone_rating, add_window_ratings, new_store, statuses

from hub.upstream.standin import StandinProvince

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


@pytest.fixture
def pg_store(tmp_path):

    wipe_database(PG_URL)
    store = new_store(tmp_path, PG_URL)
    yield store
    store.close()


def test_two_processes_never_send_one_record_twice(pg_store, tmp_path):
    add_window_ratings(pg_store, tmp_path, 200, seed=11)
    for i in range(20):
        assert add_phone_rating(pg_store, f"PHONE-{i}", 1 + i % 5, f"{i:016x}")
    (tmp_path / "upstream.key").write_text(KEY.hex())
    # A slow province (each request held 20 ms) widens the window in which two senders could collide.
    with StandinProvince("zhejiang-offlinereport", key=KEY, app="APPMARK-TEST", hold_s=0.02) as province:
        config = tmp_path / "hub.toml"
        config.write_text(
            f'[upstream]\nprofile = "zhejiang-offlinereport"\nurl = "{province.url}"\n'
            'app = "APPMARK-TEST"\nkey_file = "upstream.key"\n'
        )
        command = [sys.executable, "-m", "commands.cli", "hub", "upstream", "send", "--config", str(config)]
        command += ["--db", PG_URL]
        senders = [
            subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=300) for p in senders]
        summary = province.summary()
    assert [p.returncode for p in senders] == [0, 0], outputs
    sent = [int(out.split("sent by this run: ")[1].split()[0]) for out, _ in outputs]
    assert sum(sent) == 220 and min(sent) > 0, sent  # both worked, together exactly once each
    assert summary["held"] == 220 and summary["deliveries"] == 220
    assert summary.get("concurrent", 0) == 0 and summary.get("redeliveries", 0) == 0
    assert statuses(pg_store) == {"sent": 220}
