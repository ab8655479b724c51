"""Commands that run or import scans: ``gate scan <target>`` and ``gate scan import``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from gate.cli import _output as out
from gate.cli._input import read_input
from gate.cli._read import _artifact_ref, _obj, _pages
from gate.v1 import common_pb2, scan_pb2
from scanners.reports import to_sarif

_TARGET_KINDS = {
    "fs": scan_pb2.TARGET_KIND_FILESYSTEM,
    "image": scan_pb2.TARGET_KIND_IMAGE,
    "rootfs": scan_pb2.TARGET_KIND_ROOTFS,
    "repo": scan_pb2.TARGET_KIND_REPOSITORY,
    "sbom": scan_pb2.TARGET_KIND_SBOM,
}
_ARTIFACT_KINDS = {
    "image": common_pb2.ARTIFACT_KIND_IMAGE,
    "source": common_pb2.ARTIFACT_KIND_SOURCE,
    "file": common_pb2.ARTIFACT_KIND_FILE,
}
_SEVERITY_ORDER = ("unknown", "info", "low", "medium", "high", "critical")
# A report file larger than this is refused before it is read (gate's upload limit).
MAX_REPORT_BYTES = 64 * 1024 * 1024


@click.command("run")
@click.argument("target")
@click.option(
    "--kind",
    type=click.Choice(sorted(_TARGET_KINDS)),
    default="fs",
    show_default=True,
    help="What TARGET is.",
)
@click.option(
    "--artifact",
    required=True,
    metavar="DIGEST|REF",
    help="The artifact the findings are evidence for (sha256:..., git:<commit>, or a known reference).",
)
@click.option("--scanners", default="", help="Comma-separated provider names; default: every one that fits.")
@click.option("--option", "options", multiple=True, metavar="SCANNER.KEY=VALUE", help="Provider option.")
@click.option(
    "-o", "--output", "fmt", type=click.Choice(["table", "json", "sarif"]), default="table", show_default=True
)
@click.option(
    "--fail-on",
    type=click.Choice([s.upper() for s in _SEVERITY_ORDER[1:]] + list(_SEVERITY_ORDER[1:])),
    help="Exit 1 when a finding at or above this severity is found.",
)
def scan_run(
    target: str,
    kind: str,
    artifact: str,
    scanners: str,
    options: tuple[str, ...],
    fmt: str,
    fail_on: str | None,
) -> None:
    """Scan TARGET with the configured scanners, show progress, print the findings."""
    parsed_options: dict[str, str] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected SCANNER.KEY=VALUE, got {item!r}", param_hint="--option")
        parsed_options[key] = value
    client = _obj().client()
    request = scan_pb2.StartScanRequest(
        target=scan_pb2.ScanTarget(kind=_TARGET_KINDS[kind], location=target),
        artifact=_artifact_ref(artifact),
        scanners=[name.strip() for name in scanners.split(",") if name.strip()],
        options=parsed_options,
    )
    started = client.call("gate.v1.ScanService/StartScan", request)
    assert isinstance(started, scan_pb2.StartScanResponse)
    finished: list[scan_pb2.Scan] = []
    for queued in started.scans:
        finished.append(_follow(client, queued))
    findings: list[scan_pb2.Finding] = []
    for done in finished:
        if done.state == scan_pb2.SCAN_STATE_SUCCEEDED:
            findings += _all_findings(client, done.id)
    findings.sort(key=lambda f: (-f.severity, f.scanner, f.rule_id))
    _print(fmt, finished, findings)
    failed = [s for s in finished if s.state != scan_pb2.SCAN_STATE_SUCCEEDED]
    for done in failed:
        click.echo(
            f"gate: {done.scanner} {out.enum_name(done, 'state', 'SCAN_STATE_')}: {done.error}", err=True
        )
    if failed:
        raise click.exceptions.Exit(3)
    if fail_on and _at_or_above(findings, fail_on.lower()):
        click.echo(f"gate: findings at or above {fail_on.upper()}", err=True)
        raise click.exceptions.Exit(1)


def _follow(client: Any, queued: scan_pb2.Scan) -> scan_pb2.Scan:
    """Stream a scan's events to stderr until it ends; return the final scan."""
    shown = out.ProgressLine(queued.scanner)
    last = queued
    for event in client.stream("gate.v1.ScanService/WatchScan", scan_pb2.WatchScanRequest(id=queued.id)):
        assert isinstance(event, scan_pb2.ScanEvent)
        shown.update(event.progress.phase, event.progress.message, event.progress.fraction)
        if event.HasField("scan"):
            last = event.scan
    shown.close()
    return last


def _all_findings(client: Any, scan_id: str) -> list[scan_pb2.Finding]:
    def call(token: str, size: int) -> scan_pb2.ListFindingsResponse:
        request = scan_pb2.ListFindingsRequest(scan_id=scan_id, page_size=size, page_token=token)
        page = client.call("gate.v1.ScanService/ListFindings", request)
        assert isinstance(page, scan_pb2.ListFindingsResponse)
        return page

    pages = _pages(call, lambda page: page.findings, sys.maxsize)
    return [finding for _, batch in pages for finding in batch]


def _at_or_above(findings: list[scan_pb2.Finding], threshold: str) -> bool:
    floor = _SEVERITY_ORDER.index(threshold)
    return any(
        _SEVERITY_ORDER.index(out.enum_name(f, "severity", "SEVERITY_")) >= floor
        for f in findings
        if f.status in (scan_pb2.FINDING_STATUS_UNSPECIFIED, scan_pb2.FINDING_STATUS_AFFECTED)
    )


def _print(fmt: str, scans: list[scan_pb2.Scan], findings: list[scan_pb2.Finding]) -> None:
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "scans": [json.loads(out.as_json(s)) for s in scans],
                    "findings": [json.loads(out.as_json(f)) for f in findings],
                },
                indent=2,
            )
        )
        return
    if fmt == "sarif":
        from gate import _convert as cv

        click.echo(json.dumps(to_sarif([cv.finding_from_proto(f) for f in findings]), indent=2))
        return
    rows = [
        [
            out.enum_name(f, "severity", "SEVERITY_"),
            f.scanner,
            out.enum_name(f, "kind", "FINDING_KIND_"),
            f.rule_id,
            out.finding_where(f),
            f.title[:60],
        ]
        for f in findings
    ]
    click.echo(
        out.table(["SEVERITY", "SCANNER", "KIND", "RULE", "WHERE", "TITLE"], rows) if rows else "no findings"
    )


@click.command("import")
@click.argument("report", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--tool", required=True, type=click.Choice(["trivy", "gitleaks", "snyk", "sonarqube", "sarif"]))
@click.option("--artifact", required=True, metavar="DIGEST|REF", help="The artifact the report is about.")
@click.option("--artifact-kind", type=click.Choice(sorted(_ARTIFACT_KINDS)), help="Kind of a new artifact.")
@click.option("--name", default="", help="Repository of a new artifact.")
@out.output_option()
def scan_import(
    report: Path, tool: str, artifact: str, artifact_kind: str | None, name: str, fmt: str
) -> None:
    """Store REPORT (written by a scanner elsewhere) as a completed scan."""
    data = read_input(report, "REPORT", MAX_REPORT_BYTES)
    request = scan_pb2.ImportReportRequest(
        artifact=_artifact_ref(artifact),
        artifact_kind=_ARTIFACT_KINDS[artifact_kind]
        if artifact_kind
        else common_pb2.ARTIFACT_KIND_UNSPECIFIED,
        artifact_name=name,
        scanner=tool,
        report=data,
    )
    result = _obj().client().call("gate.v1.ScanService/ImportReport", request)
    assert isinstance(result, scan_pb2.Scan)
    if fmt == "json":
        click.echo(out.as_json(result))
        return
    c = result.counts
    click.echo(
        f"scan {result.id}: {result.finding_count} findings (critical {c.critical}, high {c.high}, "
        f"medium {c.medium}, low {c.low}, info {c.info}, unknown {c.unknown})"
    )


# Sub-commands of `gate scan`.
SCAN_COMMANDS = (scan_run, scan_import)
