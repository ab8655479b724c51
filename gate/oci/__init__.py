"""OCI images: references, manifests, image layouts on disk and the registry client.

Everything read is checked against its digest and size and capped before it
is read; errors are :class:`~gate.errors.EvidenceError` subclasses for bad
content and :class:`RegistryError` (an :class:`~gate.errors.InfrastructureError`)
when a registry failed.

Example::

    from gate.oci import ImageRef, OciLayout, RegistryClient

    ref = ImageRef.parse("registry.local:5000/team/app:1.0")
    client = RegistryClient(plain_http_hosts=["registry.local:5000"])
    manifest = client.image_manifest(ref, platform="linux/amd64")
    config = client.read_blob(ref, manifest.config, max_bytes=1 << 20)
"""

from __future__ import annotations

from gate.oci import _media as media
from gate.oci._cosign import COSIGN_SUFFIXES, cosign_tag, referrers_tag
from gate.oci._credentials import Credentials, RegistryAuth
from gate.oci._digest import VerifiedReader, check_digest, digest_of, parse_digest, verify_bytes
from gate.oci._discovery import CosignArtifacts, ReferrerSource, cosign_ref, discover_cosign
from gate.oci._errors import (
    ContentNotFound,
    DigestMismatch,
    InvalidReference,
    MalformedContent,
    OciContentError,
    RegistryAuthError,
    RegistryError,
    RegistryRejected,
    RegistryTimeout,
    SizeLimitExceeded,
    SizeMismatch,
    UnsupportedContent,
)
from gate.oci._layout import OciLayout
from gate.oci._model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    encode_index,
    encode_manifest,
    parse_descriptor,
    parse_manifest,
)
from gate.oci._reference import DOCKER_HUB, ImageRef
from gate.oci._registry import RegistryClient
from gate.oci._source import MAX_MANIFEST_BYTES, ImageSource

__all__ = [
    "COSIGN_SUFFIXES",
    "DOCKER_HUB",
    "MAX_MANIFEST_BYTES",
    "ContentNotFound",
    "CosignArtifacts",
    "Credentials",
    "Descriptor",
    "DigestMismatch",
    "ImageIndex",
    "ImageManifest",
    "ImageRef",
    "ImageSource",
    "InvalidReference",
    "MalformedContent",
    "OciContentError",
    "OciLayout",
    "Platform",
    "ReferrerSource",
    "RegistryAuth",
    "RegistryAuthError",
    "RegistryClient",
    "RegistryError",
    "RegistryRejected",
    "RegistryTimeout",
    "SizeLimitExceeded",
    "SizeMismatch",
    "UnsupportedContent",
    "VerifiedReader",
    "check_digest",
    "cosign_ref",
    "cosign_tag",
    "digest_of",
    "discover_cosign",
    "encode_index",
    "encode_manifest",
    "media",
    "parse_descriptor",
    "parse_digest",
    "parse_manifest",
    "referrers_tag",
    "verify_bytes",
]
