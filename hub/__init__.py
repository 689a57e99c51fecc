"""The bureau's central hub (``kiosk hub``): device registry, signed uploads of the kiosks' event logs,
rosters for the kiosks, the phone rating page behind the kiosks' QR codes, and the operators' API.

``app`` assembles the FastAPI application from ``routers/`` (one router per audience) and
``dependencies`` (who is calling, which scope); ``schema`` holds the tables, ``migrations/`` their
Alembic history, ``storage`` the data access (SQLAlchemy Core: SQLite and PostgreSQL share one code
path; on PostgreSQL ``ingest_pg`` stores what live devices send in one or two round trips), ``config``
the hub's TOML file, ``cli`` the ``kiosk hub`` commands.

Must not import Qt, ``kiosk``, ``drivers``, ``sync`` or ``commands``, nor ``core.store`` or any other
terminal package (a hub server installs only the ``hub`` extra); the hub and the agent meet only over
HTTP (docs/protocol.md). It uses ``core.events`` for the one definition of the hash chain.
"""
