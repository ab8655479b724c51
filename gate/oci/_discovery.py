"""Finding what cosign stored for an image: legacy ``.sig``/``.att``/``.sbom`` tags and bundle referrers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gate.oci import _media as media
from gate.oci._cosign import cosign_tag
from gate.oci._errors import ContentNotFound, MalformedContent
from gate.oci._model import Descriptor, ImageManifest
from gate.oci._reference import ImageRef
from gate.oci._source import ImageSource


class ReferrerSource(ImageSource, Protocol):
    """An image source that can also list referrers (registries and layouts both can)."""

    def referrers(self, ref: ImageRef, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``ref``'s manifest."""
        ...


@dataclass(frozen=True)
class CosignArtifacts:
    """What cosign stored for one image digest.

    ``signatures``, ``attestations`` and ``sbom`` are the manifests under the legacy
    tags (None when the tag does not exist); ``bundles`` are the Sigstore bundle
    referrers cosign 3 writes (descriptors of their manifests).
    """

    image: ImageRef
    signatures: ImageManifest | None
    attestations: ImageManifest | None
    sbom: ImageManifest | None
    bundles: tuple[Descriptor, ...]

    @property
    def empty(self) -> bool:
        """True when cosign stored nothing for the image."""
        return not (self.signatures or self.attestations or self.sbom or self.bundles)


def cosign_ref(image: ImageRef, digest: str, suffix: str, *, repository: str | None = None) -> ImageRef:
    """Where cosign keeps ``suffix`` (``sig``, ``att``, ``sbom``) of ``digest``.

    ``repository`` is cosign's ``COSIGN_REPOSITORY``: signatures kept in another
    repository of the same registry.
    """
    base = image.in_repository(repository) if repository else image
    return ImageRef(base.registry, base.repository, tag=cosign_tag(digest, suffix))


def discover_cosign(
    source: ReferrerSource,
    image: ImageRef,
    *,
    repository: str | None = None,
    bundles: bool = True,
) -> CosignArtifacts:
    """Fetch the legacy cosign manifests and list the bundle referrers of ``image``.

    ``image`` is resolved to its digest first (a pinned reference is only checked).
    A missing tag is no artifact, not an error; anything else (a tag that holds an
    index, an unreachable registry) raises.
    """
    digest = source.resolve(image).digest
    pinned = image.with_digest(digest)
    legacy: dict[str, ImageManifest | None] = {}
    for suffix in ("sig", "att", "sbom"):
        where = cosign_ref(pinned, digest, suffix, repository=repository)
        try:
            found = source.manifest(where)
        except ContentNotFound:
            legacy[suffix] = None
            continue
        if not isinstance(found, ImageManifest):
            raise MalformedContent(f"manifest {where}: cosign's {suffix} tag holds an index, not a manifest")
        legacy[suffix] = found
    referrers: tuple[Descriptor, ...] = ()
    if bundles:
        subject = pinned.in_repository(repository) if repository else pinned
        referrers = tuple(source.referrers(subject, artifact_type=media.SIGSTORE_BUNDLE_V03))
    return CosignArtifacts(
        image=pinned,
        signatures=legacy["sig"],
        attestations=legacy["att"],
        sbom=legacy["sbom"],
        bundles=referrers,
    )
