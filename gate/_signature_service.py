"""gate's signature machinery, built on first use.

The registry client, trust root and verifier import about half a second of
libraries (sigstore, the policy engine, httpx); a gate that never verifies an
image should not pay for them at start-up. :class:`SignatureService` holds the
settings and builds the parts the first time a verification, an attestation
or a ``verifyImages`` rule needs them; it is also the policy engine's
``ImageVerifier`` port for the whole process.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate._nonblocking import may_block
from gate.config import KubernetesSettings, RegistrySettings, SignatureSettings
from gate.errors import ConfigError, Unsupported

if TYPE_CHECKING:
    from gate._cache import CacheStats
    from gate.oci import ImageSource
    from gate.signatures import SigningKey, TrustRoot
    from gate.verification import ImageVerifierService, KyvernoImageVerifier


class SignatureService:
    """Lazily built verification service, Kyverno adapter and signing key.

    Args:
        settings: the ``signatures`` section (trust root, signing key, cache).
        registry: the ``registry`` section (credentials, plain-HTTP hosts, CA, timeout).
        source: an image source to use instead of a registry client (tests, OCI layouts).
        kubernetes: the cluster the registry's pull secrets are read from (None: in-cluster).
    """

    def __init__(
        self,
        settings: SignatureSettings | None = None,
        registry: RegistrySettings | None = None,
        *,
        source: ImageSource | None = None,
        kubernetes: KubernetesSettings | None = None,
    ) -> None:
        self.settings = settings or SignatureSettings()
        self.registry = registry or RegistrySettings()
        # The cluster registry.pull_secrets are read from (None: in-cluster).
        self.kubernetes = kubernetes
        self._source = source
        self._lock = threading.Lock()
        self._service: ImageVerifierService | None = None
        self._kyverno: KyvernoImageVerifier | None = None
        self._key: SigningKey | None = None

    def trust(self) -> TrustRoot:
        """The configured trusted root, or Sigstore's public-good root shipped with gate.

        Raises:
            ConfigError: the configured file is unreadable or not a trusted root.
        """
        from gate.errors import InvalidArgument
        from gate.signatures import TrustRoot
        from gate.verification import embedded_trust_root

        path = self.settings.trusted_root
        if path is None:
            return embedded_trust_root()
        try:
            return TrustRoot.from_trusted_root_json(path.read_bytes())
        except OSError as error:
            raise ConfigError(
                "configuration", "signatures.trusted_root", f"cannot read {path}: {error.strerror}"
            ) from None
        except InvalidArgument as error:
            raise ConfigError("configuration", "signatures.trusted_root", error.message) from None

    def service(self) -> ImageVerifierService:
        """The process's verification service (one registry client, one result cache)."""
        with self._lock:
            if self._service is None:
                from gate.oci import RegistryClient
                from gate.verification import ImageVerifierService

                source = (
                    self._source
                    if self._source is not None
                    else RegistryClient.from_settings(self.registry, self.kubernetes)
                )
                self._service = ImageVerifierService(
                    source,
                    self.trust(),
                    result_ttl=self.settings.cache_ttl,
                    max_results=self.settings.cache_entries,
                )
            return self._service

    def cache_stats(self) -> dict[str, CacheStats]:
        """Counters of the verification caches (none before the first verification)."""
        with self._lock:
            service = self._service
        if service is None:
            return {}
        stats = service.stats()
        return {"verification": stats.results, "verification_tags": stats.tags}

    def publisher(self) -> Any:
        """The registry client attestations are pushed with."""
        source = self.service().source
        if not hasattr(source, "push_manifest"):
            raise Unsupported("push", "the image source of this gate is read-only (an OCI layout)")
        return source

    def _adapter(self) -> KyvernoImageVerifier:
        service = self.service()
        with self._lock:
            if self._kyverno is None:
                from gate.verification import KyvernoImageVerifier

                self._kyverno = KyvernoImageVerifier(service)
            return self._kyverno

    def verify_signature(self, image: str, attestor: Any, *, signature_type: str, repository: str) -> Any:
        """The ``ImageVerifier`` port: delegates to the Kyverno adapter."""
        return self._adapter().verify_signature(
            image, attestor, signature_type=signature_type, repository=repository
        )

    def verify_attestations(self, image: str, predicate_type: str, attestor: Any, *, repository: str) -> Any:
        """The ``ImageVerifier`` port: delegates to the Kyverno adapter."""
        return self._adapter().verify_attestations(image, predicate_type, attestor, repository=repository)

    def decision_signer(self, data_dir: Path) -> DecisionSigner:
        """The signer of decision records (gate's key, or one created in ``data_dir``)."""
        return DecisionSigner(self, data_dir)

    def signing_key(self) -> SigningKey:
        """gate's own signing key (``signatures.signing_key_file``).

        Raises:
            Unsupported: no key is configured.
            ConfigError: the key or its password file cannot be read or does not load.
        """
        with self._lock:
            if self._key is not None:
                return self._key
            path = self.settings.signing_key_file
            if path is None:
                raise Unsupported("attestation signing", "set signatures.signing_key_file to a P-256 PEM key")
            from gate.errors import InvalidArgument
            from gate.signatures import load_private_key

            setting = "signatures.signing_key_file"
            try:
                data = path.read_bytes()
                password_file = self.settings.signing_key_password_file
                password = password_file.read_bytes().rstrip(b"\r\n") if password_file is not None else None
                self._key = load_private_key(data, password)
            except OSError as error:
                raise ConfigError(
                    "configuration", setting, f"cannot read {error.filename}: {error.strerror}"
                ) from None
            except InvalidArgument as error:
                raise ConfigError("configuration", setting, error.message) from None
            return self._key


def load_or_create_signing_key(path: Path) -> bytes:
    """The PEM private key in ``path``, creating an ECDSA P-256 key (mode 0600) if there is none.

    Replicas sharing a database should share this key (mount the same file) so that every
    decision record verifies against one public key.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Written aside, then linked into place: link fails when the name exists, so when two
    # processes start at once one key wins and both use it, and no process ever reads a key
    # file that is still being written (as it could after an O_EXCL create).
    fd, staged = tempfile.mkstemp(prefix=".decisions-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(staged, path)
        except FileExistsError:
            return path.read_bytes()
    finally:
        os.unlink(staged)
    return pem


class DecisionSigner:
    """Signs decisions' batch Statements as DSSE envelopes with gate's key (the decisions' signer port).

    The key is ``signatures.signing_key_file`` when configured, else a key gate creates in
    ``<data_dir>/keys/decisions.pem`` on first use; ``gate audit public-key`` prints its
    public half for auditors.
    """

    def __init__(self, service: SignatureService, data_dir: Path) -> None:
        self._service = service
        self._default = data_dir / "keys" / "decisions.pem"
        self._lock = threading.Lock()
        self._key: SigningKey | None = None

    def key(self) -> SigningKey:
        """The signing key (loaded, or created, on first use)."""
        if self._key is None:
            may_block("the decision signing key")  # a file to read, or a key to create
        with self._lock:
            if self._key is None:
                if self._service.settings.signing_key_file is not None:
                    self._key = self._service.signing_key()
                else:
                    from gate.signatures import load_private_key

                    self._key = load_private_key(load_or_create_signing_key(self._default))
            return self._key

    def sign(self, payload: bytes, payload_type: str) -> bytes:
        """The DSSE envelope (JSON) over ``payload``."""
        from gate.signatures import sign_dsse

        return sign_dsse(payload, payload_type, self.key())

    def public_key_pem(self) -> bytes:
        """The PEM public key decision records verify against."""
        from cryptography.hazmat.primitives import serialization

        return (
            self.key()
            .private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
