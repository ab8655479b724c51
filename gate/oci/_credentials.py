"""Registry credentials from Docker ``config.json`` files and Kubernetes pull secrets.

Credential helpers (``credsStore``, ``credHelpers``) run external programs;
gate does not run them and says so when a registry's credentials live only
there, instead of silently going anonymous.

Credentials that change while gate runs (pull secrets re-read after a TTL) come
from a :class:`CredentialProvider`; :meth:`Credentials.live` wraps one so that
the registry client asks it on every lookup.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gate.errors import InvalidArgument, Unsupported
from gate.oci._auth import is_bearer_token
from gate.oci._reference import registry_key

MAX_CONFIG_BYTES = 1024 * 1024
DOCKERCONFIGJSON_TYPE = "kubernetes.io/dockerconfigjson"
DOCKERCFG_TYPE = "kubernetes.io/dockercfg"


@dataclass(frozen=True, repr=False)
class RegistryAuth:
    """What gate presents to one registry (and to its token service)."""

    username: str | None = None
    password: str | None = None
    # An OAuth2 refresh token for the registry's token service (``identitytoken``).
    identity_token: str | None = None
    # A bearer token sent to the registry as it is (``registrytoken``).
    registry_token: str | None = None

    def __repr__(self) -> str:
        # Secrets never reach logs or error messages through repr().
        kinds = [
            name
            for name, value in (
                ("password", self.password),
                ("identity_token", self.identity_token),
                ("registry_token", self.registry_token),
            )
            if value
        ]
        return f"RegistryAuth(username={self.username!r}, with={kinds})"

    @property
    def has_basic(self) -> bool:
        """True when a username and password are known."""
        return self.username is not None and self.password is not None


class CredentialProvider(Protocol):
    """A source of credentials that may change while gate runs."""

    @property
    def source(self) -> str:
        """What the credentials are read from, for messages (never a secret)."""

    def current(self) -> Credentials:
        """The credentials as of now (the provider decides how long a read is reused).

        Raises:
            GateError: the source cannot be read or holds malformed credentials.
        """


class Credentials:
    """Credentials by registry, looked up with the registry name of an image reference.

    The default (no arguments) is anonymous everywhere.
    """

    def __init__(
        self,
        auths: Mapping[str, RegistryAuth] | None = None,
        *,
        helper_hosts: frozenset[str] = frozenset(),
        source: str = "credentials",
    ) -> None:
        self._auths = {registry_key(host): auth for host, auth in (auths or {}).items()}
        self._helper_hosts = frozenset(registry_key(h) for h in helper_hosts)
        self.source = source
        # Set on live and merged credentials: lookups then walk these in order.
        self._provider: CredentialProvider | None = None
        self._parts: tuple[Credentials, ...] = ()

    def __repr__(self) -> str:
        if self._provider is not None or self._parts:
            return f"Credentials(source={self.source!r}, live)"
        return f"Credentials(source={self.source!r}, registries={sorted(self._auths)})"

    @classmethod
    def live(cls, provider: CredentialProvider) -> Credentials:
        """Credentials that ask ``provider`` for its current ones on every lookup."""
        creds = cls(source=provider.source)
        creds._provider = provider
        return creds

    @classmethod
    def anonymous(cls) -> Credentials:
        """No credentials for any registry."""
        return cls(source="anonymous")

    @classmethod
    def from_docker_config(cls, config: bytes | str | os.PathLike[str]) -> Credentials:
        """Read a Docker ``config.json`` (bytes of it, or its path).

        Raises:
            InvalidArgument: the file cannot be read, is not JSON, or an entry is malformed
                (the message names the entry and never quotes a secret).
        """
        if isinstance(config, bytes):
            return cls._parse(config, source="docker config.json", require_auths=False)
        path = Path(config)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise InvalidArgument(str(path), f"cannot read docker config: {exc.strerror}") from None
        return cls._parse(data, source=str(path), require_auths=False)

    @classmethod
    def from_dockerconfigjson(cls, data: bytes, *, source: str = ".dockerconfigjson") -> Credentials:
        """Read the decoded ``.dockerconfigjson`` value of a ``kubernetes.io/dockerconfigjson`` secret."""
        return cls._parse(data, source=source, require_auths=True)

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any], *, where: str = "") -> Credentials:
        """Read a Kubernetes pull secret object (``dockerconfigjson`` or the legacy ``dockercfg``).

        ``where`` names the secret in messages (default: ``secret NAMESPACE/NAME`` from its metadata).

        Raises:
            InvalidArgument: another type, no data under the type's key, not base64, or bad JSON.
        """
        if not where:
            metadata = secret.get("metadata")
            name = metadata.get("name", "?") if isinstance(metadata, Mapping) else "?"
            namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
            where = f"secret {namespace}/{name}" if namespace else f"secret {name}"
        kind = secret.get("type")
        key = {DOCKERCONFIGJSON_TYPE: ".dockerconfigjson", DOCKERCFG_TYPE: ".dockercfg"}.get(str(kind))
        if key is None:
            raise InvalidArgument(
                f"{where}.type", f"expected {DOCKERCONFIGJSON_TYPE} or {DOCKERCFG_TYPE}, got {kind!r}"
            )
        data = secret.get("data")
        encoded = data.get(key) if isinstance(data, Mapping) else None
        if not isinstance(encoded, str):
            raise InvalidArgument(f"{where}.data.{key}", "missing")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise InvalidArgument(f"{where}.data.{key}", "not base64") from None
        if key == ".dockercfg":
            return cls._parse(raw, source=f"{where}.data.{key}", require_auths=False, legacy=True)
        return cls._parse(raw, source=f"{where}.data.{key}", require_auths=True)

    @classmethod
    def from_environment(cls) -> Credentials:
        """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json`` when present, else anonymous."""
        base = os.environ.get("DOCKER_CONFIG")
        path = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
        return cls.from_docker_config(path) if path.is_file() else cls.anonymous()

    def merged(self, *others: Credentials) -> Credentials:
        """These credentials, then those of ``others`` for registries not covered yet."""
        chain = (self, *others)
        if any(c._provider is not None or c._parts for c in chain):
            # Live parts cannot be flattened now: keep the order and walk it per lookup.
            combined = Credentials(source=", ".join(c.source for c in chain))
            combined._parts = chain
            return combined
        auths: dict[str, RegistryAuth] = {}
        helpers: set[str] = set()
        for creds in (*reversed(others), self):
            auths.update(creds._auths)
            helpers |= creds._helper_hosts
        sources = ", ".join(c.source for c in (self, *others))
        return Credentials(auths, helper_hosts=frozenset(helpers), source=sources)

    def lookup(self, registry: str) -> RegistryAuth | None:
        """The credentials for ``registry`` (``host[:port]``, ``docker.io`` for Docker Hub), or None.

        Raises:
            Unsupported: the registry's credentials are kept by a Docker credential helper.
            GateError: a live source (a pull secret) cannot be read or is malformed.
        """
        key = registry_key(registry)
        helper_source = None
        for layer in self._layers():
            auth = layer._auths.get(key)
            if auth is not None:
                return auth
            if helper_source is None and key in layer._helper_hosts:
                helper_source = layer.source
        if helper_source is not None:
            raise Unsupported(
                "docker credential helpers",
                f"{helper_source} keeps the credentials of {key} in a credential helper; "
                "give gate a config.json with an auths entry for it",
            )
        return None

    def _layers(self) -> Iterator[Credentials]:
        """The plain credentials to search, in order of preference."""
        if self._provider is not None:
            yield from self._provider.current()._layers()
        elif self._parts:
            for part in self._parts:
                yield from part._layers()
        else:
            yield self

    @classmethod
    def _parse(cls, raw: bytes, *, source: str, require_auths: bool, legacy: bool = False) -> Credentials:
        doc = _config_document(raw, source)
        if legacy:
            entries: object = doc
        elif "auths" in doc:
            entries = doc["auths"]
        elif require_auths:
            raise InvalidArgument(f"{source}.auths", "missing")
        else:
            entries = {}
        if not isinstance(entries, dict):
            raise InvalidArgument(f"{source}.auths", f"expected an object, got {type(entries).__name__}")
        helpers = doc.get("credHelpers", {})
        if not isinstance(helpers, dict):
            raise InvalidArgument(f"{source}.credHelpers", "expected an object")
        helper_hosts = set(helpers)
        store = doc.get("credsStore")
        auths: dict[str, RegistryAuth] = {}
        for host, entry in entries.items():
            auth = _entry(entry, f"{source}.auths[{host!r}]")
            if auth is not None:
                auths[host] = auth
            elif store:
                # An empty entry next to credsStore: docker keeps the secret in the store.
                helper_hosts.add(host)
        return cls(auths, helper_hosts=frozenset(helper_hosts), source=source)


def _config_document(raw: bytes, source: str) -> dict[str, Any]:
    if len(raw) > MAX_CONFIG_BYTES:
        raise InvalidArgument(source, f"larger than {MAX_CONFIG_BYTES} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidArgument(source, "not a JSON document") from None
    except RecursionError:
        raise InvalidArgument(source, "not a JSON document: nested too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(source, f"expected a JSON object, got {type(doc).__name__}")
    return doc


def _entry(entry: object, where: str) -> RegistryAuth | None:
    if not isinstance(entry, dict):
        raise InvalidArgument(where, f"expected an object, got {type(entry).__name__}")
    fields: dict[str, str | None] = {}
    for key in ("auth", "username", "password", "identitytoken", "registrytoken"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidArgument(f"{where}.{key}", f"expected a string, got {type(value).__name__}")
        fields[key] = value or None
    username, password = fields["username"], fields["password"]
    if fields["auth"] is not None:
        try:
            decoded = base64.b64decode(fields["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument(f"{where}.auth", "not base64 of username:password") from None
        name, colon, secret = decoded.partition(":")
        if not colon or not name:
            raise InvalidArgument(f"{where}.auth", "decodes to no username:password pair")
        username, password = name, secret
    token = fields["registrytoken"]
    if token is not None and not is_bearer_token(token):
        # Sent as it is in an Authorization header, which holds ASCII only (the token is a secret:
        # its length is named, not its characters).
        raise InvalidArgument(
            f"{where}.registrytoken",
            f"expected an RFC 6750 bearer token (ASCII letters, digits, -._~+/ and a trailing =), "
            f"got a token of {len(token)} characters that is not",
        )
    if (username is None) != (password is None) and fields["identitytoken"] is None:
        raise InvalidArgument(where, "username and password must be given together")
    auth = RegistryAuth(
        username=username,
        password=password,
        identity_token=fields["identitytoken"],
        registry_token=fields["registrytoken"],
    )
    if not (auth.has_basic or auth.identity_token or auth.registry_token):
        return None
    return auth
