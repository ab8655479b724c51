"""OCI image layouts on disk (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``): read and write."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from gate.oci import _media as media
from gate.oci._cosign import referrers_tag
from gate.oci._digest import VerifiedReader, digest_of, parse_digest
from gate.oci._errors import ContentNotFound, MalformedContent, SizeLimitExceeded
from gate.oci._model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    check_against,
    encode_index,
    encode_manifest,
    load_json_object,
    parse_manifest,
)
from gate.oci._reference import ImageRef
from gate.oci._source import MAX_MANIFEST_BYTES, read_all, walk_to_image

_LAYOUT_VERSION = "1.0.0"
_CHUNK = 64 * 1024
# index.json entries inspected when looking for referrers.
_MAX_SCANNED = 10_000


class OciLayout:
    """An OCI image layout directory, read as an :class:`~gate.oci.ImageSource` and writable.

    A reference names an image of the layout by the
    ``org.opencontainers.image.ref.name`` annotation of its ``index.json``
    entry, which may hold the tag (``1.0``) or the whole reference
    (``registry/app:1.0``); a digest names any manifest stored in the layout.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open an existing layout.

        Raises:
            ContentNotFound: the directory does not exist.
            MalformedContent: it is not an OCI image layout (``oci-layout`` missing or of another version).
        """
        self.path = Path(path)
        if not self.path.is_dir():
            raise ContentNotFound("OCI image layout", str(self.path))
        marker = self.path / "oci-layout"
        try:
            raw = _read_small(marker, MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            raise MalformedContent(f"{self.path}: not an OCI image layout (no oci-layout file)") from None
        version = load_json_object(raw, where=str(marker)).get("imageLayoutVersion")
        if version != _LAYOUT_VERSION:
            raise MalformedContent(
                f"{marker}: imageLayoutVersion must be {_LAYOUT_VERSION!r}, got {version!r}"
            )

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> OciLayout:
        """Create an empty layout at ``path`` (the directory may exist but must not be a layout yet)."""
        root = Path(path)
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if (root / "oci-layout").exists():
            raise MalformedContent(f"{root}: already an OCI image layout")
        _write_atomic(root / "oci-layout", json.dumps({"imageLayoutVersion": _LAYOUT_VERSION}).encode())
        _write_atomic(root / "index.json", encode_index([]))
        return cls(root)

    # -- reading ---------------------------------------------------------------------------------

    def index(self) -> ImageIndex:
        """The layout's ``index.json``."""
        where = str(self.path / "index.json")
        try:
            raw = _read_small(self.path / "index.json", MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            raise MalformedContent(f"{where}: missing") from None
        found = parse_manifest(raw, where=where)
        if not isinstance(found, ImageIndex):
            raise MalformedContent(f"{where}: not an image index")
        return found

    def names(self) -> dict[str, Descriptor]:
        """The named entries of ``index.json`` by their ``org.opencontainers.image.ref.name``."""
        named: dict[str, Descriptor] = {}
        for entry in self.index().manifests:
            name = entry.annotations.get(media.ANNOTATION_REF_NAME)
            if name is not None:
                named[name] = entry
        return named

    def resolve(self, ref: ImageRef) -> Descriptor:
        """The descriptor ``ref`` names: an ``index.json`` entry, or any stored manifest by digest."""
        entries = self.index().manifests
        if ref.digest is not None:
            for entry in entries:
                if entry.digest == ref.digest:
                    return entry
            raw = self._read_blob_file(ref.digest, MAX_MANIFEST_BYTES)
            found = parse_manifest(raw, where=f"{self.path}: manifest {ref.digest}", digest=ref.digest)
            return found.descriptor
        wanted = {ref.tag, str(ref), f"{ref.name}:{ref.tag}"}
        matches = [e for e in entries if e.annotations.get(media.ANNOTATION_REF_NAME) in wanted]
        if not matches:
            raise ContentNotFound("image", f"{ref.tag} in OCI layout {self.path}")
        if len({m.digest for m in matches}) > 1:
            raise MalformedContent(f"{self.path}/index.json: name {ref.tag!r} is given to several manifests")
        return matches[0]

    def manifest(self, ref: ImageRef, *, expected: Descriptor | None = None) -> ImageManifest | ImageIndex:
        """The manifest or index ``ref`` names, checked against its digest and descriptor."""
        descriptor = expected or self.resolve(ref)
        where = f"{self.path}: manifest {descriptor.digest}"
        raw = self._read_blob_file(descriptor.digest, MAX_MANIFEST_BYTES)
        found = parse_manifest(raw, where=where, digest=descriptor.digest)
        check_against(found, descriptor, where=where)
        return found

    def image_manifest(self, ref: ImageRef, platform: str | Platform = "linux/amd64") -> ImageManifest:
        """The image manifest for ``platform`` (walking indexes)."""
        return walk_to_image(self, ref, platform)

    def open_blob(self, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> VerifiedReader:
        """A verified stream of a blob of the layout (``ref`` only names the image, for messages)."""
        path = self._blob_path(descriptor.digest)
        where = f"{self.path}: blob {descriptor.digest}"
        if descriptor.size > max_bytes:
            raise SizeLimitExceeded(where, max_bytes, descriptor.size, at_least=False)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ContentNotFound("blob", f"{descriptor.digest} in OCI layout {self.path}") from None
        try:
            return VerifiedReader(
                _chunks(handle),
                where=where,
                digest=descriptor.digest,
                size=descriptor.size,
                max_bytes=max_bytes,
                on_close=handle.close,
            )
        except BaseException:
            handle.close()
            raise

    def read_blob(self, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> bytes:
        """A whole blob, verified."""
        return read_all(self, ref, descriptor, max_bytes)

    def referrers(self, ref: ImageRef, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests in ``index.json`` whose ``subject`` is ``ref``'s manifest, and the fallback tag index.

        A layout has no referrers API; like a registry without one, what the
        layout's writer listed in ``index.json`` is what can be found.
        """
        digest = ref.digest or self.resolve(ref).digest
        found: dict[str, Descriptor] = {}
        entries = self.index().manifests
        if len(entries) > _MAX_SCANNED:
            raise SizeLimitExceeded(f"{self.path}/index.json", _MAX_SCANNED, len(entries))
        fallback = referrers_tag(digest)
        for entry in entries:
            if entry.annotations.get(media.ANNOTATION_REF_NAME) == fallback:
                listed = self.manifest(ref, expected=entry)
                if not isinstance(listed, ImageIndex):
                    raise MalformedContent(f"{self.path}: referrers tag {fallback} is not an index")
                for member in listed.manifests:
                    found.setdefault(member.digest, self._as_referrer(ref, member))
            elif entry.media_type in media.IMAGE_MANIFEST_TYPES and entry.digest != digest:
                candidate = self.manifest(ref, expected=entry)
                if candidate.subject is not None and candidate.subject.digest == digest:
                    found.setdefault(entry.digest, self._as_referrer(ref, entry))
        return [d for d in found.values() if artifact_type is None or d.artifact_type == artifact_type]

    def _as_referrer(self, ref: ImageRef, entry: Descriptor) -> Descriptor:
        # The referrers API's rule: the artifact type, else the config media type; the manifest's annotations.
        member = self.manifest(ref, expected=replace(entry, annotations={}))
        kind = member.artifact_type
        if kind is None and isinstance(member, ImageManifest):
            kind = member.config.media_type
        return Descriptor(
            member.media_type, member.digest, len(member.raw), dict(member.annotations), artifact_type=kind
        )

    def has_blob(self, digest: str) -> bool:
        """True when the layout stores a blob under ``digest``."""
        return self._blob_path(digest).is_file()

    # -- writing ---------------------------------------------------------------------------------

    def write_blob(self, data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
        """Store ``data`` (idempotent) and return its descriptor."""
        digest = digest_of(data)
        path = self._blob_path(digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, data)
        return Descriptor(media_type, digest, len(data))

    def write_manifest(
        self, raw: bytes, *, tag: str | None = None, platform: Platform | None = None
    ) -> Descriptor:
        """Store a manifest or index (checked by parsing it) and optionally name it in ``index.json``."""
        found = parse_manifest(raw, where="manifest to write")
        self.write_blob(raw)
        descriptor = replace(found.descriptor, platform=platform)
        if tag is not None:
            self.tag(descriptor, tag)
        return descriptor

    def write_image(
        self,
        config: bytes,
        layers: Sequence[bytes | tuple[bytes, str]],
        *,
        media_type: str = media.OCI_MANIFEST,
        config_media_type: str | None = None,
        annotations: Mapping[str, str] | None = None,
        subject: Descriptor | None = None,
        artifact_type: str | None = None,
        tag: str | None = None,
    ) -> ImageManifest:
        """Store an image (config, layers, manifest) and return its manifest.

        Layers given as bytes get the gzip tar layer type of the manifest's
        family (OCI or Docker); give ``(bytes, media_type)`` for others.
        """
        docker = media_type == media.DOCKER_MANIFEST
        default_config = media.DOCKER_CONFIG if docker else media.OCI_CONFIG
        default_layer = media.DOCKER_LAYER_TAR_GZIP if docker else media.OCI_LAYER_TAR_GZIP
        config_descriptor = self.write_blob(config, config_media_type or default_config)
        layer_descriptors = [
            self.write_blob(layer, default_layer) if isinstance(layer, bytes) else self.write_blob(*layer)
            for layer in layers
        ]
        raw = encode_manifest(
            config_descriptor,
            layer_descriptors,
            media_type=media_type,
            annotations=annotations,
            subject=subject,
            artifact_type=artifact_type,
        )
        self.write_manifest(raw, tag=tag)
        found = parse_manifest(raw, where="written manifest")
        assert isinstance(found, ImageManifest)
        return found

    def write_index(
        self,
        manifests: Sequence[Descriptor],
        *,
        media_type: str = media.OCI_INDEX,
        annotations: Mapping[str, str] | None = None,
        subject: Descriptor | None = None,
        artifact_type: str | None = None,
        tag: str | None = None,
    ) -> ImageIndex:
        """Store an index (or Docker manifest list) of manifests already in the layout."""
        for entry in manifests:
            if not self.has_blob(entry.digest):
                raise ContentNotFound("manifest", f"{entry.digest} in OCI layout {self.path}")
        raw = encode_index(
            manifests,
            media_type=media_type,
            annotations=annotations,
            subject=subject,
            artifact_type=artifact_type,
        )
        self.write_manifest(raw, tag=tag)
        found = parse_manifest(raw, where="written index")
        assert isinstance(found, ImageIndex)
        return found

    def tag(self, descriptor: Descriptor, name: str) -> None:
        """Name ``descriptor`` in ``index.json`` (an entry with the same name is replaced)."""
        if not self.has_blob(descriptor.digest):
            raise ContentNotFound("manifest", f"{descriptor.digest} in OCI layout {self.path}")
        entries = [e for e in self.index().manifests if e.annotations.get(media.ANNOTATION_REF_NAME) != name]
        annotations = {**descriptor.annotations, media.ANNOTATION_REF_NAME: name}
        entries.append(replace(descriptor, annotations=annotations))
        _write_atomic(self.path / "index.json", encode_index(entries))

    # -- helpers ---------------------------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        # parse_digest admits only [a-f0-9] encodings, so the path cannot leave blobs/.
        algorithm, encoded = parse_digest(digest)
        return self.path / "blobs" / algorithm / encoded

    def _read_blob_file(self, digest: str, max_bytes: int) -> bytes:
        path = self._blob_path(digest)
        try:
            return _read_small(path, max_bytes)
        except FileNotFoundError:
            raise ContentNotFound("manifest", f"{digest} in OCI layout {self.path}") from None


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


def _read_small(path: Path, max_bytes: int) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SizeLimitExceeded(str(path), max_bytes, len(data))
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
