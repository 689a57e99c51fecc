"""Schema migrations with Alembic: ``upgrade(engine)`` brings any hub database (new, from before
migrations, or from an older hub) to the newest revision in ``hub/migrations/versions/``. Every
``HubStore`` calls it on open, so a hub upgrades its database on start.

Several hub processes may start at once on one PostgreSQL: a transaction-scoped advisory lock lets one
of them migrate while the others wait, then find nothing left to do.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

log = logging.getLogger("hub")

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x6B696F736B  # "kiosk": any constant shared by every hub process


@functools.cache
def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Migrate the database behind ``engine`` to the head revision (nothing to do is the fast path)."""
    if current_revision(engine) == head_revision():
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        before = MigrationContext.configure(conn).get_current_revision()
        config = _alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    log.info("hub database migrated from revision %s to %s", before or "none", head_revision())
