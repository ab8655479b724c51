"""Image references (``registry/repository[:tag][@digest]``) with Docker's defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from gate.oci._digest import check_digest
from gate.oci._errors import InvalidReference

DOCKER_HUB = "docker.io"
# Docker Hub's registry API lives on another host than the name users write.
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# fullmatch throughout: ``$`` would let a trailing newline through ("app:1.0\n").
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# ASCII: Go's \w, which the distribution spec's grammar means, is [0-9A-Za-z_].
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_MAX_NAME = 255
_MAX_TEXT = 4096


def _check_repository(path: str, *, field: str, text: str) -> None:
    for component in path.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                field,
                f"invalid repository component {component!r} in {text!r} "
                "(lowercase letters, digits and separators . _ __ -)",
            )


def _check_port(registry: str, *, field: str, text: str) -> None:
    # The grammar allows any digits after the colon; no registry can listen past 65535.
    host, colon, port = registry.rpartition(":")
    if colon and not host.endswith(":") and port.isdigit() and not 0 < int(port) <= 65535:
        raise InvalidReference(field, f"invalid registry port {port} in {text!r}, expected 1-65535")


def _is_domain(component: str) -> bool:
    # Docker's rule: the first path component names a registry when it looks like a host.
    return "." in component or ":" in component or component == "localhost" or component.lower() != component


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference.

    ``registry`` is the name users write (``docker.io`` for Docker Hub),
    ``repository`` the path within it (``library/nginx``). A reference without
    tag and digest gets the tag ``latest``, as in Docker. When both are present
    the digest decides what is fetched.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, field: str = "image") -> ImageRef:
        """Parse ``[registry/]repository[:tag][@digest]``.

        Raises:
            InvalidReference: the text is not a valid reference (the message names the part).
        """
        if not text:
            raise InvalidReference(field, "empty image reference")
        if len(text) > _MAX_TEXT:
            raise InvalidReference(field, f"image reference longer than {_MAX_TEXT} characters")
        rest, at, digest_text = text.partition("@")
        digest = check_digest(digest_text, field=f"{field}: digest") if at else None
        tag: str | None = None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise InvalidReference(field, f"invalid tag {tag!r} in {text!r}")
        first, sep, remainder = rest.partition("/")
        if sep and _is_domain(first):
            registry, path = first, remainder
            if not _DOMAIN.fullmatch(registry):
                raise InvalidReference(field, f"invalid registry {registry!r} in {text!r}")
            _check_port(registry, field=field, text=text)
        else:
            registry, path = DOCKER_HUB, rest
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in path:
                path = f"library/{path}"
        if not path:
            raise InvalidReference(field, f"no repository in {text!r}")
        _check_repository(path, field=field, text=text)
        if len(registry) + 1 + len(path) > _MAX_NAME:
            raise InvalidReference(field, f"repository name longer than {_MAX_NAME} characters")
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry=registry, repository=path, tag=tag, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What the registry API is asked for: the digest if pinned, else the tag."""
        if self.digest is not None:
            return self.digest
        assert self.tag is not None
        return self.tag

    @property
    def endpoint(self) -> str:
        """The ``host[:port]`` whose ``/v2/`` API serves this repository."""
        return DOCKER_HUB_ENDPOINT if self.registry == DOCKER_HUB else self.registry

    def with_digest(self, digest: str) -> ImageRef:
        """The same repository and tag pinned to ``digest``."""
        return replace(self, digest=check_digest(digest))

    def with_tag(self, tag: str) -> ImageRef:
        """The same repository at ``tag`` (no digest)."""
        if not _TAG.fullmatch(tag):
            raise InvalidReference("tag", f"invalid tag {tag!r}")
        return replace(self, tag=tag, digest=None)

    def in_repository(self, repository: str) -> ImageRef:
        """This reference's tag/digest in another repository of the same registry (``COSIGN_REPOSITORY``)."""
        _check_repository(repository, field="repository", text=repository)
        return replace(self, repository=repository)


def registry_key(host: str) -> str:
    """Normalise a registry name as written in credentials (scheme, path, Hub aliases removed)."""
    text = host.strip()
    for prefix in ("https://", "http://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    text = text.split("/", 1)[0].lower()
    return DOCKER_HUB if text in _HUB_ALIASES else text
