"""Descriptors, platforms, image manifests and indexes: parsing, checking and encoding.

Parsing is strict because manifests are evidence: invalid JSON, duplicate
keys, missing or mistyped fields and schema 1 manifests are refused with the
field path, and the bytes are kept (``raw``) since signatures and digests are
over exact bytes, never over a re-serialisation.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gate._strict_json import StrictJsonError, loads
from gate.oci import _media as media
from gate.oci._digest import check_digest, digest_of, verify_bytes
from gate.oci._errors import (
    ContentNotFound,
    InvalidReference,
    MalformedContent,
    SizeMismatch,
    UnsupportedContent,
)

_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_MAX_INT = 2**63 - 1
# Architectures whose variant Docker and containerd fill in when it is omitted.
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True)
class Platform:
    """The platform of an image in an index (``os/architecture[/variant]``)."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/architecture[/variant]`` (``linux/arm64/v8``)."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidReference("platform", f"expected os/architecture[/variant], got {text[:100]!r}")
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def matches(self, candidate: Platform) -> bool:
        """True when ``candidate`` can run where this platform is wanted (variant only if asked)."""
        if (self.os, self.architecture) != (candidate.os, candidate.architecture):
            return False
        if self.variant is None:
            return True
        default = _DEFAULT_VARIANT.get(self.architecture)
        return (candidate.variant or default) == (self.variant or default)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the OCI image spec."""
        obj: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version is not None:
            obj["os.version"] = self.os_version
        if self.os_features:
            obj["os.features"] = list(self.os_features)
        if self.variant is not None:
            obj["variant"] = self.variant
        return obj


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a blob or manifest is, its digest and its exact size."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()
    data: bytes | None = None

    def __post_init__(self) -> None:
        check_digest(self.digest)
        if isinstance(self.size, bool) or not 0 <= self.size <= _MAX_INT:
            raise MalformedContent(f"descriptor {self.digest}: size must be a non-negative integer")

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the OCI image spec (fields in the spec's order)."""
        obj: dict[str, Any] = {"mediaType": self.media_type}
        if self.artifact_type is not None:
            obj["artifactType"] = self.artifact_type
        obj["digest"] = self.digest
        obj["size"] = self.size
        if self.urls:
            obj["urls"] = list(self.urls)
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        if self.platform is not None:
            obj["platform"] = self.platform.to_json()
        if self.data is not None:
            obj["data"] = base64.b64encode(self.data).decode("ascii")
        return obj


@dataclass(frozen=True)
class ImageManifest:
    """An image manifest (OCI or Docker schema 2), with the exact bytes it was read from."""

    digest: str
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @property
    def descriptor(self) -> Descriptor:
        """A descriptor of this manifest."""
        return Descriptor(self.media_type, self.digest, len(self.raw), artifact_type=self.artifact_type)


@dataclass(frozen=True)
class ImageIndex:
    """An image index (OCI) or manifest list (Docker), with the exact bytes it was read from."""

    digest: str
    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @property
    def descriptor(self) -> Descriptor:
        """A descriptor of this index."""
        return Descriptor(self.media_type, self.digest, len(self.raw), artifact_type=self.artifact_type)

    def select(self, platform: Platform | str) -> Descriptor:
        """The first manifest for ``platform``.

        Raises:
            ContentNotFound: no entry of the index is for that platform (the message lists those present).
        """
        wanted = Platform.parse(platform) if isinstance(platform, str) else platform
        for entry in self.manifests:
            if entry.platform is not None and wanted.matches(entry.platform):
                return entry
        present = sorted({str(entry.platform) for entry in self.manifests if entry.platform is not None})
        raise ContentNotFound(
            "platform", f"{wanted} in index {self.digest} (present: {', '.join(present) or 'none'})"
        )


def load_json_object(raw: bytes, *, where: str) -> dict[str, Any]:
    """Decode a UTF-8 JSON object, refusing duplicate keys and other values at the top."""
    try:
        # A lone surrogate would break whoever later encodes the value (signature checks of
        # annotations did). NaN and 1e400 have always been read: no field gate reads is a float,
        # and the exact bytes, not a re-serialisation, are what is kept.
        value = loads(raw, allow_non_finite=True)
    except StrictJsonError as exc:
        if exc.kind == "encoding":
            raise MalformedContent(f"{where}: not UTF-8 (byte {exc.offset})") from None
        if exc.kind == "duplicate_key":
            raise MalformedContent(f"{where}: {exc.reason}") from None
        if exc.kind == "syntax":
            raise MalformedContent(
                f"{where}: invalid JSON: {exc.detail} at line {exc.line} column {exc.column}"
            ) from None
        raise MalformedContent(f"{where}: invalid JSON: {exc.reason}") from None
    if not isinstance(value, dict):
        raise MalformedContent(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _text(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required and key not in obj:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedContent(f"{where}.{key}: expected a non-empty string, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _annotations(obj: Mapping[str, Any], where: str) -> dict[str, str]:
    value = obj.get("annotations")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MalformedContent(f"{where}.annotations: expected an object of strings")
    return dict(value)


def _media_type(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = _text(obj, key, where, required=required)
    if value is not None and not _MEDIA_TYPE.fullmatch(value):
        raise MalformedContent(f"{where}.{key}: not a media type: {value[:100]!r}")
    return value


def _platform(value: object, where: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedContent(f"{where}: expected an object, got {_kind(value)}")
    os_name = _text(value, "os", where)
    architecture = _text(value, "architecture", where)
    variant = value.get("variant")
    os_version = value.get("os.version")
    features = value.get("os.features", [])
    if variant is not None and not isinstance(variant, str):
        raise MalformedContent(f"{where}.variant: expected a string")
    if os_version is not None and not isinstance(os_version, str):
        raise MalformedContent(f"{where}.os.version: expected a string")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise MalformedContent(f"{where}.os.features: expected a list of strings")
    assert os_name is not None
    assert architecture is not None
    return Platform(os_name, architecture, variant or None, os_version, tuple(features))


def parse_descriptor(value: object, *, where: str) -> Descriptor:
    """Check and convert one descriptor JSON object.

    Raises:
        MalformedContent: a field is missing, mistyped, or embedded ``data`` does not match.
    """
    if not isinstance(value, dict):
        raise MalformedContent(f"{where}: expected a descriptor object, got {_kind(value)}")
    media_type = _media_type(value, "mediaType", where)
    digest = _text(value, "digest", where)
    size = value.get("size")
    assert media_type is not None
    assert digest is not None
    try:
        check_digest(digest, field=f"{where}.digest")
    except InvalidReference as exc:
        raise MalformedContent(exc.message) from None
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_INT:
        raise MalformedContent(
            f"{where}.size: expected a non-negative integer, got {_kind(size)} {size!r}"[:200]
        )
    urls = value.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise MalformedContent(f"{where}.urls: expected a list of strings")
    data: bytes | None = None
    if value.get("data") is not None:
        encoded = value["data"]
        try:
            data = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
        except ValueError:  # binascii.Error, and ValueError for a str that is not ASCII
            data = None
        if data is None:
            raise MalformedContent(f"{where}.data: expected standard base64")
        verify_bytes(data, where=f"{where}.data", digest=digest, size=size)
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_annotations(value, where),
        platform=_platform(value.get("platform"), f"{where}.platform"),
        artifact_type=_media_type(value, "artifactType", where, required=False),
        urls=tuple(urls),
        data=data,
    )


def _essence(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def parse_manifest(
    raw: bytes, *, where: str, digest: str | None = None, content_type: str | None = None
) -> ImageManifest | ImageIndex:
    """Parse a manifest or index from its exact bytes.

    Args:
        raw: the bytes as served.
        where: what this is, for error messages (``manifest registry/app@sha256:...``).
        digest: when given, ``raw`` must hash to it (its algorithm is used); else sha256 is computed.
        content_type: the Content-Type it was served with; must agree with the ``mediaType`` field.

    Raises:
        DigestMismatch: the bytes do not match ``digest``.
        MalformedContent: not a valid manifest or index.
        UnsupportedContent: a Docker schema 1 manifest or an unknown manifest media type.
    """
    if digest is not None:
        verify_bytes(raw, where=where, digest=digest)
    else:
        digest = digest_of(raw)
    obj = load_json_object(raw, where=where)
    declared = _media_type(obj, "mediaType", where, required=False)
    served = _essence(content_type)
    version = obj.get("schemaVersion")
    if isinstance(version, bool):
        raise MalformedContent(f"{where}.schemaVersion: expected 2, got {version!r}")
    if version == 1 or declared in media.DOCKER_SCHEMA1 or served in media.DOCKER_SCHEMA1:
        raise UnsupportedContent(f"{where}: Docker schema 1 manifests are not supported")
    if version != 2:
        raise MalformedContent(f"{where}.schemaVersion: expected 2, got {version!r}"[:200])
    if declared is not None and served in media.MANIFEST_TYPES and served != declared:
        raise MalformedContent(f"{where}: served as {served} but its mediaType is {declared}")
    kind = declared or (served if served in media.MANIFEST_TYPES else None)
    if kind is None:
        kind = media.OCI_INDEX if "manifests" in obj else media.OCI_MANIFEST
    if kind not in media.MANIFEST_TYPES:
        raise UnsupportedContent(f"{where}: unsupported manifest media type {kind!r}")
    subject = obj.get("subject")
    common: dict[str, Any] = {
        "digest": digest,
        "media_type": kind,
        "raw": raw,
        "annotations": _annotations(obj, where),
        "subject": None if subject is None else parse_descriptor(subject, where=f"{where}.subject"),
        "artifact_type": _media_type(obj, "artifactType", where, required=False),
    }
    if kind in media.INDEX_TYPES:
        entries = obj.get("manifests")
        if not isinstance(entries, list):
            raise MalformedContent(f"{where}.manifests: expected a list, got {_kind(entries)}")
        manifests = tuple(parse_descriptor(e, where=f"{where}.manifests[{i}]") for i, e in enumerate(entries))
        return ImageIndex(manifests=manifests, **common)
    layers = obj.get("layers")
    if not isinstance(layers, list):
        raise MalformedContent(f"{where}.layers: expected a list, got {_kind(layers)}")
    return ImageManifest(
        config=parse_descriptor(obj.get("config"), where=f"{where}.config"),
        layers=tuple(parse_descriptor(e, where=f"{where}.layers[{i}]") for i, e in enumerate(layers)),
        **common,
    )


def check_against(found: ImageManifest | ImageIndex, expected: Descriptor, *, where: str) -> None:
    """Check a fetched manifest against the descriptor that pointed to it (digest, size, kind)."""
    if len(found.raw) != expected.size:
        raise SizeMismatch(where, expected.size, len(found.raw))
    verify_bytes(found.raw, where=where, digest=expected.digest)
    if expected.media_type in media.MANIFEST_TYPES and expected.media_type != found.media_type:
        raise MalformedContent(
            f"{where}: descriptor says {expected.media_type}, content is {found.media_type}"
        )


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_manifest(
    config: Descriptor,
    layers: Sequence[Descriptor],
    *,
    media_type: str = media.OCI_MANIFEST,
    annotations: Mapping[str, str] | None = None,
    subject: Descriptor | None = None,
    artifact_type: str | None = None,
) -> bytes:
    """The compact JSON bytes of an image manifest (OCI by default, or Docker schema 2)."""
    if media_type not in media.IMAGE_MANIFEST_TYPES:
        raise UnsupportedContent(f"not an image manifest media type: {media_type!r}")
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        obj["artifactType"] = artifact_type
    obj["config"] = config.to_json()
    obj["layers"] = [layer.to_json() for layer in layers]
    if subject is not None:
        obj["subject"] = subject.to_json()
    if annotations:
        obj["annotations"] = dict(annotations)
    return _dumps(obj)


def encode_index(
    manifests: Sequence[Descriptor],
    *,
    media_type: str = media.OCI_INDEX,
    annotations: Mapping[str, str] | None = None,
    subject: Descriptor | None = None,
    artifact_type: str | None = None,
) -> bytes:
    """The compact JSON bytes of an image index (OCI by default, or a Docker manifest list)."""
    if media_type not in media.INDEX_TYPES:
        raise UnsupportedContent(f"not an index media type: {media_type!r}")
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        obj["artifactType"] = artifact_type
    obj["manifests"] = [entry.to_json() for entry in manifests]
    if subject is not None:
        obj["subject"] = subject.to_json()
    if annotations:
        obj["annotations"] = dict(annotations)
    return _dumps(obj)
