"""Errors of the OCI package, each in one of gate's two families.

Bad content (a digest that does not match, a blob larger than its descriptor
or than the caller's cap, a manifest that is not JSON, a missing tag) is
evidence: a decision that meets it denies. A registry that cannot be reached,
answers 5xx or 429, times out or refuses our credentials is infrastructure:
retry, or apply the failure policy.
"""

from __future__ import annotations

from gate.errors import DeadlineExceeded, EvidenceError, InfrastructureError, InvalidArgument, NotFound


class InvalidReference(InvalidArgument):
    """An image reference, digest or platform string does not parse."""


class OciContentError(EvidenceError):
    """Content read from a registry or an image layout is not what it must be."""


class DigestMismatch(OciContentError):
    """Bytes do not hash to the digest that names them."""

    def __init__(self, where: str, expected: str, got: str) -> None:
        super().__init__(f"{where}: digest mismatch: expected {expected}, got {got}")
        self.where = where
        self.expected = expected
        self.got = got


class SizeMismatch(OciContentError):
    """Content is longer or shorter than its descriptor says."""

    def __init__(self, where: str, expected: int, got: int, *, at_least: bool = False) -> None:
        more = "at least " if at_least else ""
        super().__init__(f"{where}: size mismatch: descriptor says {expected} bytes, got {more}{got}")
        self.where = where
        self.expected = expected
        self.got = got


class SizeLimitExceeded(OciContentError):
    """Content is larger than the cap the caller allows."""

    def __init__(self, where: str, limit: int, got: int, *, at_least: bool = True) -> None:
        more = "at least " if at_least else ""
        super().__init__(f"{where}: larger than the limit of {limit} bytes (got {more}{got})")
        self.where = where
        self.limit = limit
        self.got = got


class MalformedContent(OciContentError):
    """A manifest, index, descriptor or configuration document is not valid."""


class UnsupportedContent(OciContentError):
    """Valid content of a kind gate does not read (schema 1 manifests, unknown digest algorithms)."""


class RegistryRejected(OciContentError):
    """The registry refused a request as invalid (4xx other than auth, not-found and rate limits)."""


class ContentNotFound(NotFound):
    """A tag, manifest, blob or repository does not exist (registry 404 or absent from a layout)."""


class RegistryError(InfrastructureError):
    """The registry could not be reached, failed (5xx, 429) or broke the protocol: retry."""


class RegistryTimeout(RegistryError, DeadlineExceeded):
    """A registry operation did not finish within its time budget."""


class RegistryAuthError(RegistryError):
    """The registry (or its token service) refused the credentials gate holds for it."""
