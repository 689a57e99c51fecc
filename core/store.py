"""The local event log: one SQLite file, append-only, hash-chained, durable before anyone is told.

Events (docs/protocol.md §1) are written with WAL and ``synchronous=FULL`` in a ``BEGIN IMMEDIATE``
transaction, so concurrent writers in other processes never leave a gap or a duplicate seq. Triggers
refuse UPDATE and DELETE on events; ``verify()`` catches whoever drops them. Small tables beside the
log hold state that is not history (the sync cursor and status, the roster cache).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .events import ZERO_HASH, canonical_json, chain_error, check_payload, event_hash
from .sqlite import DURABLE_PRAGMAS

BUSY_TIMEOUT_S = 30.0


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX events_type ON events (type, seq)")
    db.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE roster (
            card TEXT PRIMARY KEY,
            staff_no TEXT NOT NULL,
            name TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            photo BLOB,
            version TEXT NOT NULL
        )"""
    )
    db.execute("INSERT INTO meta (key, value) VALUES ('log_id', ?)", [str(uuid.uuid4())])


# Forward migrations; the schema version is their count, kept in PRAGMA user_version.
MIGRATIONS = (_v1,)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The log cannot be opened or written."""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    problem: str | None = None


def now_iso() -> str:
    """Local time with its UTC offset, to the millisecond: 2026-11-28T10:15:03.512+08:00."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


class EventLog:
    """The kiosk's log. One instance per thread; any number of processes may open the same file."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open event log {self.path}: {e}") from None
        self.db = sqlite_utils.Database(conn, execute_plugins=False)
        self._conn = conn
        try:
            self._prepare()
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(f"cannot open event log {self.path}: {e}") from None
        self.log_id: str = conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]

    def _prepare(self) -> None:
        """The durable pragmas, then the schema. Two processes opening a new file at once (the kiosk and
        its agent at boot) can meet a lock SQLite reports at once, without waiting its busy timeout
        (switching to WAL, or two readers both wanting to write while it is still a rollback journal):
        try again for up to the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                # Per connection: a commit is on disk before append() returns, across power loss.
                for pragma in DURABLE_PRAGMAS:
                    self._conn.execute(pragma)
                self._migrate()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _schema_version(self) -> int:
        version: int = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"event log {self.path} has schema version {version}, newer than this software "
                f"({SCHEMA_VERSION}); upgrade the software"
            )
        return version

    def _migrate(self) -> None:
        # A current file is opened without writing, so reading commands work on a full disk too.
        if self._schema_version() == SCHEMA_VERSION:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for migration in MIGRATIONS[self._schema_version() :]:  # again: another process may have migrated
                migration(self.db)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the log -------------------------------------------------------------------------------

    def append(self, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Write one event and return it once it is committed to disk."""
        check_payload(type_, payload)
        payload_json = canonical_json(payload).decode("utf-8")
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev_hash = (row[0] + 1, row[1]) if row else (1, ZERO_HASH)
            event = {
                "log_id": self.log_id,
                "seq": seq,
                "id": str(uuid.uuid4()),
                "type": type_,
                "at": now_iso(),
                "payload": json.loads(payload_json),
                "prev_hash": prev_hash,
            }
            event["hash"] = event_hash(event)
            conn.execute(
                "INSERT INTO events (seq, id, type, at, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, event["id"], type_, event["at"], payload_json, prev_hash, event["hash"]),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return event

    def head_seq(self) -> int:
        """The highest seq written, 0 for an empty log."""
        row = self._conn.execute("SELECT MAX(seq) FROM events").fetchone()
        return row[0] or 0

    def get(self, seq: int) -> dict[str, Any] | None:
        rows = list(self.events_after(seq - 1, limit=1))
        return rows[0] if rows and rows[0]["seq"] == seq else None

    def events_after(
        self, seq: int, limit: int | None = None, types: tuple[str, ...] = ()
    ) -> Iterator[dict[str, Any]]:
        """Events with seq > ``seq`` in order, optionally only of some ``types``."""
        sql = "SELECT seq, id, type, at, payload, prev_hash, hash FROM events WHERE seq > ?"
        params: list[Any] = [seq]
        if types:
            sql += f" AND type IN ({', '.join('?' * len(types))})"
            params += list(types)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        for row in self.db.execute(sql, params):  # tuples, not dicts: start-up replays every event here
            yield self._event(row)

    def _event(self, row: tuple[Any, ...]) -> dict[str, Any]:
        seq, id_, type_, at, payload, prev_hash, hash_ = row
        return {
            "log_id": self.log_id,
            "seq": seq,
            "id": id_,
            "type": type_,
            "at": at,
            "payload": json.loads(payload),
            "prev_hash": prev_hash,
            "hash": hash_,
        }

    def verify(self) -> VerifyResult:
        """Recompute the whole chain; name the first seq that is missing, altered or mislinked."""
        prev_hash, expected, count = ZERO_HASH, 1, 0
        for row in self.db.execute(
            "SELECT seq, id, type, at, payload, prev_hash, hash FROM events ORDER BY seq"
        ):
            try:
                event = self._event(row)
            except ValueError:
                return VerifyResult(False, count, row[0], "payload is not JSON")
            if event["seq"] != expected:
                return VerifyResult(False, count, expected, "missing")
            problem = chain_error(event, prev_hash, expected)
            if problem:
                return VerifyResult(False, count, event["seq"], problem)
            prev_hash, expected, count = event["hash"], expected + 1, count + 1
        return VerifyResult(True, count)

    def integrity_check(self) -> str:
        """SQLite's own check of the file: 'ok' or the first problem."""
        result: str = self._conn.execute("PRAGMA integrity_check").fetchone()[0]
        return result

    # --- state beside the log ------------------------------------------------------------------

    def get_state(self, key: str) -> dict[str, Any] | None:
        # Plain SQL: with sqlite-utils' rows_where here, `kiosk run` did not stop within 30 s of SIGTERM
        # (tests/test_app.py), for a reason not yet found.
        row = self._conn.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else None

    # Writes are single SQL statements, not sqlite-utils' upsert or insert_all: those read the table's
    # schema first, and a transaction that reads before it writes fails at once ("database is locked")
    # when another process wrote meanwhile, where one whose first statement writes waits its turn.

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        self._conn.execute(
            "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [key, json.dumps(value, ensure_ascii=False), now_iso()],
        )

    def replace_roster(self, version: str, staff: list[dict[str, Any]]) -> None:
        """Swap the cached roster for ``staff`` (dicts with card, staff_no, name, title, photo bytes)."""
        with self.db.atomic():
            self._conn.execute("DELETE FROM roster")
            self._conn.executemany(
                "INSERT INTO roster (card, staff_no, name, title, photo, version) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (s["card"], s["staff_no"], s["name"], s.get("title") or "", s.get("photo"), version)
                    for s in staff
                ],
            )

    def data_version(self) -> int:
        """Changes when another connection commits to the file: a cheap "anything new?" for watchers."""
        version: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    def roster_version(self) -> tuple[int, str | None]:
        """The cached roster's size and version, without reading a row's photo."""
        roster = self.db.table("roster")
        row = next(roster.rows_where(select="version", limit=1), None)
        return roster.count, row["version"] if row else None

    def roster(self) -> list[dict[str, Any]]:
        rows = self.db.table("roster").rows_where(
            select="card, staff_no, name, title, photo, version", order_by="card"
        )
        return list(rows)
