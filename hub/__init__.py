"""The reference central hub (``kiosk hub``): device registry, signed uploads of the kiosks' event logs,
rosters for the kiosks, the phone rating page behind the kiosks' QR codes, and the operator's ratings
export in the national field names.

Storage goes through SQLAlchemy Core so SQLite and PostgreSQL share one code path. This package must
not import Qt, nor ``sync`` (the hub and the agent meet only over HTTP, docs/protocol.md §2–3); it uses
``core.events`` for the one definition of the hash chain.
"""
