"""The SQLite file gate creates: WAL mode and 4 KiB pages for new databases, existing ones kept."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from gate.model import Artifact, ArtifactKind
from gate.store import open_store
from gate.store._engine import NEW_DATABASE_PAGE_SIZE

DIGEST = "sha256:" + "1" * 64
ARTIFACT = Artifact(DIGEST, ArtifactKind.IMAGE, datetime(2026, 11, 29, tzinfo=UTC), "registry.example/app")


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_new_database_gets_its_page_size_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.upsert_artifact(ARTIFACT)
    finally:
        store.close()
    assert _pragma(path, "page_size") == NEW_DATABASE_PAGE_SIZE
    assert _pragma(path, "journal_mode") == "wal"


def test_an_existing_database_keeps_its_page_size_and_its_data(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    first = open_store(f"sqlite:///{path}")
    first.close()
    # A database an earlier gate created, on 16 KiB pages: its schema and version copied into a
    # fresh file of that page size (VACUUM INTO keeps the source's page size, so build it by hand).
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA page_size = 16384")  # and the rollback journal: gate switches it to WAL
        with sqlite3.connect(path) as source:
            for (sql,) in source.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"):
                conn.execute(sql)
            conn.executemany(
                "INSERT INTO alembic_version VALUES (?)", source.execute("SELECT * FROM alembic_version")
            )
    assert _pragma(old, "page_size") == 16384
    store = open_store(f"sqlite:///{old}")
    try:
        store.upsert_artifact(ARTIFACT)
        found = store.get_artifact(DIGEST)
    finally:
        store.close()
    assert found is not None
    assert found.name == "registry.example/app"
    assert _pragma(old, "page_size") == 16384
    assert _pragma(old, "journal_mode") == "wal"
