"""The port every image source implements (an OCI layout on disk, a registry)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gate.oci._digest import VerifiedReader
from gate.oci._errors import MalformedContent
from gate.oci._model import Descriptor, ImageIndex, ImageManifest, Platform
from gate.oci._reference import ImageRef

# Manifests and indexes are small; a larger one is refused before it is read.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Indexes may nest (an index of indexes); deeper than this is refused.
MAX_INDEX_DEPTH = 4


@runtime_checkable
class ImageSource(Protocol):
    """Where images are read from: :class:`~gate.oci.OciLayout` or :class:`~gate.oci.RegistryClient`.

    Every method checks what it returns against digests and sizes and raises
    an :class:`~gate.errors.EvidenceError` for bad content or an
    :class:`~gate.errors.InfrastructureError` when the source failed.
    """

    def resolve(self, ref: ImageRef) -> Descriptor:
        """The descriptor of the manifest or index ``ref`` names (tag or digest)."""
        ...

    def manifest(self, ref: ImageRef, *, expected: Descriptor | None = None) -> ImageManifest | ImageIndex:
        """The manifest or index ``ref`` names, digest-verified and size-capped.

        ``expected``, the descriptor that pointed here, is checked too (size, digest, kind).
        """
        ...

    def image_manifest(self, ref: ImageRef, platform: str | Platform = "linux/amd64") -> ImageManifest:
        """The image manifest for ``platform``, walking indexes."""
        ...

    def open_blob(self, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> VerifiedReader:
        """A stream of the blob ``descriptor`` names in ``ref``'s repository, verified as it is read."""
        ...

    def read_blob(self, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> bytes:
        """The whole blob, verified."""
        ...


def walk_to_image(source: ImageSource, ref: ImageRef, platform: str | Platform) -> ImageManifest:
    """Fetch ``ref`` and follow index entries for ``platform`` until an image manifest."""
    wanted = Platform.parse(platform) if isinstance(platform, str) else platform
    found = source.manifest(ref)
    depth = 0
    while isinstance(found, ImageIndex):
        depth += 1
        if depth > MAX_INDEX_DEPTH:
            raise MalformedContent(f"index {ref}: indexes nested deeper than {MAX_INDEX_DEPTH} levels")
        entry = found.select(wanted)
        found = source.manifest(ref.with_digest(entry.digest), expected=entry)
    return found


def read_all(source: ImageSource, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> bytes:
    """Read a whole blob through :meth:`ImageSource.open_blob`."""
    with source.open_blob(ref, descriptor, max_bytes) as stream:
        return stream.read()
