"""Fixtures of the evidence store suite: one store per test, on each backend.

SQLite runs in ``tmp_path``; PostgreSQL in a schema of its own per test (see
the PostgreSQL fixtures in ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gate.store import EvidenceStore, open_store
from tests.conftest import drop_postgres_schema, fresh_postgres_url


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
