"""Issue 10 item 2 (hub side) and item 8: ``kiosk hub verify`` finds every edit of what the hub holds
that was made without its rules (events, the derived ratings and opened_cases, phone ratings); the phone
page finds a token's case through an index, not a substring scan over events."""

from __future__ import annotations

import pytest
import requests
from alembic import command
from sqlalchemy import create_engine, event, select, text, update
from test_hub_support import DEVICE, qr_token, register, thread_hub, upload_case

from commands.cli import main as kiosk_main
from hub import migrate
from hub.schema import events, phone_ratings, ratings
from hub.storage import HubStore, database_url
from hub.verify import CHECKS, run_checks
from hub.verify import register as register_check

CASE = "370211202611280101"


@pytest.fixture
def hub(tmp_path):
    with thread_hub(tmp_path / "hub") as h:
        h.secret = register(h.store)
        upload_case(h.url, h.secret, tmp_path / "kiosk.db", CASE, rated=True)
        for n in range(3):  # three phone ratings of cases the kiosk did not rate
            token = qr_token(h.secret, f"PHONE-{n}")
            assert (
                requests.post(f"{h.url}/q/{token}", data={"satisfaction": "5"}, timeout=10).status_code == 200
            )
        yield h


def verify(hub, capsys) -> tuple[int, str]:
    code = kiosk_main(["hub", "verify", "--db", hub.store.url])
    return code, capsys.readouterr().out


def test_an_untouched_hub_verifies(hub, capsys):
    code, out = verify(hub, capsys)
    assert code == 0, out
    assert (
        "ok     event chains" in out
        and "ok     derived tables" in out
        and "ok     phone ratings chain" in out
    )
    assert "phone ratings chain head: seq 3 hash " in out


def _edit(hub, statement) -> None:
    with hub.store.engine.begin() as conn:
        conn.execute(statement)


def test_an_edited_event_is_named(hub, capsys):
    _edit(hub, update(events).where(events.c.seq == 2).values(payload='{"edited":true}'))
    code, out = verify(hub, capsys)
    assert code == 1 and "FAILED event chains" in out and "seq 2: content does not match its hash" in out


def test_an_edited_rating_is_named(hub, capsys):
    """The derived table edited directly: the events still say otherwise."""
    _edit(hub, update(ratings).values(satisfaction=5))
    code, out = verify(hub, capsys)
    assert code == 1 and "ratings seq 2 satisfaction differs from its event" in out


@pytest.mark.parametrize(
    "table, named",
    [("ratings", "ratings row for seq 2 missing"), ("opened_cases", "opened_cases row for seq 1 missing")],
)
def test_a_deleted_derived_row_is_named(hub, capsys, table, named):
    _edit(hub, text(f"DELETE FROM {table}"))
    code, out = verify(hub, capsys)
    assert code == 1 and named in out


@pytest.mark.parametrize(
    "statement, named",
    [
        (
            update(phone_ratings).where(phone_ratings.c.chain_seq == 2).values(satisfaction=1),
            "content does not match",
        ),
        (text("DELETE FROM phone_ratings WHERE chain_seq = 2"), "chain seq 3, expected 2"),
    ],
    ids=["edited", "deleted"],
)
def test_an_edited_or_deleted_phone_rating_is_named(hub, capsys, statement, named):
    _edit(hub, statement)
    code, out = verify(hub, capsys)
    assert code == 1 and "FAILED phone ratings chain" in out and named in out


def test_other_modules_register_checks(hub):
    @register_check("test: always one difference")
    def always(store):
        yield "the first"
        yield "the second"

    try:
        results = {r.name: r for r in run_checks(hub.store)}
        found = results["test: always one difference"]
        assert not found.ok and found.differences == 2 and found.first == "the first"
    finally:
        del CHECKS["test: always one difference"]


# --- item 8: the phone page's case lookup is indexed -------------------------------------------------


def test_the_token_lookup_uses_the_index_not_a_scan_of_events(hub):
    statements: list[str] = []
    parameters: dict[str, tuple] = {}

    def record(_conn, _cursor, statement, params, *_args) -> None:
        statements.append(statement)
        parameters[statement] = params

    event.listen(hub.store.engine, "before_cursor_execute", record)
    try:
        assert requests.get(f"{hub.url}/q/{qr_token(hub.secret, CASE + '9')}", timeout=10).status_code == 200
    finally:
        event.remove(hub.store.engine, "before_cursor_execute", record)
    assert statements and not any(" LIKE " in s.upper() for s in statements)
    lookup = next(s for s in statements if "opened_cases" in s)
    with hub.store.engine.connect() as conn:
        plan = " ".join(
            str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + lookup, parameters[lookup]).all()
        )
    assert "opened_cases_device_case" in plan, plan


# --- migration: a hub of 0.1 gets the new tables filled and its phone ratings chained -----------------


def test_a_database_of_revision_0001_is_upgraded_and_verifies(tmp_path, capsys):
    url = database_url(tmp_path / "old", None)
    engine = create_engine(url)
    config = migrate._alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    engine.dispose()
    with thread_hub(tmp_path / "new") as source:  # rows made by today's hub, copied into the old schema
        secret = register(source.store)
        upload_case(source.url, secret, tmp_path / "kiosk.db", CASE)
        for n in range(2):
            token = qr_token(secret, f"PHONE-{n}")
            requests.post(f"{source.url}/q/{token}", data={"satisfaction": "4"}, timeout=10)
        with source.store.engine.connect() as conn:
            copied = {
                name: [dict(r) for r in conn.execute(text(f"SELECT * FROM {name}")).mappings()]
                for name in ("devices", "logs", "events", "phone_ratings")
            }
    old = create_engine(url)
    with old.begin() as conn:
        for name, rows in copied.items():
            for row in rows:
                if name == "phone_ratings":
                    row = {k: v for k, v in row.items() if k not in ("chain_seq", "prev_hash", "hash")}
                columns = ", ".join(row)
                conn.execute(
                    text(f"INSERT INTO {name} ({columns}) VALUES ({', '.join(':' + c for c in row)})"), row
                )
    old.dispose()
    store = HubStore(url)  # migrates to the head revision
    try:
        assert store.opened_case(DEVICE, CASE)["case_no"] == CASE
        assert all(r.ok for r in run_checks(store)), [r for r in run_checks(store) if not r.ok]
        assert store.v1_allowed(DEVICE)  # registered before v2: may sign v1 until switched off
    finally:
        store.close()


def test_an_edited_desk_action_is_named(hub, capsys):
    from core.domain import DEFAULT_REASONS
    from hub.desk.tables import actions, items

    token = qr_token(hub.secret, "PHONE-BAD")
    form = {"satisfaction": "1", "reason": DEFAULT_REASONS[0].code}
    assert requests.post(f"{hub.url}/q/{token}", data=form, timeout=10).status_code == 200
    desk = hub.app_desk
    desk.add_user("sup", "supervisor", None)
    with hub.store.engine.connect() as conn:
        item_id = conn.execute(select(items.c.id).order_by(items.c.id)).scalars().first()
    desk.act(desk.principal("sup"), item_id, "callback", {"reached": True, "note": "已回访，情况属实"})
    code, out = verify(hub, capsys)
    assert code == 0 and "ok     desk action chain" in out, out
    with hub.store.engine.connect() as conn:
        last = conn.execute(select(actions.c.seq).order_by(actions.c.seq.desc())).scalars().first()
    _edit(hub, update(actions).where(actions.c.seq == last).values(payload='{"note":"改过"}'))
    code, out = verify(hub, capsys)
    assert code == 1 and "FAILED desk action chain" in out and f"seq {last}" in out, out
