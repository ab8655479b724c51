"""Point lookups by id (the driver-level fast path): equal to the SQL path, resilient, closed cleanly."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from gate.errors import StoreUnavailable
from gate.store import EvidenceStore, open_store
from tests.integration.store.test_store_suite import make_scan, new_artifact


def test_point_lookups_see_writes_at_once(store: EvidenceStore) -> None:
    digest = new_artifact(store, "registry.example/app:point")
    scan = make_scan(digest)
    assert store.get_scan(scan.id) is None
    store.add_scan(scan)
    assert store.get_scan(scan.id) == scan
    assert store.resolve_alias("registry.example/app:point") == digest


def test_only_a_local_sqlite_file_reads_inline(store: EvidenceStore, backend: str) -> None:
    assert store.inline_reads is (backend == "sqlite")
    memory = open_store("sqlite:///:memory:")
    try:
        assert memory.inline_reads is False
    finally:
        memory.close()


def test_lookups_on_a_closed_store_are_store_unavailable(store_url: str) -> None:
    opened = open_store(store_url)
    opened.get_scan("00000000-0000-4000-8000-000000000000")
    opened.close()
    with pytest.raises(StoreUnavailable) as caught:
        opened.get_scan("00000000-0000-4000-8000-000000000000")
    assert "SELECT" not in caught.value.message


@pytest.mark.postgres
def test_a_dropped_postgres_connection_is_replaced_transparently(
    postgres_url: str, postgres_admin: sa.Engine
) -> None:
    # A name of its own, so that only this store's connections are cut.
    name = f"gate-test-{uuid.uuid4().hex[:12]}"
    opened = open_store(f"{postgres_url}&application_name={name}")
    try:
        digest = new_artifact(opened)
        scan = make_scan(digest)
        opened.add_scan(scan)
        assert opened.get_scan(scan.id) == scan
        with postgres_admin.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": name},
            ).scalar()
        assert killed is not None
        assert killed >= 1
        assert opened.get_scan(scan.id) == scan
    finally:
        opened.close()
