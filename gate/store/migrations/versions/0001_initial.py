"""Initial schema: artifacts, scans, findings, SBOMs, verifications, decisions, waivers.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as of this revision, spelled out so that later edits of
# gate.store._schema cannot change what this revision creates.
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
TIME = sa.DateTime(timezone=True)
JSON = sa.JSON()


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "artifacts",
        sa.Column("digest", KEY, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("first_seen", TIME, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_artifacts"),
    )
    op.create_table(
        "artifact_aliases",
        sa.Column("alias", KEY, nullable=False),
        sa.Column("digest", KEY, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("alias", name="pk_artifact_aliases"),
        sa.ForeignKeyConstraint(
            ["digest"], ["artifacts.digest"], name="fk_artifact_aliases_digest_artifacts"
        ),
    )
    op.create_index("ix_artifact_aliases_digest", "artifact_aliases", ["digest"])

    op.create_table(
        "scans",
        sa.Column("id", KEY, nullable=False),
        sa.Column("artifact_digest", KEY, nullable=False),
        sa.Column("scanner", KEY, nullable=False),
        sa.Column("scanner_version", sa.Text(), nullable=False),
        sa.Column("target_kind", sa.Text(), nullable=False),
        sa.Column("target_location", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("count_critical", sa.Integer(), nullable=False),
        sa.Column("count_high", sa.Integer(), nullable=False),
        sa.Column("count_medium", sa.Integer(), nullable=False),
        sa.Column("count_low", sa.Integer(), nullable=False),
        sa.Column("count_info", sa.Integer(), nullable=False),
        sa.Column("count_unknown", sa.Integer(), nullable=False),
        sa.Column("finding_count", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("heartbeat_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scans"),
        sa.ForeignKeyConstraint(
            ["artifact_digest"], ["artifacts.digest"], name="fk_scans_artifact_digest_artifacts"
        ),
    )
    op.create_index(
        "ix_scans_artifact_digest_scanner_created_at", "scans", ["artifact_digest", "scanner", "created_at"]
    )

    op.create_table(
        "findings",
        sa.Column("scan_id", KEY, nullable=False),
        sa.Column("fingerprint", KEY, nullable=False),
        sa.Column("scanner", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("package", JSON, nullable=True),
        sa.Column("location", JSON, nullable=True),
        sa.Column("fix_available", sa.Boolean(), nullable=False),
        sa.Column("references", JSON, nullable=False),
        sa.Column("cvss_score", sa.Float(), nullable=False),
        sa.Column("redacted_match", sa.Text(), nullable=False),
        sa.Column("tool_severity", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("scan_id", "fingerprint", name="pk_findings"),
        sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name="fk_findings_scan_id_scans"),
    )
    op.create_index(
        "ix_findings_scan_id_severity_fingerprint", "findings", ["scan_id", "severity", "fingerprint"]
    )

    op.create_table(
        "scan_reports",
        sa.Column("scan_id", KEY, nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("encoding", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("scan_id", name="pk_scan_reports"),
        sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name="fk_scan_reports_scan_id_scans"),
    )

    op.create_table(
        "sboms",
        sa.Column("id", KEY, nullable=False),
        sa.Column("artifact_digest", KEY, nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("spec_version", sa.Text(), nullable=False),
        sa.Column("generator", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("component_count", sa.Integer(), nullable=False),
        sa.Column("document_digest", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sboms"),
    )
    op.create_index("ix_sboms_created_at_id", "sboms", ["created_at", "id"])
    op.create_index(
        "ix_sboms_artifact_digest_created_at_id", "sboms", ["artifact_digest", "created_at", "id"]
    )

    op.create_table(
        "sbom_documents",
        sa.Column("sbom_id", KEY, nullable=False),
        sa.Column("encoding", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sbom_id", name="pk_sbom_documents"),
        sa.ForeignKeyConstraint(["sbom_id"], ["sboms.id"], name="fk_sbom_documents_sbom_id_sboms"),
    )

    op.create_table(
        "sbom_components",
        sa.Column("sbom_id", KEY, nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_lower", KEY, nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("purl", sa.Text(), nullable=False),
        sa.Column("purl_key", KEY, nullable=False),
        sa.Column("purl_version", KEY, nullable=False),
        sa.Column("ecosystem", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("group", sa.Text(), nullable=False),
        sa.Column("licenses", JSON, nullable=False),
        sa.PrimaryKeyConstraint("sbom_id", "position", name="pk_sbom_components"),
        sa.ForeignKeyConstraint(["sbom_id"], ["sboms.id"], name="fk_sbom_components_sbom_id_sboms"),
    )
    op.create_index(
        "ix_sbom_components_name_lower_sbom_id_position",
        "sbom_components",
        ["name_lower", "sbom_id", "position"],
    )
    op.create_index(
        "ix_sbom_components_purl_key_purl_version_sbom_id_position",
        "sbom_components",
        ["purl_key", "purl_version", "sbom_id", "position"],
    )

    op.create_table(
        "verifications",
        sa.Column("id", KEY, nullable=False),
        sa.Column("artifact_digest", KEY, nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("verified_at", TIME, nullable=False),
        sa.Column("signatures", JSON, nullable=False),
        sa.Column("attestations", JSON, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_verifications"),
    )
    op.create_index(
        "ix_verifications_artifact_digest_verified_at_id",
        "verifications",
        ["artifact_digest", "verified_at", "id"],
    )

    op.create_table(
        "decisions",
        sa.Column("id", KEY, nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("stage", KEY, nullable=False),
        sa.Column("decided_at", TIME, nullable=False),
        sa.Column("results", JSON, nullable=False),
        sa.Column("policy_bundle_digest", sa.Text(), nullable=False),
        sa.Column("evidence_ids", JSON, nullable=False),
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False, server_default=""),
        sa.Column("request_digest", sa.Text(), nullable=False, server_default=""),
        sa.Column("artifact_digests", JSON, nullable=False),
        sa.Column("timings", JSON, nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
    )
    op.create_index("ix_decisions_stage", "decisions", ["stage"])
    op.create_index("ix_decisions_decided_at_id", "decisions", ["decided_at", "id"])

    op.create_table(
        "decision_artifacts",
        sa.Column("digest", KEY, nullable=False),
        sa.Column("decision_id", KEY, nullable=False),
        sa.PrimaryKeyConstraint("digest", "decision_id", name="pk_decision_artifacts"),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name="fk_decision_artifacts_decision_id_decisions"
        ),
    )

    op.create_table(
        "policy_bundles",
        sa.Column("digest", KEY, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("policies", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_policy_bundles"),
    )

    op.create_table(
        "waivers",
        sa.Column("id", KEY, nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("image", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_waivers"),
    )
    op.create_index("ix_waivers_expires_at_id", "waivers", ["expires_at", "id"])


def downgrade() -> None:
    """Drop every table (and with them their indexes), dependants first."""
    for table in (
        "waivers",
        "policy_bundles",
        "decision_artifacts",
        "decisions",
        "verifications",
        "sbom_components",
        "sbom_documents",
        "sboms",
        "findings",
        "scan_reports",
        "scans",
        "artifact_aliases",
        "artifacts",
    ):
        op.drop_table(table)
