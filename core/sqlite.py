"""How the product opens every SQLite file it writes: the kiosk's event log and the hub's database.

An event is on disk before anything is shown or answered about it, across power loss (docs/protocol.md
§1): write-ahead log, and a full sync at each commit. Plain strings, so that the hub (through
SQLAlchemy's connect hook) and the event log (raw sqlite3) run the same statements.
"""

from __future__ import annotations

DURABLE_PRAGMAS: tuple[str, ...] = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL")
