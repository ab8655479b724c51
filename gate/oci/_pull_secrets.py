"""Registry credentials read from Kubernetes pull secrets, re-read once their TTL has passed.

``registry.pull_secrets`` names ``kubernetes.io/dockerconfigjson`` Secrets as
``namespace/name``; ``registry.project_pull_secrets`` names projects whose
``<project>-registry-creds`` Secret ``gate credentials apply`` keeps. They are read
through the ``kubernetes`` client on the first registry login, and again once
``registry.pull_secrets_ttl`` seconds have passed, so a rotated Secret is picked
up without a restart. Only Secret names and registry hosts are ever logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gate._kube import answer_object
from gate.config import KubernetesSettings, RegistrySettings
from gate.errors import GateError, InfrastructureError, InvalidArgument
from gate.oci._credentials import Credentials

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger("gate.oci.pull_secrets")

# A Secret holds at most 1 MiB of data; base64 and metadata make its JSON larger.
MAX_SECRET_BYTES = 2 * 1024 * 1024
# A failed read is answered from memory this long, so that a broken Secret does not cost an
# API request per registry request; the TTL applies when it is shorter.
FAILURE_TTL = 5.0


class PullSecretError(InfrastructureError):
    """A configured pull secret cannot be read or does not hold registry credentials.

    This is the operator's configuration, not the image's evidence: verifications that need
    it fail as infrastructure (retry, or the failure policy) until the Secret is fixed.
    """


@dataclass(frozen=True, slots=True)
class SecretRef:
    """The namespace and name of one Secret."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """``namespace/name`` (as the configuration validated it)."""
        namespace, _, name = text.partition("/")
        return cls(namespace, name)

    @classmethod
    def of_project(cls, text: str) -> SecretRef:
        """The registry Secret of ``project`` or ``namespace/project`` (gate's project credentials)."""
        from gate.credentials._manifests import ProjectRef

        namespace, _, project = text.rpartition("/")
        ref = ProjectRef.of(project, namespace)
        return cls(ref.namespace, ref.registry_secret)


class SecretReader(Protocol):
    """Reads Secrets as the API server returns them."""

    def read(self, ref: SecretRef) -> dict[str, Any] | None:
        """The Secret's JSON object, or None when it does not exist.

        Raises:
            PullSecretError: the API server refused or could not be reached.
        """


class KubernetesSecretReader:
    """:class:`SecretReader` through the ``kubernetes`` client's CoreV1 API."""

    def __init__(self, client: ApiClient, *, timeout: float = 10.0) -> None:
        from kubernetes.client import CoreV1Api

        self._api = CoreV1Api(client)
        self._timeout = timeout

    def read(self, ref: SecretRef) -> dict[str, Any] | None:
        """GET the Secret; its raw JSON, read with a size cap (the client's model is not needed)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        where = f"registry pull secret {ref}"
        try:
            response: Any = self._api.read_namespaced_secret(
                ref.name, ref.namespace, _preload_content=False, _request_timeout=self._timeout
            )
            data = response.read(MAX_SECRET_BYTES + 1)
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 403:
                raise PullSecretError(
                    f"{where}: the API server forbids gate to get it; grant gate's ServiceAccount "
                    f"get on secrets/{ref.name} in namespace {ref.namespace} "
                    "(deployments/components/pull-secrets)"
                ) from None
            raise PullSecretError(f"{where}: the API server answered {exc.status} {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            raise PullSecretError(f"{where}: cannot reach the API server: {exc}") from None
        try:
            return answer_object(data, MAX_SECRET_BYTES)
        except ValueError as exc:
            raise PullSecretError(f"{where}: the API server's answer is {exc}") from None


class PullSecrets:
    """A :class:`~gate.oci.CredentialProvider` over Kubernetes pull secrets, cached for ``ttl`` seconds.

    Secrets earlier in ``refs`` win for a registry several of them name. ``reader`` is
    called on the first read, so a gate that never logs in to a registry never connects to
    the cluster.
    """

    def __init__(
        self,
        refs: Sequence[SecretRef],
        reader: Callable[[], SecretReader],
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not refs:
            raise ValueError("PullSecrets needs at least one Secret")
        self.refs = tuple(dict.fromkeys(refs))
        self._connect = reader
        self._reader: SecretReader | None = None
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._failure = ""
        self._expires = float("-inf")

    @property
    def source(self) -> str:
        """``pull secrets NS/NAME, ...``."""
        return "pull secrets " + ", ".join(str(ref) for ref in self.refs)

    def current(self) -> Credentials:
        """The credentials of every Secret, read again when older than the TTL.

        Raises:
            PullSecretError: a Secret is missing, unreadable or malformed (the message names it).
        """
        with self._lock:
            now = self._clock()
            if now < self._expires:
                if self._credentials is None:
                    raise PullSecretError(self._failure)
                return self._credentials
            try:
                credentials = self._read_all()
            except PullSecretError as error:
                self._credentials, self._failure = None, error.message
                self._expires = now + min(self._ttl, FAILURE_TTL)
                log.warning("registry pull secrets unusable", extra={"error": error.message})
                raise
            self._credentials, self._failure, self._expires = credentials, "", now + self._ttl
            return credentials

    def _read_all(self) -> Credentials:
        if self._reader is None:
            try:
                self._reader = self._connect()
            except GateError as error:
                # The extra is missing or the cluster configuration is unusable: say it per lookup.
                raise PullSecretError(f"registry pull secrets: {error.message}") from None
        parts = []
        for ref in self.refs:
            document = self._reader.read(ref)
            if document is None:
                raise PullSecretError(f"registry pull secret {ref}: not found")
            try:
                parts.append(Credentials.from_secret(document, where=f"registry pull secret {ref}"))
            except InvalidArgument as error:
                raise PullSecretError(error.message) from None
        log.debug("registry pull secrets read", extra={"secrets": [str(ref) for ref in self.refs]})
        return parts[0].merged(*parts[1:])


def pull_secret_refs(settings: RegistrySettings) -> tuple[SecretRef, ...]:
    """The Secrets ``registry.pull_secrets`` and ``registry.project_pull_secrets`` name, in order."""
    return (
        *(SecretRef.parse(text) for text in settings.pull_secrets),
        *(SecretRef.of_project(text) for text in settings.project_pull_secrets),
    )


def pull_secret_credentials(
    settings: RegistrySettings, kubernetes: KubernetesSettings | None = None
) -> Credentials | None:
    """Live credentials from the configured pull secrets, or None when none is configured.

    The cluster is reached as ``kubernetes`` says (default: in-cluster), on the first login.
    """
    refs = pull_secret_refs(settings)
    if not refs:
        return None
    cluster = kubernetes or KubernetesSettings()

    def connect() -> SecretReader:
        from gate._kube import api_client

        return KubernetesSecretReader(api_client(cluster), timeout=cluster.timeout)

    return Credentials.live(PullSecrets(refs, connect, ttl=settings.pull_secrets_ttl))
