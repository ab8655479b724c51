"""``gate sbom generate``: an SBOM of a local target, with progress, stored and written out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gate.cli import _output as out
from gate.cli._read import _artifact_ref, _obj
from gate.v1 import sbom_pb2, scan_pb2

_FORMATS = {
    "cyclonedx-json": sbom_pb2.SBOM_FORMAT_CYCLONEDX_JSON,
    "cyclonedx-xml": sbom_pb2.SBOM_FORMAT_CYCLONEDX_XML,
    "spdx-json": sbom_pb2.SBOM_FORMAT_SPDX_JSON,
}
_KINDS = {
    "dir": scan_pb2.TARGET_KIND_FILESYSTEM,
    "rootfs": scan_pb2.TARGET_KIND_ROOTFS,
    "image": scan_pb2.TARGET_KIND_IMAGE,
}
_IMAGE_PREFIXES = ("oci:", "docker-archive:", "registry:", "docker://")


@click.command("generate")
@click.argument("target")
@click.option(
    "--kind",
    type=click.Choice(sorted(_KINDS)),
    help="What TARGET is; default: image for oci:/docker-archive:/registry: locations, else dir.",
)
@click.option(
    "--artifact",
    metavar="DIGEST|REF",
    help="The artifact the SBOM describes; default: the image digest, or the git commit in TARGET.",
)
@click.option(
    "--generator",
    metavar="NAME",
    default="",
    help="native (gate's own cataloguers), trivy or syft; default: sbom.generator of the configuration.",
)
@click.option(
    "-o", "--format", "fmt", type=click.Choice(sorted(_FORMATS)), default="cyclonedx-json", show_default=True
)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the document here.")
def sbom_generate(
    target: str, kind: str | None, artifact: str | None, generator: str, fmt: str, output: Path | None
) -> None:
    """Generate and store the SBOM of TARGET.

    \b
    TARGET is one of:
      DIR                          a directory, root filesystem or Python environment
      oci:DIR[:NAME]               an OCI image layout (NAME: a tag in its index.json)
      docker-archive:FILE.tar      a `docker save` archive
      registry:REF, or --kind image REF   an image in a registry ([registry/]repo[:tag][@digest])
    Images are unpacked into a private temporary directory (only what the
    cataloguers read), their layers applied in order with whiteouts honoured.
    """
    client = _obj().client()
    if kind is None:
        kind = "image" if target.startswith(_IMAGE_PREFIXES) else "dir"
    request = sbom_pb2.GenerateSbomRequest(
        target_kind=_KINDS[kind], location=target, format=_FORMATS[fmt], generator=generator
    )
    if artifact:
        request.artifact.CopyFrom(_artifact_ref(artifact))
    shown = out.ProgressLine("sbom")
    stored: sbom_pb2.Sbom | None = None
    warnings: list[str] = []
    for event in client.stream("gate.v1.SbomService/GenerateSbom", request):
        assert isinstance(event, sbom_pb2.GenerateSbomEvent)
        shown.update(event.progress.phase, event.progress.message, event.progress.fraction)
        if event.HasField("sbom"):
            stored = event.sbom
            warnings = list(event.warnings)
    shown.close()
    for warning in warnings:
        click.echo(f"gate: warning: {warning}", err=True)
    if stored is None:
        raise click.ClickException("the server ended the stream without an SBOM")
    document = client.call(
        "gate.v1.SbomService/GetSbom",
        # Asking for the format converts a document stored in another one (SPDX, or XML from a tool).
        sbom_pb2.GetSbomRequest(id=stored.id, include_document=True, format=_FORMATS[fmt]),
    )
    assert isinstance(document, sbom_pb2.Sbom)
    if output is not None:
        output.write_bytes(document.document)
        click.echo(
            f"sbom {stored.id}: {stored.component_count} components of {stored.artifact_digest} "
            f"({fmt}) written to {output}",
            err=True,
        )
    else:
        sys.stdout.buffer.write(document.document)
        sys.stdout.flush()


# Sub-commands of `gate sbom`.
SBOM_COMMANDS = (sbom_generate,)
