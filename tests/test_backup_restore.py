"""The PostgreSQL backup procedure of docs/hub.md, performed: a `pg_dump` of the hub's database, more
uploads, a restore of the dump (the hub is back at an older point), and the kiosk's agent sends again
what the hub lost. Nothing is lost, nothing stored twice. Skipped without ``KIOSK_TEST_PG_URL`` or the
PostgreSQL client programs."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest
import requests
from test_hub_support import ADMIN_TOKEN, DEVICE, fill_log, register, thread_hub

from core.store import EventLog
from sync.agent import SyncAgent
from sync.client import HubClient

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")


def _client_program(name: str) -> str | None:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    return found


pytestmark = pytest.mark.skipif(
    not PG_URL or not _client_program("pg_dump") or not _client_program("pg_restore"),
    reason="needs KIOSK_TEST_PG_URL and pg_dump/pg_restore",
)


def _drop_other_schemas() -> None:
    """The whole test database is dumped and restored, as the hub's would be: a schema another run left
    in it (a benchmark's) would be dumped too and collide with itself on restore."""
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        others = conn.execute(
            text(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema') "
                "AND nspname NOT LIKE 'pg\\_%'"
            )
        ).scalars()
        for schema in list(others):
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def test_a_hub_restored_to_an_older_dump_gets_back_what_it_lost(tmp_path):
    from test_hub_support import wipe_database

    libpq_url = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    dump = tmp_path / "hub.dump"
    wipe_database(PG_URL)
    _drop_other_schemas()
    with EventLog(tmp_path / "kiosk.db") as log:
        fill_log(log, 40)
        with thread_hub(tmp_path / "hub", url=PG_URL) as hub:
            secret = register(hub.store)
            agent = SyncAgent(log, HubClient(hub.url, DEVICE, secret), batch_events=10)
            events = list(log.events_after(0))
            assert agent.drain() and len(hub.store.log_events(DEVICE, log.log_id)) == 40
            # The nightly backup (docs/hub.md: custom format, restorable table by table).
            subprocess.run(
                [_client_program("pg_dump"), "-Fc", "-f", str(dump), libpq_url], check=True, timeout=120
            )
            fill_log(log, 30, seed=1)  # uploaded after the backup: what a restore loses
            assert agent.drain() and len(hub.store.log_events(DEVICE, log.log_id)) == 70
        # The database is lost; restored from the dump.
        wipe_database(PG_URL)
        subprocess.run(
            [_client_program("pg_restore"), "--no-owner", "--exit-on-error", "-d", libpq_url, str(dump)],
            check=True,
            timeout=120,
        )
        with thread_hub(tmp_path / "hub", url=PG_URL) as hub:
            assert len(hub.store.log_events(DEVICE, log.log_id)) == 40  # the older point
            fill_log(log, 5, seed=2)
            agent = SyncAgent(log, HubClient(hub.url, DEVICE, secret), batch_events=10)
            assert agent.drain()  # told `gap`, it sends again from what the hub holds
            assert hub.store.log_events(DEVICE, log.log_id) == list(log.events_after(0))
            assert len(list(log.events_after(0))) == 75 and events == list(log.events_after(0))[:40]
            ratings = requests.get(
                f"{hub.url}/api/v1/ratings", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
            ).json()
            rated = sum(1 for e in log.events_after(0) if e["type"] == "rating")
            assert ratings["count"] == rated  # derived ratings rebuilt once each, none twice
