"""Alembic's environment for the hub: always run from ``hub.migrate.upgrade`` with the hub's own open
connection in ``config.attributes["connection"]``; no alembic.ini, no URL of its own."""

from alembic import context

from hub.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
