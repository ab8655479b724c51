"""Alembic environment of the evidence store: run by Alembic, never imported by gate.

At start-up :mod:`gate.store._migrate` passes the connection to use in
``config.attributes["connection"]``. Commands run by hand (see
:mod:`gate.store.migrations`) give a store URL as ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from gate.errors import ConfigError
from gate.store._engine import create_store_engine, parse_store_url, writer
from gate.store._schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite's DDL is transactional too once gate's engine issues BEGIN
        # itself (see gate.store._engine), so a failed upgrade leaves nothing.
        transactional_ddl=True,
        # SQLite cannot ALTER most things: autogenerate must copy tables.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise ConfigError("alembic", "sqlalchemy.url", "required when no connection is passed")
    return url


def run_online() -> None:
    """Migrate through the connection gate passed, or one opened from the URL."""
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    engine = create_store_engine(parse_store_url(_url()))
    try:
        with writer(engine).connect() as opened:
            _run(opened)
            if opened.in_transaction():
                opened.commit()
    finally:
        engine.dispose()


def run_offline() -> None:
    """Write the migration SQL for the URL's dialect instead of running it."""
    context.configure(
        url=parse_store_url(_url()).url,
        target_metadata=metadata,
        literal_binds=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
