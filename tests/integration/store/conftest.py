"""Fixtures of the evidence store suite: one store per test, on each backend.

SQLite runs in ``tmp_path``. PostgreSQL runs at ``GATE_TEST_POSTGRES_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), each test in a
schema of its own that is dropped afterwards. An unreachable PostgreSQL fails
the tests that need it: a skipped backend would pass unnoticed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gate.store import EvidenceStore, open_store

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> sa.URL:
    """The URL of the test PostgreSQL server, with the psycopg 3 driver."""
    url = make_url(os.environ.get("GATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    return url.set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An autocommit engine on the test server, or a failed test saying why there is none."""
    url = postgres_admin_url()
    engine = sa.create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 3},
    )
    problem = ""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        problem = str(error.orig).splitlines()[0]
    if problem:
        engine.dispose()
        pytest.fail(
            f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable ({problem}); "
            "start it or point GATE_TEST_POSTGRES_URL at one",
            pytrace=False,
        )
    yield engine
    engine.dispose()


def fresh_postgres_url(admin: sa.Engine) -> tuple[str, str]:
    """Create an empty schema; return its name and a URL whose search_path is that schema."""
    schema = f"gate_t_{uuid.uuid4().hex}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_admin_url().update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def drop_postgres_schema(admin: sa.Engine, schema: str) -> None:
    """Drop a schema made by fresh_postgres_url, with everything in it."""
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
def store_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of an empty database on the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'evidence' / 'gate.db'}"
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    schema, url = fresh_postgres_url(admin)
    try:
        yield url
    finally:
        drop_postgres_schema(admin, schema)


@pytest.fixture
def store(store_url: str) -> Iterator[EvidenceStore]:
    """A migrated, empty store on the backend under test."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """The URL of an empty PostgreSQL schema, for tests about PostgreSQL only."""
    schema, url = fresh_postgres_url(postgres_admin)
    try:
        yield url
    finally:
        drop_postgres_schema(postgres_admin, schema)
