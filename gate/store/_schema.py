"""Tables of the SQL evidence store (SQLAlchemy Core).

This module is the schema the code reads and writes; the migrations under
``gate/store/migrations/versions`` create it. A test compares the two, so a
change here without a migration (or the reverse) fails the suite.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware in UTC.

    SQLite has no time zones: its values are stored as naive UTC text (which
    also sorts correctly as text) and given ``tzinfo=UTC`` when read.
    PostgreSQL stores ``timestamptz`` and returns values in the session's
    zone, which are converted to UTC so callers see one representation.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive on SQLite)."""
        if value is None:
            return None
        if value.utcoffset() is None:
            # The store checks every timestamp before writing; reaching this is a bug.
            raise ValueError("a naive datetime cannot be stored")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Identifiers, digests and search keys compare byte-wise on both backends: the
# order of keyset pages must not depend on a PostgreSQL locale, and with the
# "C" collation a plain b-tree index also serves ``LIKE 'prefix%'``.
Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

Json = sa.JSON(none_as_null=True)

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("digest", Key, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("first_seen", UtcDateTime, nullable=False),
)

artifact_aliases = sa.Table(
    "artifact_aliases",
    metadata,
    sa.Column("alias", Key, primary_key=True),
    sa.Column("digest", Key, sa.ForeignKey("artifacts.digest"), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("artifact_digest", Key, sa.ForeignKey("artifacts.digest"), nullable=False),
    sa.Column("scanner", Key, nullable=False),
    sa.Column("scanner_version", sa.Text, nullable=False),
    sa.Column("target_kind", sa.Text, nullable=False),
    sa.Column("target_location", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("count_critical", sa.Integer, nullable=False),
    sa.Column("count_high", sa.Integer, nullable=False),
    sa.Column("count_medium", sa.Integer, nullable=False),
    sa.Column("count_low", sa.Integer, nullable=False),
    sa.Column("count_info", sa.Integer, nullable=False),
    sa.Column("count_unknown", sa.Integer, nullable=False),
    sa.Column("finding_count", sa.Integer, nullable=False),
    sa.Column("imported", sa.Boolean, nullable=False),
    # Refreshed by the gate running a queued or running scan; a stale one means
    # that gate stopped, and any replica may then fail the scan (a lease).
    sa.Column("heartbeat_at", UtcDateTime, nullable=False),
    # Serves "latest succeeded scan per scanner of an artifact".
    sa.Index(None, "artifact_digest", "scanner", "created_at"),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("scan_id", Key, sa.ForeignKey("scans.id"), primary_key=True),
    sa.Column("fingerprint", Key, primary_key=True),
    sa.Column("scanner", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("severity", sa.SmallInteger, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("package", Json, nullable=True),
    sa.Column("location", Json, nullable=True),
    sa.Column("fix_available", sa.Boolean, nullable=False),
    sa.Column("references", Json, nullable=False),
    sa.Column("cvss_score", sa.Float, nullable=False),
    sa.Column("redacted_match", sa.Text, nullable=False),
    sa.Column("tool_severity", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # Pages of one scan's findings are read in (severity desc, fingerprint)
    # order; with fingerprint in the index the order comes from the index.
    sa.Index(None, "scan_id", "severity", "fingerprint"),
)

# The scanner's raw report (secrets already redacted by the parser), compressed,
# kept for audits and re-parsing; a table of its own so scan reads never load it.
scan_reports = sa.Table(
    "scan_reports",
    metadata,
    sa.Column("scan_id", Key, sa.ForeignKey("scans.id"), primary_key=True),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("encoding", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

sboms = sa.Table(
    "sboms",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("artifact_digest", Key, nullable=False),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("spec_version", sa.Text, nullable=False),
    sa.Column("generator", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("component_count", sa.Integer, nullable=False),
    sa.Column("document_digest", sa.Text, nullable=False),
    sa.Index(None, "created_at", "id"),
    sa.Index(None, "artifact_digest", "created_at", "id"),
)

# Documents live apart from their records so that listing SBOMs never reads
# (or, on PostgreSQL, de-TOASTs) megabytes of JSON.
sbom_documents = sa.Table(
    "sbom_documents",
    metadata,
    sa.Column("sbom_id", Key, sa.ForeignKey("sboms.id"), primary_key=True),
    # The document verbatim, compressed as ``encoding`` says (``zlib``); ``size``
    # is the uncompressed length.
    sa.Column("encoding", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
)

sbom_components = sa.Table(
    "sbom_components",
    metadata,
    sa.Column("sbom_id", Key, sa.ForeignKey("sboms.id"), primary_key=True),
    # Position in the SBOM: keeps the document's order and makes every row
    # addressable for keyset pagination.
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("name_lower", Key, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("purl", sa.Text, nullable=False),
    # The normalised identity ``pkg:<type>/<namespace>/<name>`` (see
    # gate.sbom._purl_key): what purl search matches, whichever tool wrote the
    # purl; empty without a purl.
    sa.Column("purl_key", Key, nullable=False),
    # The version as the ecosystem orders it (Debian/RPM epoch folded in); the
    # component's version when it has no purl.
    sa.Column("purl_version", Key, nullable=False),
    # The purl type (``pypi``, ``deb`` ...): which version ordering applies.
    sa.Column("ecosystem", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("group", sa.Text, nullable=False),
    sa.Column("licenses", Json, nullable=False),
    # Keyset pages of a name or purl search come straight from these indexes
    # (no sort of every match). Purl searches are ordered by version text too,
    # so a package's distinct versions come from the index, and a version
    # range reads only the index runs of the versions it accepts.
    sa.Index(None, "name_lower", "sbom_id", "position"),
    sa.Index(None, "purl_key", "purl_version", "sbom_id", "position"),
)

verifications = sa.Table(
    "verifications",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("artifact_digest", Key, nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("verified_at", UtcDateTime, nullable=False),
    sa.Column("signatures", Json, nullable=False),
    sa.Column("attestations", Json, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index(None, "artifact_digest", "verified_at", "id"),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("stage", Key, nullable=False, index=True),
    sa.Column("decided_at", UtcDateTime, nullable=False),
    sa.Column("results", Json, nullable=False),
    sa.Column("policy_bundle_digest", sa.Text, nullable=False),
    sa.Column("evidence_ids", Json, nullable=False),
    sa.Column("caller", sa.Text, nullable=False),
    # What was decided about (``kind/namespace/name`` for admission) and the
    # sha256 of the canonical JSON of the request it was decided from.
    sa.Column("subject", sa.Text, nullable=False, server_default=""),
    sa.Column("request_digest", sa.Text, nullable=False, server_default=""),
    # The digests as given (order kept); decision_artifacts indexes them.
    sa.Column("artifact_digests", Json, nullable=False),
    sa.Column("timings", Json, nullable=False),
    sa.Column("request", Json, nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),
    sa.Index(None, "decided_at", "id"),
)

# No foreign key to artifacts: a decision may be about an image gate has never
# stored anything else for (an admission request for an unknown image).
decision_artifacts = sa.Table(
    "decision_artifacts",
    metadata,
    sa.Column("digest", Key, primary_key=True),
    sa.Column("decision_id", Key, sa.ForeignKey("decisions.id"), primary_key=True),
)

# Every policy bundle a decision was made with, by digest: what replay re-evaluates.
# ``policies`` is the zlib-compressed JSON list of the policy documents.
policy_bundles = sa.Table(
    "policy_bundles",
    metadata,
    sa.Column("digest", Key, primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("policies", sa.LargeBinary, nullable=False),
)

# Time-bounded exemptions from a policy (or rule) for a subject (gate.waivers). Revoked
# waivers are kept (who revoked them, and when); decisions list the ids of those they used.
waivers = sa.Table(
    "waivers",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("image", sa.Text, nullable=False),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("revoked_by", sa.Text, nullable=False),
    sa.Index(None, "expires_at", "id"),
)

# The projects an artifact belongs to (gate.server._authz): a pipeline identity records and
# reads evidence about a digest only for a project it acts for. No foreign key to artifacts:
# the first binding is claimed when a call is authorised, before the call stores the artifact.
artifact_projects = sa.Table(
    "artifact_projects",
    metadata,
    sa.Column("digest", Key, primary_key=True),
    sa.Column("project", Key, primary_key=True),
    sa.Column("bound_at", UtcDateTime, nullable=False),
    # The identity (or ``cli:<user>``) whose call made the binding, for audits.
    sa.Column("bound_by", sa.Text, nullable=False),
)
