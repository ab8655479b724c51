"""Read commands: scans and findings, SBOMs, the decision trail."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from google.protobuf.message import Message

from gate.cli import _output as out
from gate.v1 import audit_pb2, common_pb2, decision_pb2, sbom_pb2, scan_pb2

M = TypeVar("M", bound=Message)
PAGE = 500


def _artifact_ref(text: str) -> common_pb2.ArtifactRef:
    # A digest form names the artifact; anything else is an alias to resolve.
    if text.startswith(("sha256:", "sha512:", "git:")):
        return common_pb2.ArtifactRef(digest=text)
    return common_pb2.ArtifactRef(reference=text)


def _pages(
    call: Callable[[str, int], M], items: Callable[[M], Any], limit: int
) -> Iterator[tuple[M, list[Any]]]:
    """Fetch pages until ``limit`` items or the last page."""
    token = ""
    remaining = limit
    while remaining > 0:
        response = call(token, min(PAGE, remaining))
        batch = list(items(response))[:remaining]
        remaining -= len(batch)
        yield response, batch
        token = getattr(response, "next_page_token", "")
        if not token:
            break


def _print_listing(
    call: Callable[[str, int], M],
    items: Callable[[M], Any],
    limit: int,
    fmt: str,
    headers: list[str],
    row: Callable[[Any], list[str]],
    empty: str,
) -> None:
    """Fetch up to ``limit`` items page by page; print JSON documents or one table."""
    rows: list[list[str]] = []
    for _, batch in _pages(call, items, limit):
        for item in batch:
            if fmt == "json":
                click.echo(out.as_json(item))
            else:
                rows.append(row(item))
    if fmt == "table":
        click.echo(out.table(headers, rows) if rows else empty)


def _obj() -> Any:
    return click.get_current_context().obj


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"expected ISO 8601 like 2026-01-31T12:00:00Z, got {value!r}", param_hint=option
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- scans ----------------------------------------------------------------------------------


class _ScanGroup(click.Group):
    """``gate scan <target>`` runs a scan; ``gate scan <command>`` runs a sub-command."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_ScanGroup)
def scan() -> None:
    """Scans and their findings: `gate scan TARGET` runs one (see `gate scan run --help`)."""


@scan.command("get")
@click.argument("scan_id")
@out.output_option()
def scan_get(scan_id: str, fmt: str) -> None:
    """Show one scan."""
    result = _obj().client().call("gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=scan_id))
    assert isinstance(result, scan_pb2.Scan)
    if fmt == "json":
        click.echo(out.as_json(result))
        return
    c = result.counts
    click.echo(
        out.fields(
            [
                ("id", result.id),
                ("artifact", result.artifact_digest),
                ("scanner", f"{result.scanner} {result.scanner_version}".strip()),
                (
                    "target",
                    f"{out.enum_name(result.target, 'kind', 'TARGET_KIND_')} {result.target.location}",
                ),
                ("state", out.enum_name(result, "state", "SCAN_STATE_")),
                ("created", out.when(result.created_at)),
                ("finished", out.when(result.finished_at)),
                (
                    "findings",
                    f"{result.finding_count} (critical {c.critical}, high {c.high}, medium {c.medium}, "
                    f"low {c.low}, info {c.info}, unknown {c.unknown})",
                ),
                *([("error", result.error)] if result.error else []),
            ]
        )
    )


_SEVERITIES = ("unknown", "info", "low", "medium", "high", "critical")
_KINDS = ("vulnerability", "secret", "misconfiguration", "license", "code", "bug", "code_smell", "hotspot")


@scan.command("findings")
@click.option("--artifact", metavar="DIGEST|REF", help="Findings of the artifact's latest scans.")
@click.option("--scan", "scan_id", metavar="ID", help="Findings of one scan.")
@click.option(
    "--min-severity", type=click.Choice(_SEVERITIES), help="Only findings at or above this severity."
)
@click.option(
    "--kind", "kinds", type=click.Choice(_KINDS), multiple=True, help="Only these kinds (repeatable)."
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=1000, show_default=True, help="At most this many."
)
@out.output_option()
def scan_findings(
    artifact: str | None,
    scan_id: str | None,
    min_severity: str | None,
    kinds: tuple[str, ...],
    limit: int,
    fmt: str,
) -> None:
    """List findings, most severe first."""
    if bool(artifact) == bool(scan_id):
        raise click.UsageError("give exactly one of --artifact and --scan")
    client = _obj().client()

    def call(token: str, size: int) -> scan_pb2.ListFindingsResponse:
        request = scan_pb2.ListFindingsRequest(
            min_severity=common_pb2.Severity.Value(f"SEVERITY_{min_severity.upper()}")
            if min_severity
            else common_pb2.SEVERITY_UNSPECIFIED,
            kinds=[scan_pb2.FindingKind.Value(f"FINDING_KIND_{k.upper()}") for k in kinds],
            page_size=size,
            page_token=token,
        )
        if artifact:
            request.artifact.CopyFrom(_artifact_ref(artifact))
        else:
            request.scan_id = scan_id or ""
        response = client.call("gate.v1.ScanService/ListFindings", request)
        assert isinstance(response, scan_pb2.ListFindingsResponse)
        return response

    def row(finding: scan_pb2.Finding) -> list[str]:
        return [
            out.enum_name(finding, "severity", "SEVERITY_"),
            out.enum_name(finding, "kind", "FINDING_KIND_"),
            finding.rule_id,
            out.finding_where(finding),
            finding.title[:60],
        ]

    headers = ["SEVERITY", "KIND", "RULE", "WHERE", "TITLE"]
    _print_listing(call, lambda r: r.findings, limit, fmt, headers, row, "no findings")


# --- SBOMs ------------------------------------------------------------------------------------


@click.group()
def sbom() -> None:
    """Stored SBOMs."""


@sbom.command("list")
@click.option("--artifact", metavar="DIGEST|REF", help="Only SBOMs of this artifact.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@out.output_option()
def sbom_list(artifact: str | None, limit: int, fmt: str) -> None:
    """List stored SBOMs, newest first."""
    client = _obj().client()

    def call(token: str, size: int) -> sbom_pb2.ListSbomsResponse:
        request = sbom_pb2.ListSbomsRequest(page_size=size, page_token=token)
        if artifact:
            request.artifact.CopyFrom(_artifact_ref(artifact))
        response = client.call("gate.v1.SbomService/ListSboms", request)
        assert isinstance(response, sbom_pb2.ListSbomsResponse)
        return response

    def row(item: sbom_pb2.Sbom) -> list[str]:
        return [
            item.id,
            item.artifact_digest[:19],
            out.enum_name(item, "format", "SBOM_FORMAT_"),
            str(item.component_count),
            out.when(item.created_at),
        ]

    headers = ["ID", "ARTIFACT", "FORMAT", "COMPONENTS", "CREATED"]
    _print_listing(call, lambda r: r.sboms, limit, fmt, headers, row, "no SBOMs")


_DOCUMENT_FORMATS = {
    "cyclonedx-json": sbom_pb2.SBOM_FORMAT_CYCLONEDX_JSON,
    "cyclonedx-xml": sbom_pb2.SBOM_FORMAT_CYCLONEDX_XML,
    "spdx-json": sbom_pb2.SBOM_FORMAT_SPDX_JSON,
}


@sbom.command("get")
@click.argument("sbom_id")
@click.option(
    "--document",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the document to FILE (verbatim, or in the -o document format).",
)
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice([*out.FORMATS, *_DOCUMENT_FORMATS]),
    default="table",
    show_default=True,
    help="table or json show the record; a document format prints the document, converted if needed.",
)
def sbom_get(sbom_id: str, document: Path | None, fmt: str) -> None:
    """Show one SBOM, or print its document (-o cyclonedx-json|cyclonedx-xml|spdx-json)."""
    convert = _DOCUMENT_FORMATS.get(fmt, sbom_pb2.SBOM_FORMAT_UNSPECIFIED)
    request = sbom_pb2.GetSbomRequest(
        id=sbom_id, include_document=document is not None or fmt in _DOCUMENT_FORMATS, format=convert
    )
    result = _obj().client().call("gate.v1.SbomService/GetSbom", request)
    assert isinstance(result, sbom_pb2.Sbom)
    if document is not None:
        document.write_bytes(result.document)
        if fmt in _DOCUMENT_FORMATS:
            return
    elif fmt in _DOCUMENT_FORMATS:
        sys.stdout.buffer.write(result.document)
        sys.stdout.flush()
        return
    result.ClearField("document")
    if fmt == "json":
        click.echo(out.as_json(result))
        return
    click.echo(
        out.fields(
            [
                ("id", result.id),
                ("artifact", result.artifact_digest),
                ("format", f"{out.enum_name(result, 'format', 'SBOM_FORMAT_')} {result.spec_version}"),
                ("generator", result.generator),
                ("components", str(result.component_count)),
                ("document", result.document_digest),
                ("created", out.when(result.created_at)),
            ]
        )
    )


@sbom.command("search")
@click.option("--name", default="", help="Component name; '*' matches any run of characters.")
@click.option("--purl", default="", help="Package URL or prefix, e.g. pkg:pypi/requests.")
@click.option(
    "--version-range",
    default="",
    metavar="RANGE",
    help="Only versions in RANGE, e.g. '>=2.0,<2.31.0' ('|' separates alternatives).",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@out.output_option()
def sbom_search(name: str, purl: str, version_range: str, limit: int, fmt: str) -> None:
    """Find a component across every stored SBOM."""
    if not name and not purl:
        raise click.UsageError("give --name or --purl")
    client = _obj().client()

    def call(token: str, size: int) -> sbom_pb2.SearchComponentsResponse:
        request = sbom_pb2.SearchComponentsRequest(
            name=name, purl=purl, version_range=version_range, page_size=size, page_token=token
        )
        response = client.call("gate.v1.SbomService/SearchComponents", request)
        assert isinstance(response, sbom_pb2.SearchComponentsResponse)
        return response

    def row(match: sbom_pb2.ComponentMatch) -> list[str]:
        c = match.component
        return [c.name, c.version, c.purl, match.artifact_digest[:19], ",".join(match.artifact_aliases)]

    headers = ["NAME", "VERSION", "PURL", "ARTIFACT", "ALIASES"]
    _print_listing(call, lambda r: r.matches, limit, fmt, headers, row, "no matches")


# --- audit ------------------------------------------------------------------------------------


_FILTERS = {
    None: audit_pb2.DECISION_FILTER_UNSPECIFIED,
    "allowed": audit_pb2.DECISION_FILTER_ALLOWED,
    "denied": audit_pb2.DECISION_FILTER_DENIED,
}


@click.group()
def audit() -> None:
    """The decision trail."""


@audit.command("decisions")
@click.option("--artifact", metavar="DIGEST|REF", help="Only decisions about this artifact.")
@click.option("--allowed", "answer", flag_value="allowed", help="Only allowed decisions.")
@click.option("--denied", "answer", flag_value="denied", help="Only denied decisions.")
@click.option("--stage", default="", help="Only this stage ('admission' for webhook decisions).")
@click.option("--since", help="Only decisions at or after this ISO 8601 time.")
@click.option("--until", help="Only decisions before this ISO 8601 time.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@out.output_option()
def audit_decisions(
    artifact: str | None,
    answer: str | None,
    stage: str,
    since: str | None,
    until: str | None,
    limit: int,
    fmt: str,
) -> None:
    """List recorded decisions, newest first."""
    since_time = _parse_time(since, "--since")
    until_time = _parse_time(until, "--until")
    client = _obj().client()

    def call(token: str, size: int) -> audit_pb2.ListDecisionsResponse:
        request = audit_pb2.ListDecisionsRequest(
            filter=_FILTERS[answer], stage=stage, page_size=size, page_token=token
        )
        if artifact:
            request.artifact.CopyFrom(_artifact_ref(artifact))
        if since_time:
            request.since.FromDatetime(since_time)
        if until_time:
            request.until.FromDatetime(until_time)
        response = client.call("gate.v1.AuditService/ListDecisions", request)
        assert isinstance(response, audit_pb2.ListDecisionsResponse)
        return response

    def row(item: decision_pb2.Decision) -> list[str]:
        verdict = "allow" if item.allowed else "deny"
        return [item.id, out.when(item.decided_at), item.stage, verdict, item.message[:60]]

    headers = ["ID", "DECIDED", "STAGE", "ANSWER", "MESSAGE"]
    _print_listing(call, lambda r: r.decisions, limit, fmt, headers, row, "no decisions")


@audit.command("decision")
@click.argument("decision_id")
@out.output_option()
def audit_decision(decision_id: str, fmt: str) -> None:
    """Show one decision with every rule result."""
    request = audit_pb2.GetDecisionRequest(id=decision_id)
    result = _obj().client().call("gate.v1.AuditService/GetDecision", request)
    assert isinstance(result, decision_pb2.Decision)
    if fmt == "json":
        click.echo(out.as_json(result))
        return
    decision = result
    click.echo(
        out.fields(
            [
                ("id", decision.id),
                ("answer", "allow" if decision.allowed else "deny"),
                ("stage", decision.stage),
                ("decided", out.when(decision.decided_at)),
                ("caller", decision.caller or "-"),
                ("artifacts", ", ".join(decision.artifact_digests) or "-"),
                ("policies", decision.policy_bundle_digest or "-"),
                ("message", decision.message or "-"),
            ]
        )
    )
    rows = [
        [r.policy, r.rule, out.enum_name(r, "outcome", "RULE_OUTCOME_"), r.resource, r.message[:60]]
        for r in decision.results
    ]
    if rows:
        click.echo()
        click.echo(out.table(["POLICY", "RULE", "RESULT", "RESOURCE", "MESSAGE"], rows))


COMMANDS = (scan, sbom, audit)
