"""Turning a call's credentials into an :class:`Identity`.

Three kinds of credentials are accepted, in this order:

1. ``authorization: Bearer <token>`` listed in the tokens file (by SHA-256);
2. the same header holding a Kubernetes ServiceAccount token, checked with
   TokenReview (answers cached per token hash for ``cache_ttl`` seconds);
3. the TLS client certificate, whose SANs or subject common name are mapped
   to a grant by ``auth.certificates`` (the handshake already checked it
   against ``grpc.tls.client_ca_file``: expired or foreign ones never get here).

A bearer token that is present but not accepted is refused even when a
certificate would have identified the caller: a wrong token is a mistake to
report, not to paper over.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gate.auth._identity import Identity
from gate.auth._kubernetes import TokenReviewer
from gate.auth._tokens import ReloadingTokens, hash_token
from gate.errors import Unauthenticated

# Longest bearer token considered (projected ServiceAccount tokens are ~1-2 KiB).
MAX_TOKEN_BYTES = 16 * 1024
# Refusals are remembered briefly so that a caller retrying a bad token does not
# turn into a TokenReview per call; successes for the configured TTL.
REFUSAL_TTL = 5.0
CACHE_ENTRIES = 10_000

# Properties of gRPC's TLS auth context that name the peer, strongest first.
_PEER_NAME_PROPERTIES = ("x509_subject_alternative_name", "peer_spiffe_id", "x509_common_name")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a call presented: a bearer token and the verified client certificate's names."""

    token: str | None = None
    certificate_names: tuple[str, ...] = ()

    @classmethod
    def from_grpc(
        cls, metadata: Iterable[tuple[str, str | bytes]] | None, auth_context: Mapping[str, Iterable[bytes]]
    ) -> Credentials:
        """Read the ``authorization`` header and the TLS peer names of a gRPC call.

        Raises:
            Unauthenticated: the header is not ``Bearer <token>`` or the token is too long.
        """
        token = None
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode("latin-1") if isinstance(value, bytes) else value
                scheme, _, rest = text.partition(" ")
                if scheme.lower() != "bearer" or not rest.strip():
                    raise Unauthenticated("authorization: expected 'Bearer <token>'")
                token = rest.strip()
                if len(token) > MAX_TOKEN_BYTES:
                    raise Unauthenticated(f"authorization: token longer than {MAX_TOKEN_BYTES} bytes")
                break
        names: list[str] = []
        for prop in _PEER_NAME_PROPERTIES:
            for raw in auth_context.get(prop, ()):
                name = raw.decode("utf-8", "replace")
                if name not in names:
                    names.append(name)
        return cls(token, tuple(names))


class Authenticator:
    """Maps credentials to identities; see the module documentation for the order."""

    def __init__(
        self,
        *,
        tokens: Mapping[str, Identity] | None = None,
        certificates: Mapping[str, Identity] | None = None,
        reviewer: TokenReviewer | None = None,
        audiences: Iterable[str] = (),
        service_accounts: Mapping[str, Identity] | None = None,
        cache_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Accept ``tokens`` (hash -> identity), ``certificates`` (peer name -> identity)
        and, with a ``reviewer``, Kubernetes tokens for ``audiences`` whose usernames
        ``service_accounts`` maps to identities (unlisted usernames get no role).
        """
        # A ReloadingTokens follows its file; any other mapping is copied once.
        self._tokens = tokens if isinstance(tokens, ReloadingTokens) else dict(tokens or {})
        self._certificates = dict(certificates or {})
        self._reviewer = reviewer
        self._audiences = tuple(audiences)
        self._service_accounts = dict(service_accounts or {})
        self._ttl = cache_ttl
        self._clock = clock
        self._reviews: OrderedDict[str, tuple[float, Identity | str]] = OrderedDict()
        self._lock = threading.Lock()

    def identify(self, credentials: Credentials) -> Identity | None:
        """The identity, without blocking; None when a TokenReview must be made (:meth:`review`).

        Raises:
            Unauthenticated: no credentials, or credentials gate does not accept.
        """
        token = credentials.token
        if token is not None:
            digest = hash_token(token)
            # A dict lookup by the token's hash: timing reveals at most a hash prefix, not the token.
            identity = self._tokens.get(digest)
            if identity is not None:
                return identity
            if self._reviewer is None:
                raise Unauthenticated("bearer token not accepted")
            cached = self._cached(digest)
            if cached is None:
                return None
            if isinstance(cached, str):
                raise Unauthenticated(cached)
            return cached
        for name in credentials.certificate_names:
            identity = self._certificates.get(name)
            if identity is not None:
                return identity
        if credentials.certificate_names:
            raise Unauthenticated(
                f"client certificate {credentials.certificate_names[0]!r} is not mapped to an identity "
                "(auth.certificates)"
            )
        raise Unauthenticated("credentials required: a bearer token or a client certificate")

    def authenticate(self, credentials: Credentials) -> Identity:
        """:meth:`identify`, making the TokenReview (blocking) when one is needed."""
        identity = self.identify(credentials)
        if identity is not None:
            return identity
        assert credentials.token is not None
        return self.review(credentials.token)

    def review(self, token: str) -> Identity:
        """Check a token with TokenReview and remember the answer.

        Raises:
            Unauthenticated: the API server does not accept the token (for gate's audiences).
            InfrastructureError: the API server could not be asked.
        """
        assert self._reviewer is not None
        digest = hash_token(token)
        result = self._reviewer.review(token, self._audiences)
        outcome: Identity | str
        if not result.authenticated:
            # The API server's error text names the reason (expired, wrong audience) and never the token.
            outcome = f"kubernetes token not accepted: {result.error or 'not authenticated'}"
        elif self._audiences and not set(result.audiences) & set(self._audiences):
            wanted, got = list(self._audiences), list(result.audiences)
            outcome = f"kubernetes token not issued for {wanted} (got audiences {got})"
        else:
            outcome = self._service_accounts.get(result.username) or Identity.of(f"k8s:{result.username}", ())
        self._remember(digest, outcome)
        if isinstance(outcome, str):
            raise Unauthenticated(outcome)
        return outcome

    def _cached(self, digest: str) -> Identity | str | None:
        with self._lock:
            entry = self._reviews.get(digest)
            if entry is None:
                return None
            expires, outcome = entry
            if expires <= self._clock():
                del self._reviews[digest]
                return None
            return outcome

    def _remember(self, digest: str, outcome: Identity | str) -> None:
        ttl = min(self._ttl, REFUSAL_TTL) if isinstance(outcome, str) else self._ttl
        if ttl <= 0:
            return
        with self._lock:
            self._reviews[digest] = (self._clock() + ttl, outcome)
            self._reviews.move_to_end(digest)
            while len(self._reviews) > CACHE_ENTRIES:
                self._reviews.popitem(last=False)
