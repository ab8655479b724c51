"""Artifact projects: which projects' pipelines may record and read evidence about a digest.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as of this revision (see 0001 for why they are spelled out).
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``artifact_projects``; its primary key serves the per-digest lookup."""
    op.create_table(
        "artifact_projects",
        sa.Column("digest", KEY, nullable=False),
        sa.Column("project", KEY, nullable=False),
        sa.Column("bound_at", TIME, nullable=False),
        sa.Column("bound_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("digest", "project", name="pk_artifact_projects"),
    )


def downgrade() -> None:
    """Drop ``artifact_projects``."""
    op.drop_table("artifact_projects")
