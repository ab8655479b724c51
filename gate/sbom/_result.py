"""The subject an SBOM describes and the generated inventory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from packageurl import PackageURL

from gate.errors import InvalidArgument
from gate.model import ArtifactKind, Component, TargetKind, check_digest
from gate.sbom._os_release import OperatingSystem
from gate.sbom._types import FoundComponent, SbomWarning

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom


@dataclass(frozen=True, slots=True)
class Subject:
    """The artifact an SBOM describes; it becomes the document's ``metadata.component``.

    Attributes:
        name: The image repository (``registry.example/team/app``) or the project
            (``github.com/owner/repo``).
        digest: The artifact digest (``sha256:...`` for an image, ``git:<commit>``
            for a source tree), as :func:`gate.model.check_digest` accepts it.
        kind: Image (a ``container`` component) or source/file (an ``application``).
        version: A tag or release label, recorded as the purl's ``tag`` qualifier
            and a ``gate:tag`` property (the component version is always the
            digest, because tags move).
    """

    name: str
    digest: str
    kind: ArtifactKind = ArtifactKind.IMAGE
    version: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidArgument("subject.name", "required, got an empty string")
        check_digest(self.digest, "subject.digest")

    @property
    def purl(self) -> PackageURL | None:
        """``pkg:oci`` for an image, ``pkg:github`` for a GitHub source tree, else None."""
        if self.kind is ArtifactKind.IMAGE:
            qualifiers = {"repository_url": self.name}
            if self.version:
                qualifiers["tag"] = self.version
            return PackageURL("oci", None, self.name.rsplit("/", 1)[-1].lower(), self.digest, qualifiers)
        parts = self.name.split("/")
        if self.digest.startswith("git:") and len(parts) == 3 and parts[0] == "github.com":
            return PackageURL("github", parts[1], parts[2], self.digest.removeprefix("git:"))
        return None

    @property
    def bom_ref(self) -> str:
        """The bom-ref of the subject component: its purl, else ``name@digest``."""
        purl = self.purl
        return purl.to_string() if purl is not None else f"{self.name}@{self.digest}"


@dataclass(frozen=True, slots=True)
class GeneratedSbom:
    """An inventory of one target, and its CycloneDX renderings.

    Attributes:
        subject: The artifact described.
        target_kind: ``rootfs`` when an operating system was found, else ``filesystem``.
        components: Every component found, sorted by bom-ref.
        dependencies: bom-ref to the bom-refs it depends on, for every component
            and for the subject (which depends on the top-level components).
        operating_system: The OS from os-release, if any.
        warnings: Inputs skipped or partly read, with the reason.
        serial_number: A UUIDv5 over the subject and the content.
        timestamp: The document timestamp (second precision).
    """

    subject: Subject
    target_kind: TargetKind
    components: tuple[FoundComponent, ...]
    dependencies: Mapping[str, tuple[str, ...]]
    operating_system: OperatingSystem | None
    warnings: tuple[SbomWarning, ...]
    serial_number: UUID
    timestamp: datetime

    @property
    def model_components(self) -> tuple[Component, ...]:
        """The components as gate's domain model has them (for the store's component index)."""
        return tuple(found.component for found in self.components)

    def to_bom(self) -> Bom:
        """The cyclonedx-python-lib model of this inventory."""
        from gate.sbom import _bom

        return _bom.build(self)

    def to_cyclonedx_json(self) -> bytes:
        """The inventory as a CycloneDX 1.6 JSON document (UTF-8)."""
        from gate.sbom import _document

        return _document.to_json(self)

    def to_cyclonedx_xml(self) -> bytes:
        """The inventory as a CycloneDX 1.6 XML document (UTF-8)."""
        from gate.sbom import _document

        return _document.to_xml(self)
