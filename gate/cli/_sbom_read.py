"""``gate sbom upload|diff|licenses|report``: SBOMs made elsewhere, and the auditor's questions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gate.cli import _output as out
from gate.cli._input import read_input
from gate.cli._read import _artifact_ref, _obj
from gate.model import Component
from gate.v1 import common_pb2, sbom_pb2, scan_pb2

_UPLOAD_FORMATS = {
    "auto": sbom_pb2.SBOM_FORMAT_UNSPECIFIED,
    "cyclonedx-json": sbom_pb2.SBOM_FORMAT_CYCLONEDX_JSON,
    "cyclonedx-xml": sbom_pb2.SBOM_FORMAT_CYCLONEDX_XML,
    "spdx-json": sbom_pb2.SBOM_FORMAT_SPDX_JSON,
}
_KINDS = {
    "image": common_pb2.ARTIFACT_KIND_IMAGE,
    "source": common_pb2.ARTIFACT_KIND_SOURCE,
    "file": common_pb2.ARTIFACT_KIND_FILE,
}
MAX_UPLOAD = 64 * 1024 * 1024
_FINDINGS_PAGE = 1000
_MAX_FINDINGS = 100_000


def _format_name(record: sbom_pb2.Sbom) -> str:
    return out.enum_name(record, "format", "SBOM_FORMAT_").replace("_", "-")


def _is_sbom_id(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4 and not text.startswith(("sha256:", "sha512:", "git:"))


@click.command("upload")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--artifact", required=True, metavar="DIGEST|REF", help="The artifact the SBOM describes.")
@click.option(
    "--format", "document_format", type=click.Choice(list(_UPLOAD_FORMATS)), default="auto", show_default=True
)
@click.option(
    "--kind", type=click.Choice(sorted(_KINDS)), help="Kind of a new artifact (default: from the SBOM)."
)
@click.option("--name", default="", help="Repository or project name of a new artifact.")
@out.output_option()
def sbom_upload(
    file: Path, artifact: str, document_format: str, kind: str | None, name: str, fmt: str
) -> None:
    """Validate and store an SBOM made elsewhere (CycloneDX 1.4-1.7 JSON/XML, SPDX 2.3 JSON)."""
    document = read_input(file, "FILE", MAX_UPLOAD)
    request = sbom_pb2.UploadSbomRequest(
        artifact=_artifact_ref(artifact),
        artifact_kind=_KINDS[kind] if kind else common_pb2.ARTIFACT_KIND_UNSPECIFIED,
        artifact_name=name,
        format=_UPLOAD_FORMATS[document_format],
        document=document,
    )
    result = _obj().client().call("gate.v1.SbomService/UploadSbom", request)
    assert isinstance(result, sbom_pb2.Sbom)
    if fmt == "json":
        click.echo(out.as_json(result))
        return
    click.echo(
        f"sbom {result.id}: {result.component_count} components of {result.artifact_digest} "
        f"({out.enum_name(result, 'format', 'SBOM_FORMAT_').replace('_', '-')} {result.spec_version})"
    )


def _side(request: sbom_pb2.DiffSbomsRequest, text: str, side: str) -> None:
    if _is_sbom_id(text):
        setattr(request, f"{side}_id", text)
    else:
        getattr(request, f"{side}_artifact").CopyFrom(_artifact_ref(text))


def _label(component: sbom_pb2.Component) -> str:
    return f"{component.group}/{component.name}" if component.group else component.name


@click.command("diff")
@click.argument("base")
@click.argument("head")
@out.output_option()
def sbom_diff(base: str, head: str, fmt: str) -> None:
    """Compare two SBOMs (ids) or the newest SBOMs of two artifacts (digests or references)."""
    request = sbom_pb2.DiffSbomsRequest()
    _side(request, base, "base")
    _side(request, head, "head")
    result = _obj().client().call("gate.v1.SbomService/DiffSboms", request)
    assert isinstance(result, sbom_pb2.DiffSbomsResponse)
    if fmt == "json":
        click.echo(out.as_json(result))
        return
    rows = [["added", _label(c), "", c.version, c.purl] for c in result.added]
    rows += [["removed", _label(c), c.version, "", c.purl] for c in result.removed]
    rows += [
        [
            "changed",
            _label(ch.head),
            ch.base.version
            + (
                "" if list(ch.base.licenses) == list(ch.head.licenses) else f" ({','.join(ch.base.licenses)})"
            ),
            ch.head.version
            + (
                "" if list(ch.base.licenses) == list(ch.head.licenses) else f" ({','.join(ch.head.licenses)})"
            ),
            ch.head.purl,
        ]
        for ch in result.changed
    ]
    click.echo(
        f"{result.base_id} -> {result.head_id}: {len(result.added)} added, {len(result.removed)} removed, "
        f"{len(result.changed)} changed"
    )
    if rows:
        click.echo(out.table(["CHANGE", "COMPONENT", "BASE", "HEAD", "PURL"], rows))


def _summary(target: str) -> sbom_pb2.SummarizeLicensesResponse:
    request = sbom_pb2.SummarizeLicensesRequest()
    if _is_sbom_id(target):
        request.sbom_id = target
    else:
        request.artifact.CopyFrom(_artifact_ref(target))
    result = _obj().client().call("gate.v1.SbomService/SummarizeLicenses", request)
    assert isinstance(result, sbom_pb2.SummarizeLicensesResponse)
    return result


@click.command("licenses")
@click.argument("target", metavar="SBOM_ID|ARTIFACT")
@out.output_option()
def sbom_licenses(target: str, fmt: str) -> None:
    """Licences of an SBOM (or of an artifact's newest SBOM): components per licence."""
    result = _summary(target)
    if fmt == "json":
        click.echo(out.as_json(result))
        return
    rows = [[entry.license, str(entry.count)] for entry in result.licenses]
    rows.append(["(no licence stated)", str(result.unknown_count)])
    click.echo(f"sbom {result.sbom_id}: {result.component_count} components")
    click.echo(out.table(["LICENSE", "COMPONENTS"], rows))


def _components(summary: sbom_pb2.SummarizeLicensesResponse) -> tuple[Component, ...]:
    """Every component of the summary once (a component appears under each of its licences)."""
    seen: dict[tuple[str, ...], Component] = {}
    for message in [c for entry in summary.licenses for c in entry.components] + list(summary.unknown):
        component = Component(
            type=message.type,
            name=message.name,
            version=message.version,
            group=message.group,
            purl=message.purl,
            licenses=tuple(message.licenses),
        )
        seen.setdefault(
            (component.type, component.group, component.name, component.version, component.purl), component
        )
    return tuple(sorted(seen.values(), key=lambda c: (c.name.casefold(), c.version, c.purl)))


def _vulnerabilities(artifact: common_pb2.ArtifactRef) -> list[scan_pb2.Finding]:
    client = _obj().client()
    found: list[scan_pb2.Finding] = []
    token = ""
    while len(found) < _MAX_FINDINGS:
        request = scan_pb2.ListFindingsRequest(
            kinds=[scan_pb2.FINDING_KIND_VULNERABILITY], page_size=_FINDINGS_PAGE, page_token=token
        )
        request.artifact.CopyFrom(artifact)
        response = client.call("gate.v1.ScanService/ListFindings", request)
        assert isinstance(response, scan_pb2.ListFindingsResponse)
        found.extend(response.findings)
        token = response.next_page_token
        if not token:
            break
    return found


@click.command("report")
@click.argument("artifact", metavar="ARTIFACT")
@click.option(
    "-o",
    "--format",
    "report_format",
    type=click.Choice(["html", "json", "csv"]),
    default="html",
    show_default=True,
)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the report here.")
def sbom_report(artifact: str, report_format: str, output: Path | None) -> None:
    """An auditor's report of ARTIFACT's newest SBOM: components, licences, latest vulnerabilities."""
    from gate.sbom._report import RENDERERS, ReportData, Vulnerability

    ref = _artifact_ref(artifact)
    client = _obj().client()
    listing = client.call(
        "gate.v1.SbomService/ListSboms", sbom_pb2.ListSbomsRequest(artifact=ref, page_size=1)
    )
    assert isinstance(listing, sbom_pb2.ListSbomsResponse)
    if not listing.sboms:
        raise click.ClickException(f"no SBOM is stored for {artifact}")
    record = listing.sboms[0]
    summary = _summary(record.id)
    findings = _vulnerabilities(ref)
    data = ReportData(
        artifact=record.artifact_digest,
        aliases=(artifact,) if artifact != record.artifact_digest else (),
        sbom_id=record.id,
        sbom_format=f"{_format_name(record)} {record.spec_version}",
        generator=record.generator,
        created_at=out.when(record.created_at),
        components=_components(summary),
        licenses=tuple((entry.license, entry.count) for entry in summary.licenses),
        unknown_licence_count=summary.unknown_count,
        vulnerabilities=tuple(
            Vulnerability(
                severity=out.enum_name(f, "severity", "SEVERITY_"),
                rule_id=f.rule_id,
                package=f.package.name,
                version=f.package.version,
                title=f.title,
                fixed_versions=tuple(f.package.fixed_versions),
            )
            for f in findings
        ),
    )
    rendered = RENDERERS[report_format](data)
    if output is not None:
        output.write_bytes(rendered)
        click.echo(f"{report_format} report of {record.artifact_digest} written to {output}", err=True)
    else:
        sys.stdout.buffer.write(rendered)
        sys.stdout.flush()


# Sub-commands of `gate sbom` beside list/get/search.
SBOM_READ_COMMANDS = (sbom_upload, sbom_diff, sbom_licenses, sbom_report)
