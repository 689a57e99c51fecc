"""The upload a live device sends, stored on PostgreSQL in one or two round trips (``HubStore.ingest`` tries
this first): the general path through SQLAlchemy took 8 to 11 (a pool ping, BEGIN, the log's row, the
cases' locks, the numbers, a statement per table, the log's new head, COMMIT), each a wait for the server
and a statement's Python, and that was most of an upload's cost (docs/performance.md, "A fleet against
the hub").

A batch takes this path when the hub would derive exactly what the general path derives from it
(``plan``): every event checked (shape, hash, chained to the one before it in the batch), every rating's
row derivable, every rating_detail naming a rating of the same batch, no rating_corrected. That is what a
kiosk sends (a case opened, its rating, a 差评's reasons), one event or a day of them. Anything else — a
correction, a detail of a rating uploaded before, a payload the export cannot show — goes the general
way, which also logs why. Every table's rows go to the server as one JSON document per table
(``json_to_recordset``).

A batch without ratings (a case opened): one statement (``_SOLE``), committed in the same round trip. The
log's row is made or locked by the general path's ``INSERT … ON CONFLICT DO UPDATE`` and moved to the
batch's last event in that same statement only if the batch continues it (its first event carries seq
``acked_seq + 1`` and links to ``head_hash``, compared with the row as locked); its rows are inserted
only if the row was moved. A resend ends where the row already ends: its events' keys are taken, the
statement fails, nothing is stored.

A batch with ratings, two round trips. First (one pipeline, one transaction): the log's row made, locked
and read, then its rated cases' advisory locks (the same keys, in the same order, after the log's row, as
the general path), in one statement; under the locks, in a statement of its own (a snapshot taken after
them), each case's highest ``assess_number`` and the device's section (a 差评's desk item). Unless the
batch continues the log as held, it rolls back and the general path decides. Second: events,
opened_cases, ratings (the batch's details applied), desk_items and upstream_outbox inserted and the
log's head moved in one statement of data-modifying WITHs; for a batch with a 差评, its items' figures'
facts (``desk_item_facts``, computed from what that statement wrote by the same query as
``hub.desk.store.fold_item_facts``) in a second; then COMMIT.

An upload is acknowledged only after its COMMIT returns. Any database error rolls back and the general
path takes the batch from the start: it sees what is held, so a COMMIT whose answer was lost (stored or
not) is acknowledged once either way.

The connections are this path's own (psycopg, up to ``KEEP_CONNECTIONS`` kept open per process), so no
pool ping is paid per upload; one found broken is closed and the upload tried again on a new one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import BigInteger, Engine, Float, Integer, Table, any_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from core.domain import is_bad
from core.events import ZERO_HASH, chain_error

from .derived import event_row, opened_case_row, opened_cases
from .desk.store import insert_item_facts, window_item_rows
from .desk.tables import device_sections, items
from .ratings import detail_values, rating_row
from .schema import events, logs, ratings
from .upstream.outbox import CASE_LOCK_SPACE, case_lock_keys, outbox, window_records

KEEP_CONNECTIONS = 16  # the uploads in flight per process (hub.routers.devices.MAX_INGESTS_IN_FLIGHT)

# Round trip 1. The log's row made, locked and read (the general path's statement), then the rated cases'
# locks (hub.upstream.outbox.lock_cases: in the order of their keys), in one statement: the SELECT takes
# the case locks for the one row the INSERT returns, so after the log's row is made or locked.
_LOCK = (
    f"WITH held AS (INSERT INTO {logs.name} (device_id, log_id, acked_seq, head_hash, first_seen_at, "
    "last_seen_at) VALUES (%s, %s, 0, %s, %s, %s) ON CONFLICT (device_id, log_id) "
    "DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at RETURNING acked_seq, head_hash) "
    "SELECT acked_seq, head_hash, (SELECT count(pg_advisory_xact_lock(%s, k)) FROM "
    "(SELECT k FROM unnest(%s::integer[]) AS k ORDER BY k) AS ordered) FROM held"
)
# Then, in a statement of its own (its snapshot taken under the locks): each case's highest number, and
# the device's section (hub.desk.store.section_of) for a 差评's desk item.
_READ = (
    "SELECT (SELECT json_object_agg(project_no, n) FROM (SELECT project_no, max(assess_number) AS n "
    f"FROM {outbox.name} WHERE project_no IN (SELECT json_array_elements_text(%s::json)) "
    "GROUP BY project_no) AS numbers), "
    f"(SELECT dept FROM {device_sections.name} WHERE device_id = %s ORDER BY id DESC LIMIT 1)"
)


@dataclass(frozen=True)
class Plan:
    """What a batch writes once it is known to continue the log: every row but the numbers and sections
    that are read under the locks."""

    events: list[dict[str, Any]]
    opened: list[dict[str, Any]]
    ratings: list[dict[str, Any]]  # with the batch's details applied
    detailed: frozenset[int]  # seqs of the ratings whose detail is in the batch
    cases: list[str]  # the rated cases, whose locks the general path takes too


def plan(device_id: str, log_id: str, batch: Sequence[dict[str, Any]], now: str) -> Plan | None:
    """The rows of ``batch`` if the general path would derive exactly these from it, else None."""
    if not batch:
        return None
    prev: dict[str, Any] | None = None
    rows: dict[int, dict[str, Any]] = {}
    detailed: set[int] = set()
    opened = []
    for e in batch:
        if prev is None:
            problem = chain_error(e, e["prev_hash"], e["seq"])  # its shape and hash; its link comes later
        else:
            problem = chain_error(e, prev["hash"], prev["seq"] + 1)
        if problem is not None:
            return None
        prev = e
        kind = e["type"]
        if kind == "rating":
            row = rating_row(e)
            if row is None:
                return None
            rows[e["seq"]] = {"device_id": device_id, "log_id": log_id, **row}
        elif kind == "rating_detail":
            found = detail_values(e)
            if found is None or found[0] not in rows:
                return None
            rows[found[0]].update(found[1])
            detailed.add(found[0])
        elif kind == "rating_corrected":
            return None
        case = opened_case_row(e)
        if case is not None:
            opened.append({"device_id": device_id, "log_id": log_id, "received_at": now, **case})
    return Plan(
        events=[event_row(device_id, log_id, e, now) for e in batch],
        opened=opened,
        ratings=list(rows.values()),
        detailed=frozenset(detailed),
        cases=sorted({r["case_no"] for r in rows.values() if r["case_no"]}),
    )


def _column_type(table: Table, column: str) -> str:
    kind = table.c[column].type
    if isinstance(kind, BigInteger):
        return "bigint"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, Float):
        return "double precision"
    return "text"


def _columns(table: Table) -> list[str]:
    """The columns a row names (an absent key is NULL, as the general path leaves it): all but the
    generated id."""
    return [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]


def _insert_cte(name: str, table: Table, where: str = "") -> str:
    """Every row of one table from one JSON document (``json.dumps`` is C; psycopg's dumpers of text
    arrays escape element by element in Python, half the path's time at a batch of 100)."""
    columns = _columns(table)
    names = ", ".join(f'"{c}"' for c in columns)
    typed = ", ".join(f'"{c}" {_column_type(table, c)}' for c in columns)
    return (
        f"{name} AS (INSERT INTO {table.name} ({names}) "
        f"SELECT {names} FROM json_to_recordset(%s::json) AS r({typed}){where})"
    )


_TABLES = (events, opened_cases, ratings, items, outbox)
# Round trip 2: every table's rows and the log's new head in one statement (each data-modifying WITH runs
# once, whether or not the query reads it), then COMMIT.
_WRITE = (
    "WITH "
    + ", ".join(_insert_cte(f"w{i}", t) for i, t in enumerate(_TABLES))
    + f" UPDATE {logs.name} SET acked_seq = %s, head_hash = %s WHERE device_id = %s AND log_id = %s"
)

# A batch without ratings (a case opened, what else the kiosk records) in one statement and one round trip:
# the log's row made or locked, and moved to the batch's last event in the same statement if the batch
# continues it (ON CONFLICT DO UPDATE compares with the row as locked, committed by whoever came first);
# the rows inserted only if the row now ends at the batch's last event. A batch held already ends there
# too: its events' keys are taken, the statement fails and stores nothing, the general path answers.
_CONTINUES = "{t}.acked_seq = %(first)s - 1 AND {t}.head_hash = %(prev)s"
_SOLE = (
    f"WITH held AS (INSERT INTO {logs.name} (device_id, log_id, acked_seq, head_hash, first_seen_at, "
    "last_seen_at) VALUES (%(device)s, %(log)s, "
    "CASE WHEN %(first)s = 1 AND %(prev)s = %(zero)s THEN %(last)s ELSE 0 END, "
    "CASE WHEN %(first)s = 1 AND %(prev)s = %(zero)s THEN %(hash)s ELSE %(zero)s END, %(now)s, %(now)s) "
    "ON CONFLICT (device_id, log_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at, "
    f"acked_seq = CASE WHEN {_CONTINUES.format(t=logs.name)} THEN %(last)s ELSE {logs.name}.acked_seq END, "
    f"head_hash = CASE WHEN {_CONTINUES.format(t=logs.name)} THEN %(hash)s ELSE {logs.name}.head_hash END "
    "RETURNING acked_seq, head_hash), "
    "moved AS (SELECT 1 FROM held WHERE acked_seq = %(last)s AND head_hash = %(hash)s), "
    + _insert_cte("w0", events, " WHERE EXISTS (SELECT 1 FROM moved)").replace("%s", "%(events)s")
    + ", "
    + _insert_cte("w1", opened_cases, " WHERE EXISTS (SELECT 1 FROM moved)").replace("%s", "%(opened)s")
    + " SELECT acked_seq, head_hash FROM held"
)


def _facts_statement() -> tuple[str, dict[str, Any]]:
    """The facts of a log's new 差评 items, compiled once from ``hub.desk.store.insert_item_facts`` for
    psycopg: the SQL and the query's own constants ('', 'open', …), to which each upload adds the device,
    the log and the items' seqs."""
    where = (
        (items.c.device_id == bindparam("device"))
        & (items.c.log_id == bindparam("log"))
        & (items.c.seq == any_(bindparam("seqs", type_=ARRAY(BigInteger))))
    )
    compiled = insert_item_facts(True, where).compile(dialect=postgresql.psycopg.dialect())
    constants = {k: v for k, v in compiled.params.items() if k not in ("device", "log", "seqs")}
    return str(compiled), constants


_FACTS, _FACTS_CONSTANTS = _facts_statement()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


Statement = tuple[str, tuple[Any, ...] | dict[str, Any]]


def _reads(device_id: str, log_id: str, planned: Plan, now: str) -> list[Statement]:
    """Round trip 1: the log and the cases locked; under the locks, what the derived rows need read."""
    keys = "{" + ",".join(map(str, case_lock_keys(planned.cases))) + "}"
    reads: list[Statement] = [(_LOCK, (device_id, log_id, ZERO_HASH, now, now, CASE_LOCK_SPACE, keys))]
    if planned.cases or _asks_section(planned):
        reads.append((_READ, (_json(planned.cases), device_id)))
    return reads


def _asks_section(planned: Plan) -> bool:
    return any(is_bad(r["satisfaction"]) for r in planned.ratings)  # a 差评's desk item has one


def _writes(
    device_id: str, log_id: str, planned: Plan, now: str, read: list[list[Any]]
) -> list[Statement] | None:
    """Round trip 2, from what the first read (each statement's rows); None when the batch does not
    continue the log as held."""
    acked, head_hash, _locks = read[0][0]
    first, last = planned.events[0], planned.events[-1]
    if acked + 1 != first["seq"] or head_hash != first["prev_hash"]:
        return None
    numbers, dept = read[1][0] if len(read) > 1 else (None, None)
    held: dict[str, int] = dict(numbers or {})
    rows = (
        planned.events,
        planned.opened,
        planned.ratings,
        window_item_rows(device_id, log_id, planned.ratings, dept, now),
        window_records(device_id, log_id, planned.ratings, held, planned.detailed),
    )
    writes: list[Statement] = [(_WRITE, (*map(_json, rows), last["seq"], last["hash"], device_id, log_id))]
    if rows[3]:  # 差评: their items' facts, from the rows just written (a statement of its own sees them)
        seqs = [r["seq"] for r in rows[3]]
        writes.append((_FACTS, {**_FACTS_CONSTANTS, "device": device_id, "log": log_id, "seqs": seqs}))
    return writes


class Connections:
    """This path's own PostgreSQL connections: one per upload at a time, up to ``keep`` kept open."""

    def __init__(self, connect: Callable[[], psycopg.Connection], keep: int = KEEP_CONNECTIONS):
        self._connect, self._keep = connect, keep
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        kept = False
        try:
            yield conn
            if conn.info.transaction_status == pq.TransactionStatus.IDLE:
                with self._lock:
                    if len(self._idle) < self._keep:
                        self._idle.append(conn)
                        kept = True
        finally:
            if not kept:
                conn.close()  # a transaction left open is rolled back by the server

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def connector(engine: Engine) -> Callable[[], psycopg.Connection]:
    """New psycopg connections to the engine's database, with the engine's own connect arguments."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    cparams = {k: v for k, v in cparams.items() if k != "context"}  # SQLAlchemy's adapters: not needed
    return lambda: psycopg.connect(*cargs, **cparams)


@dataclass(frozen=True)
class Stored:
    acked_seq: int
    stored: int


class PgIngest:
    def __init__(self, engine: Engine):
        self.connections = Connections(connector(engine))
        self.taken = self.declined = 0  # uploads stored here, and handed to the general path (for tests)

    def close(self) -> None:
        self.connections.close()

    def ingest(self, device_id: str, log_id: str, batch: Sequence[dict[str, Any]], now: str) -> Stored | None:
        """The batch stored and committed, or None: nothing written, the general path decides."""
        planned = plan(device_id, log_id, batch, now)
        stored = None
        for _attempt in range(2 if planned is not None else 0):
            try:
                with self.connections.connection() as conn:
                    stored = self._store(conn, device_id, log_id, planned, now)  # type: ignore[arg-type]
                break
            except psycopg.OperationalError:  # a connection the server closed: once more on a new one
                continue
            except psycopg.Error:  # whatever it is, the general path meets it too and answers as before
                break
        if stored is None:
            self.declined += 1
        else:
            self.taken += 1
        return stored

    @staticmethod
    def _store(
        conn: psycopg.Connection, device_id: str, log_id: str, planned: Plan, now: str
    ) -> Stored | None:
        """The two round trips (one without ratings); on any error the connection is closed, which rolls
        back."""
        last = planned.events[-1]
        if not planned.ratings:
            first = planned.events[0]
            with conn.pipeline():
                cursor = conn.execute(
                    _SOLE,
                    {
                        "device": device_id,
                        "log": log_id,
                        "first": first["seq"],
                        "prev": first["prev_hash"],
                        "last": last["seq"],
                        "hash": last["hash"],
                        "zero": ZERO_HASH,
                        "now": now,
                        "events": _json(planned.events),
                        "opened": _json(planned.opened),
                    },
                )
                conn.commit()
                held = cursor.fetchone()
            return Stored(last["seq"], len(planned.events)) if held == (last["seq"], last["hash"]) else None
        with conn.pipeline():
            cursors = [conn.execute(sql, params) for sql, params in _reads(device_id, log_id, planned, now)]
            writes = _writes(device_id, log_id, planned, now, [c.fetchall() for c in cursors])
            if writes is None:
                conn.rollback()  # nothing written: the general path decides
                return None
            for sql, params in writes:
                conn.execute(sql, params)
            conn.commit()  # the second round trip; the upload is acknowledged only after it
        return Stored(planned.events[-1]["seq"], len(planned.events))
